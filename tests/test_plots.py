"""Figures of a synthetic session whose ground truth stands in for the pose outputs."""
from __future__ import annotations

import dataclasses
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from iblvideo.cli import main
from iblvideo.results import plots as P
from iblvideo.results.load import load_session


@pytest.fixture(scope="module")
def results(session_with_truth_as_pose):
    return load_session(session_with_truth_as_pose)


def _texts(figure) -> str:
    return " ".join(t.get_text() for ax in figure.axes for t in (*ax.texts, ax.title, ax.yaxis.label)) + figure._suptitle.get_text()


def test_plot_cli_writes_every_figure(session_with_truth_as_pose, tmp_path):
    assert main(["-q", "plot", str(session_with_truth_as_pose), "--out", str(tmp_path)]) == 0
    for name in P.FIGURES:
        image = np.asarray(Image.open(tmp_path / f"{name}.png").convert("L"))
        assert image.shape[0] > 400 and image.shape[1] > 800
        assert image.std() > 10  # drawn, not blank


def test_traces_show_every_point_and_signal(results):
    figure = P.traces_figure(results)
    pose_x = figure.axes[0]
    left = results.cameras["left"]
    assert [line.get_label() for line in pose_x.lines if not line.get_label().startswith("_")] == left.points
    nose = next(line for line in pose_x.lines if line.get_label() == "nose_tip")
    np.testing.assert_allclose(nose.get_xdata(), left.times)
    np.testing.assert_allclose(nose.get_ydata(), left.confident_xy("nose_tip")[:, 0])
    labels = [ax.get_ylabel() for ax in figure.axes]
    # left and right pupils (about 27 and 13 px) each on their own axis
    assert labels[2:] == ["pupil diameter (px), left", "pupil diameter (px), right", "motion energy (z)", "wheel speed (rad/s)", "licks"]
    for ax, camera in zip(figure.axes[2:4], ("left", "right"), strict=True):
        np.testing.assert_allclose(ax.lines[1].get_ydata(), results.cameras[camera].features["pupilDiameter_smooth"])
    assert len(figure.axes[4].get_legend_handles_labels()[1]) == 3  # motion energy of all three cameras
    licks = figure.axes[6]
    # one tick per lick event on top, IBL's lick frames (several per lick) below, each row named
    assert [t.get_text() for t in licks.get_yticklabels()] == ["lick events", "IBL lick frames"]
    np.testing.assert_allclose(sorted(licks.collections[0].get_positions()), results.lick_events["times"])
    np.testing.assert_allclose(sorted(licks.collections[1].get_positions()), results.licks)
    assert len(results.licks) > 3 * len(results.lick_events) > 0


def test_trial_averages_split_correct_and_error(results):
    figure = P.trial_average_figure(results)
    n_correct, n_error = (int((results.trials.feedbackType == k).sum()) for k in (1, -1))
    legend = [t.get_text() for t in figure.axes[1].get_legend().get_texts()]  # top right: feedback column
    assert legend == [P.condition_label("correct", n_correct), P.condition_label("error", n_error)]
    assert all(f"(n={n}" in text for n, text in zip((n_correct, n_error), legend, strict=True))
    assert "aligned to stimulus onset" in _texts(figure) and "aligned to feedback" in _texts(figure)
    wheel_feedback = figure.axes[1]
    correct = wheel_feedback.lines[1]  # after the zero line
    feedback = results.trials.loc[results.trials.feedbackType == 1, "feedback_times"].to_numpy()
    grid, speed = P.wheel_speed(*results.wheel)
    assert np.isfinite(correct.get_ydata()).all()
    np.testing.assert_allclose(correct.get_ydata(), np.mean(P.peri_event(grid, speed, feedback, correct.get_xdata()), axis=0))
    rows = [ax.get_ylabel() for ax in figure.axes[::2]]
    assert "nose speed (px/s), left" in rows and rows[-1] == P.LICK_RATE == "lick events per second"
    lick_rate = figure.axes[-1].lines[1]  # feedback column, correct trials
    _, rates = P._lick_rate(results.lick_events["times"].to_numpy(), feedback)
    np.testing.assert_allclose(lick_rate.get_ydata(), rates.mean(axis=0))
    assert 0 < lick_rate.get_ydata().max() <= 1 / P.LICK_BIN  # a lick per bin at most: events, not lick frames


def test_peri_event_wheel_speed_and_lick_rate():
    times = np.arange(0, 10, 0.01)
    np.testing.assert_allclose(P.peri_event(times, times * 2, np.array([2.0, 5.0]), np.array([-0.5, 0.0, 1.0])),
                               [[3.0, 4.0, 6.0], [9.0, 10.0, 12.0]])
    assert np.isnan(P.peri_event(times, times, np.array([9.8]), np.array([0.5]))).all()  # past the end
    _, speed = P.wheel_speed(times, -3.0 * times)
    np.testing.assert_allclose(speed[20:-20], 3.0, rtol=1e-6)
    centres, rates = P._lick_rate(np.array([1.01, 1.02, 3.11]), np.array([1.0, 3.0]))
    assert rates.shape == (2, len(centres))
    assert rates[0, np.argmin(np.abs(centres - P.LICK_BIN / 2))] == 2 / P.LICK_BIN and rates[1].sum() == 1 / P.LICK_BIN


