"""Ensemble Kalman smoothing: parity with the ensemble-kalman-smoother package on real IBL ensembles.

The references in tests/data/ibl-ensembles/eks-reference were written by benchmarks/eks_reference.py
with ensemble-kalman-smoother 4.6.2 (JAX 0.4.36). eks computes in float32, about seven significant
digits: 1e-5 px on these 50–100 px coordinates. The tolerances leave ten times that.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from iblvideo.tracking.eks import PUPIL_ORDER, ensemble_statistics, kalman_smoother, random_walk_smoother, single_view_s, smooth_pupil, smooth_single_view

DATA = Path(__file__).parent / "data" / "ibl-ensembles"
REFERENCE = DATA / "eks-reference"
PAWS = ("paw_l", "paw_r")
COORDINATE_TOLERANCE = 1e-4  # px
VARIANCE_TOLERANCE = 1e-4  # px², and relative


def members(folder: str, pattern: str, points: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x, y, likelihood (members, frames, points) of an ensemble's csv files."""
    stacks = []
    for path in sorted((DATA / folder).glob(pattern)):
        table = pd.read_csv(path, header=[0, 1, 2], index_col=0)
        stacks.append([[table[("heatmap_mhcrnn_tracker", p, c)].to_numpy() for p in points] for c in ("x", "y", "likelihood")])
    x, y, likelihood = np.moveaxis(np.array(stacks), -1, -2).transpose(1, 0, 2, 3)
    return x, y, likelihood


def assert_matches(ours: pd.DataFrame, reference: pd.DataFrame) -> None:
    for column in reference.columns:
        expected = reference[column].to_numpy()
        if column.endswith("_var"):
            np.testing.assert_allclose(ours[column], expected, rtol=VARIANCE_TOLERANCE, atol=VARIANCE_TOLERANCE, err_msg=column)
        else:
            np.testing.assert_allclose(ours[column], expected, rtol=0, atol=COORDINATE_TOLERANCE, err_msg=column)


@pytest.mark.parametrize("camera", ["left", "right"])
def test_paws_match_eks(camera: str) -> None:
    x, y, likelihood = members("ibl-paw", f"*.{camera}.rng=*.csv.gz", PAWS)
    ours = smooth_single_view(PAWS, x, y, likelihood, s=10.0)
    assert_matches(ours, pd.read_csv(REFERENCE / f"paw_{camera}.csv.gz"))
    # IBL's extra columns: the ensemble's median and the members' mean likelihood
    np.testing.assert_allclose(ours["paw_l_x_ens_median"], np.median(x[:, :, 0], axis=0))
    np.testing.assert_allclose(ours["paw_r_likelihood"], likelihood[:, :, 1].mean(0), rtol=1e-12)


def test_pupil_matches_eks() -> None:
    x, y, likelihood = members("ibl-pupil", "*.rng=*.csv.gz", PUPIL_ORDER)
    ours = smooth_pupil(x, y, likelihood, 0.9999, 0.999)
    assert_matches(ours, pd.read_csv(REFERENCE / "pupil.csv.gz"))


def test_smoothing_reduces_jitter_and_stays_close() -> None:
    x, y, likelihood = members("ibl-paw", "*.left.rng=*.csv.gz", PAWS)
    ours = smooth_single_view(PAWS, x, y, likelihood, s=10.0)
    median = ours["paw_l_x_ens_median"].to_numpy()
    smooth = ours["paw_l_x"].to_numpy()
    assert np.abs(np.diff(smooth)).mean() < np.abs(np.diff(median)).mean()
    assert np.median(np.abs(smooth - median)) < 1.0


def test_kalman_smoother_matches_batch_solution() -> None:
    """A random walk observed with noise: the smoother's means are the exact posterior means (one linear solve)."""
    rng = np.random.default_rng(0)
    t_len, s = 40, 0.5
    noise = rng.uniform(0.5, 2.0, t_len)
    ys = np.cumsum(rng.normal(0, s**0.5, t_len)) + rng.normal(0, noise**0.5)
    prior = 3.0
    means, covs = kalman_smoother(ys[None, :, None], noise[None, :, None], np.zeros((1, 1)), np.full((1, 1, 1), prior),
                                  np.eye(1), s * np.eye(1), np.eye(1))
    # posterior precision: prior on x0, random-walk steps, observations
    steps = np.diff(np.eye(t_len), axis=0)
    precision = steps.T @ steps / s + np.diag(1 / noise)
    precision[0, 0] += 1 / prior
    covariance = np.linalg.inv(precision)
    np.testing.assert_allclose(means[0, :, 0], covariance @ (ys / noise), atol=1e-9)
    np.testing.assert_allclose(covs[0, :, 0, 0], np.diag(covariance), atol=1e-9)


def test_single_member_variance_comes_from_confidence() -> None:
    x = np.zeros((1, 3, 1))
    _, _, var_x, _, confidence = ensemble_statistics(x, x, np.array([[[0.5], [1.0], [0.0]]]))
    np.testing.assert_allclose(var_x[:, 0], [2.0, 1.0, 1e5])
    np.testing.assert_allclose(confidence[:, 0], [0.5, 1.0, 0.0])


def test_single_view_s_follows_the_frame_rate() -> None:
    assert single_view_s(30.0) == 100.0
    assert single_view_s(60.0) == 10.0
    assert single_view_s(150.0) == 10.0


def test_constant_pupil_stays_put() -> None:
    """A pupil that never moves (variance 0) smooths to itself instead of failing."""
    x = np.tile(np.array([50.0, 50.0, 55.0, 45.0])[None, None], (3, 20, 1))
    y = np.tile(np.array([45.0, 55.0, 50.0, 50.0])[None, None], (3, 20, 1))
    ours = smooth_pupil(x, y, np.ones_like(x))
    np.testing.assert_allclose(ours["pupil_right_r_x"], 55.0, atol=1e-6)
    np.testing.assert_allclose(ours["pupil_top_r_y"], 45.0, atol=1e-6)


def test_random_walk_smoother_is_the_kalman_smoother() -> None:
    rng = np.random.default_rng(1)
    ys, noise = rng.normal(0, 3, (4, 50)), rng.uniform(0.1, 5, (4, 50))
    prior = rng.uniform(1, 2, 4)
    means, variances = random_walk_smoother(ys, noise, prior, 0.7)
    unit = np.eye(1)
    expected_means, expected_covs = kalman_smoother(ys[..., None], noise[..., None], np.zeros((4, 1)), prior[:, None, None], unit, 0.7 * unit, unit)
    np.testing.assert_allclose(means, expected_means[..., 0], atol=1e-12)
    np.testing.assert_allclose(variances, expected_covs[..., 0, 0], atol=1e-12)
