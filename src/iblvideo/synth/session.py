"""Render a whole synthetic session: encode each camera, write the ALF datasets and the ground truth.

Layout of the session folder (``root/synth_mouse_<seed>/2026-01-01/001``)::

    raw_video_data/_iblrig_<cam>Camera.raw.mp4       H.264 yuv420p at the camera's real size and rate
    alf/_ibl_<cam>Camera.times.npy                   frame times on the session clock (s)
    alf/_ibl_trials.table.pqt, alf/_ibl_wheel.position.npy, alf/_ibl_wheel.timestamps.npy
    truth/_iblvideo_<cam>TruePose.dlc.pqt           true pose in the pose-output schema
    truth/_iblvideo_<cam>TruePupil.diameter.npy     true pupil diameter (camera px, NaN while the lid covers it)
    truth/_iblvideo_<cam>TrueAnchors.positions.json static points (spout tube_top/tube_bottom, ...)
    truth/_iblvideo_<cam>TruePawStates.table.pqt    each paw's true state per frame (still, move, wheel_turn, groom)
    truth/_iblvideo_trueLicks.times.npy, truth/_iblvideo_trueLicks.spontaneous.npy

Truth is in each camera's own pixels, pixel centres at integers. The scene is defined in canonical
left-camera pixels and the right camera sees it mirrored and halved: ``x_r = (1280 - x_c) / 2``,
``y_r = y_c / 2``. A point is hidden (NaN, likelihood 0) when: a pupil point, while the blinking lid has come down to it; the
tongue, while it is out less than 8 % of the way to the spout; the far paw (``paw_l``), while its centre
is below the wheel's rim line. ``paw_r`` is the paw nearer the camera (the mouse's left paw on the left
camera, its right paw on the right camera), in the pose and in the paw states alike. A paw's state
(``synth.behaviour.PAW_STATES``) is ``groom`` while both paws rub the face (rare bouts between trials),
``wheel_turn`` while it rides the turning wheel, ``move`` while it moves otherwise (to and from the face,
an idle shift, the slide back after a turn) and ``still`` otherwise.

The folder is written under a temporary name and renamed at the end, so an interrupted render leaves
nothing behind. The same seed gives the same bytes: x264 runs single-threaded (one core draws while
the other encodes) and the muxer writes no version strings.
"""
from __future__ import annotations

import errno
import json
import logging
import math
import queue
import threading
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pandas as pd

from iblvideo.cameras import CAMERAS, TRAINING_LEFT, Camera
from iblvideo.errors import BadArgument, IblVideoError
from iblvideo.io.alf import (
    ALF_COLLECTION,
    TRIALS,
    TRUTH_COLLECTION,
    TRUTH_LICKS,
    TRUTH_SPONTANEOUS_LICKS,
    WHEEL_POSITION,
    WHEEL_TIMES,
    raw_video_path,
    times_name,
    truth_anchors_name,
    truth_paw_states_name,
    truth_pose_name,
    truth_pupil_name,
)
from iblvideo.io.atomic import atomic_dir
from iblvideo.progress import progress_bar
from iblvideo.synth.behaviour import CAMERA_START, Behaviour, simulate
from iblvideo.synth.body import BodyScene
from iblvideo.synth.side import SideScene

log = logging.getLogger(__name__)

DATE, NUMBER = "2026-01-01", "001"
CHUNK = 256  # frames whose behaviour and truth are computed at once
EXPOSURE = 0.5  # fraction of the frame period the shutter is open: sets the length of motion blur
# IBL compresses with x264 -preset slow, at crf 17 on recording rigs and 29 on training rigs: keep the
# training rigs' quality level, trade the preset for speed but keep its deblocking filter and CABAC (a
# stream much cheaper to decode than IBL's: benchmarks/reencode.py makes one as IBL would); one
# thread, because the other core draws
X264 = {"preset": "ultrafast", "crf": "29", "x264-params": "deblock=1,0,0:cabac=1", "threads": "1", "flags": "+bitexact"}


def session_path(root: str | Path, seed: int) -> Path:
    return Path(root) / f"synth_mouse_{seed}" / DATE / NUMBER


def _select_cameras(cameras: Iterable[str], rig: str) -> list[Camera]:
    names = list(dict.fromkeys(cameras))
    unknown = [n for n in names if n not in CAMERAS]
    if unknown:
        raise IblVideoError(None, f"unknown camera {unknown[0]!r}; expected left, right or body")
    if rig == "recording":
        return [CAMERAS[n] for n in names]
    if rig != "training":
        raise IblVideoError(None, f"unknown rig {rig!r}; expected recording or training")
    if "left" not in names:
        raise IblVideoError(None, "training rigs film the left camera only")
    if len(names) > 1:
        log.info("training rig: rendering the left camera only (at %g Hz)", TRAINING_LEFT.fps)
    return [TRAINING_LEFT]


