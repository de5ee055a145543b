"""Tracking the IBL keypoints with the shipped demo weights, on a synthetic session they never saw."""
from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys

import pandas as pd
import pytest
import torch

from iblvideo import dlc
from iblvideo.cameras import CAMERAS
from iblvideo.errors import IblVideoError
from iblvideo.io.alf import raw_video_path
from iblvideo.io.session_files import table_metadata
from iblvideo.synth import synthesize_session
from iblvideo.synth.scoring import score_tracks
from iblvideo.tracking.weights import demo_weights_dir

TEST_SEED = 8  # the demo weights were trained on seeds 101-106


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    return synthesize_session(tmp_path_factory.mktemp("tracking"), seconds=6.0, seed=TEST_SEED)


@pytest.fixture(scope="module")
def tracked(session):
    return {name: dlc(raw_video_path(session, name)) for name in ("left", "right", "body")}


TARGETS = {"median_px": 2.0, "confident_when_visible": 0.95, "doubtful_when_absent": 0.95}


@pytest.mark.parametrize("name", ["left", "right", "body"])
def test_accuracy_against_ground_truth(session, tracked, name):
    out = tracked[name]
    assert out == session / "alf" / f"_ibl_{name}Camera.dlc.pqt"
    assert list(pd.read_parquet(out).columns) == [f"{p}_{c}" for p in CAMERAS[name].points for c in ("x", "y", "likelihood")]
    score = score_tracks(session, name)  # also checks one row per decoded frame
    assert (score["visible"] >= 10).sum() >= len(score) - 2, f"too few visible frames to judge:\n{score}"
    for point, row in score.iterrows():
        if row["visible"] >= 10:
            assert row["median_px"] <= TARGETS["median_px"], (point, row.to_dict())
            assert row["confident_when_visible"] >= TARGETS["confident_when_visible"], (point, row.to_dict())
        if row["absent"]:  # every frame counts: a point hidden 4 times meets the target only with all 4
            assert row["doubtful_when_absent"] >= TARGETS["doubtful_when_absent"], (point, row.to_dict())


def test_metadata_names_versions_and_windows(tracked):
    meta = table_metadata(tracked["left"])
    assert meta["weights"] == json.loads((demo_weights_dir() / "manifest.json").read_text())["name"]
    assert meta["iblvideo_version"] and set(meta["crop_windows_whxy"]) == {"eye", "nose_tip", "tongue", "paws"}


def test_existing_output_is_kept_unless_forced(session, tracked):
    out = tracked["body"]
    before = out.stat().st_mtime_ns
    assert dlc(raw_video_path(session, "body")) == out and out.stat().st_mtime_ns == before
    dlc(raw_video_path(session, "body"), force=True)
    assert out.stat().st_mtime_ns != before


def test_video_outside_a_session_writes_beside_it(session, tracked, tmp_path):
    video = shutil.copy(raw_video_path(session, "body"), tmp_path / "clip.mp4")
    out = dlc(video, camera="body")
    assert out == tmp_path / "clip._ibl_bodyCamera.dlc.pqt"
    pd.testing.assert_frame_equal(pd.read_parquet(out), pd.read_parquet(tracked["body"]))  # deterministic


def test_bad_weights_leave_no_output(session, tmp_path):
    video = shutil.copy(raw_video_path(session, "body"), tmp_path / "_iblrig_bodyCamera.raw.mp4")
    broken = shutil.copytree(demo_weights_dir(), tmp_path / "weights")
    model = next(broken.rglob("model.safetensors"))
    model.write_bytes(model.read_bytes()[:-10])
    with pytest.raises(IblVideoError, match="checksum mismatch"):
        dlc(video, weights=broken)
    with pytest.raises(IblVideoError, match="weights folder not found"):
        dlc(video, weights=tmp_path / "nope")
    assert not list(tmp_path.glob("*.pqt"))


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "iblvideo", "dlc", *map(str, args)], capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("name, problem", [("text", "not a readable video"), ("truncated", "truncated"), ("zero", "no video frames")])
def test_cli_bad_videos(videos, name, problem):
    result = run_cli(videos[name], "--camera", "left")
    assert result.returncode == 2 and problem in result.stderr and result.stderr.count("\n") == 1
    assert not list(videos[name].parent.glob("*.dlc.pqt"))


