"""Issue 15, queue and session part: what a hostile or careless user types, on real databases, real ONE tables and the real CLI."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from one.api import One

from iblvideo import run_queue
from iblvideo.cli import main
from iblvideo.errors import BadArgument, IblVideoError
from iblvideo.io.alf import raw_video_path
from iblvideo.io.session_files import table_metadata
from iblvideo.sessions.queue import Queue
from iblvideo.sessions.queue.alyx import AlyxQueue
from session_data import copy_session, rendered_session

EID = "0b5f3e6c-0000-4000-8000-000000000000"
@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    return rendered_session(tmp_path_factory)


@pytest.fixture(autouse=True)
def no_one_configured(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # ONE looks for its configuration there: none


def _one_error(capsys) -> str:
    """The single stderr line of a refused command."""
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("iblvideo: error: "), lines
    return lines[0]


# 6. videos outside a session: one output each, and a table of another video is never kept as this one's

def test_videos_outside_a_session_get_outputs_named_after_them(rendered, tmp_path, capsys):
    body = raw_video_path(rendered, "body")
    first, second = shutil.copy(body, tmp_path / "first.mp4"), shutil.copy(body, tmp_path / "second.mp4")
    assert main(["-q", "dlc", str(first), str(second), "--camera", "body"]) == 0
    outputs = [Path(line) for line in capsys.readouterr().out.splitlines()]
    assert outputs == [tmp_path / "first._ibl_bodyCamera.dlc.pqt", tmp_path / "second._ibl_bodyCamera.dlc.pqt"]
    assert [table_metadata(out)["video"] for out in outputs] == ["first.mp4", "second.mp4"]

    shutil.copy(outputs[0], outputs[1])  # the second video's name on the first one's table
    assert main(["-q", "dlc", str(second), "--camera", "body"]) == 2
    error = _one_error(capsys)
    assert str(outputs[1]) in error and "first.mp4" in error and "second.mp4" in error and "--force" in error
    assert table_metadata(outputs[1])["video"] == "first.mp4"  # refused, not replaced
    assert main(["-q", "dlc", str(second), "--camera", "body", "--force"]) == 0
    assert table_metadata(outputs[1])["video"] == "second.mp4"

    outputs[0].write_bytes(b"not a table")  # whatever it is, it is not kept as a pose table, nor replaced without --force
    assert main(["-q", "dlc", str(first), "--camera", "body"]) == 2
    assert str(outputs[0]) in _one_error(capsys) and outputs[0].read_bytes() == b"not a table"


# 7. a lease must be a positive number of seconds

@pytest.mark.parametrize("lease", ["0", "-5", "nan", "inf"])
def test_a_lease_that_is_not_positive_is_refused(tmp_path, capsys, lease):
    db = tmp_path / "queue.sqlite"
    Queue(db).add([EID])
    started = time.monotonic()
    assert main(["-q", "queue", "run", "--db", str(db), "--lease", lease, "--tracker", "truth"]) == 2
    assert "--lease" in _one_error(capsys) and time.monotonic() - started < 5
    assert Queue(db).counts()["Waiting"] == 1  # nothing claimed
    for make in (lambda: Queue(db, lease_seconds=float(lease)), lambda: AlyxQueue(None, lease_seconds=float(lease)),  # type: ignore[arg-type]
                 lambda: run_queue(db=db, lease_seconds=float(lease))):
        with pytest.raises(BadArgument, match="lease"):
            make()


# 8. --root is the data root of the session, or the session is refused

def test_a_session_outside_root_is_refused(rendered, tmp_path, capsys):
    root, elsewhere = tmp_path / "root", tmp_path / "elsewhere"
    copy_session(rendered, root, "inside")
    outside = copy_session(rendered, elsewhere, "outside")
    assert main(["-q", "session", str(outside), "--root", str(root), "--tracker", "truth", "--cameras", "body"]) == 2
    error = _one_error(capsys)
    assert str(outside) in error and str(root) in error
    assert One(cache_dir=root, mode="local").path2eid(outside) is None
    assert not [*(outside / "alf").glob("*.dlc.pqt"), *(outside / "alf").glob("*MotionEnergy*")]  # nothing computed either
    db = tmp_path / "queue.sqlite"
    assert main(["-q", "queue", "add", str(outside), "--root", str(root), "--db", str(db)]) == 2  # nor queued for that root
    assert str(outside) in _one_error(capsys) and not db.exists()


# 10. one task per session, whichever way it is named

def test_a_session_is_queued_once_by_path_or_by_eid(rendered, tmp_path, capsys, db_url):
    root = tmp_path / "root"
    session = copy_session(rendered, root, "mouse")
    db = db_url
    assert main(["-q", "queue", "add", str(session), "--root", str(root), "--db", db]) == 0
    eid = str(One(cache_dir=root, mode="local").path2eid(session))
    capsys.readouterr()
    assert main(["-q", "queue", "add", eid.upper(), "--root", str(root), "--db", db]) == 0
    assert "already queued" in capsys.readouterr().err
    assert [t.session for t in Queue(db).tasks()] == [str(session)]

    # both names in one call, and a database from before this change that holds the session as its eid
    fresh = str(tmp_path / "fresh.sqlite")
    assert main(["-q", "queue", "add", str(session), eid, "--root", str(root), "--db", fresh]) == 0
    assert [t.session for t in Queue(fresh).tasks()] == [str(session)] and "already queued" in capsys.readouterr().err
    old = str(tmp_path / "old.sqlite")
    Queue(old).add([eid])
    assert main(["-q", "queue", "add", str(session), "--root", str(root), "--db", old]) == 0
    assert [t.session for t in Queue(old).tasks()] == [eid] and "already queued" in capsys.readouterr().err

    # without --root, eids are compared through the tables of the data roots of the folders queued
    for first, then, kept in ((str(session), eid, str(session)), (eid, str(session), eid)):
        without = str(tmp_path / f"without-{first == eid}.sqlite")
        assert main(["-q", "queue", "add", first, "--db", without]) == 0
        assert main(["-q", "queue", "add", then, "--db", without]) == 0
        assert [t.session for t in Queue(without).tasks()] == [kept] and "already queued as task 1" in capsys.readouterr().err

    # with --root, an eid must be one of its sessions
    assert main(["-q", "queue", "add", EID, "--root", str(root), "--db", db]) == 2
    assert f"'{EID}': an eid that the ONE tables of {root}" in _one_error(capsys)

    # an eid with no local ONE to resolve it stays an eid, written one way
    assert main(["-q", "queue", "add", EID.upper(), "--db", db]) == 0
    assert main(["-q", "queue", "add", EID.replace("-", ""), "--db", db]) == 0
    assert [t.session for t in Queue(db).tasks()] == [str(session), EID]


# 11. queue add takes sessions, data roots and eids, nothing else

@pytest.mark.parametrize("item", ["/nonexistent", "not-a-uuid", "'; DROP TABLE iblvideo_tasks; --", "", "   ", "a" * 5000, "a\x01b"])
def test_queue_add_refuses_what_is_not_a_session(rendered, tmp_path, capsys, item):
    db = tmp_path / "queue.sqlite"
    assert main(["-q", "queue", "add", EID, item, "--db", str(db)]) == 2
    assert repr(item) in _one_error(capsys)
    assert not db.exists()  # nothing queued, not even the good item


def test_queue_add_walks_a_data_root_to_the_depth_of_sessions_only(rendered, tmp_path, capsys, monkeypatch):
    root = tmp_path / "root"
    flat = copy_session(rendered, root, "mouse")
    lab = copy_session(rendered, root / "lab" / "Subjects", "labmouse")
    copy_session(rendered, root / "a" / "b" / "c", "deep")  # not where a data root keeps sessions
    db = str(tmp_path / "queue.sqlite")
    assert main(["-q", "queue", "add", str(root), "--db", db]) == 0
    assert sorted(t.session for t in Queue(db).tasks()) == sorted([str(flat), str(lab)])

    empty = tmp_path / "empty"
    (empty / "x" / "y" / "z").mkdir(parents=True)
    assert main(["-q", "queue", "add", str(empty), "--db", db]) == 2
    assert str(empty) in _one_error(capsys)

    monkeypatch.chdir(tmp_path)
    started = time.monotonic()
    assert main(["-q", "queue", "add", "/", "--db", db]) == 2  # the whole filesystem: two levels read, no sessions
    assert time.monotonic() - started < 10 and "'/'" in _one_error(capsys)


# 15. one line, never a traceback

def test_queue_commands_refuse_bad_values_in_one_line(tmp_path, capsys, db_url):
    db = db_url
    Queue(db).add([EID])
    assert main(["-q", "queue", "retry", "abc", "--db", db]) == 2
    assert "'abc'" in _one_error(capsys)
    assert main(["-q", "queue", "list", "--db", "foo://x"]) == 2
    error = _one_error(capsys)
    assert "foo" in error and "sqlite" in error and "postgresql" in error
    for priority in (10**23, 2**31):  # beyond SQLite's integers; beyond PostgreSQL's INTEGER
        assert main(["-q", "queue", "add", str(uuid_of(2)), "--priority", str(priority), "--db", db]) == 2
        assert "--priority" in _one_error(capsys) and len(Queue(db).tasks()) == 1
    assert main(["-q", "queue", "add", str(uuid_of(2)), "--priority", str(2**31 - 1), "--db", db]) == 0
    with pytest.raises(BadArgument, match="priority"):
        Queue(db).add([str(uuid_of(3))], priority=-(2**40))


def uuid_of(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def test_an_unreachable_scheduler_is_one_line_and_fast(tmp_path, capsys):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nobody listens there
    db = str(tmp_path / "queue.sqlite")
    Queue(db).add([EID])
    started = time.monotonic()
    assert main(["-q", "queue", "run", "--db", db, "--scheduler", f"tcp://127.0.0.1:{port}"]) == 2
    assert f"127.0.0.1:{port}" in _one_error(capsys) and time.monotonic() - started < 15
    assert Queue(db).counts()["Waiting"] == 1


def test_session_neither_folder_nor_eid(tmp_path, capsys):
    (tmp_path / "root").mkdir()
    assert main(["-q", "session", "not-a-uuid", "--root", str(tmp_path / "root")]) == 2
    assert "not-a-uuid: no such session folder, and not an eid" in _one_error(capsys)
    assert main(["-q", "session", "a" * 5000, "--root", str(tmp_path / "root")]) == 2  # not even a possible path
    assert "no such session folder" in _one_error(capsys)
    with pytest.raises(IblVideoError, match="not an eid"):
        from iblvideo import run_session

        run_session("not-a-uuid", one=One(cache_dir=tmp_path / "root", mode="local"))


def test_a_closed_pipe_ends_the_command_quietly(rendered, tmp_path):
    session = copy_session(rendered, tmp_path, "piped")
    command = [sys.executable, "-m", "iblvideo", "-q", "session", str(session), "--tracker", "truth", "--cameras", "body"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "HOME": str(tmp_path)})
    process.stdout.close()  # as `| head` does once it has read enough
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == 141 and "Traceback" not in stderr and "Error" not in stderr, stderr
    assert (session / "alf" / "_iblvideo_dlc.qc.json").exists()  # the work was done and kept
