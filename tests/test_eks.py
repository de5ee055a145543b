"""Ensemble Kalman smoothing: parity with the ensemble-kalman-smoother package on real IBL ensembles.

The references were written by benchmarks/eks_reference.py: tests/data/ibl-ensembles/eks-reference
with ensemble-kalman-smoother 4.6.2 (JAX 0.4.36), eks-reference-3.0.0 with 3.0.0 (the release IBL's
pipeline pins) called as IBL calls it. eks's single-view smoother computes in float32, about seven
significant digits: 1e-5 px on these 50–100 px coordinates. The tolerances leave ten times that.
eks 3.0.0's pupil smoother is NumPy float64, and agrees to the fixture's nine digits.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from iblvideo.tracking.eks import (
    PUPIL_ORDER,
    ensemble_statistics,
    kalman_smoother,
    random_walk_smoother,
    smooth_pupil,
    smooth_single_view,
)

DATA = Path(__file__).parent / "data" / "ibl-ensembles"
REFERENCE = DATA / "eks-reference"
REFERENCE_3 = DATA / "eks-reference-3.0.0"
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
    ours = smooth_single_view(PAWS, x, y, likelihood, s=10.0, eks="4.6.2")
    assert_matches(ours, pd.read_csv(REFERENCE / f"paw_{camera}.csv.gz"))
    # IBL's extra columns: the ensemble's median and the members' mean likelihood
    np.testing.assert_allclose(ours["paw_l_x_ens_median"], np.median(x[:, :, 0], axis=0))
    np.testing.assert_allclose(ours["paw_r_likelihood"], likelihood[:, :, 1].mean(0), rtol=1e-12)


def test_pupil_matches_eks() -> None:
    x, y, likelihood = members("ibl-pupil", "*.rng=*.csv.gz", PUPIL_ORDER)
    ours = smooth_pupil(x, y, likelihood, 0.9999, 0.999, eks="4.6.2")
    assert_matches(ours, pd.read_csv(REFERENCE / "pupil.csv.gz"))


@pytest.mark.parametrize(("camera", "s"), [("left", 10.0), ("left", 100.0), ("right", 10.0), ("right", 100.0)])
def test_paws_match_eks_3(camera: str, s: float) -> None:
    """Every column of IBL's paw table, at both of IBL's step variances (before its ×100 on posterior variances)."""
    x, y, likelihood = members("ibl-paw", f"*.{camera}.rng=*.csv.gz", PAWS)
    assert_matches(smooth_single_view(PAWS, x, y, likelihood, s, eks="3.0.0"), pd.read_csv(REFERENCE_3 / f"paw_{camera}_s{s:g}.csv.gz"))


@pytest.fixture(scope="module")
def pupil_members() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return members("ibl-pupil", "*.rng=*.csv.gz", PUPIL_ORDER)


def test_pupil_matches_eks_3_as_published(pupil_members: tuple[np.ndarray, ...]) -> None:
    """The table IBL publishes, eks 3.0.0's labels and posterior-variance entries as they are."""
    ours = smooth_pupil(*pupil_members, eks="3.0.0", published_labels=True)
    reference = pd.read_csv(REFERENCE_3 / "pupil.csv.gz")
    assert list(ours.columns) == list(reference.columns)
    assert_matches(ours, reference)


def test_pupil_labels_corrected(pupil_members: tuple[np.ndarray, ...]) -> None:
    """By default each point's columns are the ones eks 3.0.0 files under another label, with that point's own posterior variances."""
    ours = smooth_pupil(*pupil_members, eks="3.0.0")
    published = pd.read_csv(REFERENCE_3 / "pupil.csv.gz")
    holds = {"pupil_top_r": "pupil_top_r", "pupil_bottom_r": "pupil_right_r", "pupil_right_r": "pupil_bottom_r", "pupil_left_r": "pupil_left_r"}
    relabelled = pd.DataFrame({column.replace(label, holds[label], 1): published[column] for column in published.columns
                               for label in [column.split("_r_")[0] + "_r"] if not column.endswith("_posterior_var")})
    assert_matches(ours, relabelled)
    # from eks 3.0.0 too: its published entries and those of a run on the transposed pupil (benchmarks/eks_reference.py)
    assert_matches(ours, pd.read_csv(REFERENCE_3 / "pupil_posterior_var.csv.gz"))
    # the model's symmetries: top and bottom share the centre's x, right and left its y
    np.testing.assert_allclose(ours["pupil_top_r_x_posterior_var"], ours["pupil_bottom_r_x_posterior_var"], rtol=1e-9)
    np.testing.assert_allclose(ours["pupil_right_r_y_posterior_var"], ours["pupil_left_r_y_posterior_var"], rtol=1e-9)


def test_releases_differ_where_expected(pupil_members: tuple[np.ndarray, ...]) -> None:
    """4.6.2 clips the diameter's coefficient 0.9999 to 0.999: a jumpier diameter, points apart by up to 1.7 px."""
    new, old = (smooth_pupil(*pupil_members, eks=version) for version in ("3.0.0", "4.6.2"))
    points = [c for c in new.columns if c.endswith(("_x", "_y"))]
    delta = np.abs(new[points].to_numpy() - old[points].to_numpy())
    assert 1.0 < delta.max() < 2.0
    width = (new["pupil_right_r_x"] - new["pupil_left_r_x"]).to_numpy(), (old["pupil_right_r_x"] - old["pupil_left_r_x"]).to_numpy()
    assert np.abs(np.diff(width[0])).mean() < 0.5 * np.abs(np.diff(width[1])).mean()
    with pytest.raises(ValueError, match=r"3\.0\.0"):
        smooth_pupil(*pupil_members, eks="4.6.2", published_labels=True)
    with pytest.raises(ValueError, match="not reproduced"):
        smooth_pupil(*pupil_members, eks="4.0.0")


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
    _, _, var_x, _, confidence = ensemble_statistics(x, x, np.array([[[0.5], [1.0], [0.0]]]), eks="4.6.2")
    np.testing.assert_allclose(var_x[:, 0], [2.0, 1.0, 1e5])
    np.testing.assert_allclose(confidence[:, 0], [0.5, 1.0, 0.0])
    # eks 3.0.0 divides the lone member's zero spread by its confidence; no confidence at all gets NAN_VARIANCE
    _, _, var_x, _, _ = ensemble_statistics(x, x, np.array([[[0.5], [1.0], [0.0]]]), eks="3.0.0")
    np.testing.assert_allclose(var_x[:, 0], [0.0, 0.0, 1000.0])


