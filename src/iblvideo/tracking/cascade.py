"""The IBL tracking cascade: a ROI network places crop windows, specialised networks track in them.

1. The ROI network finds the anchors on frames sampled over the whole video; their medians (over
   confident detections) fix one crop window per specialised network, in canonical left-camera pixels.
   The sampled frames (at most 100) can then go through the specialised networks too
   (``track_sample``), without decoding them again: a sparse early look at the final tracks.
2. In one decode pass, every batch of frames is cut into each network's window and tracked; the same
   batches can feed other consumers (motion energy) so the video is decoded once.
3. Coordinates go back to the camera's own pixels (the right camera is unflipped and halved).
"""
from __future__ import annotations

import collections
import contextlib
import logging
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
import pandas as pd
import torch

from iblvideo.video.batching import BATCH_SIZE
from iblvideo.cameras import Camera
from iblvideo.tracking.crops import View, Window, cut, cut_each, from_window
from iblvideo.errors import IblVideoError
from iblvideo.networks.model_dir import PoseModel, load_model
from iblvideo.progress import progress_bar
from iblvideo.video.reader import VideoReader, prefetched
from iblvideo.tracking.weights import WeightsSet

log = logging.getLogger(__name__)

CONFIDENT = 0.9  # likelihood above which an anchor detection counts, as IBL does

Consumer = Callable[[int, np.ndarray], None]  # (first frame index, grey frames (n, H, W)) of each batch, in order


@dataclass(frozen=True)
class Stage:
    """One specialised network: where its window sits relative to its anchors, and what it tracks."""

    role: str
    points: tuple[str, ...]
    anchors: tuple[str, ...] = ()  # none: the whole frame
    size: tuple[int, int] = (0, 0)  # window (w, h) in canonical pixels
    offset: tuple[int, int] = (0, 0)  # window corner = anchor − offset
    # a stage that sharpens another's points: one window per point and frame, around where that stage put it
    refines: str = ""

    def window(self, anchors: dict[str, tuple[float, float]], view: View, size: tuple[int, int]) -> Window:
        """Where this stage cuts, given the anchors and its network's input ``size``."""
        if not self.anchors:
            return view.full_window(size)
        x, y = np.mean([anchors[name] for name in self.anchors], axis=0)
        return self.window_at(x, y, view)

    def window_at(self, x: float, y: float, view: View) -> Window:
        """This stage's window for an anchor at canonical (x, y)."""
        return view.snap(Window.around(x, y, *self.size, *self.offset))


@dataclass(frozen=True)
class Plan:
    """The networks of one kind of camera: the ROI network's role and the stages it places."""

    roi: str
    stages: tuple[Stage, ...]

    @property
    def anchors(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(name for stage in self.stages for name in stage.anchors))


# IBL's crop windows (w, h) and offsets, in left-camera pixels
SIDE_PLAN = Plan("roi", (
    Stage("eye", ("pupil_top_r", "pupil_right_r", "pupil_bottom_r", "pupil_left_r"), ("pupil_top_r",), (100, 100), (50, 50)),
    Stage("nose_tip", ("nose_tip",), ("nose_tip",), (100, 100), (50, 50)),
    Stage("tongue", ("tongue_end_r", "tongue_end_l"), ("tube_top", "tube_bottom"), (160, 160), (60, 100)),
    Stage("paws", ("paw_r", "paw_l")),
    # not IBL's: a weights set may add a network that finds each paw again, at five times the
    # resolution, in a window around where the whole-frame network placed it
    Stage("paws_fine", ("paw_r", "paw_l"), size=(128, 128), offset=(64, 64), refines="paws"),
))
BODY_PLAN = Plan("body_roi", (
    Stage("tail_start", ("tail_start",), ("tail_start",), (220, 220), (110, 110)),
))


def plan_for(camera: Camera) -> Plan:
    return BODY_PLAN if camera.name == "body" else SIDE_PLAN


