"""Pose tables written in each format load back, in pandas and in the movement package's readers."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from movement.io import load_poses

from iblvideo.errors import IblVideoError
from iblvideo.io.pose_formats import DLC_HDF_KEY, LP_SCORER, default_path, dlc_scorer, write_poses
from iblvideo.tracks import PoseTracks

KEYPOINTS = ("nose", "paw_l", "paw_r")


@pytest.fixture
def poses() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return (rng.random((7, 3, 2)) * 300).astype(np.float32), rng.random((7, 3)).astype(np.float32)


def assert_movement_matches(dataset, xy: np.ndarray, likelihood: np.ndarray) -> None:
    """movement's (time, space, keypoints, individuals) arrays hold what was written."""
    assert list(dataset.keypoints.values) == list(KEYPOINTS)
    np.testing.assert_allclose(dataset.position.values[..., 0].transpose(0, 2, 1), xy, rtol=1e-6)
    np.testing.assert_allclose(dataset.confidence.values[..., 0], likelihood, rtol=1e-6)


def test_pqt(tmp_path, poses):
    table = pd.read_parquet(write_poses(tmp_path / "p.pqt", "pqt", PoseTracks(KEYPOINTS, *poses), scorer="s"))
    assert list(table.columns[:3]) == ["nose_x", "nose_y", "nose_likelihood"] and len(table) == 7
    np.testing.assert_array_equal(table["paw_r_y"], poses[0][:, 2, 1])
    np.testing.assert_array_equal(table["paw_l_likelihood"], poses[1][:, 1])


def test_dlc_h5(tmp_path, poses):
    path = write_poses(tmp_path / "p.h5", "dlc-h5", PoseTracks(KEYPOINTS, *poses), scorer="iblvideo_resnet50")
    table = pd.read_hdf(path, DLC_HDF_KEY)
    assert list(table.columns.names) == ["scorer", "bodyparts", "coords"]
    assert set(table.dtypes) == {np.dtype("float64")}  # as DeepLabCut writes, from float32 tracks
    np.testing.assert_array_equal(table[("iblvideo_resnet50", "paw_l", "x")], poses[0][:, 1, 0])
    assert_movement_matches(load_poses.from_dlc_file(path), *poses)


def test_dlc_csv(tmp_path, poses):
    path = write_poses(tmp_path / "p.csv", "dlc-csv", PoseTracks(KEYPOINTS, *poses), scorer="iblvideo_resnet50")
    assert path.read_text().splitlines()[0].startswith("scorer,iblvideo_resnet50")
    assert_movement_matches(load_poses.from_dlc_file(path), *poses)


def test_lp_csv(tmp_path, poses):
    path = write_poses(tmp_path / "p.csv", "lp-csv", PoseTracks(KEYPOINTS, *poses), scorer="ignored")
    assert path.read_text().splitlines()[0].startswith(f"scorer,{LP_SCORER}")
    assert_movement_matches(load_poses.from_lp_file(path), *poses)


def test_default_paths_are_each_tools_own(tmp_path):
    """DeepLabCut names a video's analysis <video stem><scorer>.h5 (and .csv), Lightning Pose <video stem>.csv."""
    scorer = dlc_scorer("resnet_50", "iblvideo_model.v1", 20)
    assert scorer == "DLC_Resnet50_iblvideomodel-v1shuffle1_snapshot_20"
    names = {default_path(tmp_path / "video.mp4", fmt, scorer).name for fmt in ("pqt", "dlc-h5", "dlc-csv", "lp-csv")}
    assert names == {"video.pose.pqt", f"video{scorer}.h5", f"video{scorer}.csv", "video.csv"}


def test_unknown_format(tmp_path, poses):
    with pytest.raises(IblVideoError, match="unknown pose format 'json'"):
        write_poses(tmp_path / "p.json", "json", PoseTracks(KEYPOINTS, *poses), scorer="s")
    assert not list(tmp_path.iterdir())
