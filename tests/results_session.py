"""Processed synthetic sessions for the result views (labeled videos, figures, report, NWB).

``session_with_truth_as_pose``: the synthetic ground truth copied into alf/ as stand-in pose tables,
then the real motion energy, features and QC. ``session_with_dlc``: the real tracker (demo weights)
on the body camera, then the same stages; skipped while the demo weights are not in the package.
Each is built once per test run (conftest loads this module as a plugin: one session fixture for all test
modules) and must not be modified.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from iblvideo.cameras import CAMERAS
from iblvideo.io.alf import SessionPaths
from iblvideo.sessions.stages import features_stage, motion_energy_stage, qc_stage
from iblvideo.synth import synthesize_session
from iblvideo.tracking.registry import attribute

SEED = 2  # within 6 s: a correct trial with its reward licks, an error trial and a blink
SECONDS = 6.0  # a correct and an error trial, each ending before the videos do
DEMO_MANIFEST = Path(__file__).parents[1] / "src" / "iblvideo" / "weights_demo" / "manifest.json"


def _derive(session: Path) -> Path:
    motion_energy_stage(session)
    features_stage(session)
    qc_stage(session)
    return session


def _truth_as_pose(root: Path) -> Path:
    session = synthesize_session(root / "truth_as_pose", seconds=SECONDS, seed=SEED)
    paths = SessionPaths(session)
    for camera in CAMERAS:
        shutil.copy(paths.truth_pose(camera), paths.pose(camera, attribute("dlc")))
    return _derive(session)


def _with_dlc(root: Path) -> Path:
    from iblvideo.tracking.run import dlc

    session = synthesize_session(root / "with_dlc", cameras=("body",), seconds=SECONDS, seed=SEED)
    dlc(session / "raw_video_data" / "_iblrig_bodyCamera.raw.mp4", weights="demo")
    return _derive(session)


@pytest.fixture(scope="session")
def session_with_truth_as_pose(tmp_path_factory) -> Path:
    return _truth_as_pose(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="session")
def session_with_dlc(tmp_path_factory) -> Path:
    if not DEMO_MANIFEST.exists():
        pytest.skip(f"demo weights not in the package yet ({DEMO_MANIFEST} missing)")
    return _with_dlc(tmp_path_factory.getbasetemp())
