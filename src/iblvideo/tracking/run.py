"""Track the IBL keypoints in one video: ``dlc()`` and ``iblvideo dlc``."""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

import torch

from iblvideo import __version__
from iblvideo.io.alf import session_root, write_table
from iblvideo.video.batching import BATCH_SIZE
from iblvideo.cameras import Camera
from iblvideo.tracking.cascade import Cascade, Consumer, Sample
from iblvideo.video.reader import VideoReader
from iblvideo.tracking.weights import load_weights

if TYPE_CHECKING:
    from iblvideo.tracking.crops import Window

log = logging.getLogger(__name__)


def dlc_path(video: Path, camera: Camera) -> Path:
    """``<session>/alf/_ibl_<cam>Camera.dlc.pqt`` for a video in an ALF session, else beside the video."""
    session = session_root(video.parent)
    folder = session / "alf" if session is not None else video.parent
    return folder / f"_ibl_{camera.label}.dlc.pqt"


CascadeFor = Callable[[Camera, VideoReader], tuple[Cascade, dict[str, Any]]]
# called once the crop windows are placed, with the frames sampled to place them; returns what else
# the decode pass should feed (e.g. motion_energy.OnePassMotionEnergy)
ConsumersFor = Callable[[Cascade, VideoReader, Sample, "dict[str, Window]"], Iterable[Consumer]]


def track(video: str | Path, output: Callable[[Path, Camera], Path], cascade_for: CascadeFor, device: str = "cpu",
          batch_size: int = BATCH_SIZE, force: bool = False, camera: str | None = None, consumers_for: ConsumersFor | None = None) -> Path:
    """What every tracker shares: name the output, keep it unless ``force``, run the cascade that
    ``cascade_for`` builds (with the metadata describing its networks) in one decode pass, and write
    the table atomically with its metadata. Returns the output's path.

    ``consumers_for``, when given, is called once the windows are placed (not when the output is kept)
    and its consumers get every decoded batch of the tracking pass, in order."""
    video = Path(video)
    # a decoding thread per core even beside the networks: one thread was no faster on a stream that is
    # cheap to decode, and 23 % slower on a noisy one, where decoding is what tracking waits for
    with VideoReader(video) as reader:
        cam = reader.info.camera(camera)
        out = output(video, cam)
        if out.exists() and not force:
            log.info("%s exists; keeping it (force=True replaces it)", out)
            return out
        cascade, networks = cascade_for(cam, reader)
        torch.manual_seed(0)
        start = time.perf_counter()
        sample = cascade.sample(reader)
        windows = cascade.windows(reader, sample=sample)
        consumers = list(consumers_for(cascade, reader, sample, windows)) if consumers_for is not None else []
        del sample  # up to 100 frames, freed before the pass
        log.info("%s: tracking %d frames", video.name, reader.info.n_frames)
        table = cascade.run(reader, windows, batch_size=batch_size, consumers=consumers)
        seconds = time.perf_counter() - start
    metadata = {
        "iblvideo_version": __version__, **networks, "camera": cam.name, "video": video.name,
        "frames": len(table), "fps": reader.info.fps, "device": device, "seconds": round(seconds, 3),
        "crop_windows_whxy": {role: window.as_whxy() for role, window in windows.items()},
    }
    write_table(table, out, metadata)
    log.info("%s: %d frames tracked in %.1f s (%.0f frames/s) -> %s", video.name, len(table), seconds, len(table) / seconds, out)
    return out


def dlc(video: str | Path, weights: str | Path = "demo", device: str = "cpu", batch_size: int = BATCH_SIZE,
        force: bool = False, camera: str | None = None, consumers_for: ConsumersFor | None = None) -> Path:
    """Track the IBL keypoints in ``video`` and return the path of its ``.dlc.pqt``.

    An existing output is kept unless ``force``; nothing is written unless tracking succeeds.
    ``consumers_for``: other work fed by the same decode pass (see :func:`track`).
    """
    def cascade_for(cam: Camera, reader: VideoReader) -> tuple[Cascade, dict[str, Any]]:
        weights_set = load_weights(weights)
        return Cascade(weights_set, cam, device), {
            "weights": weights_set.name, "weights_version": weights_set.version, "weights_description": weights_set.description}

    return track(video, dlc_path, cascade_for, device, batch_size, force, camera, consumers_for)
