"""The IBL rig cameras: resolutions, frame rates, keypoints, and telling which camera filmed a video."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from iblvideo.errors import IblVideoError, VideoError

SIDE_POINTS = (
    "pupil_top_r", "pupil_right_r", "pupil_bottom_r", "pupil_left_r",
    "nose_tip", "tongue_end_r", "tongue_end_l", "paw_r", "paw_l",
    "tube_top", "tube_bottom",  # the spout's tip, as IBL's tongue network tracks it
)
BODY_POINTS = ("tail_start",)


@dataclass(frozen=True)
class Camera:
    """One IBL camera: its frame size in pixels, its nominal rate, and the points tracked on it."""

    name: str
    width: int
    height: int
    fps: float
    points: tuple[str, ...]

    @property
    def label(self) -> str:
        """The ALF object name, e.g. ``leftCamera``."""
        return f"{self.name}Camera"

    def check_size(self, path: str | Path, width: int, height: int) -> None:
        """A one-line error unless a ``width`` x ``height`` video is this camera's size (the crop windows are placed in its pixels)."""
        if (width, height) != (self.width, self.height):
            raise VideoError(path, f"is {width}x{height}, not the {self.name} camera's {self.width}x{self.height}; "
                                   "is it this camera's video (see --camera)?")


CAMERAS = {
    "left": Camera("left", 1280, 1024, 60.0, SIDE_POINTS),
    "right": Camera("right", 640, 512, 150.0, SIDE_POINTS),
    "body": Camera("body", 640, 512, 30.0, BODY_POINTS),
}
TRAINING_LEFT = Camera("left", 1280, 1024, 30.0, SIDE_POINTS)

_NAME_PATTERN = re.compile(r"_iblrig_(left|right|body)Camera\b")


def get_camera(name: str) -> Camera:
    """The camera called ``name`` (left, right or body)."""
    try:
        return CAMERAS[name]
    except KeyError:
        raise IblVideoError(None, f"unknown camera {name!r}; expected one of {', '.join(CAMERAS)}") from None


def identify_camera(path: str | Path, width: int, height: int, fps: float, override: str | None = None) -> Camera:
    """Which camera filmed this video: the override, else the IBL file name, else size and rate."""
    if override:
        return get_camera(override)
    match = _NAME_PATTERN.search(Path(path).name)
    if match:
        return CAMERAS[match.group(1)]
    if (width, height) == (1280, 1024):
        return CAMERAS["left"]
    if (width, height) == (640, 512):
        # right and body share a size; the right camera runs at 150 Hz, the body camera at 30 Hz
        return CAMERAS["right"] if fps > 90 else CAMERAS["body"]
    raise IblVideoError(path, f"cannot tell which camera filmed a {width}x{height} video; pass --camera left|right|body")
