"""Ensemble Kalman smoothing of an ensemble's predictions, as the ``ensemble-kalman-smoother`` package does it.

The ensemble's median is the observation and its confidence-weighted variance the observation noise
of a linear Gaussian state-space model, smoothed by a Kalman filter and a Rauch-Tung-Striebel pass:

- single view (paws, nose, tongue, tail): each coordinate of each keypoint is a random walk with
  step variance ``s`` (smaller is smoother);
- IBL pupil: the four pupil points are one circle, its diameter and centre AR(1) processes with
  coefficients 0.9999 (diameter) and 0.999 (centre), each with the stationary variance of its trace.

Two releases are reproduced (see RELEASES): 3.0.0, which IBL's pipeline (iblvideo 3.2.0) pins, and
4.6.2, what installing the package gives today. Written in NumPy rather than depending on the package,
which pulls in JAX (and, from 4.x, dynamax; about 2 GB).

Missing observations (frames where no member sees a keypoint) carry no information here. eks has no
such case: one NaN ensemble median makes its whole smoothed trace NaN (3.0.0's rule that skips pupil
frames with fewer than two observations never reaches a finite output), so this changes no output of
eks that is a number.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from iblvideo.measures.features import pupil_diameter
from iblvideo.tracks import PoseTracks

NAN_VARIANCE = 1000.0  # observation variance where the ensemble gives none (eks 4.6.2's value; 3.0.0 leaves NaN)
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
# eks fills its pupil table top, right, bottom, left under the PUPIL_ORDER labels: the point each label's columns hold
PUBLISHED_PUPIL_SOURCE = (0, 2, 1, 3)


@dataclass(frozen=True)
class Release:
    """What sets one ensemble-kalman-smoother release's output apart from the other's."""

    version: str
    # a lone member's variance is 1/confidence (4.6.2) rather than its (zero) spread over confidence (3.0.0)
    single_member_variance_from_confidence: bool
    # 4.6.2 clips the pupil's AR(1) coefficients to [1e-3, 1 - 1e-3] and hands them to JAX as float32
    clip_pupil_coefficients: bool
    # 3.0.0's pupil filter sets its first covariance to S0 minus the first mean update, row by row
    first_covariance_minus_update: bool
    # 3.0.0's single-view filter adds a step's variance to the prior before its first update
    predict_before_first_update: bool


RELEASES = {entry.version: entry for entry in (
    Release("3.0.0", single_member_variance_from_confidence=False, clip_pupil_coefficients=False,
            first_covariance_minus_update=True, predict_before_first_update=True),
    Release("4.6.2", single_member_variance_from_confidence=True, clip_pupil_coefficients=True,
            first_covariance_minus_update=False, predict_before_first_update=False),
)}
IBL_EKS = "3.0.0"  # the release IBL's pipeline pins


def release(version: str) -> Release:
    """The release ``version`` of eks, or ValueError naming those reproduced."""
    if version not in RELEASES:
        raise ValueError(f"eks {version!r} is not reproduced; choose from {', '.join(RELEASES)}")
    return RELEASES[version]


def ensemble_statistics(x: np.ndarray, y: np.ndarray, likelihood: np.ndarray, *, eks: str = IBL_EKS) -> tuple[np.ndarray, ...]:
    """Median x, y, confidence-weighted variances and mean likelihood (T, K) of members' (M, T, K) predictions."""
    n_members = x.shape[0]
    confidence = likelihood.sum(0) / n_members
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN frames stay NaN, then get NAN_VARIANCE
        median_x, median_y = np.nanmedian(x, 0), np.nanmedian(y, 0)
        if n_members == 1 and release(eks).single_member_variance_from_confidence:
            var_x = var_y = 1.0 / np.maximum(confidence, 1e-5)
        else:
            var_x, var_y = np.nanvar(x, 0) / confidence, np.nanvar(y, 0) / confidence
    return median_x, median_y, np.nan_to_num(var_x, nan=NAN_VARIANCE), np.nan_to_num(var_y, nan=NAN_VARIANCE), confidence


