"""Savitzky-Golay smoothing of unevenly sampled signals, the way IBL denoises pupil diameters.

IBL fits a cubic by least squares in a window of ``window`` valid samples around each valid sample
(the samples need not be evenly spaced: NaNs are dropped first), keeps the fit's value at the
centre, extends the first and last fits over the borders like ``scipy.signal.savgol_filter``'s
``mode='interp'``, and fills the NaNs by linear interpolation (extrapolation at the ends).
"""
from __future__ import annotations

import numpy as np
from scipy.interpolate import interp1d

_CHUNK = 8192  # windows solved at once: bounds memory to a few MB on 90-minute sessions


def _local_polynomials(x: np.ndarray, y: np.ndarray, window: int, order: int) -> np.ndarray:
    """Least-squares polynomial coefficients (lowest power first) of every full window, centred on its middle sample."""
    half = window // 2
    centres = np.arange(half, len(x) - half)
    return np.concatenate([_fit_windows(x, y, chunk, half, order) for chunk in np.array_split(centres, max(1, len(centres) // _CHUNK))])


def _fit_windows(x: np.ndarray, y: np.ndarray, centres: np.ndarray, half: int, order: int) -> np.ndarray:
    members = centres[:, None] + np.arange(-half, half + 1)
    offsets = (x[members] - x[centres][:, None]).astype(float)
    design = offsets[..., None] ** np.arange(order + 1)  # (n, window, order + 1)
    gram = np.einsum("nwk,nwl->nkl", design, design)
    pseudo_inverse = np.linalg.inv(gram) @ design.transpose(0, 2, 1)
    return np.einsum("nkw,nw->nk", pseudo_inverse, y[members])


def non_uniform_savgol(x: np.ndarray, y: np.ndarray, window: int, order: int) -> np.ndarray:
    """Savitzky-Golay filter of ``y`` sampled at the increasing positions ``x``; borders from the edge fits."""
    if len(x) != len(y):
        raise ValueError("x and y must have the same length")
    if window % 2 == 0 or not order < window <= len(x):
        raise ValueError(f"need an odd window ({window}) above the order ({order}) and at most the {len(x)} samples")
    half = window // 2
    coefficients = _local_polynomials(x, y, window, order)
    smoothed = np.empty(len(y))
    smoothed[half:len(y) - half] = coefficients[:, 0]
    powers = np.arange(order + 1)
    head, tail = slice(0, half), slice(len(y) - half, len(y))
    smoothed[head] = ((x[head] - x[half]).astype(float)[:, None] ** powers) @ coefficients[0]
    smoothed[tail] = ((x[tail] - x[-half - 1]).astype(float)[:, None] ** powers) @ coefficients[-1]
    return smoothed


def smooth_interpolate_savgol(signal: np.ndarray, window: int = 31, order: int = 3) -> np.ndarray:
    """Savitzky-Golay smoothing over the valid samples of ``signal``, NaNs filled by linear interpolation."""
    signal = np.asarray(signal, dtype=float)
    frames = np.arange(signal.shape[0])
    valid = np.flatnonzero(~np.isnan(signal))
    smoothed = non_uniform_savgol(frames[valid], signal[valid], window, order)
    return interp1d(frames[valid], smoothed, kind="linear", fill_value="extrapolate")(frames)
