"""The ``dlc`` tracker: a weights set of our pose networks (``networks.pose``) in IBL's cascade roles.

Each network sees its crop window resized to its input; a weights set may add a ``paws_fine``
network, which finds each paw again in a small window around where the whole-frame paws network
put it. Networks read one frame at a time, so batches of frames are tracked side by side, one per
core, on a CPU (on a GPU: in turn, in half precision).
"""
from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from iblvideo.cameras import Camera
from iblvideo.errors import BadArgument, IblVideoError
from iblvideo.networks.model_dir import PoseModel, load_model
from iblvideo.tracking import dlc_cascade
from iblvideo.tracking.cascade import batch_workers, place, torch_device
from iblvideo.tracking.crops import View, Window, cut, cut_each, from_window
from iblvideo.tracking.plan import Stage, plan_for
from iblvideo.tracking.tracker import Detections, Placed, Size, Tracker
from iblvideo.tracking.weights import WeightsSet, load_weights
from iblvideo.tracks import PoseTracks
from iblvideo.video.reader import VideoReader

log = logging.getLogger(__name__)
SAMPLE_BATCH = 32  # sampled frames a network sees at once


class PoseNetworkTracker:
    """The networks of a weights set for one camera."""

    def __init__(self, weights: WeightsSet, camera: Camera, device: str = "cpu"):
        self.camera, self.view, self.plan, self.device = camera, View.of(camera), plan_for(camera), torch_device(device)
        self.models = {self.plan.roi: self._load(weights, self.plan.roi, self.plan.anchors)}
        # refining stages are optional: a weights set without their network stops at the stage they refine
        self.stages = tuple(stage for stage in self.plan.stages if not stage.refines or stage.role in weights.networks)
        self.models.update((stage.role, self._load(weights, stage.role, stage.points)) for stage in self.stages)
        self.provenance: dict[str, Any] = {"weights": weights.name, "weights_version": weights.version,
                                           "weights_description": weights.description}

    def _load(self, weights: WeightsSet, role: str, points: tuple[str, ...]) -> PoseModel:
        model = load_model(weights.network_dir(role), str(self.device))
        missing = [p for p in points if p not in model.keypoints]
        if missing:
            raise IblVideoError(weights.network_dir(role), f"the {role!r} network does not track {', '.join(missing)}")
        return model

    def input_size(self, role: str) -> Size:
        return self.models[role].network.input_size

    def _precision(self) -> contextlib.AbstractContextManager[Any]:
        # batched half precision on GPUs; full precision on the CPU, where half is slower
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.float16)
        return contextlib.nullcontext()

    def track(self, role: str, frames: torch.Tensor, window: Window, points: tuple[str, ...]) -> Detections:
        """Camera-pixel coordinates (N, P, 2) and likelihoods (N, P) of ``points`` in ``window``."""
        model = self.models[role]
        size = model.network.input_size
        with self._precision():
            xy, likelihood = model.network.predict(cut(frames, self.view, window, size)[:, 0] / 255.0)
        columns = [model.keypoints.index(p) for p in points]
        x, y = from_window(xy[:, columns, 0], xy[:, columns, 1], window, size)
        x, y = self.view.to_camera(x, y)
        return np.stack([x, y], axis=-1), likelihood[:, columns].astype(np.float64)

    def detect(self, role: str, frames: tuple[np.ndarray, ...], window: Window, points: tuple[str, ...]) -> Detections:
        found = [self.track(role, torch.from_numpy(np.stack(frames[first:first + SAMPLE_BATCH])).to(self.device), window, points)
                 for first in range(0, len(frames), SAMPLE_BATCH)]
        return np.concatenate([f[0] for f in found]), np.concatenate([f[1] for f in found])

    def refine(self, stage: Stage, frames: torch.Tensor, coarse: Stage, coarse_xy: np.ndarray) -> Detections:
        """Camera pixels (N, P, 2) and likelihoods (N, P) of ``stage``'s points, each found again in a window
        around where ``coarse`` placed it (``coarse_xy``, camera pixels in ``coarse``'s point order)."""
        model, size = self.models[stage.role], self.models[stage.role].network.input_size
        n, points = len(frames), stage.points
        # every point's windows, point after point, in one batch for the network
        centres = np.concatenate([np.stack(self.view.to_canonical(*coarse_xy[:, coarse.points.index(p)].T), axis=-1) for p in points])
        windows = [stage.window_at(x, y, self.view) for x, y in centres]
        with self._precision():
            got_xy, got_likelihood = model.network.predict(cut_each(frames, self.view, windows, size)[:, 0] / 255.0)
        # window i holds point i // n of frame i % n: read each point in its own windows
        own = [model.keypoints.index(p) for p in points]
        rows = np.arange(len(windows))
        column = np.repeat(own, n)
        # from_window is a shift by the window's corner: map once from a corner at 0, then shift each
        x, y = from_window(got_xy[rows, column, 0], got_xy[rows, column, 1], Window(windows[0].w, windows[0].h, 0, 0), size)
        x = (x + np.array([window.x0 for window in windows])).reshape(len(points), n).T
        y = (y + np.array([window.y0 for window in windows])).reshape(len(points), n).T
        likelihood = got_likelihood[rows, column].reshape(len(points), n).T.astype(np.float64)
        return np.stack(self.view.to_camera(x, y), axis=-1), likelihood

    def place(self, reader: VideoReader) -> Placed[Window]:
        return place(self, reader)

    def start(self, placed: Placed[Window], n_frames: int, fps: float) -> _Pass:
        return _Pass(self, placed.windows, n_frames, fps)


