"""What the parity tests against ibllib share: its tolerance, the comparisons, and a writable copy of a reference session."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from iblvideo.io.alf import SessionPaths
from iblvideo.measures.features import SPEED_POINTS

IBL_FEATURE_COLUMNS = ["pupilDiameter_raw", "pupilDiameter_smooth"]  # camera.features, as PostDLC and PostLP write it: spelled
# here again, not imported, so that a change to ours cannot pass unnoticed
TOL = 1e-9  # ibllib sums in another order: differences stay near 1e-13


def assert_same(ours, theirs) -> None:
    ours, theirs = np.asarray(ours, float), np.asarray(theirs, float)
    assert ours.shape == theirs.shape
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=TOL)


def copy_session(tmp_path: Path, source: Path, name: str) -> Path:
    """A copy of the reference session ``source`` as ``<tmp_path>/<name>/2024-01-01/001``, for stages to write into."""
    session = tmp_path / name / "2024-01-01" / "001"
    shutil.copytree(source, session)
    return session


def assert_features_match(session: Path, written: dict[str, Path], reference: Path, name: str, camera: str) -> None:
    """One camera's feature table against ibllib's on IBL's two columns, and exactly those; its speeds and
    sniffs against ibllib's ``<name>_<camera>_<point>_speed.npy`` and ``_sniffs.npy`` (a fixture may carry
    the speed columns iblvideo wrote before: they are not compared)."""
    paths = SessionPaths(session)
    ours = pd.read_parquet(paths.features(camera))
    theirs = pd.read_parquet(reference / f"{name}_{camera}_features.pqt")
    assert list(ours.columns) == IBL_FEATURE_COLUMNS
    for column in IBL_FEATURE_COLUMNS:
        assert_same(ours[column], theirs[column])
    speeds = pd.read_parquet(paths.speeds(camera))
    assert list(speeds.columns) == list(SPEED_POINTS) and len(speeds) == len(ours)
    references = [reference / f"{name}_{camera}_{point}_speed.npy" for point in SPEED_POINTS]
    if references[0].exists():
        for point, path in zip(SPEED_POINTS, references, strict=True):
            assert_same(speeds[point], np.load(path))
        assert_same(np.load(written[f"{camera}_sniffs"]), np.load(reference / f"{name}_{camera}_sniffs.npy"))
    else:  # ibllib skips speeds and sniffs where the camera times fall short of the tracks
        assert speeds.isna().all().all()
        assert f"{camera}_sniffs" not in written
