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
from iblvideo.tracking.eks import FIELDS
from iblvideo.tracking.lp_networks import V2_2, networks_dir
from lp_network_set import write_network_set

SIZE = (64, 64)  # network input: ResNet-50 is slow on two cores
PUPIL = ("pupil_top_r", "pupil_right_r", "pupil_bottom_r", "pupil_left_r")
SET = (  # lp_network_set.Member: folder name, model type, keypoints, head gain
    ("roi_detect-0", "heatmap", ("pupil_top_r", "nose_tip", "tube_top", "tube_bottom"), 3.0),
    ("eye-mic-0", "heatmap", PUPIL, 0.15),
    ("eye-mic-1", "heatmap", PUPIL, 0.15),
    ("nose_tip-0", "heatmap", ("nose_tip",), 0.15),
    ("tongue-mic-0", "heatmap", ("tongue_end_r", "tongue_end_l", "tube_top", "tube_bottom"), 0.15),
    ("paw2-mic-0", "heatmap_mhcrnn", ("paw_r", "paw_l"), 0.15),
    ("paw2-mic-1", "heatmap_mhcrnn", ("paw_r", "paw_l"), 0.15),
    ("tail-mic-0", "heatmap_mhcrnn", ("tail_start",), 0.15),
)
TONGUE = ("tongue_end_r", "tongue_end_l", "tube_top", "tube_bottom")


@pytest.fixture(scope="module")
def networks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_network_set(tmp_path_factory.mktemp("sets") / "networks_v2.2", SET, SIZE)


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize_session(tmp_path_factory.mktemp("lp"), cameras=("left", "body"), seconds=0.2, seed=3)


@pytest.fixture(scope="module")
def tracked(networks: Path, session: Path) -> Path:
    from iblvideo import lightning_pose

    return lightning_pose(session / "raw_video_data" / "_iblrig_leftCamera.raw.mp4", networks=networks)


def test_writes_ibl_table(tracked: Path) -> None:
    """IBL's table: nose tip, eye, paws, tongue, every keypoint of each network in its own order;
    ensembles (eye, paws) with IBL's smoothing columns, lone networks with their own output."""
    assert tracked.name == "_ibl_leftCamera.lightningPose.pqt" and tracked.parent.name == "alf"
    table = pd.read_parquet(tracked)
    assert len(table) == 12
    pupil = ("pupil_top_r", "pupil_bottom_r", "pupil_right_r", "pupil_left_r")  # the pupil smoother's order
    expected = [f"nose_tip_{f}" for f in ("x", "y", "likelihood")] + [f"{p}_{f}" for p in pupil + ("paw_r", "paw_l") for f in FIELDS] \
        + [f"{p}_{f}" for p in TONGUE for f in ("x", "y", "likelihood")]
    assert list(table.columns) == expected
    xy = table[[c for c in table.columns if c.endswith(("_x", "_y"))]].to_numpy()
    assert np.isfinite(xy).all()
    assert ((xy >= -1) & (xy <= 1280)).all()
    likelihood = table[[c for c in table.columns if c.endswith("_likelihood")]].to_numpy()
    assert ((likelihood >= 0) & (likelihood <= 1)).all()


def test_body_camera_whole_frame(networks: Path, session: Path) -> None:
    """The tail network sees the whole frame, as in IBL's pipeline (its 220×220 window is never cut): no ROI network runs."""
    from iblvideo import lightning_pose

    out = lightning_pose(session / "raw_video_data" / "_iblrig_bodyCamera.raw.mp4", networks=networks)
    table = pd.read_parquet(out)
    assert len(table) == 6
    assert list(table.columns) == ["tail_start_x", "tail_start_y", "tail_start_likelihood"]
    assert np.isfinite(table.to_numpy()).all()
    metadata = table_metadata(out)
    assert metadata["crop_windows_whxy"] == {"tail_start": [640.0, 512.0, 0.0, 0.0]} and metadata["roi_network"] is None


def test_metadata_names_every_member(tracked: Path) -> None:
    metadata = table_metadata(tracked)
    assert metadata["tracker"] == "lightning-pose"
    assert metadata["ensembles"]["paws"] == ["paw2-mic-0", "paw2-mic-1"]
    assert metadata["ensembles"]["eye"] == ["eye-mic-0", "eye-mic-1"]
    assert set(metadata["crop_windows_whxy"]) == {"eye", "nose_tip", "tongue", "paws"}
    assert metadata["network_set"] == "networks_v2.2" and metadata["mode"] == "corrected" and metadata["eks"] == "3.0.0"


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
    nose, eye = V2_2.side[1], V2_2.side[2]
    assert [p.name for p in V2_2.members(root, nose)] == ["nose_tip-0"]
    with pytest.raises(IblVideoError, match="eye-mic"):
        V2_2.members(root, eye)


def test_modes_and_roi_sampling_from_the_command_line(networks: Path, session: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """``--ibl-exact`` and ``--roi-sampling fast`` reach the tracker and its metadata; for our own networks they are refused in one line
    (``--ibl-exact`` is IBL's DeepLabCut sets' too)."""
    video = tmp_path / "_iblrig_leftCamera.raw.mp4"
    video.write_bytes((session / "raw_video_data" / "_iblrig_leftCamera.raw.mp4").read_bytes())
    assert main(["dlc", "--tracker", "lightning-pose", "--weights", str(networks), "--ibl-exact", "--roi-sampling", "fast", str(video)]) == 0
    out = Path(capsys.readouterr().out.strip())
    metadata = table_metadata(out)
    assert (metadata["mode"], metadata["roi_sampling"]) == ("ibl-exact", "fast")
    assert len(pd.read_parquet(out)) == 12
    assert main(["dlc", "--roi-sampling", "fast", "--force", str(video)]) == 2
    assert capsys.readouterr().err.strip() == "iblvideo: error: --roi-sampling: for --tracker lightning-pose only"
    assert main(["dlc", "--ibl-exact", "--weights", "demo", "--force", str(video)]) == 2
    assert capsys.readouterr().err.strip() == "iblvideo: error: --ibl-exact is for IBL's own weights sets, not ours"
