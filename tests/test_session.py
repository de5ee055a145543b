"""run_session on synthetic sessions through ONE's real local mode."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from one.api import One

from iblvideo import run_session
from iblvideo.cli import main
from iblvideo.io.alf import LICK_EVENTS, LICKS, SessionPaths, raw_video_path, sniffs_name, speeds_name
from iblvideo.io.session_files import read_pose
from iblvideo.measures.motion_energy import Roi, compute_motion_energy, roi_from_pose
from iblvideo.synth import synthesize_session
from iblvideo.video.reader import VideoReader, probe
from session_data import copy_session, rendered_session

CAMERA_OUTPUTS = {
    "left": ("_ibl_leftCamera.dlc.pqt", "leftCamera.ROIMotionEnergy.npy", "leftROIMotionEnergy.position.npy",
             "_ibl_leftCamera.features.pqt", sniffs_name("left"), speeds_name("left")),
    "body": ("_ibl_bodyCamera.dlc.pqt", "bodyCamera.ROIMotionEnergy.npy", "bodyROIMotionEnergy.position.npy"),
}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    return rendered_session(tmp_path_factory)


def test_session_outputs_are_written_and_loadable_through_one(rendered, tmp_path):
    session = copy_session(rendered, tmp_path, "mouse_a")
    result = run_session(session, tracker="truth")

    assert result.status == "Complete", result.error
    assert set(result.cameras) == {"left", "body"}
    for camera, names in CAMERA_OUTPUTS.items():
        assert sorted(p.name for p in result.cameras[camera].outputs) == sorted(names)
        assert result.cameras[camera].seconds > 0
    assert {p.name for p in result.outputs} == {LICKS, LICK_EVENTS, "_iblvideo_dlc.qc.json"}
    assert result.qc in ("PASS", "WARNING", "FAIL", "CRITICAL")

    one = One(cache_dir=tmp_path, mode="local")  # a fresh ONE reads the updated tables from disk
    assert str(one.path2eid(session)) == result.eid
    left = one.load_object(result.eid, "leftCamera", collection="alf")
    assert {"dlc", "ROIMotionEnergy", "features", "times"} <= set(left)
    assert len(left["ROIMotionEnergy"]) == len(left["dlc"]) == len(left["times"])
    body = one.load_object(result.eid, "bodyCamera", collection="alf")
    np.testing.assert_array_equal(body["ROIMotionEnergy"], np.load(session / "alf" / "bodyCamera.ROIMotionEnergy.npy"))

    # a session added to the folder after its tables were built joins them; earlier eids stay as they were
    later = copy_session(rendered, tmp_path, "mouse_a2")
    added = run_session(later, cameras=("body",), tracker="truth")
    one = One(cache_dir=tmp_path, mode="local")
    assert str(one.path2eid(later)) == added.eid != result.eid and str(one.path2eid(session)) == result.eid
    assert "ROIMotionEnergy" in one.load_object(added.eid, "bodyCamera", collection="alf")

    # by eid, with the ONE given; existing pose tables are kept, the rest recomputed and re-registered
    again = run_session(result.eid, one=one, cameras=("body",), tracker="truth")
    assert again.status == "Complete" and list(again.cameras) == ["body"]
    assert again.session == session and again.eid == result.eid


def test_a_bad_camera_fails_alone_with_its_reason(rendered, tmp_path):
    session = copy_session(rendered, tmp_path, "mouse_b")
    body = session / "raw_video_data" / "_iblrig_bodyCamera.raw.mp4"
    body.write_bytes(body.read_bytes()[: body.stat().st_size // 3])  # cut short: corrupt

    result = run_session(session, cameras=("left", "right", "body"), tracker="truth")

    assert result.status == "Errored"
    assert result.cameras["left"].status == "Complete"
    assert result.cameras["right"].status == "Errored" and "no such file" in result.cameras["right"].error
    assert result.cameras["body"].status == "Errored" and body.name in result.cameras["body"].error
    assert not (session / "alf" / "_ibl_bodyCamera.dlc.pqt").exists()  # nothing written for a failed camera
    assert "right camera:" in result.error and "body camera:" in result.error
    left = One(cache_dir=tmp_path, mode="local").load_object(result.eid, "leftCamera", collection="alf")
    assert "ROIMotionEnergy" in left


def test_session_without_videos_is_empty(rendered, tmp_path):
    session = copy_session(rendered, tmp_path, "mouse_c")
    for video in (session / "raw_video_data").iterdir():
        video.unlink()
    empty = session / "raw_video_data" / "_iblrig_leftCamera.raw.mp4"
    result = run_session(session, tracker="truth")
    assert result.status == "Empty" and result.cameras == {}

    empty.write_bytes(b"")  # an empty file is a camera that fails, not a session without video
    result = run_session(session, tracker="truth")
    assert result.status == "Errored" and "empty file" in result.cameras["left"].error


def test_cli_prints_the_summary_and_exits_by_status(rendered, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # ONE looks for its configuration there: none
    session = copy_session(rendered, tmp_path, "mouse_d")
    assert main(["-q", "session", str(session), "--tracker", "truth", "--cameras", "body"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["status"] == "Complete" and summary["cameras"]["body"]["status"] == "Complete"

    assert main(["-q", "session", str(tmp_path / "nowhere")]) == 2
    assert f"{tmp_path / 'nowhere'}: no such session folder" in capsys.readouterr().err


@pytest.fixture(scope="module")
def unseen(tmp_path_factory) -> Path:
    """6 s of a session the demo weights never saw: the ROI network samples about one frame per keyframe."""
    return synthesize_session(tmp_path_factory.mktemp("full"), cameras=("left", "body"), seconds=6.0, seed=7)


@pytest.fixture
def decoded(monkeypatch) -> tuple[Counter, Counter]:
    """Frames each video yields in decode passes (``VideoReader.frames``, under ``batches`` too), and how
    often each is sampled (``VideoReader.sample``), counted on the real reader as it decodes."""
    passes, samples = Counter(), Counter()
    frames, sample = VideoReader.frames, VideoReader.sample

    def counted_frames(self, *args, **kwargs):
        for item in frames(self, *args, **kwargs):
            passes[self.path.name] += 1
            yield item

    def counted_sample(self, *args, **kwargs):
        samples[self.path.name] += 1
        yield from sample(self, *args, **kwargs)

    monkeypatch.setattr(VideoReader, "frames", counted_frames)
    monkeypatch.setattr(VideoReader, "sample", counted_sample)
    return passes, samples


def test_full_session_with_the_demo_weights(unseen, decoded):
    passes, samples = decoded
    result = run_session(unseen, weights="demo", device="cpu")

    assert result.status == "Complete", result.error
    assert all(c.status == "Complete" for c in result.cameras.values()) and result.qc
    one = One(cache_dir=unseen.parents[2], mode="local")
    left = one.load_object(result.eid, "leftCamera", collection="alf")
    assert {"dlc", "ROIMotionEnergy", "features", "times"} <= set(left)
    assert len(left["dlc"]) == len(left["times"]) == len(left["ROIMotionEnergy"]) == len(left["features"])
    assert np.isfinite(left["ROIMotionEnergy"]).all()
    truth = pd.read_parquet(SessionPaths(unseen).truth_pose("body"))
    tracked = pd.read_parquet(unseen / "alf" / "_ibl_bodyCamera.dlc.pqt")
    error = np.hypot(truth["tail_start_x"] - tracked["tail_start_x"], truth["tail_start_y"] - tracked["tail_start_y"])
    assert np.nanmedian(error) < 5.0  # pixels: the cascade's coordinates came back to the camera's frame

    # tracking and motion energy shared one decode pass per video, and the sampled frames were decoded once
    videos = {camera: raw_video_path(unseen, camera) for camera in result.cameras}
    assert passes == {video.name: probe(video).n_frames for video in videos.values()}
    assert samples == {video.name: 1 for video in videos.values()}
    for camera, video in videos.items():
        energy_path, roi_path = SessionPaths(unseen).motion_energy(camera)
        roi = Roi(*(int(v) for v in np.load(roi_path)))
        energy = np.load(energy_path)
        # the same numbers as the standalone computation in that ROI, batched differently
        np.testing.assert_array_equal(energy, compute_motion_energy(video, roi, batch_size=37))
        # the ROI placed from the sampled frames' tracks is close to IBL's, from the final tracks
        ibl = roi_from_pose(read_pose(unseen / "alf" / f"_ibl_{camera}Camera.dlc.pqt"), camera)
        assert np.abs(roi.to_array() - ibl.to_array()).max() <= 3, (camera, roi, ibl)
        assert np.corrcoef(energy, compute_motion_energy(video, ibl))[0, 1] > 0.99

    # pose tables kept (no force): motion energy from the final tracks with IBL's exact ROI, still one pass
    passes.clear()
    samples.clear()
    poses = {camera: unseen / "alf" / f"_ibl_{camera}Camera.dlc.pqt" for camera in videos}
    written = {camera: path.stat().st_mtime_ns for camera, path in poses.items()}
    again = run_session(unseen, weights="demo", device="cpu")
    assert again.status == "Complete", again.error
    assert {camera: path.stat().st_mtime_ns for camera, path in poses.items()} == written
    assert passes == {video.name: probe(video).n_frames for video in videos.values()} and not samples
    for camera in videos:
        ibl = roi_from_pose(read_pose(poses[camera]), camera)
        assert np.load(SessionPaths(unseen).motion_energy(camera)[1]).tolist() == ibl.to_array().tolist()


def test_a_tracker_failure_fails_its_camera_and_writes_nothing(rendered, tmp_path):
    session = copy_session(rendered, tmp_path, "mouse_w")
    result = run_session(session, cameras=("body",), weights=tmp_path / "no-weights-here")
    assert result.status == "Errored" and "no-weights-here" in result.cameras["body"].error
    assert not list((session / "alf").glob("_ibl_bodyCamera.dlc.pqt")) and result.qc is None