def synthesize_session(root: str | Path, cameras: Iterable[str] = ("left", "right", "body"), seconds: float = 10.0,
                       seed: int = 0, rig: str = "recording", force: bool = False) -> Path:
    """Render synthetic session ``seed`` under ``root`` and return its folder; refuse to overwrite unless ``force``."""
    selected = _select_cameras(cameras, rig)
    if not math.isfinite(seconds) or seconds <= 0:
        raise BadArgument(None, f"--seconds must be a finite number above 0, not {seconds}")
    if seed < 0:
        raise BadArgument(None, f"--seed must be 0 or more, not {seed}")
    slowest = min(camera.fps for camera in selected)
    if not round(seconds * slowest) >= 1:
        raise IblVideoError(None, f"--seconds {seconds} is less than one frame of the {slowest:g} Hz camera")
    session = session_path(root, seed)
    if session.exists() and not force:
        raise FileExistsError(errno.EEXIST, "already exists", str(session))
    behaviour = simulate(seconds, seed)
    with atomic_dir(session, force=force) as folder:
        for sub in ("raw_video_data", "alf", "truth"):
            (folder / sub).mkdir()
        _write_behaviour(folder, behaviour)
        for camera in selected:
            _render_camera(folder, camera, frame_times(camera, seconds, seed), behaviour, seed)
    log.info("synthetic session written to %s", session)
    return session


def frame_times(camera: Camera, seconds: float, seed: int) -> np.ndarray:
    """Frame times: a start offset after the session clock's zero, the nominal period, and 20 µs of jitter."""
    rng = np.random.default_rng([seed, 4, list(CAMERAS).index(camera.name)])
    n = int(round(seconds * camera.fps))
    return rng.uniform(*CAMERA_START) + np.arange(n) / camera.fps + rng.normal(0, 2e-5, n)


def _write_behaviour(folder: Path, behaviour: Behaviour) -> None:
    alf, truth = folder / ALF_COLLECTION, folder / TRUTH_COLLECTION
    behaviour.trials.to_parquet(alf / TRIALS, index=False)
    np.save(alf / WHEEL_POSITION, behaviour.wheel_position)
    np.save(alf / WHEEL_TIMES, behaviour.wheel_times)
    np.save(truth / TRUTH_LICKS, behaviour.lick_times)
    np.save(truth / TRUTH_SPONTANEOUS_LICKS, behaviour.lick_spontaneous)


class _Encoder:
    """Streams YUV 4:2:0 frames into an H.264 MP4 on a worker thread, so drawing and encoding overlap.

    x264 releases the GIL while it encodes; the queue is short, so memory stays a few frames.
    """

    def __init__(self, path: Path, camera: Camera):
        self.container = av.open(str(path), "w", options={"fflags": "+bitexact"})
        self.stream = self.container.add_stream("libx264", rate=Fraction(camera.fps).limit_denominator(1001))
        self.stream.width, self.stream.height, self.stream.pix_fmt = camera.width, camera.height, "yuv420p"
        self.stream.options = dict(X264)
        self.count = 0
        self.error: BaseException | None = None
        self.queue: queue.Queue[av.VideoFrame | None] = queue.Queue(maxsize=8)
        self.worker = threading.Thread(target=self._work, name=f"encode-{camera.name}", daemon=True)
        self.worker.start()

    def _work(self) -> None:
        frame = None
        try:
            while (frame := self.queue.get()) is not None:
                self.container.mux(self.stream.encode(frame))
            self.container.mux(self.stream.encode())
        except BaseException as err:  # noqa: BLE001 - handed to the drawing thread, which raises it
            self.error = err
            while frame is not None:  # drain up to the end marker so the producer never blocks
                frame = self.queue.get()

    def write(self, buffer: np.ndarray) -> None:
        """Queue one frame; ``buffer`` is copied, so the caller may reuse it at once."""
        if self.error is not None:
            raise self.error
        frame = av.VideoFrame.from_ndarray(buffer, format="yuv420p")
        frame.pts = self.count
        self.count += 1
        self.queue.put(frame)

    def close(self) -> None:
        self.queue.put(None)
        self.worker.join()
        self.container.close()
        if self.error is not None:
            raise self.error


def _render_camera(folder: Path, camera: Camera, times: np.ndarray, behaviour: Behaviour, seed: int) -> None:
    """Encode one camera's video frame by frame and write its times and ground truth."""
    scene = BodyScene(camera, seed) if camera.name == "body" else SideScene(camera, seed)
    half_exposure = EXPOSURE / camera.fps / 2
    truths, diameters, paw_states = [], [], []
    encoder = _Encoder(raw_video_path(folder, camera.name), camera)
    try:
        with progress_bar(total=len(times), desc=f"{camera.label}", unit="frame") as bar:
            for first in range(0, len(times), CHUNK):
                t = times[first:first + CHUNK]
                now, before, after = (scene.geometry(behaviour.sample(t + d)) for d in (0.0, -half_exposure, half_exposure))
                truths.append(scene.truth(now))
                if isinstance(scene, SideScene):
                    diameters.append(scene.pupil_diameter(now))
                    paw_states.append(scene.paw_states(behaviour, t))
                for i in range(len(t)):
                    encoder.write(scene.draw(now, before, after, i))
                bar.update(len(t))
    finally:
        encoder.close()
    alf, truth = folder / ALF_COLLECTION, folder / TRUTH_COLLECTION
    np.save(alf / times_name(camera.name), times)
    pd.concat(truths, ignore_index=True).to_parquet(truth / truth_pose_name(camera.name), index=False)
    if diameters:
        np.save(truth / truth_pupil_name(camera.name), np.concatenate(diameters))
        pd.concat(paw_states, ignore_index=True).to_parquet(truth / truth_paw_states_name(camera.name), index=False)
    (truth / truth_anchors_name(camera.name)).write_text(json.dumps(scene.anchors(), indent=1) + "\n")
    log.info("%s: %d frames rendered", camera.label, len(times))
