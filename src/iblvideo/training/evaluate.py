"""Pixel error of a trained model on the test split of its labeled frames, in original image pixels."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from iblvideo.errors import IblVideoError
from iblvideo.io.atomic import atomic_path
from iblvideo.networks.model_dir import EVALUATION, PoseModel, load_model
from iblvideo.training.labels import LabeledFrames, read_labels

log = logging.getLogger(__name__)

BATCH = 16


def pixel_errors(model: PoseModel, frames: LabeledFrames) -> np.ndarray:
    """Distance (N, K) between prediction and label in the images' pixels; NaN where unlabeled."""
    predicted = np.concatenate([model.predict(frames.images[i : i + BATCH])[0] for i in range(0, len(frames.images), BATCH)])
    return np.linalg.norm(predicted - frames.points, axis=-1)


def error_table(keypoints: tuple[str, ...], errors: np.ndarray) -> pd.DataFrame:
    """Mean, median and 95th percentile per keypoint, plus an ``all`` row over every labeled point."""
    columns = {name: errors[:, k] for k, name in enumerate(keypoints)} | {"all": errors.ravel()}
    rows = {}
    for name, values in columns.items():
        values = values[~np.isnan(values)]
        stats = (values.mean(), np.median(values), np.percentile(values, 95)) if len(values) else (np.nan,) * 3
        rows[name] = {"n": len(values), "mean_px": stats[0], "median_px": stats[1], "p95_px": stats[2]}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "keypoint"
    return table


def evaluate(model_dir: str | Path, labels: str | Path, device: str = "cpu") -> pd.DataFrame:
    """Error table on the model's test split; also saved as ``evaluation.csv`` in the model folder."""
    model = load_model(model_dir, device)
    frames = read_labels(labels)
    if frames.keypoints != model.keypoints:
        raise IblVideoError(labels, f"keypoints differ from the model's ({len(frames.keypoints)} vs {len(model.keypoints)})")
    if frames.sha256 != model.config["training_data"]["sha256"]:
        log.warning("%s: labels differ from those the model was trained on; the test split is looked up by image name", labels)
    test = frames.subset(model.config["split"]["test"])
    table = error_table(model.keypoints, pixel_errors(model, test))
    with atomic_path(Path(model_dir) / EVALUATION) as tmp:
        table.to_csv(tmp, float_format="%.3f")
    return table
