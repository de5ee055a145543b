"""The Alyx queue backend through ONE's real REST client, against AlyxStandInServer on loopback."""
from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import pytest
from one.webclient import AlyxClient

from alyx_standin import AlyxStandInServer
from iblvideo import run_queue, run_session
from iblvideo.io.one import file_md5, local_one, register_remote
from iblvideo.sessions.queue.alyx import AlyxQueue
from session_data import copy_session, rendered_session


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    return rendered_session(tmp_path_factory)


@pytest.fixture
def alyx(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # ONE keeps its parameters and token under ~/.one
    (tmp_path / "home").mkdir()
    with AlyxStandInServer() as server:
        client = AlyxClient(base_url=server.url, username="tester", password="secret", silent=True,
                            cache_dir=tmp_path / "alyx-cache", cache_rest=None)
        yield server, client


def test_alyx_tasks_are_claimed_run_and_updated(alyx, rendered, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="iblvideo")  # a task log holds what the logger lets through
    server, client = alyx
    sessions = [copy_session(rendered, tmp_path / "data", f"mouse_{k}") for k in range(2)]
    one = local_one(tmp_path / "data")
    eids = [str(one.path2eid(s)) for s in sessions]
    queue = AlyxQueue(client, max_attempts=2)
    assert queue.add([*eids, eids[0], "no-such-eid"]) == [*eids, "no-such-eid"]

    outcomes = run_queue(n_sessions=10, db=queue, one=one, tracker="truth", cameras=("body",))

    tasks = {t["session"]: t for t in server.tasks.values()}
    assert len(tasks) == 3 and all(t["name"] == "iblvideo" for t in tasks.values())
    for eid in eids:
        task = tasks[eid]
        assert task["status"] == "Complete" and task["version"] and task["time_elapsed_secs"] > 0
        assert "body" in task["log"] and task["arguments"]["attempts"] == 1 and task["arguments"]["qc"]
    failed = tasks["no-such-eid"]
    assert failed["status"] == "Errored" and failed["arguments"]["attempts"] == 2
    assert "no-such-eid" in failed["arguments"]["error"] and "no-such-eid" in failed["log"]
    assert sorted(o.status for o in outcomes) == ["Complete", "Complete", "Errored", "Errored"]
    assert queue.retry() == 1 and queue.tasks("Waiting")[0].session == "no-such-eid"


def test_a_lost_alyx_claim_returns_after_its_lease(alyx):
    _, client = alyx
    queue = AlyxQueue(client, lease_seconds=0.001)
    queue.add(["eid-1"])
    dead = queue.claim("dead")
    assert dead.attempt == 1
    taken = queue.claim("alive")  # a zero lease has run out at once
    assert (taken.id, taken.attempt) == (dead.id, 2)
    assert not queue.heartbeat(dead) and not queue.finish(dead, "Complete", 1.0, "x")
    assert queue.finish(taken, "Complete", 1.0, "x") and queue.busy() == 0


def test_outputs_are_registered_as_alyx_datasets(alyx, rendered, tmp_path):
    server, client = alyx
    session = copy_session(rendered, tmp_path / "data", "mouse_r")
    result = run_session(session, tracker="truth", cameras=("body",))
    outputs = [*result.cameras["body"].outputs, *result.outputs]

    register_remote(SimpleNamespace(alyx=client), outputs)  # registration talks to Alyx only, through one.alyx

    (sent,) = server.registered
    assert sent["path"] == "mouse_r/2026-01-01/001" and sent["created_by"] == "tester"
    assert sorted(sent["filenames"]) == sorted(p.relative_to(session).as_posix() for p in outputs)
    assert dict(zip(sent["filenames"], sent["hashes"], strict=True))["alf/_ibl_bodyCamera.dlc.pqt"] == file_md5(session / "alf" / "_ibl_bodyCamera.dlc.pqt")
