"""Issue 15, kills and cache tables: real ``iblvideo`` processes killed mid-work, leftovers of dead processes, broken ONE tables."""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from iblvideo.cli import main
from iblvideo.io import atomic
from iblvideo.io.alf import raw_video_path
from iblvideo.io.atomic import PARTIAL
from iblvideo.io.one import local_one
from iblvideo.results.label_video import default_output
from iblvideo.synth import synthesize_session
from iblvideo.video.reader import probe
from session_data import copy_session

TIMEOUT = 120  # seconds a killed or rerun command may take before the test fails instead of hanging


@pytest.fixture(scope="module")
def session(tmp_path_factory) -> Path:
    """A two-second synthetic session of one camera: long enough that every command is killed mid-work."""
    return synthesize_session(tmp_path_factory.mktemp("kills") / "root", cameras=("left",), seconds=2, seed=1)


@pytest.fixture(autouse=True)
def no_one_configured(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # ONE looks for its configuration there: none
    # main's console handler writes to this test's captured stderr: the next test must not log to it once closed
    logger = logging.getLogger("iblvideo")
    monkeypatch.setattr(logger, "handlers", list(logger.handlers))
    monkeypatch.setattr(logger, "level", logger.level)


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
def test_table_folders_of_dead_processes_are_removed(session, tmp_path, indexed):
    root = tmp_path / "root"
    copy_session(session, root, "mouse")
    if indexed:
        local_one(root)
    dead, live = _tables_leftover(root, _dead_pid()), _tables_leftover(root, os.getpid())
    earlier = root / ".one-tables-k3j9x2q1"  # as earlier versions named theirs, always under the lock
    earlier.mkdir()
    (earlier / "sessions.pqt").write_bytes(b"half")
    one = local_one(root)
    assert not dead.exists() and live.exists() and not earlier.exists()
    assert len(one._cache["sessions"]) == 1


# 2. broken cache tables: one line naming the folder and what to delete

def _columns_lost(path: Path) -> None:
    """A table with ONE's metadata but none of its columns."""
    metadata = pq.read_schema(path).metadata
    pq.write_table(pa.table({"other": [1]}).replace_schema_metadata(metadata), path)


def _folder(path: Path) -> None:
    path.unlink()
    path.mkdir()


@pytest.mark.parametrize("table, damage", [
    ("sessions.pqt", lambda path: path.write_bytes(b"\x00junk\xffbytes" * 10)),
    ("datasets.pqt", lambda path: path.write_bytes(b"")),
    ("sessions.pqt", _folder),
    ("datasets.pqt", _columns_lost),
], ids=["junk-sessions", "empty-datasets", "folder-sessions", "columns-lost-datasets"])
def test_broken_cache_tables_are_one_line(session, tmp_path, capsys, table, damage):
    root = tmp_path / "root"
    session = copy_session(session, root, "mouse")
    local_one(root)
    damage(root / table)
    assert main(["session", str(session), "--root", str(root), "--tracker", "truth"]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"iblvideo: error: {root.resolve()}"), lines
    assert "delete sessions.pqt and datasets.pqt" in lines[0]


# 3. kills: SIGKILL, SIGTERM and SIGINT in the middle of a command leave only complete outputs, and a rerun completes

def _line(text: str) -> Callable[[subprocess.Popen], None]:
    """Wait until the command logs a line containing ``text``."""
    def wait(child: subprocess.Popen) -> None:
        assert child.stderr is not None
        for line in child.stderr:
            if text.encode() in line:
                return
        raise AssertionError(f"the command ended (exit {child.wait()}) before logging {text!r}")
    return wait


def _writing(out: Path) -> Callable[[subprocess.Popen], None]:
    """Wait until the command has written into its own temporary of ``out`` (a progress bar logs no lines)."""
    def wait(child: subprocess.Popen) -> None:
        deadline = time.monotonic() + TIMEOUT
        while not any(tmp.stat().st_size for tmp in out.parent.glob(f".{out.name}{PARTIAL}{child.pid}-*")):
            assert child.poll() is None, f"the command ended (exit {child.returncode}) before writing {out.name}"
            assert time.monotonic() < deadline
            time.sleep(0.01)
    return wait


def _command(name: str, session: Path) -> list[str]:
    video = raw_video_path(session, "left")
    return {"dlc": ["dlc", str(video)], "label-video": ["label-video", str(video)],
            "session": ["session", str(session), "--tracker", "truth"]}[name]


def _mid_work(name: str, session: Path) -> Callable[[subprocess.Popen], None]:
    """What shows the command mid-work, its whole work still ahead: a pass over the frames, or the session's stages."""
    video = raw_video_path(session, "left")
    return {"dlc": _line(f"tracking {probe(video).n_frames} frames"), "label-video": _writing(default_output(video, None, None)),
            "session": _line("cameras left")}[name]


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
    root = tmp_path / "root"
    work = copy_session(session, root, session.parts[-3])
    if name == "label-video":  # it draws the pose table that a session run writes: here the ground truth's
        assert main(["session", str(work), "--tracker", "truth"]) == 0
    env = {**os.environ, "HOME": str(tmp_path)}
    args = _command(name, work)
    for sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
        child = _cli(args, env)
        _mid_work(name, work)(child)
        child.send_signal(sig)
        _, err = child.communicate(timeout=TIMEOUT)
        if sig == signal.SIGINT:
            text = err.decode()
            assert child.returncode == 130 and text.splitlines()[-1:] == ["iblvideo: interrupted"], text[-2000:]
            assert "Traceback" not in text
        else:
            assert child.returncode == -sig
        left = {tmp.name for tmp in work.rglob(f"*{PARTIAL}*")}
        own = {tmp for tmp in left if f"{PARTIAL}{child.pid}-" in tmp}
        if sig == signal.SIGINT:
            assert not own  # an interrupted run removes its own temporaries
        if name == "label-video":  # killed mid-write, it leaves only its own: it first removed the one killed before it
            assert left == own and bool(own) == (sig != signal.SIGINT)
        for output in _outputs(work):
            _read_back(output)
    rerun = subprocess.run([sys.executable, "-m", "iblvideo", *args, "--quiet"], capture_output=True, text=True, env=env, timeout=TIMEOUT)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    printed = rerun.stdout.strip()
    if name == "session":
        assert json.loads(printed)["status"] == "Complete"
    else:
        assert Path(printed).is_file()
    for output in _outputs(work):
        _read_back(output)
    assert not list(root.rglob(f"*{PARTIAL}*"))
