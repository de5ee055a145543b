"""Ensemble Kalman smoothing of an ensemble's predictions, as the ``ensemble-kalman-smoother`` package does it.

The ensemble's median is the observation and its confidence-weighted variance the observation noise
of a linear Gaussian state-space model, smoothed by a Kalman filter and a Rauch-Tung-Striebel pass:

- single view (paws, nose, tongue, tail): each coordinate of each keypoint is a random walk with
  step variance ``s`` (smaller is smoother);
- IBL pupil: the four pupil points are one circle, its diameter and centre AR(1) processes with
  coefficients 0.9999 (diameter) and 0.999 (centre), each with the stationary variance of its trace.

Written in NumPy rather than depending on the package, which pulls in JAX and dynamax (about 2 GB).
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from iblvideo.measures.features import pupil_diameter
from iblvideo.tracks import PoseTracks

NAN_VARIANCE = 1000.0  # observation variance where the ensemble gives none (eks's value)
MIN_VARIANCE = 1e-12
# floor of the pupil's state variances: a constant trace (variance 0) would leave the smoother's gain undefined
MIN_STATE_VARIANCE = 1e-6
PUPIL_ORDER = ("pupil_top_r", "pupil_bottom_r", "pupil_right_r", "pupil_left_r")
# each pupil point's (x, y) as a function of the state (diameter, centre x, centre y)
PUPIL_EMISSION = np.array([[0, 1, 0], [-0.5, 0, 1],   # top
                           [0, 1, 0], [0.5, 0, 1],    # bottom
                           [0.5, 1, 0], [0, 0, 1],    # right
                           [-0.5, 1, 0], [0, 0, 1]])  # left
FIELDS = ("x", "y", "likelihood", "x_ens_median", "y_ens_median", "x_ens_var", "y_ens_var", "x_posterior_var", "y_posterior_var")


def ensemble_statistics(x: np.ndarray, y: np.ndarray, likelihood: np.ndarray) -> tuple[np.ndarray, ...]:
    """Median x, y, confidence-weighted variances and mean likelihood (T, K) of members' (M, T, K) predictions."""
    n_members = x.shape[0]
    confidence = likelihood.sum(0) / n_members
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN frames stay NaN, then get NAN_VARIANCE
        median_x, median_y = np.nanmedian(x, 0), np.nanmedian(y, 0)
        if n_members == 1:
            var_x = var_y = 1.0 / np.maximum(confidence, 1e-5)
        else:
            var_x, var_y = np.nanvar(x, 0) / confidence, np.nanvar(y, 0) / confidence
    return median_x, median_y, np.nan_to_num(var_x, nan=NAN_VARIANCE), np.nan_to_num(var_y, nan=NAN_VARIANCE), confidence


