"""The tracker contract: what a tracker gives IBL's cascade (``tracking.cascade``) and gets from it.

A tracker samples frames, asks its ROI network for the anchors and places every network's crop
window (``place``); the video is then decoded once and each batch pushed to the tracker's pass,
which gives back pose tracks. A stateless tracker may track batches side by side, a stateful one (context
networks answer two frames late) in order: that is the pass's own business, not the cascade's.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import numpy as np

from iblvideo.cameras import Camera
from iblvideo.errors import IblVideoError
from iblvideo.tracks import PoseTracks
from iblvideo.video.reader import VideoReader

Size = tuple[int, int]
Detections = tuple[np.ndarray, np.ndarray]  # camera pixels (N, P, 2) and likelihoods (N, P)


class MissingAnchor(LookupError):
    """An anchor the ROI network never found confidently on the sampled frames: its name."""

    def error(self, video: Path, sampled: int, camera: str) -> IblVideoError:
        """The one line every tracker reports it with."""
        return IblVideoError(video, f"the ROI network found no {self.args[0]} in {sampled} frames sampled over the video; "
                                    f"is this a {camera} camera video, and the right networks?")


class Region(Protocol):
    """A crop window, as the pose table's metadata records it."""

    def as_whxy(self) -> tuple[float, float, float, float]:
        """(width, height, x, y) of the window, in the pixels its tracker places it in."""


R = TypeVar("R", bound=Region)


@dataclass(frozen=True)
class Placed(Generic[R]):
    """What is known before the decode pass, for the work that wants to share it (``consumers_for``)."""

    tracker: Tracker
    reader: VideoReader
    windows: dict[str, R]
    sampled: int  # frames the ROI network looked at
    # tracks of ``points`` on the sampled frames, already decoded, where the tracker keeps them
    sample_tracks: Callable[[Iterable[str]], PoseTracks] | None = None


class TrackingPass(AbstractContextManager["TrackingPass"], Protocol):
    """One pass over every frame of a video, in order; leaving the context stops its work."""

    def push(self, first: int, frames: np.ndarray, done: Callable[[], None]) -> None:
        """Track grey frames (n, H, W) ``first`` … ``first + n - 1``; ``done()`` once the frames are no longer needed."""

    def finish(self) -> PoseTracks:
        """The tracks of every frame pushed, in the camera's pixels."""


class Tracker(Protocol):
    """A tracker's networks for one camera, in the roles of IBL's cascade."""

    camera: Camera
    provenance: dict[str, Any]  # what the pose table's metadata says of the networks

    def place(self, reader: VideoReader) -> Placed[Any]:
        """Every network's crop window, from the ROI network on frames sampled over ``reader``'s video."""

    def start(self, placed: Placed[Any], n_frames: int, fps: float) -> TrackingPass:
        """A pass over ``n_frames`` frames with the ``placed`` windows."""


# (camera, the opened video, weights: a name, folder or URL, or None for the tracker's default, device, the tracker's options) -> tracker
TrackerFactory = Callable[..., Tracker]