def n_samples(n_frames: int, fps: float) -> int:
    """Frames the ROI network looks at: one a second, at least 20 and at most 100 (they are held in memory
    until the pass: 130 MB of left-camera frames)."""
    return min(max(20, int(n_frames / max(fps, 1.0))), 100, n_frames)


def sample_indices(n_frames: int, fps: float, keyframes: Sequence[int]) -> np.ndarray:
    """The frames the ROI network looks at: :func:`n_samples` of them, spread over the video, increasing.

    The sample is the video's ``keyframes`` and the frames just after them (at most a tenth of a second
    after each): a frame there costs one or a few decodes rather than half a keyframe interval, so
    sampling a video costs a small fraction of a decoding pass instead of about a whole one.
    """
    n = n_samples(n_frames, fps)
    keyframes = np.asarray(keyframes)
    chosen = keyframes[np.unique(np.linspace(0, len(keyframes) - 1, min(n, len(keyframes))).round().astype(int))]
    per = min(-(-n // len(chosen)), max(1, round(fps / 10)))
    # every keyframe first, then the frame after each, and so on: n frames in all
    frames = (chosen[None, :] + np.arange(per)[:, None]).ravel()
    frames = np.unique(frames[frames < n_frames][:n])
    if len(frames) < n:  # few keyframes: spread the rest evenly, decoding what it takes
        spread = np.setdiff1d(np.linspace(0, n_frames - 1, n).round().astype(int), frames)
        frames = np.union1d(frames, spread[np.linspace(0, len(spread) - 1, n - len(frames)).round().astype(int)])
    return frames


@dataclass(frozen=True)
class Sample:
    """Frames sampled over a video, decoded once and shown to every network that looks at a sample."""

    indices: np.ndarray  # frame indices, increasing
    frames: tuple[np.ndarray, ...]  # grey uint8 (H, W), one per index

    def __len__(self) -> int:
        return len(self.indices)


class Cascade:
    """The networks of a weights set for one camera, ready to run on its videos."""

    batches_in_parallel = True  # each batch is tracked on its own, so batches may run side by side

    def __init__(self, weights: WeightsSet, camera: Camera, device: str = "cpu"):
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise IblVideoError(None, "--device cuda asked for, but torch sees no CUDA GPU")
        self.camera, self.view, self.plan, self.device = camera, View.of(camera), plan_for(camera), torch.device(device)
        self.roi = self._load(weights, self.plan.roi, self.plan.anchors)
        # refining stages are optional: a weights set without their network stops at the stage they refine
        self.stages = tuple(stage for stage in self.plan.stages if not stage.refines or self._provides(weights, stage.role))
        self.models = {stage.role: self._load(weights, stage.role, stage.points) for stage in self.stages}

    def _provides(self, weights: WeightsSet, role: str) -> bool:
        return role in weights.networks

    def _load(self, weights: WeightsSet, role: str, points: tuple[str, ...]) -> PoseModel:
        model = load_model(weights.network_dir(role), self.device)
        missing = [p for p in points if p not in model.keypoints]
        if missing:
            raise IblVideoError(weights.network_dir(role), f"the {role!r} network does not track {', '.join(missing)}")
        return model

    def _precision(self) -> contextlib.AbstractContextManager:
        # batched half precision on GPUs; full precision on the CPU, where half is slower
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.float16)
        return contextlib.nullcontext()

    def _track(self, model: PoseModel, frames: torch.Tensor, window: Window, points: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Camera-pixel coordinates (N, P, 2) and likelihoods (N, P) of ``points`` in ``window``."""
        size = model.network.input_size
        with self._precision():
            xy, likelihood = model.network.predict(cut(frames, self.view, window, size)[:, 0] / 255.0)
        columns = [model.keypoints.index(p) for p in points]
        x, y = from_window(xy[:, columns, 0], xy[:, columns, 1], window, size)
        x, y = self.view.to_camera(x, y)
        return np.stack([x, y], axis=-1), likelihood[:, columns].astype(np.float64)

    def sample(self, reader: VideoReader) -> Sample:
        """Frames spread over the video (:func:`sample_indices`)."""
        wanted = sample_indices(reader.info.n_frames, reader.info.fps, reader.keyframes)
        return Sample(wanted, tuple(image for _, image in reader.sample(wanted)))

    def _sampled(self, model: PoseModel, frames: torch.Tensor, window: Window, points: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        """``_track`` on sampled frames (not consecutive: a subclass whose networks read sequences answers differently)."""
        return self._track(model, frames, window, points)

    def _sample_batches(self, sample: Sample, batch_size: int) -> Iterator[tuple[int, torch.Tensor]]:
        for first in range(0, len(sample), batch_size):
            yield first, torch.from_numpy(np.stack(sample.frames[first:first + batch_size])).to(self.device)

    def windows(self, reader: VideoReader, batch_size: int = 32, sample: Sample | None = None) -> dict[str, Window]:
        """Crop window of every stage, from the ROI network on frames spread over the video (``sample``,
        else sampled here)."""
        sample = self.sample(reader) if sample is None else sample
        found: list[tuple[np.ndarray, np.ndarray]] = []
        for _, batch in self._sample_batches(sample, batch_size):
            found.append(self._sampled(self.roi, batch, self.view.full_window(self.roi.network.input_size), self.plan.anchors))
        xy = self.view.to_canonical(*np.moveaxis(np.concatenate([f[0] for f in found]), -1, 0))
        likelihood = np.concatenate([f[1] for f in found])
        anchors = {}
        for k, name in enumerate(self.plan.anchors):
            confident = likelihood[:, k] >= CONFIDENT
            if not confident.any():
                raise IblVideoError(reader.path, f"the ROI network found no {name} in {len(sample)} frames sampled over the video; "
                                                 f"is this a {self.camera.name} camera video, and the right weights?")
            anchors[name] = (float(np.median(xy[0][confident, k])), float(np.median(xy[1][confident, k])))
        log.debug("%s: anchors %s", reader.path.name, anchors)
        return {stage.role: stage.window(anchors, self.view, self.models[stage.role].network.input_size)
                for stage in self.stages if not stage.refines}

    def _fill(self, track: Callable, stages: Iterable[Stage], frames: torch.Tensor, windows: dict[str, Window], rows: slice,
              xy: np.ndarray, likelihood: np.ndarray, where: dict[str, int]) -> None:
        """Each stage's network on ``frames``, written into ``rows`` of ``xy`` and ``likelihood`` (columns by
        ``where``); a refining stage runs right after the stage it refines."""
        stages = tuple(stages)

        def chain(stage: Stage) -> list[tuple[Stage, tuple[np.ndarray, np.ndarray]]]:
            found = [(stage, track(self.models[stage.role], frames, windows[stage.role], stage.points))]
            for refiner in stages:
                if refiner.refines == stage.role:
                    found.append((refiner, self._refine(refiner, frames, stage, found[0][1][0])))
            return found

        for found in map(chain, [stage for stage in stages if not stage.refines]):
            for stage, (got_xy, got_likelihood) in found:
                columns = [where[p] for p in stage.points]
                xy[rows, columns], likelihood[rows, columns] = got_xy, got_likelihood

    def _refine(self, stage: Stage, frames: torch.Tensor, coarse: Stage, coarse_xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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

    def track_sample(self, sample: Sample, windows: dict[str, Window], points: Iterable[str] | None = None,
                     batch_size: int = 32) -> pd.DataFrame:
        """The specialised networks that track any of ``points`` (default: all) on the sampled frames, in
        their ``windows``: a pose table of the sampled rows, indexed by frame. Nothing is decoded."""
        wanted = None if points is None else set(points)
        stages = [stage for stage in self.stages if wanted is None or wanted & set(stage.points)]
        if not stages:
            raise ValueError(f"no network of the {self.camera.name} camera's cascade tracks {', '.join(sorted(wanted or ()))}")
        columns = tuple(dict.fromkeys(p for stage in stages for p in stage.points))
        xy = np.full((len(sample), len(columns), 2), np.nan)
        likelihood = np.zeros((len(sample), len(columns)))
        where = {p: i for i, p in enumerate(columns)}
        for first, batch in self._sample_batches(sample, batch_size):
            self._fill(self._sampled, stages, batch, windows, slice(first, first + len(batch)), xy, likelihood, where)
        table = tracks_table(columns, xy, likelihood)
        table.index = pd.Index(sample.indices, name="frame")
        return table

    def run(self, reader: VideoReader, windows: dict[str, Window], batch_size: int = BATCH_SIZE,
            consumers: Iterable[Consumer] = ()) -> pd.DataFrame:
        """Track every frame; one decode pass, whose batches also go to ``consumers(first, frames)``."""
        n = reader.info.n_frames
        points = self.camera.points
        xy = np.full((n, len(points), 2), np.nan)
        likelihood = np.zeros((n, len(points)))
        where = {p: i for i, p in enumerate(points)}
        side_by_side = self.device.type == "cpu" and self.batches_in_parallel
        with progress_bar(total=n, desc=f"{self.camera.label}", unit="frame") as bar, short_gil_turns(), \
                batch_workers(torch.get_num_threads() if side_by_side else 1) as submit:
            # decoding runs a batch ahead on its own thread, overlapping the networks
            for first, batch in prefetched(reader.batches(batch_size)):
                for consumer in consumers:
                    consumer(first, batch)
                frames, rows = torch.from_numpy(batch).to(self.device), slice(first, first + len(batch))
                submit(lambda frames=frames, rows=rows: self._fill(self._track, self.stages, frames, windows, rows, xy, likelihood, where),
                       lambda count=len(batch): bar.update(count))
        return tracks_table(points, xy, likelihood)


@contextlib.contextmanager
def short_gil_turns(seconds: float = 0.001) -> Iterator[None]:
    """Python threads take turns with the interpreter every ``seconds`` rather than every 5 ms.

    The decoding thread needs the interpreter briefly for every frame; with the default turn it waits
    behind the network threads often enough to slow tracking by a tenth.
    """
    before = sys.getswitchinterval()
    sys.setswitchinterval(seconds)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


@contextlib.contextmanager
def batch_workers(threads: int) -> Iterator[Callable[[Callable[[], None], Callable[[], None]], None]]:
    """``submit(job, done)``: jobs run side by side, up to ``threads`` at a time, each on a CPU thread
    with one torch thread; with one thread each runs as it is submitted.
    ``done`` runs on the caller's thread, in order, once its job has finished.

    Small convolutions split over several threads spend much of their time waiting for each other (far
    more when the decoder or another process wants a core); whole batches on separate threads keep every
    core busy instead, and each batch's output is the same, bit for bit, whichever thread computed it.
    """
    if threads < 2:
        yield lambda job, done: (job(), done())
        return
    running: collections.deque = collections.deque()

    def submit(job: Callable[[], None], done: Callable[[], None]) -> None:
        running.append((pool.submit(job), done))
        while len(running) >= threads:
            finish()

    def finish() -> None:
        future, done = running.popleft()
        future.result()
        done()

    before = torch.get_num_threads()
    try:
        with ThreadPoolExecutor(threads, initializer=torch.set_num_threads, initargs=(1,)) as pool:
            yield submit
            while running:
                finish()
    finally:
        torch.set_num_threads(before)


def tracks_table(points: tuple[str, ...], xy: np.ndarray, likelihood: np.ndarray) -> pd.DataFrame:
    """IBL's flat table: ``<point>_x``, ``<point>_y``, ``<point>_likelihood`` per point, one row per frame."""
    columns = {}
    for k, point in enumerate(points):
        columns[f"{point}_x"], columns[f"{point}_y"], columns[f"{point}_likelihood"] = xy[:, k, 0], xy[:, k, 1], likelihood[:, k]
    return pd.DataFrame(columns)