def test_qc_summary_marks_mean_positions_and_outcomes(results):
    figure = P.qc_figure(results)
    assert f"QC {results.qc['outcome']}" in figure._suptitle.get_text()
    for ax, (name, camera) in zip(figure.axes[: len(results.cameras)], results.cameras.items(), strict=True):
        assert ax.get_title() == f"{name} camera: {results.qc['cameras'][name]['outcome']}"
        assert ax.images[0].get_array().std() > 5  # a real frame of the video
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            for point in camera.points:
                marker = next(line for line in ax.lines if line.get_label() == point)
                np.testing.assert_allclose([marker.get_xdata()[0], marker.get_ydata()[0]], np.nanmean(camera.confident_xy(point), axis=0))


def test_figures_without_optional_datasets(session_with_truth_as_pose, tmp_path):
    """Only pose tables: no video, times, trials, wheel, motion energy, features or QC."""
    session = tmp_path / "mouse" / "2026-01-02" / "001"
    (session / "alf").mkdir(parents=True)
    for table in (session_with_truth_as_pose / "alf").glob("_ibl_*Camera.dlc.pqt"):
        shutil.copy(table, session / "alf")
    bare = load_session(session)
    assert bare.name == "mouse/2026-01-02/001"
    texts = " ".join(_texts(make(bare)) for make in P.FIGURES.values())
    for missing in ("no trials table", "no motion energy", "no wheel data", "no lick times", "no QC report", "no feature tables"):
        assert missing in texts


def test_no_paw_states_figure_without_a_paw_states_table(results):
    """The paw-states figure is made only for a session with a table in alf/lightningaction (tests/test_paw_states_session.py)."""
    assert not P.has_paw_states(results) and P.figures_of(results) is P.FIGURES and "paw_states" not in P.FIGURES


def test_conditions_under_min_trials_say_so_and_have_no_band(results):
    """A mean over one or two trials is drawn faint and without its SEM band, and its legend says why."""
    assert P.condition_label("error", 1) == f"error (n=1 < {P.MIN_TRIALS}: no band)"
    assert P.condition_label("correct", P.MIN_TRIALS) == f"correct (n={P.MIN_TRIALS})"
    trials = results.trials
    correct = trials[trials.feedbackType == 1].iloc[[0]]
    shifted = [correct.assign(stimOn_times=correct.stimOn_times + k * 0.2, feedback_times=correct.feedback_times + k * 0.2)
               for k in range(P.MIN_TRIALS)]  # the session has one trial of each: MIN_TRIALS correct ones, one error
    few = pd.concat([*shifted, trials[trials.feedbackType == -1].iloc[[0]]], ignore_index=True)
    figure = P.trial_average_figure(dataclasses.replace(results, trials=few))
    wheel_feedback = figure.axes[1]
    legend = [t.get_text() for t in wheel_feedback.get_legend().get_texts()]
    assert legend == [f"correct (n={P.MIN_TRIALS})", f"error (n=1 < {P.MIN_TRIALS}: no band)"]
    assert len(wheel_feedback.collections) == 1  # the correct trials' band alone
    error_line = next(line for line in wheel_feedback.lines if line.get_label().startswith("error"))
    assert error_line.get_alpha() == 0.5 and error_line.get_linestyle() == ":"


def test_qc_values_have_units_and_ibl_thresholds():
    from iblvideo.measures.qc import BOUNDING_BOXES, LICK_NAN_LIMIT, PAW_NAN_FAIL, PAW_NAN_WARNING, PUPIL_STD_LIMIT

    assert P.qc_value("pupil_blocked", {"value": 2.345}) == "2.35 px"
    assert P.qc_value("paw_close_nan", {"value": 0.125}) == "12.5% NaN"
    assert P.qc_value("decode_errors", {"value": 3.0}) == "3 frames"
    assert P.qc_value("trace_all_nan", {"value": None}) == ""
    assert P.qc_threshold("pupil_blocked", "right") == f"FAIL above {PUPIL_STD_LIMIT['right']} px"
    assert P.qc_threshold("pupil_diameter_snr", "left") == f"FAIL below {PUPIL_STD_LIMIT['left']}"
    assert P.qc_threshold("pupil_blocked", "body") == P.qc_threshold("paw_close_nan", "body") == ""
    assert P.qc_threshold("paw_far_nan", "left") == f"WARNING above {PAW_NAN_WARNING:.0%}, FAIL above {PAW_NAN_FAIL:.0%}"
    assert P.qc_threshold("lick_detection", "right") == "FAIL when both tongue points are NaN in under 10% of frames" and LICK_NAN_LIMIT == 0.1
    assert P.qc_threshold("lick_detection", "body") == ""
    xrange, yrange = BOUNDING_BOXES["left"]
    assert P.qc_threshold("mean_in_bbox", "left") == f"FAIL outside x {xrange[0]}-{xrange[-1]}, y {yrange[0]}-{yrange[-1]} px"
