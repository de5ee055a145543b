"""Paw states: the inputs of IBL's Lightning Action networks and the table IBL makes of their outputs.

As IBL's pipeline (iblvideo 3.x ``segmentation_la``) runs them, per side camera and per paw:

- inputs, three per frame: the paw's x and y from the Lightning Pose table (``paw_r_x``, ``paw_r_y``:
  the smoothed columns, not ``_ens_median``) and the wheel velocity in rad/s. The wheel position is
  resampled linearly at 1 kHz from its first sample, low-passed (8th-order Butterworth, 20 Hz,
  forwards and backwards), differentiated, and read at the frames' times (held at its end values
  outside the wheel's span). On the right camera, x is mirrored back (``640 − x``) and the velocity
  negated, so both cameras show a paw moving as the left camera sees it;
- the networks run at 60 Hz: a video whose median rate is more than 10 Hz away (the right camera's
  150 Hz) is resampled linearly to ``int(duration × 60) + 1`` evenly spaced times first, and each
  member's probabilities are resampled back to the frames' times (extrapolated linearly past the
  last predicted time), before the ensemble is combined;
- the network scales its inputs as its config says (``networks.lightning_action``; IBL's configs, as
  lightning-action's ``configs/ibl.yaml``: each input's frame-to-frame change appended, then all six
  z-scored over the video, in float32) and predicts in sequences of 500 frames (IBL's setting), the
  frames after the last whole sequence getting no prediction (NaN);
- an ensemble is combined frame by frame: the mean of its members' probabilities and their variance
  (``ddof=1``) in ``<state>_ens_var``, skipping members without a prediction.

The table has one row per frame, ``paw_r``'s columns then ``paw_l``'s: ``<paw>_<state>`` for each state
in the networks' order (their configs' ``data.label_names``; IBL's: background, still, move, wheel_turn,
groom), then ``<paw>_<state>_ens_var`` for each, all float64.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.signal import butter, sosfiltfilt

from iblvideo.cameras import CAMERAS
from iblvideo.errors import IblVideoError

PAWS = ("paw_r", "paw_l")  # the near paw, then the far one, on either side camera
SIDE_CAMERAS = ("left", "right")  # IBL segments no paw on the body camera
FLIPPED = ("right",)  # mirrored back to the left camera's view before the networks see it
MODEL_RATE, RATE_TOLERANCE = 60.0, 10.0  # Hz
WHEEL_RATE, WHEEL_CORNER, WHEEL_ORDER = 1000.0, 20.0, 8  # Hz, Hz, Butterworth order
VARIANCE_SUFFIX = "_ens_var"
N_INPUTS = 3  # per frame: the paw's x and y, the wheel velocity


def feature_columns(paw: str) -> tuple[str, str]:
    """The Lightning Pose columns a paw's networks read."""
    return f"{paw}_x", f"{paw}_y"


def missing_columns(table: pd.DataFrame) -> list[str]:
    """The paw columns ``table`` lacks."""
    return [column for paw in PAWS for column in feature_columns(paw) if column not in table.columns]


