"""IBL's tracking cascade, shared by every tracker: a ROI network places crop windows, specialised
networks track in them, in one decode pass.

1. Frames sampled over the whole video (``sample``) go to the tracker's ROI network; the medians of
   its confident detections are the anchors, and they fix one crop window per stage, in canonical
   left-camera pixels (``place_windows``). The sampled frames can then go through the specialised
   networks too (``track_sample``), without decoding them again: a sparse early look at the tracks.
2. In one decode pass (``run_pass``), every batch of frames goes to the tracker's pass and to other
   consumers (motion energy), so the video is decoded once.
"""
from __future__ import annotations

import collections
import contextlib
import logging
import numbers
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from iblvideo.errors import BadArgument
from iblvideo.progress import progress_bar
from iblvideo.tracking.crops import View, Window
from iblvideo.tracking.plan import CONFIDENT, Plan, Stage
from iblvideo.tracking.tracker import Detections, MissingAnchor, Placed, Size, Tracker
from iblvideo.tracks import PoseTracks, concat_points
from iblvideo.video.batching import BATCH_SIZE
from iblvideo.video.reader import FramePool, VideoReader, prefetched

log = logging.getLogger(__name__)

# 1024 left-camera frames are 1.3 GB, and several batches are in flight: beyond that memory, not speed, grows
MAX_BATCH_SIZE = 1024
Consumer = Callable[[int, np.ndarray], None]  # (first frame index, grey frames (n, H, W)) of each batch, in order


_DEVICE = re.compile(r"^(cpu|cuda(:\d+)?)$")


def torch_device(device: str | torch.device) -> torch.device:
    """``device`` (cpu, cuda or cuda:N) as torch's; the one check of every command's and function's device:
    a one-line BadArgument for any other name, or for a GPU that torch does not see."""
    text = str(device)
    if not _DEVICE.match(text):
        raise BadArgument(None, f"unknown device {text!r}; expected cpu, cuda or cuda:N")
    if text.startswith("cuda"):
        if not torch.cuda.is_available():
            raise BadArgument(None, f"device {text} asked for, but torch sees no CUDA GPU")
        index = torch.device(text).index or 0
        if index >= torch.cuda.device_count():
            raise BadArgument(None, f"device {text} asked for, but torch sees {torch.cuda.device_count()} CUDA GPU(s)")
    return torch.device(text)


def check_batch_size(batch_size: object) -> int:
    """``batch_size`` when it is a whole number of frames from 1 to MAX_BATCH_SIZE; else a one-line BadArgument."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or not 1 <= int(batch_size) <= MAX_BATCH_SIZE:
        raise BadArgument(None, f"batch size must be a whole number of frames from 1 to {MAX_BATCH_SIZE}; got {batch_size!r}")
    return int(batch_size)


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
    keys = np.asarray(keyframes)
    chosen = keys[np.unique(np.linspace(0, len(keys) - 1, min(n, len(keys))).round().astype(int))]
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


def sample(reader: VideoReader) -> Sample:
    """Frames spread over the video (:func:`sample_indices`)."""
    wanted = sample_indices(reader.info.n_frames, reader.info.fps, reader.keyframes)
    return Sample(wanted, tuple(image for _, image in reader.sample(wanted)))


class CascadeTracker(Tracker, Protocol):
    """A tracker whose networks take canonical windows (``crops.Window``) in the cascade's roles (``tracking.plan``)."""

    view: View
    plan: Plan
    stages: tuple[Stage, ...]  # the plan's stages this tracker has networks for

    def input_size(self, role: str) -> Size | None:
        """The input ``role``'s network takes; None when any window is stretched to it."""

    def detect(self, role: str, frames: tuple[np.ndarray, ...], window: Window, points: tuple[str, ...]) -> Detections:
        """``points`` found by ``role``'s network in ``window`` of frames sampled over the video (not consecutive)."""


def place(tracker: CascadeTracker, reader: VideoReader) -> Placed[Window]:
    """The cascade's windows from a sample of the video (:func:`sample`), whose frames stay at hand for ``sample_tracks``."""
    sampled = sample(reader)
    windows = place_windows(tracker, sampled, reader)
    return Placed(tracker, reader, windows, len(sampled), lambda points: track_sample(tracker, sampled, windows, points))


def place_windows(tracker: CascadeTracker, sampled: Sample, reader: VideoReader) -> dict[str, Window]:
    """Crop window of every stage but the refining ones, from the ROI network's anchors on ``sampled``."""
    plan, view = tracker.plan, tracker.view
    xy, likelihood = tracker.detect(plan.roi, sampled.frames, view.full_window(tracker.input_size(plan.roi)), plan.anchors)
    x, y = view.to_canonical(xy[..., 0], xy[..., 1])
    anchors = {}
    for k, name in enumerate(plan.anchors):
        confident = likelihood[:, k] >= CONFIDENT
        if not confident.any():
            raise MissingAnchor(name).error(reader.path, len(sampled), tracker.camera.name)
        anchors[name] = (float(np.median(x[confident, k])), float(np.median(y[confident, k])))
    log.debug("%s: anchors %s", reader.path.name, anchors)
    return {stage.role: stage.window(anchors, view, tracker.input_size(stage.role)) for stage in tracker.stages if not stage.refines}


def track_sample(tracker: CascadeTracker, sampled: Sample, windows: dict[str, Window], points: Iterable[str] | None = None) -> PoseTracks:
    """The stages that track any of ``points`` (default: all) on the sampled frames, in their ``windows``:
    tracks of the sampled frames. Nothing is decoded."""
    wanted = None if points is None else set(points)
    stages = [s for s in tracker.stages if not s.refines and (wanted is None or wanted & set(s.points))]
    if not stages:
        raise ValueError(f"no network of the {tracker.camera.name} camera's cascade tracks {', '.join(sorted(wanted or ()))}")
    parts = []
    for stage in stages:
        xy, likelihood = tracker.detect(stage.role, sampled.frames, windows[stage.role], stage.points)
        parts.append(PoseTracks(stage.points, xy, likelihood, frames=sampled.indices))
    return concat_points(parts)


def run_pass(reader: VideoReader, placed: Placed[Any], batch_size: int = BATCH_SIZE, consumers: Iterable[Consumer] = ()) -> PoseTracks:
    """Track every frame in one decode pass, whose batches also go to ``consumers(first, frames)`` first."""
    n = reader.info.n_frames
    pool = FramePool()
    with progress_bar(total=n, desc=placed.tracker.camera.label, unit="frame") as bar, \
            placed.tracker.start(placed, n, reader.info.fps) as tracking:
        # decoding runs a batch ahead on its own thread, overlapping the networks
        for first, batch in prefetched(reader.batches(batch_size, pool=pool)):
            for consumer in consumers:
                consumer(first, batch)

            def done(batch: np.ndarray = batch) -> None:
                pool.give_back(batch)
                bar.update(len(batch))

            tracking.push(first, batch, done)
        return tracking.finish()


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
        def in_turn(job: Callable[[], None], done: Callable[[], None]) -> None:
            job()
            done()

        yield in_turn
        return
    running: collections.deque[tuple[Future[None], Callable[[], None]]] = collections.deque()

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
