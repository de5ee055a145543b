"""Features against ibllib's own numbers (tests/reference/ibllib, made by make_ibllib_reference.py)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ibllib_parity import assert_features_match, assert_same, copy_session
from iblvideo.cli import main
from iblvideo.errors import IblVideoError
from iblvideo.io.alf import LICK_EVENTS, TRUTH_LICKS, SessionPaths, pose_name, truth_pupil_name
from iblvideo.io.session_files import provenance, read_pose
from iblvideo.measures import features as F, licks as L
from iblvideo.sessions.stages import features_stage
from iblvideo.synth import scoring
from iblvideo.tracks import PoseTracks
from reference import inputs

REF = inputs.REFERENCE
def confident(table: pd.DataFrame) -> PoseTracks:
    """A table's tracks, NaN where unsure, as every feature reads them."""
    return PoseTracks.from_frame(table).confident()


@pytest.fixture(scope="module")
def pupil_pose() -> PoseTracks:
    return confident(inputs.ensemble_median("pupil", "left"))


def test_pupil_diameter_matches_ibllib_on_real_ensemble(pupil_pose):
    assert_same(F.pupil_diameter(pupil_pose), np.load(REF / "pupil_raw.npy"))


@pytest.mark.parametrize("camera", ["left", "right"])
def test_smoothed_pupil_matches_ibllib_on_real_ensemble(pupil_pose, camera):
    assert_same(F.smooth_pupil_diameter(F.pupil_diameter(pupil_pose), camera), np.load(REF / f"pupil_smooth_{camera}.npy"))


@pytest.mark.parametrize("camera", ["left", "right"])
def test_paw_speed_and_events_match_ibllib_on_real_ensemble(camera):
    pose, times = confident(inputs.ensemble_median("paw", camera)), inputs.ensemble_times(camera)
    for point in ("paw_l", "paw_r"):
        assert_same(F.speed(pose, times, camera, point), np.load(REF / f"speed_{camera}_{point}.npy"))
    events = F.event_times([pose.point_xy(p)[:, axis] for p in ("paw_l", "paw_r") for axis in (0, 1)], times)
    assert_same(events, np.load(REF / f"events_{camera}_paws.npy"))


@pytest.mark.parametrize("name", list(inputs.reference_sessions()))
def test_session_features_match_ibllib(tmp_path, name):
    session = copy_session(tmp_path, inputs.reference_sessions()[name], name)
    written = features_stage(session)
    alf = session / "alf"
    assert_same(np.load(alf / "licks.times.npy"), np.load(REF / f"{name}_licks.npy"))
    for camera in ("left", "right"):
        assert_features_match(session, written, REF, name, camera)


def test_confident_tracks_hide_unsure_points_only():
    pose = PoseTracks.from_frame(pd.DataFrame({"a_x": [1.0, 2.0, 3.0], "a_y": [4.0, 5.0, 6.0], "a_likelihood": [0.95, 0.5, 0.9]}))
    out = pose.confident()
    assert np.isnan(out.point_xy("a")[:, 0]).tolist() == [False, True, False]
    assert np.isfinite(pose.xy).all()  # the input is left alone


def test_pupil_diameter_of_a_circle_is_its_diameter():
    angles = {"top": (0, -1), "right": (1, 0), "bottom": (0, 1), "left": (-1, 0)}
    pose = pd.DataFrame({f"pupil_{k}_r_{c}": [50 + 7 * v[i] if c in "xy" else 1.0]
                         for k, v in angles.items() for i, c in enumerate(("x", "y", "likelihood"))})
    assert F.pupil_diameter(PoseTracks.from_frame(pose)) == pytest.approx([14.0])


def test_smoothing_gives_nan_rather_than_failing_on_mostly_missing_pupil():
    raw = np.full(600, np.nan)
    raw[:40] = 10.0
    assert np.isnan(F.smooth_pupil_diameter(raw, "left")).all()
    with pytest.raises(IblVideoError, match="left and right cameras only"):
        F.smooth_pupil_diameter(raw, "body")


def test_all_nan_tongue_has_no_licks():
    pose = PoseTracks(F.TONGUE_POINTS, np.full((50, 2, 2), np.nan), np.zeros((50, 2)))
    assert F.lick_times(pose, np.arange(50) / 60).size == 0


def test_features_command_and_missing_inputs(tmp_path, capsys):
    session = copy_session(tmp_path, inputs.reference_sessions()["good"], "good")
    assert main(["-q", "features", str(session)]) == 0
    assert "licks.times.npy" in capsys.readouterr().out
    assert main(["-q", "features", str(tmp_path)]) == 2
    assert "no pose tables" in capsys.readouterr().err