def wheel_velocity(times: np.ndarray, position: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(times, velocity in rad/s) of the wheel on an even 1 kHz clock from its first sample, low-passed."""
    times, position = np.asarray(times, float), np.asarray(position, float)
    clock = np.arange(times[0], times[-1], 1 / WHEEL_RATE)
    if clock[-1] > times[-1]:  # float steps may overshoot the last sample
        clock = clock[:-1]
    even = np.interp(clock, times, position)
    sos = butter(WHEEL_ORDER, WHEEL_CORNER / WHEEL_RATE * 2, btype="lowpass", output="sos")
    try:
        smooth = sosfiltfilt(sos, even)
    except ValueError:  # fewer samples than the filter's padding
        raise IblVideoError(None, f"{len(even)} ms of wheel data: too short to filter") from None
    velocity = np.insert(np.diff(smooth), 0, 0) * WHEEL_RATE
    return clock, velocity


def model_clock(frame_times: np.ndarray) -> np.ndarray | None:
    """The 60 Hz times the networks see, or None when the video's median rate is within 10 Hz of 60 Hz."""
    rate = 1.0 / np.median(np.diff(frame_times))
    if abs(rate - MODEL_RATE) <= RATE_TOLERANCE:
        return None
    duration = frame_times[-1] - frame_times[0]
    return np.linspace(frame_times[0], frame_times[-1], int(duration * MODEL_RATE) + 1)


def resample(times: np.ndarray, values: np.ndarray, to: np.ndarray) -> np.ndarray:
    """``values`` (T, k) at ``times`` read linearly at ``to``, each column from its finite samples, extended
    linearly past them; a column with fewer than two is NaN."""
    values = np.asarray(values, float).reshape(len(times), -1)
    out = np.full((len(to), values.shape[1]), np.nan)
    for k in range(values.shape[1]):
        valid = ~np.isnan(values[:, k])
        if valid.sum() < 2:
            continue
        t, v = times[valid], values[valid, k]
        column = np.interp(to, t, v)
        before, after = to < t[0], to > t[-1]
        column[before] = v[0] + (to[before] - t[0]) * (v[1] - v[0]) / (t[1] - t[0])
        column[after] = v[-1] + (to[after] - t[-1]) * (v[-1] - v[-2]) / (t[-1] - t[-2])
        out[:, k] = column
    return out


def paw_inputs(table: pd.DataFrame, frame_times: np.ndarray, wheel: tuple[np.ndarray, np.ndarray], camera: str,
               paw: str) -> tuple[np.ndarray, np.ndarray | None]:
    """A paw's unscaled inputs (T', 3: x, y, wheel velocity) and the 60 Hz clock they are on (None: the frames' own);
    ``wheel`` is :func:`wheel_velocity`'s (times, velocity)."""
    if camera not in SIDE_CAMERAS:
        raise IblVideoError(None, f"IBL segments paw states on the left and right cameras only, not the {camera} camera")
    frame_times = np.asarray(frame_times, float)
    if len(frame_times) != len(table):
        raise IblVideoError(None, f"{len(table)} pose rows but {len(frame_times)} camera times")
    xy = table.loc[:, list(feature_columns(paw))].to_numpy(float, copy=True)
    clock = model_clock(frame_times)
    if clock is not None:
        xy = resample(frame_times, xy, clock)
    wheel_times, velocity = wheel
    speed = np.interp(frame_times if clock is None else clock, wheel_times, velocity)
    if camera in FLIPPED:
        xy[:, 0] = CAMERAS[camera].width - xy[:, 0]
        speed = -speed  # the wheel turns the other way as the mirrored paw sees it
    # row-major, as lightning-action z-scores a copy: NumPy sums a row-major array's columns row by row and a
    # column-major one's pairwise, which moves a 646-pixel mean by 3e-4 px and the z-scores by up to 1e-4
    return np.ascontiguousarray(np.column_stack([xy, speed])), clock


def on_frames(probabilities: np.ndarray, clock: np.ndarray | None, frame_times: np.ndarray) -> np.ndarray:
    """One member's probabilities on the frames' times (from the 60 Hz clock when the networks ran on one)."""
    return np.asarray(probabilities, float) if clock is None else resample(clock, probabilities, np.asarray(frame_times, float))


def combine(members: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(mean, variance with ddof=1) of the members' (T, C) probabilities, frame by frame, over the members that predicted."""
    stack = np.stack([np.asarray(m, float) for m in members])
    present = ~np.isnan(stack)
    count = present.sum(axis=0)
    filled = np.where(present, stack, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, filled.sum(axis=0) / count, np.nan)
        squares = np.where(present, (stack - mean) ** 2, 0.0).sum(axis=0)
        variance = np.where(count > 1, squares / (count - 1), np.nan)
    return mean, variance


def pawstates_table(paws: Mapping[str, tuple[np.ndarray, np.ndarray]], states: Sequence[str]) -> pd.DataFrame:
    """IBL's table from each paw's (mean, variance): ``<paw>_<state>`` then ``<paw>_<state>_ens_var``, paw by paw in IBL's order."""
    columns: dict[str, np.ndarray] = {}
    for paw in (p for p in PAWS if p in paws):
        mean, variance = paws[paw]
        columns.update({f"{paw}_{state}": mean[:, k] for k, state in enumerate(states)})
        columns.update({f"{paw}_{state}{VARIANCE_SUFFIX}": variance[:, k] for k, state in enumerate(states)})
    return pd.DataFrame(columns).astype(float)
