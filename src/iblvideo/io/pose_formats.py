"""Pose tables on disk: IBL parquet, DeepLabCut h5 / csv and Lightning Pose csv.

All hold one row per frame and x, y, likelihood per keypoint. DeepLabCut and Lightning Pose share
the three-row (scorer, bodyparts, coords) column header; Lightning Pose names its scorer
``heatmap_tracker``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from iblvideo.errors import IblVideoError
from iblvideo.io.atomic import atomic_path
from iblvideo.tracks import PoseTracks

FORMATS = {"pqt": ".pose.pqt", "dlc-h5": ".dlc.h5", "dlc-csv": ".dlc.csv", "lp-csv": ".lp.csv"}
DLC_HDF_KEY = "df_with_missing"  # the key DeepLabCut's own readers look up
LP_SCORER = "heatmap_tracker"
COORDS = ("x", "y", "likelihood")


def default_path(video: Path, fmt: str) -> Path:
    """Where predictions for ``video`` go unless told otherwise: beside it, named after it."""
    return video.with_name(video.stem + FORMATS[fmt])


def dlc_table(tracks: PoseTracks, scorer: str) -> pd.DataFrame:
    """DeepLabCut's layout: (scorer, bodyparts, coords) column MultiIndex, frame numbers as the index."""
    columns = pd.MultiIndex.from_product([[scorer], tracks.points, COORDS], names=["scorer", "bodyparts", "coords"])
    values = np.concatenate([tracks.xy, tracks.likelihood[..., None]], axis=-1).reshape(len(tracks), -1)
    return pd.DataFrame(values, columns=columns)


def write_poses(path: str | Path, fmt: str, tracks: PoseTracks, scorer: str) -> Path:
    """Write pose tracks to ``path`` in format ``fmt``, atomically."""
    path = Path(path)
    if fmt not in FORMATS:
        raise IblVideoError(path, f"unknown pose format {fmt!r}; choose from {', '.join(FORMATS)}")
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
