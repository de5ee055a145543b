"""A toy tracker: the whole tracker contract (``iblvideo.tracking.tracker``), and nothing else.

Every point sits at a fixed place of the frame with likelihood 1, so the cascade places its windows
and every stage after tracking has tracks to work on. Registered by one line (see the tests).
"""
from __future__ import annotations

import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from iblvideo.cameras import Camera
from iblvideo.tracking import cascade
from iblvideo.tracking.crops import View, Window
from iblvideo.tracking.plan import plan_for
from iblvideo.tracking.tracker import Detections, Placed
from iblvideo.tracks import PoseTracks
from iblvideo.video.reader import VideoReader


def place(camera: Camera, point: str) -> tuple[float, float]:
    """Where ``point`` always is: inside the middle 40 % of the frame, fixed by its name."""
    code = zlib.crc32(point.encode())
    return camera.width * (0.3 + 0.4 * (code % 997) / 997), camera.height * (0.3 + 0.4 * (code // 997 % 991) / 991)


class ToyTracker:
    """Fixed points for one camera, in the cascade's roles."""

    def __init__(self, camera: Camera):
        self.camera, self.view, self.plan = camera, View.of(camera), plan_for(camera)
        self.stages = tuple(stage for stage in self.plan.stages if not stage.refines)
        self.provenance = {"weights": "toy"}

    def input_size(self, role: str) -> None:
        return None

    def fixed(self, points: tuple[str, ...], n_frames: int) -> Detections:
        """``points`` at their places in ``n_frames`` frames, certain."""
        xy = np.array([place(self.camera, point) for point in points])
        return np.broadcast_to(xy, (n_frames, *xy.shape)).copy(), np.ones((n_frames, len(points)))

    def detect(self, role: str, frames: tuple[np.ndarray, ...], window: Window, points: tuple[str, ...]) -> Detections:
        return self.fixed(points, len(frames))

    def place(self, reader: VideoReader) -> Placed[Window]:
        return cascade.place(self, reader)

    def start(self, placed: Placed[Window], n_frames: int, fps: float) -> ToyPass:
        return ToyPass(self, fps)


class ToyPass:
    """Counts the frames pushed; their tracks are the fixed places."""

    def __init__(self, tracker: ToyTracker, fps: float):
        self.tracker, self.fps, self.frames = tracker, fps, 0

    def __enter__(self) -> ToyPass:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def push(self, first: int, frames: np.ndarray, done: Callable[[], None]) -> None:
        self.frames += len(frames)
        done()

    def finish(self) -> PoseTracks:
        points = self.tracker.camera.points
        return PoseTracks(points, *self.tracker.fixed(points, self.frames), fps=self.fps)


def build(camera: Camera, reader: VideoReader, weights: str | Path | None, device: str) -> ToyTracker:
    """The toy tracker of ``camera``; it has no weights and runs anywhere."""
    return ToyTracker(camera)
