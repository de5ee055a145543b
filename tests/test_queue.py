"""The SQL task queue on a real SQLite file and, where CI provides one, a real PostgreSQL server."""
from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from one.api import One

from iblvideo import run_queue
from iblvideo.cli import main
from iblvideo.io.alf import TRIALS
from iblvideo.sessions.queue import Queue, find_sessions
from iblvideo.sessions.queue.worker import execute
from iblvideo.sessions.session import Options
from session_data import copy_session, rendered_session


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    return rendered_session(tmp_path_factory)


def test_add_claim_finish_in_priority_order(db_url):
    queue = Queue(db_url)
    assert queue.add(["s1", "s2", "s1"]) == ["s1", "s2"]
    assert queue.add(["s2", "s3"], priority=5) == ["s3"]
    assert queue.add(["s4"], hold=True) == ["s4"]

    first, second = queue.claim("w1"), queue.claim("w2")
    assert (first.session, second.session) == ("s3", "s1")  # higher priority first, then oldest
    assert queue.finish(first, "Complete", 1.5, "9.9", log="line\n" * 3, summary={"qc": "PASS"})
    assert not queue.finish(first, "Complete", 1.5, "9.9")  # a task is finished once
    done = {t.session: t for t in queue.tasks()}["s3"]
    assert (done.status, done.seconds, done.version, json.loads(done.summary)) == ("Complete", 1.5, "9.9", {"qc": "PASS"})
    assert done.log.count("line") == 3
    assert queue.counts() == {"Waiting": 1, "Started": 1, "Complete": 1, "Errored": 0, "Empty": 0, "Held": 1}
    assert queue.claim("w3").session == "s2" and queue.claim("w3") is None  # Held tasks wait for retry
    assert queue.retry() == 1 and queue.claim("w3").session == "s4"


