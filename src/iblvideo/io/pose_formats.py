"""Pose tables on disk: IBL parquet, DeepLabCut h5 / csv and Lightning Pose csv.

All hold one row per frame and x, y, likelihood per keypoint. DeepLabCut and Lightning Pose share
the three-row (scorer, bodyparts, coords) column header and float64 values; Lightning Pose names its
scorer after its model type (``heatmap_tracker``). Each tool names a video's predictions its own way:
DeepLabCut ``<video stem><scorer>.h5`` (and ``.csv``), Lightning Pose ``<video stem>.csv``.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from iblvideo.errors import IblVideoError
from iblvideo.io.atomic import atomic_path
from iblvideo.tracks import PoseTracks

FORMATS = {"pqt": ".pose.pqt", "dlc-h5": ".h5", "dlc-csv": ".csv", "lp-csv": ".csv"}
DLC_FORMATS = ("dlc-h5", "dlc-csv")  # named <video stem><scorer><suffix>; the others <video stem><suffix>
DLC_HDF_KEY = "df_with_missing"  # the key DeepLabCut's own readers look up
LP_SCORER = "heatmap_tracker"
COORDS = ("x", "y", "likelihood")


def _check_format(fmt: str, path: Path) -> None:
    if fmt not in FORMATS:
        raise IblVideoError(path, f"unknown pose format {fmt!r}; choose from {', '.join(FORMATS)}")


def _token(part: object) -> str:
    """``part`` with only letters, digits and hyphens (``weights_v1.2`` → ``weightsv1-2``): DeepLabCut splits
    scorers at underscores and file names at dots."""
    return re.sub(r"[^A-Za-z0-9-]", "", str(part).replace(".", "-"))


def dlc_scorer(network: str, task: str, snapshot: object) -> str:
    """A scorer in DeepLabCut 3's pattern ``DLC_<Network>_<Task><date>shuffle<n>_snapshot_<id>``, without the
    date of a DeepLabCut project (there is none): ``DLC_Resnet50_iblvideomodelshuffle1_snapshot_20``."""
    network = "".join(word.capitalize() for word in re.split(r"[^A-Za-z0-9]+", network))  # as DeepLabCut 3 writes net types
    return f"DLC_{network}_{_token(task)}shuffle1_snapshot_{_token(snapshot) or 'unknown'}"


def default_path(video: Path, fmt: str, scorer: str = "") -> Path:
    """Where predictions for ``video`` go unless told otherwise: beside it, named as the format's tool names
    them (``scorer`` goes into DeepLabCut's names)."""
    _check_format(fmt, video)
    return video.with_name(video.stem + (scorer if fmt in DLC_FORMATS else "") + FORMATS[fmt])


def dlc_table(tracks: PoseTracks, scorer: str) -> pd.DataFrame:
    """DeepLabCut's layout: (scorer, bodyparts, coords) column MultiIndex, frame numbers as the index, float64."""
    columns = pd.MultiIndex.from_product([[scorer], tracks.points, COORDS], names=["scorer", "bodyparts", "coords"])
    values = np.concatenate([tracks.xy, tracks.likelihood[..., None]], axis=-1).reshape(len(tracks), -1)
    return pd.DataFrame(values.astype(np.float64), columns=columns, index=tracks.frames)


def write_poses(path: str | Path, fmt: str, tracks: PoseTracks, scorer: str) -> Path:
    """Write pose tracks to ``path`` in format ``fmt``, atomically."""
    path = Path(path)
    _check_format(fmt, path)
    with atomic_path(path) as tmp:
        if fmt == "pqt":
            tracks.to_frame().to_parquet(tmp, index=False)
        elif fmt == "dlc-h5":
            _write_hdf(dlc_table(tracks, scorer), tmp)
        else:
            dlc_table(tracks, LP_SCORER if fmt == "lp-csv" else scorer).to_csv(tmp)
    return path


def _write_hdf(table: pd.DataFrame, path: Path) -> None:
    try:
        table.to_hdf(path, key=DLC_HDF_KEY, format="table", mode="w")
    except ImportError:
        raise IblVideoError(path, "writing DeepLabCut h5 needs PyTables: pip install 'iblvideo[dlc]'") from None
