"""Queues of sessions: ``run_queue()`` and ``iblvideo queue add|list|run|retry``.

Tasks live in a SQL database (:mod:`.db`: SQLite by default, PostgreSQL for several machines) or in
Alyx's ``tasks`` table (:mod:`.alyx`). Workers run them here, one after another (:mod:`.worker`), or
on a Dask cluster, one per GPU (:mod:`.cluster`).
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from iblvideo.extras import needs_extra
from iblvideo.io.alf import CAMERA_NAMES, QC_REPORT, SessionPaths, session_root
from iblvideo.sessions.queue.db import LEASE_SECONDS, MAX_ATTEMPTS, STATUSES, Claim, Queue
from iblvideo.sessions.queue.worker import Outcome, TaskQueue, work
from iblvideo.sessions.session import Options

if TYPE_CHECKING:
    from distributed import Client
    from one.api import One

__all__ = ["STATUSES", "Claim", "Outcome", "Queue", "find_sessions", "open_queue", "run_queue"]


def needs_processing(session: Path) -> bool:
    """Whether a session has a raw video without a pose table (of any tracker), or no QC report yet."""
    from iblvideo.tracking.registry import TRACKERS

    paths = SessionPaths(session)
    cameras = [c for c in CAMERA_NAMES if paths.raw_video(c).exists()]
    if not cameras:
        return False
    tracked = [c for c in cameras if any(paths.pose(c, entry.attribute).exists() for entry in TRACKERS.values())]
    return not paths.session_file(QC_REPORT).exists() or tracked != cameras


def find_sessions(items: Iterable[str | Path]) -> Iterator[str]:
    """Queue entries for ``items``: a session folder as itself, a data root as its sessions without outputs, an eid as is."""
    with needs_extra("queue"):
        from one.alf.io import iter_sessions

    for item in items:
        path = Path(item).expanduser()
        if not path.is_dir():
            yield str(item)  # an eid, resolved by ONE when the task runs
        elif (session := session_root(path)) is not None:
            yield str(session)
        else:
            yield from (str(Path(s).resolve()) for s in iter_sessions(path) if needs_processing(Path(s)))


def open_queue(db: str | Path | None = None, lease_seconds: float = LEASE_SECONDS, max_attempts: int = MAX_ATTEMPTS) -> TaskQueue:
    """``alyx``: the tasks of the Alyx database ONE is configured for; else a SQL queue (URL or SQLite file)."""
    if str(db) != "alyx":
        return Queue(db, lease_seconds=lease_seconds, max_attempts=max_attempts)
    from iblvideo.io.one import default_one
    from iblvideo.sessions.queue.alyx import AlyxQueue

    return AlyxQueue(default_one("--db alyx: no ONE database is configured (run ONE.setup())").alyx, lease_seconds=lease_seconds, max_attempts=max_attempts)


def run_queue(n_sessions: int = 10, db: str | Path | TaskQueue | None = None, one: One | None = None,
              cameras: tuple[str, ...] | None = None, tracker: str = "dlc", force: bool = False, weights: str = "demo",
              device: str = "cpu", client: Client | None = None, lease_seconds: float = LEASE_SECONDS,
              max_attempts: int = MAX_ATTEMPTS, worker: str | None = None) -> list[Outcome]:
    """Run up to ``n_sessions`` queued sessions here, or on the Dask cluster of ``client``; returns how each ended.

    ``db`` is a queue (a :class:`Queue` or an :class:`~.alyx.AlyxQueue`), ``alyx``, a database URL,
    or an SQLite file (default ``./iblvideo-queue.sqlite``, or ``$IBLVIDEO_QUEUE_DB``).
    """
    queue = open_queue(db, lease_seconds, max_attempts) if db is None or isinstance(db, (str, Path)) else db
    options = Options(tuple(cameras) if cameras else None, tracker, str(weights), device, force)
    if client is None:
        return work(queue, n_sessions, options, one=one, worker=worker)
    from iblvideo.sessions.queue.cluster import work_on_cluster

    return work_on_cluster(queue, client, n_sessions, options, worker=worker)
