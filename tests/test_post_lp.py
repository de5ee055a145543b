"""The stages after Lightning Pose against ibllib's own PostLP task, LpQC and upstream iblvideo's motion
energy on lightningPose tables (tests/reference/ibllib/lp_*, made by make_ibllib_reference.py).

PostLP differs from PostDLC: the raw pupil diameter comes from the pupil ensemble's medians, which
IBL does not threshold by likelihood, and the smoothed one from the Kalman-smoothed points with no
Savitzky-Golay step; LpQC runs IBL's four PoseQC checks only, every one aggregated.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ibllib_parity import assert_features_match, assert_same, copy_session
from iblvideo.errors import IblVideoError
from iblvideo.io.alf import LICKS, QC_REPORT, SessionPaths
from iblvideo.io.session_files import is_lightning_pose, read_pose
from iblvideo.measures import features as F, qc as Q
from iblvideo.measures.motion_energy import roi_from_pose
from iblvideo.sessions.stages import features_stage, motion_energy_stage, qc_stage
from iblvideo.tracks import PoseTracks
from reference import inputs

REF = inputs.REFERENCE
REFERENCE_QC = json.loads((REF / "lp_qc.json").read_text())
ROIS = json.loads((REF / "lp_motion_energy_roi.json").read_text())
def lp_tracks(name: str, camera: str) -> PoseTracks:
    return read_pose(SessionPaths(inputs.lp_sessions()[name]).pose(camera, "lightningPose"))


def test_inputs_are_ibl_lightning_pose_tables():
    """The committed tables have IBL's layout: each network's points in order, the ensembles' nine fields."""
    table = pd.read_parquet(SessionPaths(inputs.lp_sessions()["lp_good"]).pose("left", "lightningPose"))
    expected = [f"{p}_{f}" for network in inputs.LP_NETWORKS["left"] for p in network
                for f in (inputs.LP_ENSEMBLE_FIELDS if p in inputs.LP_ENSEMBLE_POINTS else ("x", "y", "likelihood"))]
    assert list(table.columns) == expected
    tracks = lp_tracks("lp_good", "left")
    assert tracks.points == tuple(p for network in inputs.LP_NETWORKS["left"] for p in network)
    # the medians differ from the smoothed points, and some frames are doubted: the cases PostLP tells apart
    assert np.abs(tracks.extra["pupil_top_r_x_ens_median"] - tracks.point_xy("pupil_top_r")[:, 0]).max() > 5
    assert 0.01 < np.mean(tracks.point_likelihood("pupil_top_r") < 0.9) < 0.2


def side_cameras(name: str) -> list[str]:
    return [camera for camera in ("left", "right") if SessionPaths(inputs.lp_sessions()[name]).pose(camera, "lightningPose").exists()]


@pytest.mark.parametrize("name", list(inputs.lp_sessions()))
def test_features_and_licks_match_postlp(tmp_path, name):
    session = copy_session(tmp_path, inputs.lp_sessions()[name], name)
    written = features_stage(session)
    alf = session / "alf"
    assert_same(np.load(alf / LICKS), np.load(REF / f"{name}_licks.npy"))
    for camera in side_cameras(name):
        assert_features_match(session, written, REF, name, camera)


def test_postlp_pupil_diameters_are_not_postdlcs():
    """The fixtures tell PostLP from PostDLC: thresholded medians, or a Savitzky-Golay step, would not match them."""
    tracks = lp_tracks("lp_good", "left")
    theirs = pd.read_parquet(REF / "lp_good_left_features.pqt")
    raw, smooth = F.pupil_diameters(tracks, "left", lightning_pose=True)
    assert_same(raw, theirs["pupilDiameter_raw"])
    assert_same(smooth, theirs["pupilDiameter_smooth"])
    assert not np.isnan(raw).any()  # the medians count at every likelihood
    assert np.nanmax(np.abs(F.pupil_diameter(tracks) - smooth)) > 1  # the smoothed points only above 0.9
    dlc_raw, dlc_smooth = F.pupil_diameters(tracks, "left")
    assert np.nanmax(np.abs(dlc_raw - raw)) > 1
    assert np.nanmax(np.abs(dlc_smooth - smooth)) > 0.1


def test_features_need_the_ensemble_medians(tmp_path):
    session = copy_session(tmp_path, inputs.lp_sessions()["lp_good"], "lp_good")
    path = SessionPaths(session).pose("left", "lightningPose")
    table = pd.read_parquet(path)
    table.drop(columns=["pupil_left_r_x_ens_median"]).to_parquet(path)
    with pytest.raises(IblVideoError, match="pupil_left_r_x_ens_median"):
        features_stage(session)


def test_features_read_columns_by_name(tmp_path):
    """The tables' column order is not read: shuffled columns give the same features."""
    session = copy_session(tmp_path, inputs.lp_sessions()["lp_good"], "lp_good")
    path = SessionPaths(session).pose("left", "lightningPose")
    table = pd.read_parquet(path)
    table[list(np.random.default_rng(0).permutation(table.columns))].to_parquet(path)
    features_stage(session)
    ours = pd.read_parquet(SessionPaths(session).features("left"))
    for column in ("pupilDiameter_raw", "pupilDiameter_smooth"):
        assert_same(ours[column], pd.read_parquet(REF / "lp_good_left_features.pqt")[column])


