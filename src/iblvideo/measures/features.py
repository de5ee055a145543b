"""Behavioural features from pose tracks, as IBL computes them: pupil diameter, licks, sniffs, speeds.

Functions over pose tracks (``iblvideo.tracks.PoseTracks``) and arrays; reading and writing the
session's files is ``sessions.stages``'. The constants below are IBL's: they do not follow a
session's real frame rate on purpose, so that the numbers match what IBL publishes (a 30 Hz
training-rig left camera keeps the 60 Hz settings).

Two of IBL's tasks, chosen by the pose table's tracker: PostDLC (ibllib's ``EphysPostDLC``) smooths
the raw pupil diameter (Savitzky-Golay, outliers dropped); PostLP (``PostLP``) takes the raw diameter
from the pupil ensemble's medians (``<point>_<x|y>_ens_median``, which IBL does not threshold by
likelihood) and the smoothed one from the Kalman-smoothed points, with no further smoothing. Both
compute licks the same way. Speeds, sniffs and lick events (``measures.licks``) are iblvideo's
additions, computed alike for both and kept out of IBL's feature table, which holds IBL's two columns only.
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.interpolate import interp1d

from iblvideo.errors import IblVideoError
from iblvideo.measures.licks import TONGUE_POINTS, lick_events
from iblvideo.measures.smoothing import smooth_interpolate_savgol
from iblvideo.tracks import PoseTracks

log = logging.getLogger(__name__)

SAMPLING = {"left": 60, "right": 150, "body": 30}
# speeds are in pixels of the half-resolution frame: the left camera films at twice the right's size
RESOLUTION = {"left": 2, "right": 1, "body": 1}
SMOOTHING_WINDOW = {"left": 31, "right": 75}
SPEED_POINTS = ("paw_r", "paw_l", "nose_tip")
PUPIL_POINTS = ("pupil_top_r", "pupil_bottom_r", "pupil_left_r", "pupil_right_r")
SIDE_POINTS = (*PUPIL_POINTS, *SPEED_POINTS)  # what a side camera's features need
PUPIL_COLUMNS = ("pupilDiameter_raw", "pupilDiameter_smooth")  # IBL's camera.features: these and no more


def pupil_diameter(tracks: PoseTracks) -> np.ndarray:
    """Per-frame pupil diameter of the tracked pupil points (see :func:`diameter_of`)."""
    return diameter_of([tracks.point_xy(point) for point in PUPIL_POINTS])


def ensemble_median_xy(tracks: PoseTracks, point: str) -> np.ndarray:
    """(T, 2) ensemble medians of ``point`` (Lightning Pose's ``<point>_x_ens_median``, ``<point>_y_ens_median``)."""
    columns = [f"{point}_{axis}_ens_median" for axis in "xy"]
    missing = [c for c in columns if c not in tracks.extra]
    if missing:
        raise IblVideoError(None, f"the pose table has no {', '.join(missing)} column: not IBL's Lightning Pose table")
    return np.stack([np.asarray(tracks.extra[c], dtype=float) for c in columns], axis=1)


def ensemble_pupil_diameter(tracks: PoseTracks) -> np.ndarray:
    """PostLP's raw pupil diameter: from the ensemble medians of the pupil points, at every likelihood."""
    return diameter_of([ensemble_median_xy(tracks, point) for point in PUPIL_POINTS])


def diameter_of(pupil: list[np.ndarray]) -> np.ndarray:
    """Per-frame pupil diameter from the (T, 2) positions of PUPIL_POINTS: median of the two direct
    diameters and four chord-based estimates.

    Treating the pupil as a circle, the chord between two neighbouring points (e.g. top and left)
    spans a quarter circle, so it is the diameter divided by sqrt(2).
    """
    top, bottom, left, right = (np.asarray(xy, dtype=float).T for xy in pupil)
    estimates = [np.linalg.norm(top - bottom, axis=0), np.linalg.norm(left - right, axis=0)]
    estimates += [np.linalg.norm(a - b, axis=0) * 2**0.5 for a, b in ((top, left), (top, right), (bottom, left), (bottom, right))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # frames with no pupil point at all are NaN
        return np.nanmedian(estimates, axis=0)


def _nan_runs(values: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) index pairs bounding NaN runs, paired the way IBL pairs them (see smooth_pupil_diameter)."""
    steps = np.diff(np.isnan(values).astype(int))
    starts, ends = np.flatnonzero(steps == 1), np.flatnonzero(steps == -1)
    return list(zip(starts[: len(ends)], ends, strict=False))  # more ends than starts on a trace that starts on NaN


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


def event_times(traces: list[np.ndarray], times: np.ndarray) -> np.ndarray:
    """Times of the frames where any of ``traces`` jumps by more than a quarter of its frame-to-frame SD."""
    frames: list[np.ndarray] = []
    for trace in traces:
        steps = np.diff(np.asarray(trace, dtype=float))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN trace has no events
            threshold = np.nanstd(steps) / 4
        frames.append(np.flatnonzero(np.abs(steps) > threshold))
    return np.asarray(times)[np.unique(np.concatenate(frames))]


def _coordinates(tracks: PoseTracks, points: tuple[str, ...]) -> list[np.ndarray]:
    """The x and y traces of each of ``points``, in turn."""
    return [tracks.point_xy(p)[:, axis] for p in points for axis in (0, 1)]


def lick_times(tracks: PoseTracks, times: np.ndarray) -> np.ndarray:
    """Lick times: frames where either tongue point moves abruptly (NaN to seen counts as no move)."""
    return event_times(_coordinates(tracks, TONGUE_POINTS), times)


def sniff_times(tracks: PoseTracks, times: np.ndarray) -> np.ndarray:
    """Sniff times: frames where the nose tip moves abruptly up or down."""
    return event_times([tracks.point_xy("nose_tip")[:, 1]], times)


def speed(tracks: PoseTracks, times: np.ndarray, camera: str, point: str) -> np.ndarray:
    """Speed of ``point`` in half-resolution pixels per second at each frame time.

    Computed between frames at the nominal rate (1 / median interval), placed at the interval
    midpoints, and linearly interpolated back onto the frame times (extrapolated at the ends).
    """
    times = np.asarray(times, dtype=float)
    x, y = (tracks.point_xy(point)[:, axis].astype(float) / RESOLUTION[camera] for axis in (0, 1))
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
    """What one side camera gives: IBL's feature table (``pupilDiameter_raw``, ``pupilDiameter_smooth``),
    iblvideo's per-frame speeds (a column per SPEED_POINTS, NaN without usable camera times), and
    events on the session clock, None when the camera times do not allow them."""

    table: pd.DataFrame
    speeds: pd.DataFrame
    sniffs: np.ndarray | None
    licks: np.ndarray | None  # IBL's: frames where a tongue coordinate jumps
    lick_events: np.ndarray | None  # one per lick (measures.licks)


def pupil_diameters(tracks: PoseTracks, camera: str, lightning_pose: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Raw and smoothed pupil diameters as IBL's PostLP (``lightning_pose``) or PostDLC computes them."""
    confident = tracks.confident()
    if lightning_pose:
        return ensemble_pupil_diameter(tracks), pupil_diameter(confident)
    raw = pupil_diameter(confident)
    return raw, smooth_pupil_diameter(raw, camera)


def side_camera_features(tracks: PoseTracks, times: np.ndarray | None, camera: str, lightning_pose: bool = False) -> SideFeatures:
    """Feature table, speeds, sniff times, lick times and lick events of a side camera;
    ``lightning_pose``: the tracks are IBL's Lightning Pose table, whose pupil diameters PostLP computes."""
    missing = [p for p in SIDE_POINTS if p not in tracks.points]
    if missing:
        raise IblVideoError(None, f"{camera} camera: the pose tracks lack the points {', '.join(missing)}")
    raw, smooth = pupil_diameters(tracks, camera, lightning_pose)
    table = pd.DataFrame(dict(zip(PUPIL_COLUMNS, (raw, smooth), strict=True)))
    confident = tracks.confident()
    times = _usable_times(times, len(tracks), camera)
    speeds = pd.DataFrame({point: np.full(len(tracks), np.nan) if times is None else speed(confident, times, camera, point)
                           for point in SPEED_POINTS})
    if times is None:
        return SideFeatures(table, speeds, None, None, None)
    tongue = tracks.has(*TONGUE_POINTS)
    return SideFeatures(table, speeds, sniff_times(confident, times), lick_times(confident, times) if tongue else None,
                        lick_events(tracks, times) if tongue else None)
