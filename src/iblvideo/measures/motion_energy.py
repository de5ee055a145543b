"""Motion energy in a region of interest placed from the pose tracks, as IBL computes it.

The ROI is the whisker pad on the side cameras (below the midpoint of nose tip and pupil, sized by
their distance) and the body on the body camera (left of the tail start). Motion energy of frame i
is the mean absolute grey-level change from frame i to frame i + 1 inside the ROI; the last frame
repeats the value before it. IBL decodes with OpenCV, whose grey levels stretch the video's
limited luma range (16-235) to 0-255, so limited-range luma is stretched the same way here.

Two ways to run it, both one decode of the video in constant memory:

* from existing pose tracks (``compute_motion_energy`` on IBL's ``roi_from_pose``; ``iblvideo
  motion-energy``): the ROI is IBL's, from the means of the final tracks;
* inside the tracking pass (``OnePassMotionEnergy``, what ``run_session`` uses when it tracks): the
  ROI must be known before the pass, so it is IBL's definition applied to the specialised networks'
  tracks on the frames the ROI network sampled (about one a second, 20-100 frames).
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import av
import numpy as np

from iblvideo.errors import IblVideoError
from iblvideo.progress import progress_bar
from iblvideo.tracks import PoseTracks
from iblvideo.video.batching import BATCH_SIZE
from iblvideo.video.reader import VideoReader

if TYPE_CHECKING:
    from iblvideo.tracking.tracker import Placed

log = logging.getLogger(__name__)

# OpenCV's grey level for each limited-range luma value (exact integer floor, as its decoder rounds)
_LIMITED_TO_FULL = np.clip((np.arange(256) - 16) * 255 // 219, 0, 255).astype(np.uint8)
# the pupil point the side ROI is anchored on, with IBL's fallbacks when a point is never tracked
_PUPIL_ANCHORS = ("pupil_top_r", "pupil_left_r", "pupil_right_r", "pupil_bottom_r")


@dataclass(frozen=True)
class Roi:
    """A rectangle in pixels: width, height and top-left corner (IBL's ``w, h, x, y``)."""

    w: int
    h: int
    x: int
    y: int

    @property
    def slices(self) -> tuple[slice, slice]:
        """Row and column slices of the ROI (clipped by the frame edge, as numpy slicing does)."""
        return slice(self.y, self.y + self.h), slice(self.x, self.x + self.w)

    def to_array(self) -> np.ndarray:
        return np.array([self.w, self.h, self.x, self.y])


def _midpoint(tracks: PoseTracks, point: str) -> tuple[int, int] | None:
    """Mean position of ``point`` over frames with likelihood >= 0.9, truncated to pixels; None if never seen."""
    if point not in tracks.points:
        return None
    x, y = tracks.confident_xy(point).T
    if np.isnan(x).all() or np.isnan(y).all():
        return None
    return int(np.nanmean(x)), int(np.nanmean(y))


def roi_points(camera: str) -> tuple[str, ...]:
    """The points ``roi_from_pose`` places ``camera``'s ROI from."""
    return ("tail_start",) if camera == "body" else ("nose_tip", *_PUPIL_ANCHORS)


def roi_from_pose(tracks: PoseTracks, camera: str) -> Roi:
    """IBL's motion-energy ROI for ``camera`` from its pose tracks."""
    if camera == "body":
        tail = _midpoint(tracks, "tail_start")
        if tail is None:
            raise IblVideoError(None, "body camera: tail_start is never tracked; cannot place the motion-energy ROI")
        roi = Roi(w=int(tail[0] * 3 / 5), h=210, x=int(tail[0] - tail[0] * 3 / 5), y=int(tail[1] - 120))
    else:
        nose = _midpoint(tracks, "nose_tip")
        pupil = next(filter(None, (_midpoint(tracks, p) for p in _PUPIL_ANCHORS)), None)
        if nose is None or pupil is None:
            raise IblVideoError(None, f"{camera} camera: nose tip or pupil never tracked; cannot place the motion-energy ROI")
        anchor = np.mean([nose, pupil], axis=0)
        distance = np.sqrt(np.sum((np.array(nose) - np.array(pupil)) ** 2))
        roi = Roi(w=int(distance / 2), h=int(distance / 3), x=int(anchor[0] - distance / 4), y=int(anchor[1]))
    if min(roi.w, roi.h, roi.x, roi.y) < 0 or roi.w == 0 or roi.h == 0:
        raise IblVideoError(None, f"{camera} camera: motion-energy ROI {roi} is empty or off the frame; the pose tracks look wrong")
    return roi


class MotionEnergy:
    """Accumulates motion energy from consecutive frame batches, holding only the previous ROI crop.

    Feed every batch of the video in order with ``update(first_index, frames)`` (grey uint8 frames,
    (n, H, W)), then call ``result()``. ``full_range`` says the luma already spans 0-255 (see
    :func:`luma_is_full_range`). The ROI must be known before the first batch (see
    :class:`OnePassMotionEnergy` for a ROI placed before tracking).
    """

    def __init__(self, roi: Roi, full_range: bool = False):
        self.roi = roi
        self._grey = None if full_range else _LIMITED_TO_FULL
        self._previous: np.ndarray | None = None
        self._next_index = 0
        self._values: list[np.ndarray] = []

    def update(self, first_index: int, frames: np.ndarray) -> None:
        if first_index != self._next_index:
            raise ValueError(f"motion energy needs consecutive frames: expected frame {self._next_index}, got {first_index}")
        rows, columns = self.roi.slices
        crops = frames[:, rows, columns]
        if self._grey is not None:
            crops = self._grey[crops]
        crops = crops.astype(np.float32)  # float32 like IBL, so the means round identically
        if self._previous is not None:
            crops = np.concatenate([self._previous[None], crops])
        if len(crops) > 1:
            self._values.append(np.mean(np.abs(np.diff(crops, axis=0)), axis=(1, 2)))
        self._previous = crops[-1]
        self._next_index += len(frames)

    def result(self) -> np.ndarray:
        """Motion energy per frame (float64), the last frame repeating the one before."""
        if self._next_index == 0:
            raise ValueError("motion energy of no frames")
        if self._next_index == 1:
            return np.full(1, np.nan)
        values = np.concatenate(self._values).astype(np.float64)
        return np.append(values, values[-1])


class OnePassMotionEnergy:
    """Motion energy computed in the tracking pass: pass it as ``dlc(..., consumers_for=...)``.

    Once the cascade has placed its windows, the specialised networks that track the ROI's points
    (eye and nose tip; tail start on the body camera) run on the frames the ROI network sampled,
    already decoded, and ``roi_from_pose`` places the ROI from those tracks. The accumulator then
    takes every batch of the tracking pass. ``ran`` is False when tracking did not run (an existing
    output kept) or the sample could not place the ROI (a warning says why); the caller then
    computes motion energy from the final tracks instead.
    """

    def __init__(self) -> None:
        self.roi: Roi | None = None
        self.sample_tracks: PoseTracks | None = None
        self._accumulator: MotionEnergy | None = None

    def __call__(self, placed: Placed[Any]) -> list[Callable[[int, np.ndarray], None]]:
        camera, path = placed.tracker.camera.name, placed.reader.path
        if placed.sample_tracks is None:  # a tracker that keeps no sample (IBL's Lightning Pose): from the final tracks, as IBL does
            return []
        self.sample_tracks = placed.sample_tracks(roi_points(camera))
        try:
            self.roi = roi_from_pose(self.sample_tracks, camera)
        except IblVideoError as err:
            log.warning("%s: %s (from %d sampled frames); motion energy waits for the final tracks", path.name, err.problem, placed.sampled)
            return []
        log.debug("%s: motion-energy ROI %s from %d sampled frames", path.name, self.roi, placed.sampled)
        self._accumulator = MotionEnergy(self.roi, full_range=luma_is_full_range(path))
        return [self._accumulator.update]

    @property
    def ran(self) -> bool:
        return self._accumulator is not None

    def result(self) -> np.ndarray:
        """Motion energy per frame, as :meth:`MotionEnergy.result`."""
        if self._accumulator is None:
            raise ValueError("motion energy did not run in the tracking pass")
        return self._accumulator.result()


def luma_is_full_range(path: str | Path) -> bool:
    """Whether the video's luma spans 0-255 (JPEG range) rather than 16-235; unspecified means limited."""
    with av.open(str(path)) as container:
        context = container.streams.video[0].codec_context
        pix_fmt = context.pix_fmt or ""
        return context.color_range == 2 or pix_fmt.startswith("yuvj") or pix_fmt == "gray"


def compute_motion_energy(video: str | Path, roi: Roi, batch_size: int = BATCH_SIZE) -> np.ndarray:
    """Decode ``video`` once, in constant memory, and return its motion energy in ``roi``."""
    accumulator = MotionEnergy(roi, full_range=luma_is_full_range(video))
    with VideoReader(video) as reader, progress_bar(total=len(reader), desc=f"motion energy {Path(video).name}", unit="frame") as bar:
        for first, frames in reader.batches(batch_size):
            accumulator.update(first, frames)
            bar.update(len(frames))
    return accumulator.result()
