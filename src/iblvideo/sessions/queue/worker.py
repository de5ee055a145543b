"""Workers: claim a task, run its session with the lease kept alive, record how it ended."""
from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from iblvideo import __version__
from iblvideo.errors import IblVideoError
from iblvideo.io.alf import SessionPaths
from iblvideo.io.atomic import PARTIAL, discard
from iblvideo.sessions.queue.db import Claim, worker_name
from iblvideo.sessions.session import Options, run_session

if TYPE_CHECKING:
    from one.api import One

log = logging.getLogger(__name__)

LOG_LINES = 200


class TaskQueue(Protocol):
    """What a worker needs from a queue: the SQL queue and the Alyx queue both provide it."""

    lease: timedelta

    def add(self, sessions: Iterable[str], priority: int = 0, hold: bool = False) -> list[str]: ...

    def claim(self, worker: str) -> Claim | None: ...

    def heartbeat(self, claim: Claim) -> bool: ...

    def finish(self, claim: Claim, status: str, seconds: float, version: str, error: str | None = None,
               log: str = "", summary: dict | None = None) -> bool: ...

    def busy(self) -> int: ...

    def tasks(self, status: str | None = None) -> list: ...

    def retry(self, ids: Iterable[int | str] = ()) -> int: ...


@dataclass
class Outcome:
    """How one task ended, as a queue records it."""

    session: str
    status: str
    seconds: float
    error: str | None = None
    log: str = ""
    summary: dict | None = None


class _ThreadLog(logging.Handler):
    """The last lines that iblvideo logged from one thread (Dask may run several tasks in one process)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.thread = threading.get_ident()
        self.lines: collections.deque[str] = collections.deque(maxlen=LOG_LINES)
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S"))

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.lines.append(self.format(record))


def remove_partials(session: Path) -> None:
    """Delete temporary files that a killed worker left in a session it held (they are never outputs)."""
    for tmp in SessionPaths(session).alf.glob(f".*{PARTIAL}*"):
        log.info("removing %s, left by an interrupted run", tmp)
        discard(tmp)


def execute(session: str, options: Options, one: One | None = None) -> Outcome:
    """Run one session and describe how it ended; never raises for a failed session.

    The outcome's log holds the INFO and louder records that the ``iblvideo`` logger let through from
    this thread while the session ran. Which those are is the application's choice (the command line
    sets INFO): no level is changed here, since other threads of the process log through the same logger.
    """
    handler = _ThreadLog()
    logger = logging.getLogger("iblvideo")
    note = [] if logger.isEnabledFor(logging.INFO) else [(
        f"(the iblvideo logger lets only {logging.getLevelName(logger.getEffectiveLevel())} and louder through: "
        "set its level to INFO for the whole task log)")]
    logger.addHandler(handler)
    start = time.perf_counter()
    try:
        if Path(session).is_dir():
            remove_partials(Path(session))
        result = run_session(session, one=one, **asdict(options))
        outcome = Outcome(session, result.status, result.seconds, result.error, summary=result.to_json())
    except Exception as err:
        log.error("%s: %s", session, err, exc_info=not isinstance(err, IblVideoError))
        outcome = Outcome(session, "Errored", time.perf_counter() - start, f"{type(err).__name__}: {err}")
    finally:
        logger.removeHandler(handler)
    outcome.log = "\n".join([*note, *handler.lines])
    return outcome


class Lease:
    """Renews a claim in the background, at a third of the lease, until stopped."""

    def __init__(self, queue: TaskQueue, claims: list[Claim], period: float):
        self.queue, self.claims, self.period = queue, claims, period
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, daemon=True, name="iblvideo-lease")

    def _renew(self) -> None:
        while not self._stop.wait(self.period):
            for claim in list(self.claims):
                try:
                    if not self.queue.heartbeat(claim):
                        log.warning("task %s (%s): claim lost; its result will not be recorded", claim.id, claim.session)
                except Exception as err:  # noqa: BLE001 - a database blip: the next beat tries again
                    log.warning("task %s: lease renewal failed: %s", claim.id, err)

    def __enter__(self) -> Lease:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def lease_period(queue: TaskQueue) -> float:
    return queue.lease.total_seconds() / 3


def record(queue: TaskQueue, claim: Claim, outcome: Outcome) -> Outcome:
    if not queue.finish(claim, outcome.status, outcome.seconds, __version__, outcome.error, outcome.log, outcome.summary):
        log.warning("task %s (%s) was claimed by another worker meanwhile; its %s result is not recorded", claim.id, claim.session, outcome.status)
    log.info("task %s (%s): %s in %.1f s", claim.id, claim.session, outcome.status, outcome.seconds)
    return outcome


def poll_period(queue: TaskQueue) -> float:
    """How often an idle worker looks again while other workers hold tasks."""
    return min(queue.lease.total_seconds() / 4, 30.0)


def work(queue: TaskQueue, n_sessions: int, options: Options, one: One | None = None, worker: str | None = None) -> list[Outcome]:
    """Claim and run up to ``n_sessions`` tasks, one at a time, until the queue is drained.

    While other workers still hold tasks the worker waits rather than leaving: if one of them dies,
    its task comes back once its lease has run out, and somebody has to be there to take it.
    """
    worker = worker or worker_name()
    outcomes: list[Outcome] = []
    while len(outcomes) < n_sessions:
        claim = queue.claim(worker)
        if claim is None:
            if not queue.busy():
                break
            time.sleep(poll_period(queue))
            continue
        log.info("task %s (%s): attempt %d by %s", claim.id, claim.session, claim.attempt, worker)
        with Lease(queue, [claim], lease_period(queue)):
            outcome = execute(claim.session, options, one)
        outcomes.append(record(queue, claim, outcome))
    return outcomes