def kalman_smoother(ys: np.ndarray, noise: np.ndarray, m0: np.ndarray, S0: np.ndarray, A: np.ndarray,
                    Q: np.ndarray, C: np.ndarray, *, first_covariance_minus_update: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Smoothed state means (B, T, D) and covariances (B, T, D, D) of B independent series.

    ``ys`` (B, T, O) observations with diagonal noise variances ``noise`` (B, T, O), NaN where missing;
    state prior ``m0`` (B, D), ``S0`` (B, D, D); dynamics x_t+1 = A x_t + N(0, Q); observations
    y = C x + noise. ``first_covariance_minus_update``: eks 3.0.0's first filtered covariance, S0
    with the first mean update subtracted from each row, in place of the posterior covariance.
    """
    b, t_len, _ = ys.shape
    d = m0.shape[-1]
    observed = ~np.isnan(ys)
    ys = np.where(observed, ys, 0.0)
    # a missing observation's row of C is zeroed, so it carries no information; its noise only keeps S invertible
    noise = np.where(observed, np.clip(noise, MIN_VARIANCE, None), 1.0)
    means, covs = np.empty((b, t_len, d)), np.empty((b, t_len, d, d))
    predicted_means, predicted_covs = np.empty_like(means), np.empty_like(covs)
    m, P = m0, S0
    eye = np.eye(C.shape[0])
    for t in range(t_len):
        predicted_means[:, t], predicted_covs[:, t] = m, P
        C_t = C * observed[:, t, :, None]
        S = C_t @ P @ C_t.transpose(0, 2, 1) + noise[:, t, :, None] * eye
        # P Cᵀ S⁻¹, written for an asymmetric P: the one after eks 3.0.0's first step is
        gain = np.linalg.solve(S.transpose(0, 2, 1), C_t @ P.transpose(0, 2, 1)).transpose(0, 2, 1)
        update = (gain @ (ys[:, t, :, None] - C_t @ m[..., None]))[..., 0]
        m = m + update
        P = P - update[:, None, :] if t == 0 and first_covariance_minus_update else P - gain @ (C_t @ P)
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
    observed = ~np.isnan(ys)
    ys = np.where(observed, ys, 0.0)
    noise = np.where(observed, np.clip(noise, MIN_VARIANCE, None), np.inf)  # a missing observation's gain is 0
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


def smooth_single_view(points: tuple[str, ...], x: np.ndarray, y: np.ndarray, likelihood: np.ndarray, s: float, *,
                       eks: str = IBL_EKS) -> pd.DataFrame:
    """Single-view EKS of members' (M, T, K) predictions with step variance ``s``, as eks release ``eks``: IBL's columns per point."""
    median_x, median_y, var_x, var_y, confidence = ensemble_statistics(x, y, likelihood, eks=eks)
    observed = np.concatenate([median_x, median_y], axis=1).T  # (2K, T): x and y are independent series
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a keypoint never seen stays NaN
        centre = np.nanmean(observed, axis=1, keepdims=True)
        ys = observed - centre
        prior = np.nanvar(ys, axis=1) + (s if release(eks).predict_before_first_update else 0.0)
    means, posterior = random_walk_smoother(ys, np.concatenate([var_x, var_y], axis=1).T, prior, s)
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


def _pupil_coefficients(diameter_s: float, centre_s: float, behaviour: Release) -> np.ndarray:
    """The AR(1) coefficients of diameter, centre x and centre y the way a release uses them."""
    coefficients = np.array([diameter_s, centre_s, centre_s])
    if behaviour.clip_pupil_coefficients:
        # eks 4.6.2 hands its parameters to JAX as float32; rounding them the same way keeps the traces together
        return np.clip(coefficients, 1e-3, 1 - 1e-3).astype(np.float32).astype(float)
    return coefficients


def smooth_pupil(x: np.ndarray, y: np.ndarray, likelihood: np.ndarray, diameter_s: float = 0.9999, centre_s: float = 0.999, *,
                 eks: str = IBL_EKS, published_labels: bool = False) -> pd.DataFrame:
    """IBL's pupil EKS of members' (M, T, 4) predictions of the points in PUPIL_ORDER, as eks release ``eks``: IBL's columns per point.

    Each point's columns hold that point and its own posterior variances, unless ``published_labels``:
    then the table is eks 3.0.0's as IBL publishes it, bottom and right swapped (PUBLISHED_PUPIL_SOURCE)
    and the posterior variances of the block labelled k read off diagonal entries k and k + 1 of the
    8 × 8 posterior covariance of (top, bottom, right, left) x, y.
    """
    behaviour = release(eks)
    if published_labels and eks != IBL_EKS:
        raise ValueError(f"the published pupil labelling reproduced is IBL's, eks {IBL_EKS}'s, not {eks}'s")
    median_x, median_y, var_x, var_y, confidence = ensemble_statistics(x, y, likelihood, eks=eks)
    medians = np.stack([median_x, median_y], axis=-1)  # (T, 4, 2)
    pose = PoseTracks(PUPIL_ORDER, medians, confidence)  # the diameter reads positions only
    diameter = pupil_diameter(pose)
    centre = _pupil_centre(medians)
    # frames without a pupil point are missing observations; eks's NaN-blind means and variances would make every frame NaN
    offset = np.nanmean(centre, axis=0)
    centred = centre - offset
    coefficients = _pupil_coefficients(diameter_s, centre_s, behaviour)
    spread = np.maximum([np.nanvar(diameter), np.nanvar(centred[:, 0]), np.nanvar(centred[:, 1])], MIN_STATE_VARIANCE)
    A = np.diag(coefficients)
    Q = np.diag(spread * (1 - coefficients**2))
    m0 = np.array([[np.nanmean(diameter), 0.0, 0.0]])
    S0 = np.diag(spread)[None]
    ys = (medians - offset).reshape(1, -1, 8)
    noise = np.stack([var_x, var_y], axis=-1).reshape(1, -1, 8)
    means, covs = kalman_smoother(ys, noise, m0, S0, A, Q, PUPIL_EMISSION,
                                  first_covariance_minus_update=behaviour.first_covariance_minus_update)
    smooth = (means[0] @ PUPIL_EMISSION.T).reshape(-1, 4, 2) + offset
    posterior = np.diagonal(PUPIL_EMISSION @ covs[0] @ PUPIL_EMISSION.T, axis1=1, axis2=2)  # (T, 8)
    source = list(PUBLISHED_PUPIL_SOURCE) if published_labels else list(range(4))
    posterior_x, posterior_y = (posterior[:, :4], posterior[:, 1:5]) if published_labels else (posterior[:, 0::2], posterior[:, 1::2])
    return _table(PUPIL_ORDER, {"x": smooth[:, source, 0], "y": smooth[:, source, 1], "likelihood": confidence[:, source],
                                "x_ens_median": median_x[:, source], "y_ens_median": median_y[:, source],
                                "x_ens_var": var_x[:, source], "y_ens_var": var_y[:, source],
                                "x_posterior_var": posterior_x, "y_posterior_var": posterior_y})