def kalman_smoother(ys: np.ndarray, noise: np.ndarray, m0: np.ndarray, S0: np.ndarray, A: np.ndarray,
                    Q: np.ndarray, C: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Smoothed state means (B, T, D) and covariances (B, T, D, D) of B independent series.

    ``ys`` (B, T, O) observations with diagonal noise variances ``noise`` (B, T, O); state prior
    ``m0`` (B, D), ``S0`` (B, D, D); dynamics x_t+1 = A x_t + N(0, Q); observations y = C x + noise.
    """
    b, t_len, _ = ys.shape
    d = m0.shape[-1]
    noise = np.clip(noise, MIN_VARIANCE, None)
    means, covs = np.empty((b, t_len, d)), np.empty((b, t_len, d, d))
    predicted_means, predicted_covs = np.empty_like(means), np.empty_like(covs)
    m, P = m0, S0
    eye = np.eye(C.shape[0])
    for t in range(t_len):
        predicted_means[:, t], predicted_covs[:, t] = m, P
        S = C @ P @ C.T + noise[:, t, :, None] * eye
        gain = np.linalg.solve(S, C @ P).transpose(0, 2, 1)  # P Cᵀ S⁻¹, S and P symmetric
        m = m + (gain @ (ys[:, t] - m @ C.T)[..., None])[..., 0]
        P = P - gain @ S @ gain.transpose(0, 2, 1)
        means[:, t], covs[:, t] = m, P
        m, P = m @ A.T, A @ P @ A.T + Q
    # the smoother gains G_t = P_t Aᵀ (P_t+1|t)⁻¹ need no smoothed quantity: all at once
    gains = np.linalg.solve(predicted_covs[:, 1:], A @ covs[:, :-1]).transpose(0, 1, 3, 2)
    for t in range(t_len - 2, -1, -1):
        G = gains[:, t]
        means[:, t] += (G @ (means[:, t + 1] - predicted_means[:, t + 1])[..., None])[..., 0]
        covs[:, t] += G @ (covs[:, t + 1] - predicted_covs[:, t + 1]) @ G.transpose(0, 2, 1)
    return means, covs


def random_walk_smoother(ys: np.ndarray, noise: np.ndarray, prior: np.ndarray, s: float) -> tuple[np.ndarray, np.ndarray]:
    """``kalman_smoother`` for B independent scalar random walks (B, T) from 0 with variance ``prior``, steps of variance ``s``.

    The single-view case on (B,) arrays rather than (B, 1, 1) matrices: ten times faster, which
    matters on the 500 000 frames of an hour at 150 Hz.
    """
    t_len = ys.shape[1]
    noise = np.clip(noise, MIN_VARIANCE, None)
    means, variances = np.empty(ys.shape), np.empty(ys.shape)
    m, P = np.zeros(len(ys)), np.asarray(prior, float)
    for t in range(t_len):
        gain = P / (P + noise[:, t])
        m = m + gain * (ys[:, t] - m)
        P = P * (1.0 - gain)
        means[:, t], variances[:, t] = m, P
        P = P + s
    for t in range(t_len - 2, -1, -1):
        G = variances[:, t] / (variances[:, t] + s)
        means[:, t] += G * (means[:, t + 1] - means[:, t])
        variances[:, t] += G * G * (variances[:, t + 1] - variances[:, t] - s)
    return means, variances


def _table(points: tuple[str, ...], columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """``<point>_<field>`` columns from (T, K) arrays per field, point by point."""
    return pd.DataFrame({f"{p}_{field}": columns[field][:, k] for k, p in enumerate(points) for field in FIELDS})


def smooth_single_view(points: tuple[str, ...], x: np.ndarray, y: np.ndarray, likelihood: np.ndarray, s: float) -> pd.DataFrame:
    """Single-view EKS of members' (M, T, K) predictions with step variance ``s``: IBL's columns per point."""
    median_x, median_y, var_x, var_y, confidence = ensemble_statistics(x, y, likelihood)
    observed = np.concatenate([median_x, median_y], axis=1).T  # (2K, T): x and y are independent series
    centre = observed.mean(1, keepdims=True)
    ys = observed - centre
    means, posterior = random_walk_smoother(ys, np.concatenate([var_x, var_y], axis=1).T, np.nanvar(ys, axis=1), s)
    smooth = means + centre
    k = len(points)
    return _table(points, {"x": smooth[:k].T, "y": smooth[k:].T, "likelihood": confidence, "x_ens_median": median_x,
                           "y_ens_median": median_y, "x_ens_var": var_x, "y_ens_var": var_y,
                           "x_posterior_var": posterior[:k].T, "y_posterior_var": posterior[k:].T})


def _pupil_centre(xy: np.ndarray) -> np.ndarray:
    """Centre (T, 2) of pupil points (T, 4, 2) in PUPIL_ORDER: the median of the vertical and horizontal midpoints."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian([np.nanmedian(xy[:, :2], axis=1), np.nanmedian(xy[:, 2:], axis=1)], axis=0)


def smooth_pupil(x: np.ndarray, y: np.ndarray, likelihood: np.ndarray, diameter_s: float = 0.9999, centre_s: float = 0.999) -> pd.DataFrame:
    """IBL's pupil EKS of members' (M, T, 4) predictions of the points in PUPIL_ORDER: IBL's columns per point."""
    median_x, median_y, var_x, var_y, confidence = ensemble_statistics(x, y, likelihood)
    medians = np.stack([median_x, median_y], axis=-1)  # (T, 4, 2)
    pose = PoseTracks(PUPIL_ORDER, medians, confidence)  # the diameter reads positions only
    diameter = pupil_diameter(pose)
    centre = _pupil_centre(medians)
    offset = centre.mean(0)
    centred = centre - offset
    # eks hands its parameters to JAX as float32; rounding them the same way keeps the traces together
    s_d, s_c = (float(np.float32(np.clip(v, 1e-3, 1 - 1e-3))) for v in (diameter_s, centre_s))
    spread = np.maximum([np.var(diameter), np.var(centred[:, 0]), np.var(centred[:, 1])], MIN_STATE_VARIANCE)
    A = np.diag([s_d, s_c, s_c])
    Q = np.diag(spread * (1 - np.array([s_d, s_c, s_c]) ** 2))
    m0 = np.array([[np.mean(diameter), 0.0, 0.0]])
    S0 = np.diag(np.maximum([np.nanvar(diameter), np.nanvar(centred[:, 0]), np.nanvar(centred[:, 1])], MIN_STATE_VARIANCE))[None]
    ys = (medians - offset).reshape(1, -1, 8)
    noise = np.stack([var_x, var_y], axis=-1).reshape(1, -1, 8)
    means, covs = kalman_smoother(ys, noise, m0, S0, A, Q, PUPIL_EMISSION)
    smooth = (means[0] @ PUPIL_EMISSION.T).reshape(-1, 4, 2) + offset
    posterior = np.diagonal(PUPIL_EMISSION @ covs[0] @ PUPIL_EMISSION.T, axis1=1, axis2=2).reshape(-1, 4, 2)
    return _table(PUPIL_ORDER, {"x": smooth[..., 0], "y": smooth[..., 1], "likelihood": confidence,
                                "x_ens_median": median_x, "y_ens_median": median_y, "x_ens_var": var_x, "y_ens_var": var_y,
                                "x_posterior_var": posterior[..., 0], "y_posterior_var": posterior[..., 1]})


def single_view_s(fps: float, s: float = 10.0) -> float:
    """IBL's step variance for its paw ensembles: 10, but 100 for 30 Hz videos (set by inspecting training videos)."""
    return 100.0 if 25.0 <= fps <= 35.0 else s
