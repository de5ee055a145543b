"""Behavioural features from pose tracks, as IBL computes them: pupil diameter, licks, sniffs, speeds.

Pose tables use IBL's flat columns ``<point>_x``, ``<point>_y``, ``<point>_likelihood``. The
constants below are IBL's: they do not follow a session's real frame rate on purpose, so that the
numbers match what IBL publishes (a 30 Hz training-rig left camera is still smoothed as 60 Hz).
"""
from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.interpolate import interp1d

from .alf import atomic_path
from .errors import IblVideoError
from .smoothing import smooth_interpolate_savgol

log = logging.getLogger(__name__)

LIKELIHOOD_THRESHOLD = 0.9
SAMPLING = {"left": 60, "right": 150, "body": 30}
# speeds are in pixels of the half-resolution frame: the left camera films at twice the right's size
RESOLUTION = {"left": 2, "right": 1, "body": 1}
SMOOTHING_WINDOW = {"left": 31, "right": 75}
SPEED_POINTS = ("paw_r", "paw_l", "nose_tip")
TONGUE_COLUMNS = ("tongue_end_l_x", "tongue_end_l_y", "tongue_end_r_x", "tongue_end_r_y")
_COORDS = ("_x", "_y", "_likelihood")


def point_names(pose: pd.DataFrame) -> list[str]:
    """The tracked points of a pose table, sorted, from its ``<point>_x/_y/_likelihood`` columns."""
    return sorted({column.rsplit("_", 1)[0] for column in pose.columns if column.endswith(_COORDS)})


def threshold_likelihood(pose: pd.DataFrame, threshold: float = LIKELIHOOD_THRESHOLD) -> pd.DataFrame:
    """A copy of ``pose`` with x and y set to NaN wherever the likelihood is below ``threshold``."""
    pose = pose.copy()
    for point in point_names(pose):
        unsure = pose[f"{point}_likelihood"] < threshold
        pose.loc[unsure, [f"{point}_x", f"{point}_y"]] = np.nan
    return pose