def test_features_from_synthetic_ground_truth_recover_the_truth():
    """Smoothed pupil diameter follows the true one; every true lick is found within one frame."""
    truth, alf = inputs.SYNTH_SESSION / "truth", inputs.SYNTH_SESSION / "alf"
    detected = []
    for camera in ("left", "right"):
        pose = read_pose(alf / f"_ibl_{camera}Camera.dlc.pqt")
        times = np.load(alf / f"_ibl_{camera}Camera.times.npy")
        result = F.side_camera_features(pose, times, camera)
        table = result.table
        true_diameter = np.load(truth / truth_pupil_name(camera))
        both = ~np.isnan(table["pupilDiameter_smooth"]) & ~np.isnan(true_diameter)
        assert both.mean() > 0.9
        assert np.corrcoef(table["pupilDiameter_smooth"][both], true_diameter[both])[0, 1] >= 0.95
        detected.append(result.licks)
    licks, true_licks = np.sort(np.concatenate(detected)), np.load(truth / TRUTH_LICKS)
    frame = 1 / F.SAMPLING["left"]  # the slower side camera's frame
    found = [np.min(np.abs(licks - t)) <= frame for t in true_licks]
    assert len(true_licks) >= 10 and np.mean(found) >= 0.9


def test_smoothing_in_chunks_equals_one_piece(monkeypatch):
    from iblvideo.measures import smoothing

    raw = F.pupil_diameter(confident(inputs.ensemble_median("pupil", "left")))
    whole = smoothing.smooth_interpolate_savgol(raw, 31, 3)
    monkeypatch.setattr(smoothing, "_CHUNK", 97)
    np.testing.assert_allclose(smoothing.smooth_interpolate_savgol(raw, 31, 3), whole, rtol=0, atol=1e-12)


# ---- lick events: one per lick, beside IBL's lick frames --------------------------------------------

def test_lick_runs_bridge_short_gaps_only():
    times = np.arange(20) / 60
    seen = np.zeros(20, bool)
    seen[[2, 3, 5, 6, 12, 13]] = True  # frame 4 missed inside a lick (33 ms); 5 frames (100 ms) out between licks
    assert L.lick_runs(seen, times) == [(times[2], times[6]), (times[12], times[13])]
    tracks = PoseTracks(L.TONGUE_POINTS, np.zeros((20, 2, 2)), np.where(seen, 0.95, 0.2)[:, None].repeat(2, axis=1))
    np.testing.assert_allclose(L.lick_events(tracks, times), [times[4], (times[12] + times[13]) / 2])


def test_merged_lick_events_pair_the_two_cameras_once():
    table = L.merge_lick_events({"left": np.array([1.0, 1.03, 2.0]), "right": np.array([1.02, 3.0])})
    assert list(table.columns) == ["times", "side"]
    # 1.0 and 1.02 are one lick seen by both; 1.03, on the same camera as 1.0, is a lick of its own
    np.testing.assert_allclose(table["times"], [1.01, 1.03, 2.0, 3.0])
    assert table["side"].tolist() == ["both", "left", "left", "right"]
    assert L.merge_lick_events({}).empty


def test_match_licks_counts_each_lick_once():
    precision, recall, errors = scoring.match_licks(np.array([0.99, 1.01, 2.5]), np.array([1.0, 2.0]))
    assert (precision, recall) == (pytest.approx(1 / 3), 0.5)
    np.testing.assert_allclose(np.abs(errors), [0.01])


def test_lick_events_on_true_tracks_are_the_true_licks(tmp_path):
    """On the synthetic session's true tracks, every lick is one event seen by both cameras, to a few ms;
    IBL's lick frames count each lick several times."""
    session = copy_session(tmp_path, inputs.SYNTH_SESSION, "synth")
    written = features_stage(session)
    events = pd.read_parquet(written["lick_events"])
    true = np.load(SessionPaths(session).truth / TRUTH_LICKS)
    precision, recall, errors = scoring.match_licks(events["times"].to_numpy(), true)
    assert len(true) >= 10 and precision >= 0.95 and recall >= 0.95
    assert np.abs(errors).max() < 0.01 and set(events["side"]) == {"both"}
    assert len(np.load(written["licks"])) > 3 * len(events)
    assert provenance(session, LICK_EVENTS) == [pose_name(camera, "dlc") for camera in ("left", "right")]


@pytest.fixture(scope="module")
def demo_tracked_session(tmp_path_factory) -> Path:
    """A 3 s synthetic left camera (seed 8: a reward bout of 8 licks) tracked with the demo weights, then features."""
    from iblvideo.synth import synthesize_session
    from iblvideo.tracking.run import dlc

    session = synthesize_session(tmp_path_factory.mktemp("demo_licks"), cameras=("left",), seconds=3.0, seed=8)
    dlc(SessionPaths(session).raw_video("left"), weights="demo")
    features_stage(session)
    return session


def test_lick_events_from_demo_weights_are_the_true_licks(demo_tracked_session):
    paths = SessionPaths(demo_tracked_session)
    events = pd.read_parquet(paths.session_file(LICK_EVENTS))
    true = np.load(paths.truth / TRUTH_LICKS)
    span = scoring.recorded_span([np.load(paths.times("left"))])
    precision, recall, _ = scoring.match_licks(events["times"].to_numpy(), true, span=span)
    assert np.sum((true >= span[0]) & (true <= span[1])) >= 5 and precision >= 0.95 and recall >= 0.95
    assert set(events["side"]) == {"left"}
