"""QC against ibllib's DlcQC outcomes, and the cases where ibllib itself would crash."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from iblvideo.cli import main
from iblvideo.errors import IblVideoError
from iblvideo.io.alf import QC_REPORT
from iblvideo.measures import features as F, qc as Q
from iblvideo.sessions.stages import features_stage, qc_stage
from iblvideo.tracks import PoseTracks
from reference import inputs

REFERENCE = json.loads((inputs.REFERENCE / "qc.json").read_text())


def copy_session(tmp_path: Path, name: str) -> Path:
    session = tmp_path / name / "2024-01-01" / "001"
    shutil.copytree(inputs.reference_sessions()[name], session)
    return session


def assert_check(ours: dict, theirs: str | list) -> None:
    if isinstance(theirs, list):
        assert [ours["outcome"], ours.get("value")] == theirs
    else:
        assert ours["outcome"] == theirs


@pytest.mark.parametrize("name", list(inputs.reference_sessions()))
def test_session_qc_matches_ibllib(tmp_path, name):
    session = copy_session(tmp_path, name)
    features_stage(session)  # ibllib's QC reads the feature tables, as ours does when present
    report = qc_stage(session)
    assert json.loads((session / "alf" / QC_REPORT).read_text()) == report
    for camera, theirs in REFERENCE[name].items():
        ours = report["cameras"][camera]
        assert ours["outcome"] == theirs["outcome"], camera
        assert set(ours["checks"]) - set(Q.NOT_IBL) == set(theirs["checks"])
        for check, outcome in theirs["checks"].items():
            assert_check(ours["checks"][check], outcome)
        # the same outcomes under IBL's extended_qc keys (tests/test_alyx_qc.py: the whole dict, as ibllib writes it)
        space = Q.namespace(camera, "DlcQC")
        assert report["extended_qc"][space] == theirs["outcome"]
        assert {check: report["extended_qc"][f"_{space}_{check}"] for check in theirs["checks"]} == theirs["checks"]
    assert not [key for key in report["extended_qc"] if any(key.endswith(n) for n in Q.NOT_IBL) and not key.startswith("_iblvideo")]


def test_qc_computes_pupil_itself_without_feature_tables(tmp_path):
    report = qc_stage(copy_session(tmp_path, "blind"))
    for camera, theirs in REFERENCE["blind"].items():
        assert report["cameras"][camera]["outcome"] == theirs["outcome"]


@pytest.mark.parametrize("camera", ["left", "right"])
def test_pupil_checks_match_ibllib_on_real_ensemble(camera):
    raw = F.pupil_diameter(PoseTracks.from_frame(inputs.ensemble_median("pupil", "left")).confident())
    data = Q.CameraData(camera, coords={}, pupil_raw=raw, pupil_smooth=F.smooth_pupil_diameter(raw, camera))
    theirs = REFERENCE["pupil_ensemble"][camera]
    assert_check(Q.check_pupil_blocked(data).to_json(), theirs["pupil_blocked"])
    assert_check(Q.check_pupil_diameter_snr(data).to_json(), theirs["pupil_diameter_snr"])


@pytest.mark.parametrize("camera", ["left", "right"])
def test_pose_checks_match_ibllib_on_real_ensemble(camera):
    pose = PoseTracks.from_frame(inputs.ensemble_median("paw", camera)).confident()
    times = inputs.ensemble_times(camera)
    coords = {p: pose.point_xy(p).T for p in ("paw_l", "paw_r")}
    data = Q.CameraData(camera, coords=coords, times=times, stim_on_times=inputs.stim_on_times(times))
    for check, outcome in REFERENCE["paw_ensemble"][camera].items():
        assert_check(Q.CHECKS[check](data).to_json(), outcome)


def test_missing_times_and_length_mismatch_get_a_failing_outcome(tmp_path):
    # short_times: right camera has 7 times too few, body camera has no times file (ibllib skips it)
    report = qc_stage(copy_session(tmp_path, "short_times"))
    body, right = report["cameras"]["body"]["checks"], report["cameras"]["right"]["checks"]
    assert body["time_trace_length_match"] == {"outcome": "FAIL", "note": "no camera times file"}
    assert "1493 camera times for 1500 pose frames" in right["time_trace_length_match"]["note"]
    assert report["outcome"] == "FAIL"
    assert "no camera times file" in Q.format_report(report)


def test_all_nan_session_does_not_crash():
    coords = {p: np.full((2, 300), np.nan) for p in ("nose_tip", "paw_l", "paw_r", "tongue_end_l", "tongue_end_r")}
    times = np.arange(300) / 60
    data = Q.CameraData("left", coords=coords, times=times, stim_on_times=np.array([1.0, 3.0]),
                        pupil_raw=np.full(300, np.nan), pupil_smooth=np.full(300, np.nan))
    result = Q.run_camera_qc(data)
    checks = result["checks"]
    assert checks["trace_all_nan"]["outcome"] == "FAIL"
    assert checks["mean_in_bbox"]["outcome"] == "FAIL"  # ibllib raises on int(NaN) here
    assert checks["pupil_blocked"]["outcome"] == "FAIL"
    assert checks["pupil_diameter_snr"] == {"outcome": "PASS", "value": None, "note": "no frame with both raw and smoothed diameters"}
    assert checks["paw_far_nan"]["outcome"] == "FAIL"
    assert result["outcome"] == "FAIL"
    json.dumps(result, allow_nan=False)


def test_checks_without_their_inputs_are_not_set():
    data = Q.CameraData("right", coords={"paw_r": np.zeros((2, 10))}, times=np.arange(10.0))
    assert Q.check_paw_close_nan(data).note == "no trials"
    assert Q.check_lick_detection(data).outcome is Q.Outcome.NOT_SET
    assert Q.check_pupil_blocked(data).outcome is Q.Outcome.NOT_SET
    early = Q.CameraData("right", coords={"paw_r": np.zeros((2, 10))}, times=np.arange(10.0) + 100, stim_on_times=np.array([1.0]))
    assert Q.check_paw_close_nan(early).outcome is Q.Outcome.NOT_SET


def test_nearest_frames_follows_ibl_rounding():
    times = np.array([0.0, 1.0, 2.0, 3.0])
    assert Q.nearest_frames(times, np.array([-5.0, 0.4, 0.5, 0.6, 2.9, 9.0, np.nan])).tolist() == [0, 0, 1, 1, 3, 3, 3]


def test_overall_outcome_is_the_worst_with_not_set_lowest():
    assert Q.overall_outcome([Q.Outcome.NOT_SET, Q.Outcome.PASS]) is Q.Outcome.PASS
    assert Q.overall_outcome([Q.Outcome.WARNING, Q.Outcome.FAIL, Q.Outcome.PASS]) is Q.Outcome.FAIL
    assert Q.overall_outcome([]) is Q.Outcome.NOT_SET


def test_qc_command_prints_table_and_errors_cleanly(tmp_path, capsys):
    session = copy_session(tmp_path, "good")
    assert main(["-q", "qc", str(session)]) == 0
    out = capsys.readouterr().out
    assert "session outcome: PASS" in out and "paw_far_nan" in out
    (session / "alf" / "_ibl_rightCamera.times.npy").write_bytes(b"not npy")
    assert main(["-q", "qc", str(session)]) == 2
    assert "_ibl_rightCamera.times.npy: cannot read camera times" in capsys.readouterr().err
    (session / "alf" / "_ibl_leftCamera.dlc.pqt").write_bytes(b"not parquet")
    assert main(["-q", "qc", str(session)]) == 2
    assert "cannot read pose table" in capsys.readouterr().err
    with pytest.raises(IblVideoError, match="no pose tables"):
        qc_stage(tmp_path)


def test_qc_reads_trials_without_stim_on(tmp_path):
    session = copy_session(tmp_path, "good")
    pd.DataFrame({"feedback_times": [1.0]}).to_parquet(session / "alf" / "_ibl_trials.table.pqt")
    report = qc_stage(session)
    assert report["cameras"]["left"]["checks"]["paw_close_nan"]["outcome"] == "NOT_SET"