def pupil_diameter(pose: pd.DataFrame) -> np.ndarray:
    """Per-frame pupil diameter: median of the two direct diameters and four chord-based estimates.

    Treating the pupil as a circle, the chord between two neighbouring points (e.g. top and left)
    spans a quarter circle, so it is the diameter divided by sqrt(2).
    """
    top, bottom, left, right = (
        pose[[f"pupil_{side}_r_x", f"pupil_{side}_r_y"]].to_numpy(dtype=float).T
        for side in ("top", "bottom", "left", "right")
    )
    estimates = [np.linalg.norm(top - bottom, axis=0), np.linalg.norm(left - right, axis=0)]
    estimates += [np.linalg.norm(a - b, axis=0) * 2**0.5 for a, b in ((top, left), (top, right), (bottom, left), (bottom, right))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # frames with no pupil point at all are NaN
        return np.nanmedian(estimates, axis=0)


def _nan_runs(values: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) index pairs bounding NaN runs, paired the way IBL pairs them (see smooth_pupil_diameter)."""
    steps = np.diff(np.isnan(values).astype(int))
    starts, ends = np.flatnonzero(steps == 1), np.flatnonzero(steps == -1)
    return list(zip(starts[: len(ends)], ends))


def smooth_pupil_diameter(raw: np.ndarray, camera: str, std_thresh: float = 5, nan_thresh: float = 1) -> np.ndarray:
    """IBL's denoised pupil diameter: Savitzky-Golay smoothing, outliers beyond 5 SD dropped, smoothed again.

    NaN runs longer than ``nan_thresh`` seconds stay NaN instead of being interpolated. Like IBL,
    the runs are paired start-to-end in order, which skips the gap ending a trace that starts on
    NaN. All NaN when smoothing is impossible (over 90 % NaN, or fewer valid frames than the window).
    """
    if camera not in SMOOTHING_WINDOW:
        raise IblVideoError(None, f"pupil diameter is smoothed for the left and right cameras only, not {camera!r}")
    raw = np.asarray(raw, dtype=float)
    window = SMOOTHING_WINDOW[camera]
    if np.mean(np.isnan(raw)) > 0.9 or np.count_nonzero(~np.isnan(raw)) < window:
        log.warning("%s camera: raw pupil diameter is too often NaN to smooth; smoothed diameter left NaN", camera)
        return np.full(raw.shape, np.nan)
    difference = raw - smooth_interpolate_savgol(raw, window, 3)
    limit = std_thresh * np.nanstd(difference)
    without_outliers = np.where(np.abs(difference) > limit, np.nan, raw)
    if np.count_nonzero(~np.isnan(without_outliers)) < window:
        log.warning("%s camera: too few pupil diameters left after outlier removal; smoothed diameter left NaN", camera)
        return np.full(raw.shape, np.nan)
    smoothed = smooth_interpolate_savgol(without_outliers, window, 3)
    for start, end in _nan_runs(without_outliers):
        if end - start > SAMPLING[camera] * nan_thresh:
            smoothed[start + 1:end + 1] = np.nan  # +1: the diff put each index one frame early
    return smoothed


def event_times(pose: pd.DataFrame, times: np.ndarray, columns: tuple[str, ...]) -> np.ndarray:
    """Times of the frames where any of ``columns`` jumps by more than a quarter of its frame-to-frame SD."""
    frames: list[np.ndarray] = []
    for column in columns:
        steps = np.diff(pose[column].to_numpy(dtype=float))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN trace has no events
            threshold = np.nanstd(steps) / 4
        frames.append(np.flatnonzero(np.abs(steps) > threshold))
    return np.asarray(times)[np.unique(np.concatenate(frames))]


def lick_times(pose: pd.DataFrame, times: np.ndarray) -> np.ndarray:
    """Lick times: frames where either tongue point moves abruptly (NaN to seen counts as no move)."""
    return event_times(pose, times, TONGUE_COLUMNS)


def sniff_times(pose: pd.DataFrame, times: np.ndarray) -> np.ndarray:
    """Sniff times: frames where the nose tip moves abruptly up or down."""
    return event_times(pose, times, ("nose_tip_y",))


def speed(pose: pd.DataFrame, times: np.ndarray, camera: str, point: str) -> np.ndarray:
    """Speed of ``point`` in half-resolution pixels per second at each frame time.

    Computed between frames at the nominal rate (1 / median interval), placed at the interval
    midpoints, and linearly interpolated back onto the frame times (extrapolated at the ends).
    """
    times = np.asarray(times, dtype=float)
    x = pose[f"{point}_x"].to_numpy(dtype=float) / RESOLUTION[camera]
    y = pose[f"{point}_y"].to_numpy(dtype=float) / RESOLUTION[camera]
    intervals = np.diff(times)
    if intervals.size < 2:
        return np.full(times.shape, np.nan)
    midpoints = times[:-1] + intervals / 2
    per_interval = np.hypot(np.diff(x), np.diff(y)) / np.nanmedian(intervals)
    return interp1d(midpoints, per_interval, fill_value="extrapolate")(times)


def _usable_times(times: np.ndarray | None, n_frames: int, camera: str) -> np.ndarray | None:
    """The camera times cut to the pose length, or None when missing or too short (IBL skips those then)."""
    if times is None or times.shape[0] == 0:
        log.warning("%s camera: no camera times; skipping licks, sniffs and speeds", camera)
        return None
    if times.shape[0] < n_frames:
        log.warning("%s camera: %d camera times for %d pose frames; skipping licks, sniffs and speeds", camera, times.shape[0], n_frames)
        return None
    return times[:n_frames]


def feature_table(pose: pd.DataFrame, times: np.ndarray | None, camera: str) -> pd.DataFrame:
    """Per-frame features of a side camera: IBL's raw and smoothed pupil diameters, then point speeds."""
    pose = threshold_likelihood(pose)
    raw = pupil_diameter(pose)
    table = pd.DataFrame({"pupilDiameter_raw": raw, "pupilDiameter_smooth": smooth_pupil_diameter(raw, camera)})
    times = _usable_times(times, len(pose), camera)
    for point in SPEED_POINTS:
        table[f"{point}_speed"] = np.nan if times is None else speed(pose, times, camera, point)
    return table


def _load_times(alf: Path, camera: str) -> np.ndarray | None:
    path = alf / f"_ibl_{camera}Camera.times.npy"
    return np.load(path) if path.exists() else None


def load_pose(path: Path) -> pd.DataFrame:
    """A pose table from parquet, with a one-line error when it is unreadable or lacks columns."""
    try:
        pose = pd.read_parquet(path)
    except (OSError, ValueError) as err:
        raise IblVideoError(path, f"cannot read pose table: {err}") from None
    if not point_names(pose):
        raise IblVideoError(path, "pose table has no <point>_x/_y/_likelihood columns")
    return pose


def _missing_columns(pose: pd.DataFrame, columns: list[str] | tuple[str, ...]) -> list[str]:
    return [column for column in columns if column not in pose.columns]


def compute_session_features(session: str | Path) -> dict[str, Path]:
    """Write each side camera's feature table, each camera's sniff times, and the merged lick times.

    Reads ``alf/_ibl_<cam>Camera.dlc.pqt`` for every camera present and ``_ibl_<cam>Camera.times.npy``
    to put events on the session clock. Returns the written files by name.
    """
    alf = Path(session) / "alf"
    tracks = sorted(alf.glob("_ibl_*Camera.dlc.pqt"))
    if not tracks:
        raise IblVideoError(alf, "no pose tables (_ibl_<camera>Camera.dlc.pqt) to compute features from")
    written: dict[str, Path] = {}
    licks: list[np.ndarray] = []
    for path in tracks:
        camera = path.name[len("_ibl_"):-len("Camera.dlc.pqt")]
        if camera not in SMOOTHING_WINDOW:
            continue  # IBL computes features for the side cameras only
        pose = load_pose(path)
        missing = _missing_columns(pose, [f"{p}{c}" for p in ("pupil_top_r", "pupil_bottom_r", "pupil_left_r", "pupil_right_r", *SPEED_POINTS) for c in _COORDS])
        if missing:
            raise IblVideoError(path, f"pose table lacks {', '.join(missing)}")
        times = _load_times(alf, camera)
        table = feature_table(pose, times, camera)
        written[f"{camera}_features"] = _save_table(table, alf / f"_ibl_{camera}Camera.features.pqt")
        usable = _usable_times(times, len(pose), camera)
        if usable is not None:
            thresholded = threshold_likelihood(pose)
            written[f"{camera}_sniffs"] = _save_array(sniff_times(thresholded, usable), alf / f"_iblvideo_{camera}Camera.sniffs.times.npy")
            if not _missing_columns(pose, TONGUE_COLUMNS):
                licks.append(lick_times(thresholded, usable))
    if licks:
        written["licks"] = _save_array(np.sort(np.concatenate(licks)), alf / "licks.times.npy")
    else:
        log.warning("%s: no lick times computed (no side camera with tongue points and camera times)", session)
    return written


def _save_table(table: pd.DataFrame, path: Path) -> Path:
    with atomic_path(path) as tmp:
        table.to_parquet(tmp)
    return path


def _save_array(values: np.ndarray, path: Path) -> Path:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.save(handle, values)
    return path
