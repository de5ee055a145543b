"""Tracks scored against a synthetic session's ground truth: the figures the demo weights are judged by."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from iblvideo.cameras import CAMERAS
from iblvideo.io.alf import SessionPaths
from iblvideo.tracking.registry import attribute

CONFIDENT = 0.9  # a visible point should be at least this likely
DOUBTFUL = 0.5  # an absent point should be less likely than this


def score_tracks(session: str | Path, camera: str, tracks: str | Path | None = None) -> pd.DataFrame:
    """Per point: frames where it is visible and absent, median pixel error where visible, and the
    fractions of visible frames tracked with likelihood ≥ 0.9 and of absent frames with < 0.5."""
    session = Path(session)
    paths = SessionPaths(session)
    truth = pd.read_parquet(paths.truth_pose(camera))
    got = pd.read_parquet(tracks or paths.pose(camera, attribute("dlc")))
    if len(got) != len(truth):
        raise ValueError(f"{tracks}: {len(got)} rows for {len(truth)} frames")
    rows = []
    for point in CAMERAS[camera].points:
        visible = truth[f"{point}_likelihood"].to_numpy() > 0.5
        error = np.hypot(got[f"{point}_x"] - truth[f"{point}_x"], got[f"{point}_y"] - truth[f"{point}_y"]).to_numpy()
        likelihood = got[f"{point}_likelihood"].to_numpy()
        rows.append({
            "point": point, "visible": int(visible.sum()), "absent": int((~visible).sum()),
            "median_px": float(np.median(error[visible])) if visible.any() else np.nan,
            "confident_when_visible": float(np.mean(likelihood[visible] >= CONFIDENT)) if visible.any() else np.nan,
            "doubtful_when_absent": float(np.mean(likelihood[~visible] < DOUBTFUL)) if (~visible).any() else np.nan,
        })
    return pd.DataFrame(rows).set_index("point")