def test_cli_unknown_camera(videos):
    result = run_cli(videos["unknown_size"])
    assert result.returncode == 2 and "pass --camera" in result.stderr


def test_killed_mid_run_leaves_nothing_and_a_rerun_completes(session, tmp_path):
    folder = tmp_path / "s" / "2026-01-01" / "001"
    video = raw_video_path(folder, "right")
    video.parent.mkdir(parents=True)
    shutil.copy(raw_video_path(session, "right"), video)
    child = subprocess.Popen([sys.executable, "-m", "iblvideo", "dlc", str(video)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # killed as soon as the pass has begun: the whole pass (over half a second for 900 frames) still lies
    # between this line and the output, so the kill cannot come too late however fast the machine
    for line in child.stderr:
        if b"tracking 900 frames" in line:
            break
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL
    assert not list(folder.rglob("*.dlc.pqt"))
    result = run_cli(video, "--quiet")
    assert result.returncode == 0 and result.stdout.strip() == str(folder / "alf" / "_ibl_rightCamera.dlc.pqt")
    assert len(pd.read_parquet(result.stdout.strip())) == 900


def test_batches_side_by_side_give_the_same_tracks_as_in_turn(session):
    """Batches tracked side by side, a thread each (the default on a CPU), change nothing in the output, bit for bit."""
    from iblvideo.tracking.cascade import run_pass
    from iblvideo.tracking.pose_networks import PoseNetworkTracker
    from iblvideo.tracking.weights import load_weights
    from iblvideo.video.reader import VideoReader

    tracker = PoseNetworkTracker(load_weights("demo"), CAMERAS["left"])
    threads = torch.get_num_threads()
    tables = []
    with VideoReader(raw_video_path(session, "left")) as reader:
        placed = tracker.place(reader)
        for n in (1, 2):
            torch.set_num_threads(n)
            try:
                tables.append(run_pass(reader, placed, batch_size=32).to_frame())
            finally:
                torch.set_num_threads(threads)
    pd.testing.assert_frame_equal(tables[0], tables[1], check_exact=True)


def test_weights_without_a_fine_paws_network_keep_the_whole_frame_paws(session, tracked, tmp_path):
    weights = shutil.copytree(demo_weights_dir(), tmp_path / "weights")
    manifest = json.loads((weights / "manifest.json").read_text())
    assert "paws_fine" in manifest["networks"], "the demo weights refine the paws"
    del manifest["networks"]["paws_fine"]
    (weights / "manifest.json").write_text(json.dumps(manifest))
    video = shutil.copy(raw_video_path(session, "right"), tmp_path / "_iblrig_rightCamera.raw.mp4")
    coarse, fine = pd.read_parquet(dlc(video, weights=weights)), pd.read_parquet(tracked["right"])
    paws = [c for c in fine.columns if c.startswith("paw_")]
    others = [c for c in fine.columns if c not in paws]
    pd.testing.assert_frame_equal(coarse[others], fine[others], check_exact=True)
    assert not coarse[paws].equals(fine[paws])


def test_the_roi_sample_sits_at_keyframes_and_is_bounded():
    from iblvideo.tracking.cascade import n_samples, sample_indices

    keyframes = list(range(0, 36000, 250))  # 10 min at 60 Hz, a keyframe every 250 frames
    sample = sample_indices(36000, 60.0, keyframes)
    assert len(sample) == n_samples(36000, 60.0) == 100
    assert set(sample) <= set(keyframes) and sample.min() == 0 and sample.max() == keyframes[-1]
    dense = sample_indices(36000, 60.0, list(range(0, 36000, 300)[:99]))  # 99 keyframes for 100 frames
    assert len(dense) == 100 and all(f % 300 in (0, 1) for f in dense)
    few = sample_indices(600, 60.0, [0])  # one keyframe: a tenth of a second after it, the rest spread evenly
    assert len(few) == 20 and few.max() == 599 and set(range(6)) <= set(few)