def test_claims_are_exclusive_under_contention(db_url):
    Queue(db_url).add([f"s{i}" for i in range(24)])
    claimed: list[str] = []

    def worker(name: str) -> None:
        queue = Queue(db_url)  # each worker its own engine and connections, as separate processes have
        while (claim := queue.claim(name)) is not None:
            claimed.append(claim.session)
        queue.close()

    threads = [threading.Thread(target=worker, args=(f"w{k}",)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claimed) == sorted(f"s{i}" for i in range(24))


def test_sessions_added_at_once_by_many_get_one_task_each(db_url):
    sessions = [f"s{i}" for i in range(20)]
    with ThreadPoolExecutor(4) as pool:  # each its own engine, as separate `queue add` processes have
        added = list(pool.map(lambda _: Queue(db_url).add(sessions), range(4)))
    assert sorted(s for batch in added for s in batch) == sorted(sessions)
    assert sorted(t.session for t in Queue(db_url).tasks()) == sorted(sessions)


def test_a_dead_workers_task_is_claimed_again_after_its_lease(db_url):
    queue = Queue(db_url, lease_seconds=0.6)
    queue.add(["s1"])
    lost = queue.claim("dead")
    assert queue.claim("alive") is None
    time.sleep(0.4)
    assert queue.heartbeat(lost) and queue.claim("alive") is None  # renewed: still held
    time.sleep(0.8)
    taken = queue.claim("alive")
    assert (taken.id, taken.attempt) == (lost.id, 2)
    assert not queue.heartbeat(lost) and not queue.finish(lost, "Complete", 1.0, "x")  # too late for the dead one
    assert queue.finish(taken, "Complete", 1.0, "x")
    assert [(r.worker, r.status) for r in queue.runs(taken.id)] == [("dead", "Lost"), ("alive", "Complete")]


def test_errors_are_retried_up_to_the_limit_and_kept(db_url):
    queue = Queue(db_url, max_attempts=2, lease_seconds=0.3)
    queue.add(["s1", "s2"])
    claim = queue.claim("w")
    queue.finish(claim, "Errored", 0.1, "x", error="boom 1")
    again = queue.claim("w")
    assert again.attempt == 2 and again.session == "s1"
    assert queue.tasks("Started")[0].error == "boom 1"  # the last error stays while the task is retried
    queue.finish(again, "Errored", 0.1, "x", error="boom 2")
    last = queue.claim("w")
    assert last.session == "s2"
    assert [(r.status, r.error) for r in queue.runs(claim.id)] == [("Errored", "boom 1"), ("Errored", "boom 2")]

    queue.add(["s3"])  # s2's worker dies on its last attempt...
    queue.engine.dispose()
    Queue(db_url, max_attempts=2, lease_seconds=0.3).claim("w2")  # s3, attempt 1
    time.sleep(0.4)
    assert queue.claim("w").session == "s2"  # lease ran out, attempt 2 of 2...
    time.sleep(0.4)
    assert queue.claim("w").session == "s3"  # ...and s3's second attempt; s2, out of attempts, errs
    s2 = {t.session: t for t in queue.tasks()}["s2"]
    assert s2.status == "Errored" and "gave up after 2 attempts" in s2.error
    assert queue.retry([s2.id]) == 1 and queue.claim("w").session == "s2"


def test_data_roots_are_scanned_for_sessions_without_outputs(rendered, tmp_path):
    done, todo = copy_session(rendered, tmp_path, "done"), copy_session(rendered, tmp_path, "todo")
    (done / "alf" / "_iblvideo_dlc.qc.json").write_text("{}")
    for camera in ("left", "body"):
        (done / "alf" / f"_ibl_{camera}Camera.dlc.pqt").write_bytes(b"")
    eid = "0b5f3e6c-0000-4000-8000-000000000000"
    assert find_sessions([tmp_path, eid, todo / "alf"]) == [str(todo), eid]  # a session named twice is one entry


def test_run_queue_records_status_log_version_and_summary(rendered, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # ONE looks for its configuration there: none
    good = copy_session(rendered, tmp_path / "data", "good")
    empty = copy_session(rendered, tmp_path / "data", "empty")
    for video in (empty / "raw_video_data").iterdir():
        video.unlink()
    db = tmp_path / "queue.sqlite"
    assert main(["-q", "queue", "add", str(tmp_path / "data"), "--db", str(db)]) == 0  # a root: sessions with videos to process
    assert [t.session for t in Queue(db).tasks()] == [str(good)]
    assert main(["-q", "queue", "add", str(empty), "--db", str(db)]) == 0  # named: queued as it is
    unknown = "0b5f3e6c-0000-4000-8000-000000000001"  # an eid, but no ONE to look it up
    assert main(["-q", "queue", "add", unknown, "--db", str(db), "--max-attempts", "2"]) == 0

    # main() set logging up as the command line does: a quiet console, and INFO still reaches the task logs
    outcomes = run_queue(n_sessions=10, db=db, tracker="truth", cameras=("body",), max_attempts=2)

    assert sorted((Path(o.session).parts[-3], o.status) for o in outcomes if Path(o.session).is_absolute()) == [("empty", "Empty"), ("good", "Complete")]
    failed = [o for o in outcomes if o.session == unknown]
    assert [o.status for o in failed] == ["Errored", "Errored"] and f"{unknown}: no such session folder, and no ONE database" in failed[0].error
    tasks = {t.session: t for t in Queue(db).tasks()}
    task = tasks[str(good)]
    assert task.version and task.seconds > 0 and "body" in task.log
    summary = json.loads(task.summary)
    assert summary["cameras"]["body"]["status"] == "Complete" and summary["eid"]
    assert tasks[unknown].attempts == 2 and tasks[unknown].status == "Errored"


def _levels() -> list[int]:
    """The levels of the iblvideo logger and of its handlers."""
    logger = logging.getLogger("iblvideo")
    return [logger.level, *(handler.level for handler in logger.handlers)]


def test_task_logs_hold_their_own_threads_records_and_no_level_changes(rendered, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="iblvideo")  # what the command line sets
    sessions = [copy_session(rendered, tmp_path, f"mouse_{k}") for k in range(4)]
    before = _levels()
    with ThreadPoolExecutor(2) as pool:  # as a Dask worker with two threads runs tasks
        outcomes = list(pool.map(lambda session: execute(str(session), Options(("body",), "truth")), sessions))
    assert _levels() == before
    for outcome, session in zip(outcomes, sessions, strict=True):
        assert outcome.status == "Complete" and f"{session}: Complete" in outcome.log
        assert [other for other in sessions if str(other) in outcome.log] == [session]


def test_a_task_log_says_when_the_logger_keeps_info_out(rendered, tmp_path, caplog):
    caplog.set_level(logging.NOTSET, logger="iblvideo")  # unconfigured, as in a plain Python session
    assert not logging.getLogger("iblvideo").isEnabledFor(logging.INFO)
    before = _levels()
    outcome = execute(str(copy_session(rendered, tmp_path, "quiet")), Options(("body",), "truth"))
    assert _levels() == before and outcome.status == "Complete"
    first, *records = outcome.log.splitlines()
    assert first == "(the iblvideo logger lets only WARNING and louder through: set its level to INFO for the whole task log)"
    assert not [line for line in records if " INFO " in line]


def _outputs_are_whole(session: Path) -> None:
    """Every output reads back completely, and no temporary file is left over."""
    alf = session / "alf"
    assert not list(alf.glob(".*partial*")), list(alf.glob(".*partial*"))
    for path in alf.glob("*.npy"):
        np.load(path)
    for path in alf.glob("*.pqt"):  # the trials table is an input: empty on a session shorter than a trial
        assert len(pd.read_parquet(path)) or path.name == TRIALS
    json.loads((alf / "_iblvideo_dlc.qc.json").read_text())


def _start_worker(db: str, log: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "iblvideo", "queue", "run", "--db", db, "--tracker", "truth", "--cameras", "body", "--lease", "3"]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=open(log, "w"))


def test_two_workers_one_killed_mid_task(db_url, rendered, tmp_path):
    sessions = [copy_session(rendered, tmp_path / "data", f"mouse_{k}") for k in range(6)]
    queue = Queue(db_url)
    queue.add(str(s) for s in sessions)
    doomed, survivor = _start_worker(db_url, tmp_path / "doomed.log"), _start_worker(db_url, tmp_path / "survivor.log")
    try:
        deadline = time.monotonic() + 90
        while not (held := [t for t in queue.tasks("Started") if t.worker.endswith(f":{doomed.pid}")]):
            assert time.monotonic() < deadline and doomed.poll() is None, (tmp_path / "doomed.log").read_text()
            time.sleep(0.02)
        first_output = Path(held[0].session) / "alf" / "_ibl_bodyCamera.dlc.pqt"
        while not first_output.exists():  # kill it while it writes the session's outputs
            assert time.monotonic() < deadline, (tmp_path / "doomed.log").read_text()
            time.sleep(0.01)
        doomed.send_signal(signal.SIGKILL)
        assert survivor.wait(timeout=150) == 0, (tmp_path / "survivor.log").read_text()
    finally:
        for process in (doomed, survivor):
            process.kill()
            process.wait()

    tasks = queue.tasks()
    assert [t.status for t in tasks] == ["Complete"] * 6
    for task in tasks:
        statuses = [run.status for run in queue.runs(task.id)]
        assert statuses.count("Complete") == 1 and set(statuses) <= {"Complete", "Lost"}
    lost = [run for run in queue.runs() if run.status == "Lost"]
    assert [(run.task_id, run.worker) for run in lost] == [(held[0].id, held[0].worker)]
    one = One(cache_dir=tmp_path / "data", mode="local")
    for session in sessions:
        _outputs_are_whole(session)
        assert "ROIMotionEnergy" in one.load_object(one.path2eid(session), "bodyCamera", collection="alf")


def test_cli_lists_and_retries(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    db = str(tmp_path / "queue.sqlite")
    queue = Queue(db)
    queue.add(["a", "b"])
    queue.finish(queue.claim("w"), "Errored", 0.2, "x", error="first line\nsecond line")
    capsys.readouterr()
    assert main(["queue", "list", "--db", db]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and "Errored" in lines[0] and lines[0].endswith("a  first line") and "Waiting" in lines[1]
    assert main(["queue", "retry", "--db", db, "1"]) == 0
    assert "1 task(s)" in capsys.readouterr().out and queue.counts()["Waiting"] == 2
    assert main(["queue", "list", "--db", "postgresql://nobody@127.0.0.1:1/none"]) == 2
    assert "cannot open the queue database" in capsys.readouterr().err
    assert main(["queue", "list", "--db", "alyx"]) == 2
    assert "--db alyx: no ONE database is configured" in capsys.readouterr().err