class _Pass:
    """Every stage on every batch, batches side by side on a CPU: each frame's tracks depend on that frame alone."""

    def __init__(self, tracker: PoseNetworkTracker, windows: dict[str, Window], n_frames: int, fps: float):
        self.tracker, self.windows, self.fps = tracker, windows, fps
        self.points = tracker.camera.points
        self.where = {p: i for i, p in enumerate(self.points)}
        self.xy = np.full((n_frames, len(self.points), 2), np.nan)
        self.likelihood = np.zeros((n_frames, len(self.points)))
        self._stack = contextlib.ExitStack()
        threads = torch.get_num_threads() if tracker.device.type == "cpu" else 1
        self._submit = self._stack.enter_context(batch_workers(threads))

    def __enter__(self) -> _Pass:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def push(self, first: int, frames: np.ndarray, done: Callable[[], None]) -> None:
        batch, rows = torch.from_numpy(frames).to(self.tracker.device), slice(first, first + len(frames))
        self._submit(lambda: self._fill(batch, rows), done)

    def _fill(self, frames: torch.Tensor, rows: slice) -> None:
        """Each stage's network on ``frames``, written into ``rows``; a refining stage right after the stage it refines."""
        tracker = self.tracker
        for stage in (s for s in tracker.stages if not s.refines):
            found = [(stage, tracker.track(stage.role, frames, self.windows[stage.role], stage.points))]
            found += [(refiner, tracker.refine(refiner, frames, stage, found[0][1][0])) for refiner in tracker.stages if refiner.refines == stage.role]
            for done_stage, (xy, likelihood) in found:
                columns = [self.where[p] for p in done_stage.points]
                self.xy[rows, columns], self.likelihood[rows, columns] = xy, likelihood

    def finish(self) -> PoseTracks:
        self._stack.close()  # every batch tracked
        return PoseTracks(self.points, self.xy, self.likelihood, fps=self.fps)


def build(camera: Camera, reader: VideoReader, weights: str | Path | None, device: str, ibl_exact: bool = False) -> Tracker:
    """The tracker of ``weights``: IBL's DeepLabCut set by default (``dlc_cascade``); ``demo``, a folder or
    the URL of a zip of our own networks' weights set; ``ibl_exact`` maps IBL's sets' points back as IBL did."""
    spec = weights or dlc_cascade.default_weights()
    if dlc_cascade.is_weights_set(spec):
        try:
            root = dlc_cascade.weights_dir(spec)
        except IblVideoError as err:
            if weights is not None:
                raise
            raise IblVideoError(err.path, f"{err.problem}; IBL's DeepLabCut weights are fetched on first use: pass --weights DIR "
                                          "(weights=DIR) for a copy of weights_v2.2 unpacked, or --weights demo for the synthetic rig's networks") from None
        return dlc_cascade.DLCTracker(root, camera, device, ibl_exact)
    if ibl_exact:
        raise BadArgument(None, "--ibl-exact (ibl_exact=True) is for IBL's own weights sets, not ours")
    return PoseNetworkTracker(load_weights(spec), camera, device)