@pytest.mark.parametrize("name", list(inputs.lp_sessions()))
def test_qc_matches_lpqc(tmp_path, name):
    session = copy_session(tmp_path, inputs.lp_sessions()[name], name)
    features_stage(session)
    report = qc_stage(session)
    assert json.loads((session / "alf" / QC_REPORT).read_text()) == report
    assert REFERENCE_QC[name]["status"] == (-1 if name == "lp_awkward" else 0)  # PostLP met no error but the awkward times
    theirs_cameras = {camera: result for camera, result in REFERENCE_QC[name].items() if camera != "status"}
    assert set(theirs_cameras) == set(report["cameras"]) - ({"body"} if name == "lp_awkward" else set())
    for camera, theirs in theirs_cameras.items():
        ours = report["cameras"][camera]
        assert ours["ibl_qc"] == "LpQC"
        assert ours["outcome"] == theirs["outcome"], camera
        assert {n for n in ours["checks"] if n not in Q.NOT_IN_LP_QC} - set(Q.NOT_IBL) == set(theirs["checks"])
        for check, outcome in theirs["checks"].items():
            assert ours["checks"][check]["outcome"] == outcome, (camera, check)
        for check in Q.NOT_IN_LP_QC:
            assert ours["checks"][check] == {"outcome": "NOT_SET", "note": f"IBL's LpQC does not run {check}"}
    if name == "lp_awkward":  # IBL skips the QC of a camera without times; ours fails its length check instead
        assert "body" not in theirs_cameras
        assert report["cameras"]["body"]["checks"]["time_trace_length_match"]["outcome"] == "FAIL"


def test_qc_outcomes_vary():
    """The LpQC fixtures hold every outcome the four checks give."""
    outcomes = {o for result in REFERENCE_QC.values() if isinstance(result, dict)
                for camera in result.values() if isinstance(camera, dict) for o in camera["checks"].values()}
    assert {"PASS", "FAIL", "NOT_SET"} <= outcomes


def lp_motion_session(tmp_path: Path, name: str) -> Path:
    session = tmp_path / name / "2024-01-01" / "001"
    if name == "me":
        shutil.copytree(inputs.LP_ME_SESSION, session)
        shutil.copytree(inputs.ME_SESSION / "raw_video_data", session / "raw_video_data")
    else:
        shutil.copytree(inputs.LP_TRACKED_SESSION, session)
    return session


@pytest.mark.parametrize("name", ["me", "tracked"])
def test_motion_energy_matches_upstream_on_lightning_pose_tables(tmp_path, name):
    session = lp_motion_session(tmp_path, name)
    written = motion_energy_stage(session)
    assert set(written) == {key.split("_", 1)[1] for key in ROIS if key.startswith(f"{name}_")}
    for camera, (energy, roi) in written.items():
        assert np.load(roi).tolist() == ROIS[f"{name}_{camera}"]
        np.testing.assert_array_equal(np.load(energy), np.load(REF / f"lp_motion_energy_{name}_{camera}.npy"))


@pytest.mark.parametrize("camera", list(inputs.ME_SIZE))
def test_motion_energy_roi_is_from_the_confident_smoothed_points(camera):
    """Upstream's ROI is pinned: the ensemble medians, or every frame's smoothed points, would place another one."""
    tracks = read_pose(SessionPaths(inputs.LP_ME_SESSION).pose(camera, "lightningPose"))
    assert roi_from_pose(tracks, camera).to_array().tolist() == ROIS[f"me_{camera}"]
    medians = PoseTracks(tracks.points, np.stack([F.ensemble_median_xy(tracks, p) for p in tracks.points], axis=1), tracks.likelihood)
    unthresholded = PoseTracks(tracks.points, tracks.xy, np.ones_like(tracks.likelihood))
    for other in (medians, unthresholded):
        assert roi_from_pose(other, camera).to_array().tolist() != ROIS[f"me_{camera}"]


def test_lightning_pose_tables_are_told_by_name():
    assert is_lightning_pose("_ibl_leftCamera.lightningPose.pqt")
    assert not is_lightning_pose("_ibl_leftCamera.dlc.pqt")


def test_queue_runs_every_stage_after_lightning_pose(tmp_path, monkeypatch):
    """A queued session whose Lightning Pose tables exist (kept: no network runs) gets IBL's PostLP, LpQC and
    motion energy from them, as ibllib gives on the same tables."""
    from iblvideo import run_queue
    from iblvideo.sessions.queue import Queue

    monkeypatch.setenv("HOME", str(tmp_path))  # ONE looks for its configuration there: none
    session = tmp_path / "data" / "lp_tracked" / "2024-01-01" / "001"
    shutil.copytree(inputs.LP_TRACKED_SESSION, session)
    queue = Queue(tmp_path / "queue.sqlite")
    queue.add([str(session)])
    [outcome] = run_queue(n_sessions=1, db=queue, tracker="lightning-pose")
    assert outcome.status == "Complete", outcome.error
    paths = SessionPaths(session)
    assert_same(np.load(paths.session_file(LICKS)), np.load(REF / "lp_tracked_licks.npy"))
    theirs = pd.read_parquet(REF / "lp_tracked_left_features.pqt")
    ours = pd.read_parquet(paths.features("left"))
    for column in theirs.columns:
        assert_same(ours[column], theirs[column])
    report = json.loads(paths.session_file(QC_REPORT).read_text())
    assert {c: r["outcome"] for c, r in report["cameras"].items()} == {"left": "FAIL", "body": "PASS"}
    assert report["cameras"]["left"]["outcome"] == REFERENCE_QC["lp_tracked"]["left"]["outcome"]
    for camera in ("left", "body"):
        assert np.load(paths.motion_energy(camera)[1]).tolist() == ROIS[f"tracked_{camera}"]
        np.testing.assert_array_equal(np.load(paths.motion_energy(camera)[0]), np.load(REF / f"lp_motion_energy_tracked_{camera}.npy"))