def test_missing_observations_carry_no_information() -> None:
    """NaN observations are skipped: the smoothers give the batch posterior of the observed frames alone."""
    rng = np.random.default_rng(2)
    t_len, s, prior = 30, 0.5, 3.0
    noise = rng.uniform(0.5, 2.0, t_len)
    ys = np.cumsum(rng.normal(0, s**0.5, t_len)) + rng.normal(0, noise**0.5)
    ys[[0, 7, 8, 20]] = np.nan
    second, second_noise = np.roll(ys, 3), np.roll(noise, 3)  # a second view of the same walk, missing elsewhere
    steps = np.diff(np.eye(t_len), axis=0)

    def posterior(*views: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        precision = steps.T @ steps / s + np.diag(sum(np.where(np.isnan(y), 0.0, 1 / n) for y, n in views))
        precision[0, 0] += 1 / prior
        covariance = np.linalg.inv(precision)
        return covariance @ sum(np.nan_to_num(y / n) for y, n in views), np.diag(covariance)

    means, variances = random_walk_smoother(ys[None], noise[None], np.array([prior]), s)
    expected_means, expected_variances = posterior((ys, noise))
    np.testing.assert_allclose(means[0], expected_means, atol=1e-9)
    np.testing.assert_allclose(variances[0], expected_variances, atol=1e-9)
    both, covs = kalman_smoother(np.stack([ys, second], axis=-1)[None], np.stack([noise, second_noise], axis=-1)[None], np.zeros((1, 1)),
                                 np.full((1, 1, 1), prior), np.eye(1), s * np.eye(1), np.ones((2, 1)))
    expected_means, expected_variances = posterior((ys, noise), (second, second_noise))
    np.testing.assert_allclose(both[0, :, 0], expected_means, atol=1e-9)
    np.testing.assert_allclose(covs[0, :, 0, 0], expected_variances, atol=1e-9)


def test_pupil_frame_without_points_is_interpolated(pupil_members: tuple[np.ndarray, ...]) -> None:
    """A frame where no member sees the pupil leaves the rest of the table as it was (eks makes every frame NaN)."""
    x, y, likelihood = (a.copy() for a in pupil_members)
    x[:, 100], y[:, 100] = np.nan, np.nan
    ours, full = smooth_pupil(x, y, likelihood), smooth_pupil(*pupil_members)
    points = [c for c in ours.columns if c.endswith(("_x", "_y"))]
    assert np.isfinite(ours[points].to_numpy()).all()
    assert np.abs(ours[points].to_numpy() - full[points].to_numpy()).max() < 0.5


def test_paw_step_variance_follows_the_frame_rate() -> None:
    """IBL's paw step variance, a setting of its network set."""
    from iblvideo.tracking.lp_networks import V2_2

    assert V2_2.paw_step_variance(30.0) == 100.0
    assert V2_2.paw_step_variance(60.0) == 10.0
    assert V2_2.paw_step_variance(150.0) == 10.0


def test_constant_pupil_stays_put() -> None:
    """A pupil that never moves (variance 0) smooths to itself instead of failing."""
    x = np.tile(np.array([50.0, 50.0, 55.0, 45.0])[None, None], (3, 20, 1))
    y = np.tile(np.array([45.0, 55.0, 50.0, 50.0])[None, None], (3, 20, 1))
    ours = smooth_pupil(x, y, np.ones_like(x), eks="4.6.2")
    np.testing.assert_allclose(ours["pupil_right_r_x"], 55.0, atol=1e-6)
    np.testing.assert_allclose(ours["pupil_top_r_y"], 45.0, atol=1e-6)
    # eks 3.0.0's first covariance stays the prior's, so the AR(1)'s pull towards 0 moves the first frame by 5e-4 px
    ours = smooth_pupil(x, y, np.ones_like(x), eks="3.0.0")
    np.testing.assert_allclose(ours["pupil_right_r_x"], 55.0, atol=1e-3)
    np.testing.assert_allclose(ours["pupil_right_r_x"][1:], 55.0, atol=1e-5)


def test_random_walk_smoother_is_the_kalman_smoother() -> None:
    rng = np.random.default_rng(1)
    ys, noise = rng.normal(0, 3, (4, 50)), rng.uniform(0.1, 5, (4, 50))
    prior = rng.uniform(1, 2, 4)
    means, variances = random_walk_smoother(ys, noise, prior, 0.7)
    unit = np.eye(1)
    expected_means, expected_covs = kalman_smoother(ys[..., None], noise[..., None], np.zeros((4, 1)), prior[:, None, None], unit, 0.7 * unit, unit)
    np.testing.assert_allclose(means, expected_means[..., 0], atol=1e-12)
    np.testing.assert_allclose(variances, expected_covs[..., 0, 0], atol=1e-12)
