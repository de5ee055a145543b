"""Run a trained pose network over a whole video, one batch of frames at a time."""
from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np

from iblvideo.errors import IblVideoError
from iblvideo.io.pose_formats import default_path, dlc_scorer, write_poses
from iblvideo.networks.model_dir import PoseModel, load_model, read_config
from iblvideo.progress import progress
from iblvideo.tracking.cascade import check_batch_size, torch_device
from iblvideo.tracks import PoseTracks
from iblvideo.video.batching import BATCH_SIZE
from iblvideo.video.reader import VideoReader

log = logging.getLogger(__name__)


def predict_frames(model: PoseModel, reader: VideoReader, batch_size: int = BATCH_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints (N, K, 2) in video pixels and likelihood (N, K) for every frame of ``reader``."""
    n, k = len(reader), len(model.keypoints)
    xy, likelihood = np.empty((n, k, 2), np.float32), np.empty((n, k), np.float32)
    batches = reader.batches(batch_size)
    for first, frames in progress(batches, total=math.ceil(n / batch_size), desc=f"predict {reader.path.name}", unit="batch"):
        xy[first : first + len(frames)], likelihood[first : first + len(frames)] = model.predict(frames)
    return xy, likelihood


def predict_video(model_dir: str | Path, video: str | Path, out: str | Path | None = None, fmt: str = "pqt",
                  batch_size: int = BATCH_SIZE, force: bool = False, device: str = "cpu") -> Path:
    """Predict every frame of ``video`` with the model in ``model_dir`` and write the pose table."""
    video, model_dir = Path(video), Path(model_dir)
    check_batch_size(batch_size)
    torch_device(device)  # arguments are checked before any file is read
    config = read_config(model_dir)  # the scorer of DeepLabCut's names, before the costlier load
    scorer = dlc_scorer(config["backbone"], f"iblvideo{model_dir.name}", config.get("epochs_done", ""))
    out = Path(out) if out is not None else default_path(video, fmt, scorer)
    if out.is_dir():
        raise IblVideoError(out, "is a folder; --out names the output file")
    if out.exists() and out.resolve() == video.resolve():
        raise IblVideoError(out, "is the input video; the output must be another file")
    if out.exists() and not force:
        raise FileExistsError(0, "exists", str(out))
    model = load_model(model_dir, device)
    with VideoReader(video) as reader:
        trained = tuple(model.config["image_size"])
        if (reader.info.width, reader.info.height) != trained:
            log.warning("%s: frames are %dx%d, the model was trained on %dx%d images", video, reader.info.width, reader.info.height, *trained)
        xy, likelihood = predict_frames(model, reader, batch_size)
    return write_poses(out, fmt, PoseTracks(model.keypoints, xy, likelihood), scorer)
