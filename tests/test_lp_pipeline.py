"""IBL's cascade with Lightning Pose ensembles, end to end on a synthetic session.

The network set is built here: Lightning Pose model folders written by our code, with seeded weights
(the ROI network's made near-certain so that it places every window). What is checked is the
plumbing: every member runs, each ensemble is smoothed the way its role asks, and the table, its
metadata, the command line and the download all work. The numbers themselves are covered by
test_lp_model.py (networks) and test_eks.py (smoothers).
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from http_server import FileServer, zip_folder
from iblvideo.cli import main
from iblvideo.errors import IblVideoError
from iblvideo.io.session_files import table_metadata
from iblvideo.synth import synthesize_session
from iblvideo.tracking.crops import View, Window
from iblvideo.tracking.eks import FIELDS
from iblvideo.tracking.lightning_pose import to_camera
from iblvideo.tracking.lp_networks import member_dirs, networks_dir
from lp_network_set import write_network_set

SIZE = (64, 64)  # network input: ResNet-50 is slow on two cores
PUPIL = ("pupil_top_r", "pupil_right_r", "pupil_bottom_r", "pupil_left_r")
SET = (  # lp_network_set.Member: folder name, model type, keypoints, head gain
    ("roi_detect-0", "heatmap", ("pupil_top_r", "nose_tip", "tube_top", "tube_bottom"), 3.0),
    ("eye-mic-0", "heatmap", PUPIL, 0.15),
    ("eye-mic-1", "heatmap", PUPIL, 0.15),
    ("nose_tip-0", "heatmap", ("nose_tip",), 0.15),
    ("tongue-mic-0", "heatmap", ("tongue_end_l", "tongue_end_r"), 0.15),
    ("paw2-mic-0", "heatmap_mhcrnn", ("paw_r", "paw_l"), 0.15),
    ("paw2-mic-1", "heatmap_mhcrnn", ("paw_r", "paw_l"), 0.15),
    # the body camera's ROI network is its tail ensemble: certain, so that it places the window
    ("tail-mic-0", "heatmap_mhcrnn", ("tail_start",), 3.0),
    ("tail-mic-1", "heatmap_mhcrnn", ("tail_start",), 3.0),
)


@pytest.fixture(scope="module")
def networks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_network_set(tmp_path_factory.mktemp("networks_v2.2"), SET, SIZE)


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize_session(tmp_path_factory.mktemp("lp"), cameras=("left", "body"), seconds=0.2, seed=3)


@pytest.fixture(scope="module")
def tracked(networks: Path, session: Path) -> Path:
    from iblvideo import lightning_pose

    return lightning_pose(session / "raw_video_data" / "_iblrig_leftCamera.raw.mp4", networks=networks)


def test_writes_ibl_table(tracked: Path) -> None:
    assert tracked.name == "_ibl_leftCamera.lightningPose.pqt" and tracked.parent.name == "alf"
    table = pd.read_parquet(tracked)
    assert len(table) == 12
    # ensembles (eye, paws) keep IBL's smoothing columns, lone networks (nose, tongue) their own output
    for point in PUPIL + ("paw_r", "paw_l"):
        assert [f"{point}_{f}" for f in FIELDS] == [c for c in table.columns if c.startswith(point + "_")]
    for point in ("nose_tip", "tongue_end_l", "tongue_end_r"):
        assert [c for c in table.columns if c.startswith(point + "_")] == [f"{point}_x", f"{point}_y", f"{point}_likelihood"]
    xy = table[[c for c in table.columns if c.endswith(("_x", "_y"))]].to_numpy()
    assert np.isfinite(xy).all()
    assert ((xy >= -1) & (xy <= 1280)).all()


def test_body_camera_tail_ensemble(networks: Path, session: Path) -> None:
    """Six frames at 30 Hz in one GOP: the ROI network gets one sampled frame and reads it on its own; the tail ensemble is smoothed."""
    from iblvideo import lightning_pose

    table = pd.read_parquet(lightning_pose(session / "raw_video_data" / "_iblrig_bodyCamera.raw.mp4", networks=networks))
    assert len(table) == 6
    assert list(table.columns) == [f"tail_start_{f}" for f in FIELDS]
    assert np.isfinite(table.to_numpy()).all()


def test_ensembles_on_the_sampled_frames(networks: Path, session: Path) -> None:
    """What motion energy in the tracking pass asks of a cascade: the networks tracking some points, on the
    frames the ROI network sampled (12 frames: read as one sequence), each ensemble's median, by frame."""
    from iblvideo.tracking.cascade import place_windows, sample, track_sample
    from iblvideo.tracking.lightning_pose import build
    from iblvideo.video.reader import VideoReader

    video = session / "raw_video_data" / "_iblrig_leftCamera.raw.mp4"
    with VideoReader(video) as reader:
        tracker = build(reader.info.camera(), reader, networks, "cpu")
        sampled = sample(reader)
        windows = place_windows(tracker, sampled, reader)
        table = track_sample(tracker, sampled, windows, points=("nose_tip", "pupil_top_r")).to_frame()
    assert list(table.index) == list(sampled.indices) == list(range(12))
    assert list(table.columns) == [f"{p}_{f}" for p in PUPIL + ("nose_tip",) for f in ("x", "y", "likelihood")]
    assert np.isfinite(table.to_numpy()).all()
    w, h, left, top = windows["nose_tip"].as_whxy()  # the left camera's pixels are canonical
    assert table["nose_tip_x"].between(left - 1, left + w).all() and table["nose_tip_y"].between(top - 1, top + h).all()


