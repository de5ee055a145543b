"""Tracks and lick events scored against a synthetic session's ground truth: the figures the demo weights are judged by."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from iblvideo.cameras import CAMERAS
from iblvideo.io.alf import SessionPaths
from iblvideo.measures.licks import TOLERANCE
from iblvideo.synth.behaviour import LICK_DURATION
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


def match_licks(detected: np.ndarray, true: np.ndarray, tolerance: float = TOLERANCE,
                span: tuple[float, float] = (-np.inf, np.inf)) -> tuple[float, float, np.ndarray]:
    """Precision, recall and the timing errors (s, detected minus true) of lick times against a known truth,
    each true lick matched to at most one detection within ``tolerance`` s, nearest first. Only licks and
    detections inside ``span`` count (a lick that the video's start or end cuts is neither missed nor found)."""
    detected, true = (np.sort([t for t in np.asarray(x, dtype=float) if span[0] <= t <= span[1]]) for x in (detected, true))
    pairs = sorted((abs(d - t), i, j) for i, d in enumerate(detected) for j, t in enumerate(true) if abs(d - t) <= tolerance)
    used_detected, used_true, errors = set(), set(), []
    for _, i, j in pairs:
        if i not in used_detected and j not in used_true:
            used_detected.add(i)
            used_true.add(j)
            errors.append(detected[i] - true[j])
    precision = len(errors) / len(detected) if len(detected) else 1.0
    recall = len(errors) / len(true) if len(true) else 1.0
    return precision, recall, np.array(errors)


def recorded_span(times: list[np.ndarray]) -> tuple[float, float]:
    """The session-clock span every camera of ``times`` filmed, less half a lick at each end."""
    return max(t[0] for t in times) + LICK_DURATION / 2, min(t[-1] for t in times) - LICK_DURATION / 2
