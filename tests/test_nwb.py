"""NWB export with ndx-pose, read back with pynwb."""
from __future__ import annotations

import datetime as dt
import shutil

import numpy as np
import pandas as pd
from pynwb import NWBHDF5IO

from iblvideo.cli import main
from iblvideo.io.session_files import write_table
from iblvideo.results.load import load_session

TRACKED = {"weights": "weights_v9.9", "weights_version": "9.9", "weights_description": "demo nets", "iblvideo_version": "0.0.test"}


def test_nwb_round_trips_every_point(session_with_truth_as_pose, tmp_path):
    session = tmp_path / "synth_mouse_2" / "2026-01-01" / "001"
    shutil.copytree(session_with_truth_as_pose / "alf", session / "alf")
    left = session / "alf" / "_ibl_leftCamera.dlc.pqt"
    write_table(pd.read_parquet(left), left, TRACKED)
    assert main(["-q", "export", str(session), "--format", "nwb"]) == 0
    path = session / "sub-synth-mouse-2_ses-2026-01-01-001_pose.nwb"
    results = load_session(session)
    with NWBHDF5IO(path, "r") as io:
        nwbfile = io.read()
        assert nwbfile.session_start_time == dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
        assert nwbfile.subject.subject_id == "synth_mouse_2"
        behavior = nwbfile.processing["behavior"]
        assert set(nwbfile.devices) == {"leftCamera", "rightCamera", "bodyCamera"}
        for name, camera in results.cameras.items():
            estimation = behavior[f"{name}CameraPoseEstimation"]
            assert list(estimation.skeleton.nodes[:]) == camera.points
            assert estimation.device.name == f"{name}Camera"
            assert estimation.source_software == "iblvideo"
            for point in camera.points:
                series = estimation.pose_estimation_series[point]
                np.testing.assert_array_equal(series.data[:], camera.tracks.point_xy(point))
                np.testing.assert_array_equal(series.confidence[:], camera.tracks.point_likelihood(point))
                np.testing.assert_array_equal(series.timestamps[:], camera.times)
                assert series.unit == "pixels"
        left_estimation = behavior["leftCameraPoseEstimation"]
        assert "weights_v9.9 9.9: demo nets" in left_estimation.description
        assert left_estimation.scorer == "weights_v9.9 9.9" and left_estimation.source_software_version == "0.0.test"


def test_nwb_needs_camera_times(session_with_truth_as_pose, tmp_path, capsys):
    session = tmp_path / "mouse" / "2026-01-01" / "001"
    (session / "alf").mkdir(parents=True)
    shutil.copy(session_with_truth_as_pose / "alf" / "_ibl_bodyCamera.dlc.pqt", session / "alf")
    assert main(["-q", "export", str(session), "--out", str(tmp_path / "x.nwb")]) == 2
    assert "body camera: no alf/_ibl_bodyCamera.times.npy" in capsys.readouterr().err
    assert not (tmp_path / "x.nwb").exists()
