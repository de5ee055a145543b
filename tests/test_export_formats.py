"""``iblvideo export --format dlc-h5|dlc-csv|lp-csv``: each camera's table where, and as, DeepLabCut and
Lightning Pose write theirs, read back by movement's own readers with their defaults."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from movement.io import load_poses

from iblvideo.cli import main
from iblvideo.errors import IblVideoError
from iblvideo.io.alf import SessionPaths
from iblvideo.io.pose_formats import DLC_HDF_KEY, LP_SCORER
from iblvideo.results.export import export_poses
from iblvideo.results.load import load_session
from iblvideo.tracking.weights import MANIFEST, demo_weights_dir

# DeepLabCut 3's scorer (pose_estimation_pytorch get_scorer_name), with no project date
DLC_SCORER = re.compile(r"DLC_[A-Za-z0-9]+_[A-Za-z0-9-]+shuffle\d+_snapshot_[A-Za-z0-9-]+")
READERS = {"dlc-h5": load_poses.from_dlc_file, "dlc-csv": load_poses.from_dlc_file, "lp-csv": load_poses.from_lp_file}


@pytest.fixture(scope="module")
def session(session_with_truth_as_pose, tmp_path_factory) -> Path:
    """A copy of the processed synthetic session (three cameras), every format exported beside its videos."""
    copy = Path(shutil.copytree(session_with_truth_as_pose, tmp_path_factory.mktemp("export") / "s" / "2026-01-01" / "001"))
    for fmt in READERS:
        export_poses(copy, fmt)
    return copy


def exported(session: Path, fmt: str) -> dict[str, Path]:
    """Each camera's exported file of ``fmt``, found by its video's stem as DeepLabCut and Lightning Pose find theirs."""
    paths = SessionPaths(session)
    suffix = ".h5" if fmt == "dlc-h5" else ".csv"
    found = {}
    for camera in load_session(session).cameras:
        stem = paths.raw_video(camera).stem
        names = [p for p in paths.raw_video_data.glob(f"{stem}*{suffix}") if ("DLC" in p.name) == fmt.startswith("dlc")]
        assert len(names) == 1, names
        found[camera] = names[0]
    return found


@pytest.mark.parametrize("fmt", list(READERS))
def test_movement_loads_every_camera_with_our_tracks(session, fmt):
    results = load_session(session)
    files = exported(session, fmt)
    assert set(files) == {"left", "right", "body"}
    for camera, path in files.items():
        tracks = results.cameras[camera].tracks
        dataset = READERS[fmt](path)
        assert list(dataset.keypoints.values) == list(tracks.points)
        assert dataset.position.dtype == np.float64 and dataset.sizes["time"] == len(tracks)
        # movement: (time, space, keypoints, individuals); ours: (time, keypoints, space)
        np.testing.assert_array_equal(dataset.position.values[..., 0].transpose(0, 2, 1), tracks.xy)
        np.testing.assert_array_equal(dataset.confidence.values[..., 0], tracks.likelihood)


def test_dlc_names_follow_deeplabcuts_pattern(session):
    for fmt in ("dlc-h5", "dlc-csv"):
        for camera, path in exported(session, fmt).items():
            stem = SessionPaths(session).raw_video(camera).stem
            scorer = path.name[len(stem):-len(path.suffix)]
            assert DLC_SCORER.fullmatch(scorer), scorer
            # what DeepLabCut's find_analyzed_data skips, and where its plotting splits off the video's name
            assert "filtered" not in path.name and "skeleton" not in path.name and path.name.split("DLC")[0] == stem
    assert {p.name for p in exported(session, "lp-csv").values()} == {f"_iblrig_{c}Camera.raw.csv" for c in ("left", "right", "body")}


def test_h5_holds_one_float64_table_under_deeplabcuts_key(session):
    path = exported(session, "dlc-h5")["left"]
    with pd.HDFStore(path, "r") as store:
        assert store.keys() == [f"/{DLC_HDF_KEY}"] and store.get_storer(DLC_HDF_KEY).is_table
    table = pd.read_hdf(path)  # no key, as DeepLabCut's load_analyzed_data reads it
    assert list(table.columns.names) == ["scorer", "bodyparts", "coords"]
    assert set(table.dtypes) == {np.dtype("float64")}
    np.testing.assert_array_equal(table.index, np.arange(len(load_session(session).cameras["left"].tracks)))  # frame numbers


def test_csv_headers(session):
    dlc, lp = exported(session, "dlc-csv")["body"], exported(session, "lp-csv")["body"]
    rows = [line.split(",")[0] for line in dlc.read_text().splitlines()[:4]]
    assert rows == ["scorer", "bodyparts", "coords", "0"]
    assert lp.read_text().splitlines()[0].split(",")[1] == LP_SCORER


def test_refuses_to_overwrite_without_force(session, capsys):
    before = exported(session, "dlc-h5")["left"].stat().st_mtime_ns
    assert main(["-q", "export", str(session), "--format", "dlc-h5"]) == 2
    assert "already exists" in capsys.readouterr().err and exported(session, "dlc-h5")["left"].stat().st_mtime_ns == before
    assert main(["-q", "export", str(session), "--format", "dlc-h5", "--force"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3


def test_out_folder(session, tmp_path):
    paths = export_poses(session, "dlc-csv", out=tmp_path / "poses")
    assert [p.parent for p in paths] == [tmp_path / "poses"] * 3
    with pytest.raises(IblVideoError, match="names a folder"):
        export_poses(session, "dlc-csv", out=paths[0], force=True)


def test_scorer_names_the_tracker_and_weights(session_with_dlc, tmp_path):
    (path,) = export_poses(session_with_dlc, "dlc-h5", out=tmp_path)
    version = json.loads((demo_weights_dir() / MANIFEST).read_text())["version"].replace(".", "-")  # demo weights_v1.3: 1-3
    assert path.name == f"_iblrig_bodyCamera.rawDLC_Dlc_iblvideoweightsv{version}shuffle1_snapshot_{version}.h5"
    assert load_poses.from_dlc_file(path).keypoints.values.tolist() == ["tail_start"]
