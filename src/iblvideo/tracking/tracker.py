"""The tracker contract: what a tracker gives IBL's cascade (``tracking.cascade``) and gets from it.

The cascade samples frames, asks the tracker's ROI network for the anchors, places every stage's
crop window, then decodes the video once and pushes each batch to the tracker's pass; the pass
gives back pose tracks. A stateless tracker may track batches side by side, a stateful one (context
networks answer two frames late) in order: that is the pass's own business, not the cascade's.
"""
from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from iblvideo.cameras import Camera
from iblvideo.tracking.crops import View, Window
from iblvideo.tracking.plan import Plan, Stage
from iblvideo.tracks import PoseTracks
from iblvideo.video.reader import VideoReader

Size = tuple[int, int]
Detections = tuple[np.ndarray, np.ndarray]  # camera pixels (N, P, 2) and likelihoods (N, P)


class TrackingPass(AbstractContextManager["TrackingPass"], Protocol):
    """One pass over every frame of a video, in order; leaving the context stops its work."""

    def push(self, first: int, frames: np.ndarray, done: Callable[[], None]) -> None:
        """Track grey frames (n, H, W) ``first`` … ``first + n - 1``; ``done()`` once the frames are no longer needed."""

    def finish(self) -> PoseTracks:
        """The tracks of every frame pushed, in the camera's pixels."""


class Tracker(Protocol):
    """A tracker's networks for one camera, in the roles of IBL's cascade (``tracking.plan``)."""

    camera: Camera
    view: View
    plan: Plan
    stages: tuple[Stage, ...]  # the plan's stages this tracker has networks for
    provenance: dict[str, Any]  # what the pose table's metadata says of the networks

    def input_size(self, role: str) -> Size | None:
        """The input ``role``'s network takes; None when any window is stretched to it."""

    def detect(self, role: str, frames: tuple[np.ndarray, ...], window: Window, points: tuple[str, ...]) -> Detections:
        """``points`` found by ``role``'s network in ``window`` of frames sampled over the video (not consecutive)."""

    def start(self, windows: dict[str, Window], n_frames: int, fps: float) -> TrackingPass:
        """A pass over ``n_frames`` frames with the stages' ``windows``."""


# (camera, the opened video, weights: a name, folder or URL, or None for the tracker's default, device) -> tracker
TrackerFactory = Callable[[Camera, VideoReader, "str | Path | None", str], Tracker]