def test_metadata_names_every_member(tracked: Path) -> None:
    metadata = table_metadata(tracked)
    assert metadata["tracker"] == "lightning-pose"
    assert metadata["ensembles"]["paws"] == ["paw2-mic-0", "paw2-mic-1"]
    assert metadata["ensembles"]["eye"] == ["eye-mic-0", "eye-mic-1"]
    assert set(metadata["crop_windows_whxy"]) == {"eye", "nose_tip", "tongue", "paws"}


def test_paw_posterior_variance_is_inflated(tracked: Path) -> None:
    """IBL scales the paw ensembles' posterior variance ×100: above the ensemble variance it started from."""
    table = pd.read_parquet(tracked)
    assert (table["paw_r_x_posterior_var"] > table["paw_r_x_ens_var"].clip(upper=1e3)).mean() > 0.5


def test_cli_tracker_option(tracked: Path, networks: Path, capsys: pytest.CaptureFixture) -> None:
    video = tracked.parents[1] / "raw_video_data" / "_iblrig_leftCamera.raw.mp4"
    before = tracked.stat().st_mtime_ns
    assert main(["dlc", "--tracker", "lightning-pose", "--weights", str(networks), str(video)]) == 0
    assert capsys.readouterr().out.strip() == str(tracked)
    assert tracked.stat().st_mtime_ns == before  # kept: no --force


def test_to_camera_follows_lightning_pose_pixels() -> None:
    """x_model · crop_w / w is the crop pixel, on the left camera and on the flipped, halved right camera."""
    xy = np.array([[[32.0, 16.0]]])
    left = to_camera(xy, View(1280, 1024), Window(100, 100, 200, 300), (64, 64))
    np.testing.assert_allclose(left, [[[200 + 32 * 100 / 64, 300 + 16 * 100 / 64]]])
    right = to_camera(xy, View(640, 512, scale=2.0, flip=True), Window(100, 100, 200, 300), (64, 64))
    # the window is 50 camera pixels wide, flipped: its left edge is camera pixel 639 - 100
    np.testing.assert_allclose(right, [[[639 - 100 - 32 * 50 / 64, 150 + 16 * 50 / 64]]])


def test_networks_download_from_a_setting(networks: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IBLVIDEO_CACHE", str(tmp_path / "cache"))
    small = tmp_path / "set"
    (small / "nose_tip-0").mkdir(parents=True)
    (small / "nose_tip-0" / "config.yaml").write_text("model: {}\n")
    data = zip_folder(small, "networks_v2.2")
    with FileServer({"networks_v2.2.zip": data}) as server:
        monkeypatch.setenv("IBLVIDEO_LP_NETWORKS", server.url("networks_v2.2.zip"))
        monkeypatch.setenv("IBLVIDEO_LP_NETWORKS_SHA256", hashlib.sha256(data).hexdigest())
        root = networks_dir()
        assert networks_dir() == root  # cached: one download
        assert len(server.requests) == 1
    assert root.name == "networks_v2.2"
    assert [p.name for p in member_dirs(root, "nose_tip")] == ["nose_tip-0"]
    with pytest.raises(IblVideoError, match="eye-mic"):
        member_dirs(root, "eye")
