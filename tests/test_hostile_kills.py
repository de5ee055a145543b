"""Issue 15, kills and cache tables: real ``iblvideo`` processes killed mid-work, leftovers of dead processes, broken ONE tables."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from iblvideo.cli import main
from iblvideo.io import atomic
from iblvideo.io.alf import raw_video_path
from iblvideo.io.atomic import PARTIAL
from iblvideo.io.one import local_one
from iblvideo.synth import synthesize_session
from iblvideo.video.reader import probe
from session_data import copy_session, rendered_session

TIMEOUT = 120  # seconds a killed or rerun command may take before the test fails instead of hanging


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    return rendered_session(tmp_path_factory)


@pytest.fixture(autouse=True)
def no_one_configured(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # ONE looks for its configuration there: none


def _dead_pid() -> int:
    """The pid of a process that has ended."""
    child = subprocess.Popen([sys.executable, "-c", ""])
    child.wait()
    return child.pid


def _tables_leftover(root: Path, pid: int) -> Path:
    """A folder of tables as a process ``pid`` of this machine leaves it when killed mid-write."""
    folder = root / f".one-tables{PARTIAL}{pid}-{atomic._host()}-{'0' * 12}"
    folder.mkdir()
    (folder / "sessions.pqt").write_bytes(b"half a table")
    return folder


# 1. tables folders of killed processes: removed on the next use of the data folder, a live process's kept

@pytest.mark.parametrize("indexed", [False, True], ids=["indexing", "indexed"])
def test_table_folders_of_dead_processes_are_removed(rendered, tmp_path, indexed):
    root = tmp_path / "root"
    copy_session(rendered, root, "mouse")
    if indexed:
        local_one(root)
    dead, live = _tables_leftover(root, _dead_pid()), _tables_leftover(root, os.getpid())
    one = local_one(root)
    assert not dead.exists() and live.exists()
    assert len(one._cache["sessions"]) == 1


# 2. broken cache tables: one line naming the folder and what to delete

@pytest.mark.parametrize("table, content", [("sessions.pqt", b"\x00junk\xffbytes" * 10), ("datasets.pqt", b"")],
                         ids=["junk-sessions", "empty-datasets"])
def test_broken_cache_tables_are_one_line(rendered, tmp_path, capsys, table, content):
    root = tmp_path / "root"
    session = copy_session(rendered, root, "mouse")
    local_one(root)
    (root / table).write_bytes(content)
    assert main(["session", str(session), "--root", str(root), "--tracker", "truth"]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"iblvideo: error: {root.resolve()}"), lines
    assert "delete sessions.pqt and datasets.pqt" in lines[0]


# 3. kills: SIGKILL, SIGTERM and SIGINT in the middle of a command leave only complete outputs, and a rerun completes

@pytest.fixture(scope="module")
def session(tmp_path_factory) -> Path:
    """A two-second synthetic session of one camera: long enough that every command is killed mid-work."""
    return synthesize_session(tmp_path_factory.mktemp("kills") / "root", cameras=("left",), seconds=2, seed=1)


def _line(text: str) -> Callable[[subprocess.Popen], None]:
    """Wait until the command logs a line containing ``text``."""
    def wait(child: subprocess.Popen) -> None:
        assert child.stderr is not None
        for line in child.stderr:
            if text.encode() in line:
                return
        raise AssertionError(f"the command ended (exit {child.wait()}) before logging {text!r}")
    return wait


def _writing(folder: Path, name: str) -> Callable[[subprocess.Popen], None]:
    """Wait until the command has written into its temporary of ``folder/name`` (a progress bar logs no lines)."""
    def wait(child: subprocess.Popen) -> None:
        deadline = time.monotonic() + TIMEOUT
        while not any(tmp.stat().st_size for tmp in folder.glob(f".{name}{PARTIAL}*")):
            assert child.poll() is None, f"the command ended (exit {child.returncode}) before writing {name}"
            assert time.monotonic() < deadline
            time.sleep(0.01)
    return wait


def _command(name: str, session: Path) -> list[str]:
    video = raw_video_path(session, "left")
    return {"dlc": ["dlc", str(video)], "label-video": ["label-video", str(video), "--tracker", "truth"],
            "session": ["session", str(session), "--tracker", "truth"]}[name]


def _marks(name: str, session: Path) -> dict[signal.Signals, Callable[[subprocess.Popen], None]]:
    """What shows each signal's command mid-work; a session's SIGKILL falls in the indexing of its data folder."""
    video = raw_video_path(session, "left")
    mid = {"dlc": _line("tracking 120 frames"), "label-video": _writing(video.parent, f"{video.stem.split('.')[0]}.labeled.mp4"),
           "session": _line("cameras left")}[name]
    first = _line("indexing the folder") if name == "session" else mid
    return {signal.SIGKILL: first, signal.SIGTERM: mid, signal.SIGINT: mid}


def _cli(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "iblvideo", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def _read_back(path: Path) -> None:
    """Read an output whole; raises on a half-written one."""
    if path.suffix == ".pqt":
        pd.read_parquet(path)
    elif path.suffix == ".npy":
        np.load(path, allow_pickle=False)
    elif path.suffix == ".json":
        json.loads(path.read_text())
    elif path.suffix == ".mp4":
        assert probe(path).n_frames > 0


def _outputs(folder: Path) -> list[Path]:
    """The files a command may have written in ``folder`` (not its temporaries)."""
    return [p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")]


@pytest.mark.parametrize("name", ["dlc", "label-video", "session"])
def test_killed_mid_work_leaves_only_whole_outputs_and_a_rerun_completes(session, tmp_path, name):
    work = copy_session(session, tmp_path / "root", session.parts[-3])
    if name == "label-video":  # it draws a pose table: the ground truth's, as the truth tracker reads it
        assert main(["session", str(work), "--tracker", "truth"]) == 0
    env = {**os.environ, "HOME": str(tmp_path)}
    args = _command(name, work)
    for sig, mid_work in _marks(name, work).items():
        child = _cli(args, env)
        mid_work(child)
        child.send_signal(sig)
        _, err = child.communicate(timeout=TIMEOUT)
        if sig == signal.SIGINT:
            assert child.returncode == 130 and err.decode().splitlines()[-1:] == ["iblvideo: interrupted"], err.decode()[-2000:]
        else:
            assert child.returncode == -sig
        for output in _outputs(work):
            _read_back(output)
    rerun = subprocess.run([sys.executable, "-m", "iblvideo", *args, "--quiet"], capture_output=True, text=True, env=env, timeout=TIMEOUT)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    for output in _outputs(work):
        _read_back(output)
    assert not list(work.parents[2].rglob(f"*{PARTIAL}*"))
