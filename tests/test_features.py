"""Features against ibllib's own numbers (tests/reference/ibllib, made by make_ibllib_reference.py)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ibllib_parity import assert_same, copy_session
from iblvideo.cli import main
from iblvideo.errors import IblVideoError
from iblvideo.io.session_files import read_pose
from iblvideo.measures import features as F
from iblvideo.sessions.stages import features_stage
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
        ours = pd.read_parquet(alf / f"_ibl_{camera}Camera.features.pqt")
        theirs = pd.read_parquet(REF / f"{name}_{camera}_features.pqt")
        for column in ("pupilDiameter_raw", "pupilDiameter_smooth"):
            assert_same(ours[column], theirs[column])
        speeds = [REF / f"{name}_{camera}_{point}_speed.npy" for point in F.SPEED_POINTS]
        if speeds[0].exists():  # ibllib skips speeds and sniffs where the camera times fall short
            for point, path in zip(F.SPEED_POINTS, speeds, strict=True):
                assert_same(ours[f"{point}_speed"], np.load(path))
            assert_same(np.load(written[f"{camera}_sniffs"]), np.load(REF / f"{name}_{camera}_sniffs.npy"))
        else:
            assert ours[[f"{p}_speed" for p in F.SPEED_POINTS]].isna().all().all()
            assert f"{camera}_sniffs" not in written


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
        true_diameter = np.load(truth / f"_ibl_{camera}Camera.pupilDiameter.npy")
        both = ~np.isnan(table["pupilDiameter_smooth"]) & ~np.isnan(true_diameter)
        assert both.mean() > 0.9
        assert np.corrcoef(table["pupilDiameter_smooth"][both], true_diameter[both])[0, 1] >= 0.95
        detected.append(result.licks)
    licks, true_licks = np.sort(np.concatenate(detected)), np.load(truth / "licks.times.npy")
    frame = 1 / F.SAMPLING["left"]  # the slower side camera's frame
    found = [np.min(np.abs(licks - t)) <= frame for t in true_licks]
    assert len(true_licks) >= 10 and np.mean(found) >= 0.9


def test_smoothing_in_chunks_equals_one_piece(monkeypatch):
    from iblvideo.measures import smoothing

    raw = F.pupil_diameter(confident(inputs.ensemble_median("pupil", "left")))
    whole = smoothing.smooth_interpolate_savgol(raw, 31, 3)
    monkeypatch.setattr(smoothing, "_CHUNK", 97)
    np.testing.assert_allclose(smoothing.smooth_interpolate_savgol(raw, 31, 3), whole, rtol=0, atol=1e-12)
