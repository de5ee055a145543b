"""Motion energy against upstream iblvideo (run through OpenCV by make_ibllib_reference.py)."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from iblvideo.cli import main
from iblvideo.errors import IblVideoError
from iblvideo.io.alf import SessionPaths
from iblvideo.measures import motion_energy as M
from iblvideo.tracks import PoseTracks
from iblvideo.video.reader import VideoReader
from reference import inputs

ROIS = json.loads((inputs.REFERENCE / "motion_energy_roi.json").read_text())


def pose(camera: str) -> pd.DataFrame:
    return pd.read_parquet(inputs.ME_SESSION / "alf" / f"_ibl_{camera}Camera.dlc.pqt")


def video(camera: str):
    return inputs.ME_SESSION / "raw_video_data" / f"_iblrig_{camera}Camera.raw.mp4"


@pytest.mark.parametrize("name, session, camera", [
    ("me", inputs.ME_SESSION, "left"), ("me", inputs.ME_SESSION, "body"), ("synth", inputs.SYNTH_SESSION, "right"),
])
def test_roi_and_motion_energy_equal_upstream(name, session, camera):
    roi = M.roi_from_pose(PoseTracks.from_frame(pd.read_parquet(session / "alf" / f"_ibl_{camera}Camera.dlc.pqt")), camera)
    assert roi.to_array().tolist() == ROIS[f"{name}_{camera}"]
    energy = M.compute_motion_energy(session / "raw_video_data" / f"_iblrig_{camera}Camera.raw.mp4", roi)
    np.testing.assert_array_equal(energy, np.load(inputs.REFERENCE / f"motion_energy_{name}_{camera}.npy"))


def test_accumulator_does_not_depend_on_batching():
    roi = M.roi_from_pose(PoseTracks.from_frame(pose("left")), "left")
    with VideoReader(video("left")) as reader:
        results = []
        for size in (1, 7, 64):
            accumulator = M.MotionEnergy(roi)
            for first, frames in reader.batches(size):
                accumulator.update(first, frames)
            results.append(accumulator.result())
    assert results[0].shape == (len(reader),)
    for result in results[1:]:
        np.testing.assert_array_equal(result, results[0])


def test_accumulator_definition_and_order():
    frames = np.zeros((3, 4, 4), np.uint8)
    frames[1] = 10
    frames[2, :2] = 10  # half the ROI changes back between frames 1 and 2
    accumulator = M.MotionEnergy(M.Roi(w=4, h=4, x=0, y=0), full_range=True)
    accumulator.update(0, frames[:1])
    accumulator.update(1, frames[1:])
    assert accumulator.result().tolist() == [10.0, 5.0, 5.0]  # energy i is frame i -> i+1, last repeated
    with pytest.raises(ValueError, match="expected frame 3, got 5"):
        accumulator.update(5, frames)
    limited = M.MotionEnergy(M.Roi(w=4, h=4, x=0, y=0))
    limited.update(0, np.stack([np.full((4, 4), 16, np.uint8), np.full((4, 4), 235, np.uint8)]))
    assert limited.result().tolist() == [255.0, 255.0]  # video-range luma stretched as OpenCV does


def test_side_roi_falls_back_to_other_pupil_points():
    table = pose("left")
    table["pupil_top_r_likelihood"] = 0.1
    roi = M.roi_from_pose(PoseTracks.from_frame(table), "left")
    assert roi != M.roi_from_pose(PoseTracks.from_frame(pose("left")), "left") and roi.w > 0


@pytest.mark.parametrize("camera, point", [("left", "nose_tip"), ("body", "tail_start")])
def test_untracked_anchor_is_a_clear_error(camera, point):
    table = pose(camera)
    table[f"{point}_likelihood"] = 0.0
    with pytest.raises(IblVideoError, match="never tracked"):
        M.roi_from_pose(PoseTracks.from_frame(table), camera)


def test_roi_off_the_frame_is_a_clear_error():
    table = pose("body")
    table["tail_start_y"] = 50.0  # y = 50 - 120 < 0
    with pytest.raises(IblVideoError, match="off the frame"):
        M.roi_from_pose(PoseTracks.from_frame(table), "body")


def test_session_command_writes_ibl_named_files(tmp_path, capsys):
    session = tmp_path / "mouse" / "2024-01-01" / "001"
    shutil.copytree(inputs.ME_SESSION, session)
    assert main(["-q", "motion-energy", str(session), "--cameras", "body"]) == 0
    energy, position = SessionPaths(session).motion_energy("body")
    assert energy.name == "bodyCamera.ROIMotionEnergy.npy" and position.name == "bodyROIMotionEnergy.position.npy"
    assert str(energy) in capsys.readouterr().out
    np.testing.assert_array_equal(np.load(energy), np.load(inputs.REFERENCE / "motion_energy_me_body.npy"))
    assert np.load(position).tolist() == ROIS["me_body"]
    assert main(["-q", "motion-energy", str(session), "--cameras", "right"]) == 2
    capsys.readouterr()
    table = pose("body")
    table["tail_start_likelihood"] = 0.0
    table.to_parquet(session / "alf" / "_ibl_bodyCamera.dlc.pqt")
    assert main(["-q", "motion-energy", str(session), "--cameras", "body"]) == 2
    assert "_ibl_bodyCamera.dlc.pqt: body camera: tail_start is never tracked" in capsys.readouterr().err
