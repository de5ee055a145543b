"""The light core install: ``pip install iblvideo`` tracks a video without ONE, SQLAlchemy, Dask or matplotlib,
and whatever needs one of those says, in one line, which extra brings it."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from iblvideo import probe
from iblvideo.synth import synthesize_session

ROOT = Path(__file__).resolve().parents[1]
EXTRA_MODULES = ("one", "sqlalchemy", "dask", "distributed", "matplotlib")
EXTRA_DISTRIBUTIONS = {"one-api", "sqlalchemy", "dask", "distributed", "matplotlib"}  # as pip list names them, lowercased
SESSION_NEEDS_ONE = "'iblvideo session' needs ONE-api: pip install 'iblvideo[sessions]'"

# prepended to the code a fresh interpreter runs: the extras' packages are there, but importing one fails as if they were not
REFUSE_EXTRAS = f"""
import importlib.abc, sys

class RefuseExtras(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {EXTRA_MODULES!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, RefuseExtras())
"""
CLI = "import runpy; runpy.run_module('iblvideo', run_name='__main__', alter_sys=True)"


def run_without_extras(code: str, *args: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", REFUSE_EXTRAS + code, *map(str, args)], capture_output=True, text=True, timeout=120)


def test_core_modules_import_without_extras():
    result = run_without_extras("import iblvideo, iblvideo.video, iblvideo.tracking.run, iblvideo.cli\nfrom iblvideo import dlc")
    assert result.returncode == 0, result.stderr


def test_help_without_extras():
    result = run_without_extras(CLI, "--help")
    assert result.returncode == 0, result.stderr
    assert "usage: iblvideo" in result.stdout


@pytest.mark.parametrize("args, message", [
    (("session", "0a1b2c3d-eid"), SESSION_NEEDS_ONE),
    (("queue", "list", "--db", "{tmp}/queue.sqlite"), "'iblvideo queue list' needs SQLAlchemy: pip install 'iblvideo[queue]'"),
    (("plot", "{tmp}"), "'iblvideo plot' needs matplotlib: pip install 'iblvideo[figures]'"),
])
def test_command_needing_an_extra_names_it_in_one_line(tmp_path, args, message):
    result = run_without_extras(CLI, *(arg.format(tmp=tmp_path) for arg in args))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"iblvideo: error: {message}"]


def test_api_call_needing_an_extra_raises_an_import_error_naming_it():
    result = run_without_extras("import iblvideo\n"
                                "try:\n    iblvideo.run_queue\n"
                                "except iblvideo.IblVideoError as err:\n    assert isinstance(err, ImportError)\n    print(err)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "SQLAlchemy is not installed: pip install 'iblvideo[queue]'"


def core_venv(tmp_path: Path) -> Path:
    """A fresh virtual environment with ``pip install torch==2.13.0 iblvideo`` from this checkout; its python."""
    # a copy: pip builds a source folder in place, and would leave build/ and egg-info in the checkout
    source = tmp_path / "source"
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "venv", tmp_path / "venv"], check=True, timeout=120)
    python = tmp_path / "venv" / "bin" / "python"
    # --no-compile: byte-compiling torch's files would double the install time, and nothing here needs it
    install = subprocess.run([python, "-m", "pip", "install", "--quiet", "--no-compile", "torch==2.13.0", source],
                             capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-3000:]
    return python


def test_core_install_in_a_fresh_venv_tracks_a_video(tmp_path):
    python = core_venv(tmp_path)
    listed = subprocess.run([python, "-m", "pip", "list", "--format=json"], capture_output=True, text=True, check=True, timeout=120)
    installed = {package["name"].lower() for package in json.loads(listed.stdout)}
    assert "iblvideo" in installed and not installed & EXTRA_DISTRIBUTIONS

    session = synthesize_session(tmp_path / "data", cameras=("left",), seconds=0.5, seed=1)
    video = next((session / "raw_video_data").glob("_iblrig_leftCamera.raw.*"))
    # only the venv's own packages: no PYTHONPATH into this checkout, and a working folder without iblvideo in it
    env = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    tracked = subprocess.run([python, "-c", "import sys; from iblvideo import dlc; print(dlc(sys.argv[1]))", video],
                             capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert tracked.returncode == 0, tracked.stderr[-3000:]
    table = Path(tracked.stdout.splitlines()[-1])
    assert table.name == "_ibl_leftCamera.dlc.pqt"
    assert len(pd.read_parquet(table)) == probe(video).n_frames

    refused = subprocess.run([python.parent / "iblvideo", "session", session], capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    assert (refused.returncode, refused.stderr.splitlines()) == (2, [f"iblvideo: error: {SESSION_NEEDS_ONE}"])
