"""The Alyx queue backend through ONE's real REST client, against AlyxStandInServer on loopback."""
from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace

import pytest
from one.alf.spec import QC
from one.registration import RegistrationClient
from one.webclient import AlyxClient

from alyx_standin import logged_in
from iblvideo import run_queue, run_session
from iblvideo.io.alf import LICKS, QC_REPORT, features_name, motion_energy_names, pose_name
from iblvideo.io.one import file_md5, local_one, register_remote
from iblvideo.sessions.queue.alyx import AlyxQueue
from session_data import copy_session, rendered_session


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    return rendered_session(tmp_path_factory)


@pytest.fixture
def alyx(tmp_path, monkeypatch):
    with logged_in(tmp_path, monkeypatch) as (server, client):
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


def test_only_outputs_with_an_alyx_dataset_type_are_registered(alyx, rendered, tmp_path, caplog):
    server, client = alyx
    session = copy_session(rendered, tmp_path / "data", "mouse_r")
    result = run_session(session, tracker="truth", cameras=("left", "body"))
    outputs = [*result.cameras["left"].outputs, *result.cameras["body"].outputs, *result.outputs]
    one = SimpleNamespace(alyx=client)  # registration talks to Alyx only, through one.alyx

    registered = register_remote(one, outputs)

    (sent,) = server.registered
    assert sent["path"] == "mouse_r/2026-01-01/001" and sent["created_by"] == "tester"
    assert sorted(sent["filenames"]) == sorted(p.relative_to(session).as_posix() for p in registered)
    assert dict(zip(sent["filenames"], sent["hashes"], strict=True))["alf/_ibl_bodyCamera.dlc.pqt"] == file_md5(session / "alf" / "_ibl_bodyCamera.dlc.pqt")
    ibl = {LICKS, features_name("left"), *(name for camera in ("left", "body") for name in (pose_name(camera, "dlc"), *motion_energy_names(camera)))}
    assert {p.name for p in registered} == ibl
    # ONE's own filter keeps every file registered: none was dropped silently
    accepted, *_ = RegistrationClient(one).prepare_files([str(p) for p in registered])
    assert sorted(accepted[session]) == sorted(p.relative_to(session) for p in registered)
    local = sorted(p.name for p in outputs if p not in registered)
    assert QC_REPORT in local and local
    (line,) = [r.getMessage() for r in caplog.records if "kept local" in r.getMessage()]
    assert all(name in line for name in local)


class OnlineOne:
    """ONE as a worker has it on Alyx: ``alyx`` the real client on the stand-in; the session lookups (eids,
    paths, raw video listings) answered from a local ONE's tables, since the stand-in serves no datasets."""

    offline = False

    def __init__(self, local, alyx: AlyxClient):
        self._local, self.alyx = local, alyx

    def __getattr__(self, name: str):
        return getattr(self._local, name)


@pytest.mark.filterwarnings("ignore:No default revision")  # the local ONE answering the raw video lookups
def test_a_worker_on_alyx_registers_outputs_and_updates_the_session_qc(alyx, rendered, tmp_path):
    server, client = alyx
    session = copy_session(rendered, tmp_path / "data", "mouse_q")
    local = local_one(tmp_path / "data")
    eid = str(local.path2eid(session))
    server.add_session(eid, extended_qc={"_task_iti_delays": 0.9})
    queue = AlyxQueue(client)
    queue.add([eid])

    (outcome,) = run_queue(n_sessions=1, db=queue, one=OnlineOne(local, client), tracker="truth", cameras=("left", "body"))

    assert outcome.status == "Complete", outcome.error
    extended = server.sessions[eid]["extended_qc"]
    report = json.loads((session / "alf" / QC_REPORT).read_text())
    assert extended == {"_task_iti_delays": 0.9, **report["extended_qc"]}
    assert {"dlcLeft", "dlcBody", "_dlcLeft_pupil_blocked", "_dlcBody_trace_all_nan"} <= set(extended)
    assert server.sessions[eid]["qc"] == max((extended["dlcLeft"], extended["dlcBody"]), key=lambda o: QC.validate(o))
    (sent,) = server.registered
    assert "alf/_ibl_leftCamera.dlc.pqt" in sent["filenames"] and f"alf/{QC_REPORT}" not in sent["filenames"]
