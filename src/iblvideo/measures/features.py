"""Behavioural features from pose tracks, as IBL computes them: pupil diameter, licks, sniffs, speeds.

Pose tables use IBL's flat columns ``<point>_x``, ``<point>_y``, ``<point>_likelihood``. The
constants below are IBL's: they do not follow a session's real frame rate on purpose, so that the
numbers match what IBL publishes (a 30 Hz training-rig left camera keeps the 60 Hz settings).
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.interpolate import interp1d

from iblvideo.io.alf import atomic_path
from iblvideo.errors import IblVideoError
from iblvideo.measures.smoothing import smooth_interpolate_savgol

log = logging.getLogger(__name__)

LIKELIHOOD_THRESHOLD = 0.9
SAMPLING = {"left": 60, "right": 150, "body": 30}
# speeds are in pixels of the half-resolution frame: the left camera films at twice the right's size
RESOLUTION = {"left": 2, "right": 1, "body": 1}
SMOOTHING_WINDOW = {"left": 31, "right": 75}
SPEED_POINTS = ("paw_r", "paw_l", "nose_tip")
PUPIL_POINTS = ("pupil_top_r", "pupil_bottom_r", "pupil_left_r", "pupil_right_r")
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
    top, bottom, left, right = (pose[[f"{point}_x", f"{point}_y"]].to_numpy(dtype=float).T for point in PUPIL_POINTS)
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
    per_interval = np.sqrt(np.diff(x) ** 2 + np.diff(y) ** 2) * (1 / np.nanmedian(intervals))
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


@dataclass
class SideFeatures:
    """What IBL derives from one side camera; events are None when the camera times do not allow them."""

    table: pd.DataFrame
    sniffs: np.ndarray | None
    licks: np.ndarray | None


def side_camera_features(pose: pd.DataFrame, times: np.ndarray | None, camera: str) -> SideFeatures:
    """Feature table (raw and smoothed pupil diameter, point speeds), sniff times and lick times of a side camera."""
    pose = threshold_likelihood(pose)
    raw = pupil_diameter(pose)
    table = pd.DataFrame({"pupilDiameter_raw": raw, "pupilDiameter_smooth": smooth_pupil_diameter(raw, camera)})
    times = _usable_times(times, len(pose), camera)
    for point in SPEED_POINTS:
        table[f"{point}_speed"] = np.nan if times is None else speed(pose, times, camera, point)
    if times is None:
        return SideFeatures(table, None, None)
    licks = lick_times(pose, times) if set(TONGUE_COLUMNS) <= set(pose.columns) else None
    return SideFeatures(table, sniff_times(pose, times), licks)


def load_pose(path: Path) -> pd.DataFrame:
    """A pose table from parquet, with a one-line error when it is unreadable or lacks columns."""
    try:
        pose = pd.read_parquet(path)
    except (OSError, ValueError) as err:
        raise IblVideoError(path, f"cannot read pose table: {err}") from None
    if not point_names(pose):
        raise IblVideoError(path, "pose table has no <point>_x/_y/_likelihood columns")
    return pose


def load_times(alf: Path, camera: str) -> np.ndarray | None:
    """``_ibl_<cam>Camera.times.npy`` of an alf folder; None when absent, a one-line error when unreadable."""
    path = alf / f"_ibl_{camera}Camera.times.npy"
    if not path.exists():
        return None
    try:
        times = np.load(path)
    except (OSError, ValueError) as err:
        raise IblVideoError(path, f"cannot read camera times: {err}") from None
    if times.ndim != 1:
        raise IblVideoError(path, f"camera times must be one-dimensional, got shape {times.shape}")
    return times.astype(float)


def _load_side_pose(path: Path) -> pd.DataFrame:
    pose = load_pose(path)
    missing = [p for p in (*PUPIL_POINTS, *SPEED_POINTS) if not {f"{p}{c}" for c in _COORDS} <= set(pose.columns)]
    if missing:
        raise IblVideoError(path, f"pose table lacks the points {', '.join(missing)}")
    return pose


def compute_session_features(session: str | Path) -> dict[str, Path]:
    """Write each side camera's feature table and sniff times, and the licks of both merged on the session clock.

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
        result = side_camera_features(_load_side_pose(path), load_times(alf, camera), camera)
        written[f"{camera}_features"] = _save_table(result.table, alf / f"_ibl_{camera}Camera.features.pqt")
        if result.sniffs is not None:
            written[f"{camera}_sniffs"] = save_npy(result.sniffs, alf / f"_iblvideo_{camera}Camera.sniff_times.npy")
        if result.licks is not None:
            licks.append(result.licks)
    if licks:
        written["licks"] = save_npy(np.sort(np.concatenate(licks)), alf / "licks.times.npy")
    else:
        log.warning("%s: no lick times (no side camera with tongue points and camera times)", session)
    return written


def _save_table(table: pd.DataFrame, path: Path) -> Path:
    with atomic_path(path) as tmp:
        table.to_parquet(tmp)
    return path


def save_npy(values: np.ndarray, path: Path) -> Path:
    """Write ``values`` to ``path`` as .npy, atomically (np.save would append .npy to the temporary name)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.save(handle, values)
    return path
