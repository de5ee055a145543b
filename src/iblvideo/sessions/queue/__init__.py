"""Queues of sessions: ``run_queue()`` and ``iblvideo queue add|list|run|retry``.

Tasks live in a SQL database (:mod:`.db`: SQLite by default, PostgreSQL for several machines) or in
Alyx's ``tasks`` table (:mod:`.alyx`). Workers run them here, one after another (:mod:`.worker`), or
on a Dask cluster, one per GPU (:mod:`.cluster`).
"""
from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from iblvideo.errors import BadArgument
from iblvideo.io.alf import CAMERA_NAMES, QC_REPORT, SessionPaths, session_root
from iblvideo.io.one import as_eid, as_folder, check_in_root, data_root
from iblvideo.sessions.queue.db import LEASE_SECONDS, MAX_ATTEMPTS, STATUSES, Claim, Queue, check_settings
from iblvideo.sessions.queue.worker import Outcome, TaskQueue, work
from iblvideo.sessions.session import Options
from iblvideo.tracking.registry import TRUTH

if TYPE_CHECKING:
    from distributed import Client
    from one.api import One

__all__ = ["STATUSES", "Claim", "Outcome", "Queue", "add_once", "find_sessions", "open_queue", "run_queue"]

log = logging.getLogger(__name__)

# the two levels under a subject folder: <yyyy-mm-dd>/<nnn>
SESSION_LEVELS = (re.compile(r"\d{4}-\d{2}-\d{2}"), re.compile(r"\d{1,3}"))


def needs_processing(session: Path) -> bool:
    """Whether a session has a raw video without a pose table (of any tracker), or no QC report yet."""
    from iblvideo.tracking.registry import TRACKERS

    paths = SessionPaths(session)
    cameras = [c for c in CAMERA_NAMES if paths.raw_video(c).exists()]
    if not cameras:
        return False
    tracked = [c for c in cameras if any(paths.pose(c, entry.attribute).exists() for entry in TRACKERS.values())]
    return not paths.session_file(QC_REPORT).exists() or tracked != cameras


def _subfolders(folder: Path, names: re.Pattern | None = None) -> list[Path]:
    """The folders in ``folder`` (those whose name matches ``names``); none where it cannot be read."""
    try:
        with os.scandir(folder) as entries:
            found = [Path(e.path) for e in entries if (names is None or names.fullmatch(e.name)) and e.is_dir()]
    except OSError:
        return []
    return sorted(found)


def root_sessions(root: Path) -> list[Path]:
    """The sessions of a data root, at ``<subject>/<date>/<nnn>`` or ``<lab>/Subjects/<subject>/<date>/<nnn>`` and no deeper."""
    top = _subfolders(root)
    folders = [*top, *(subject for lab in top for subject in _subfolders(lab / "Subjects"))]
    for names in SESSION_LEVELS:
        folders = [child for folder in folders for child in _subfolders(folder, names)]
    return [folder.resolve() for folder in folders]


def _entry(item: str | Path, one: One | None) -> list[str]:
    """The queue entries of one item: a session folder, the sessions of a data root that lack outputs, or an eid."""
    text = str(item)
    if (path := as_folder(text)) is not None:
        if (session := session_root(path)) is not None:
            return [str(check_in_root(one, session))]
        if not (sessions := root_sessions(path)):
            raise BadArgument(None, f"{text!r}: a folder with no session in it (sessions are <subject>/<yyyy-mm-dd>/<nnn> "
                                    "or <lab>/Subjects/<subject>/<yyyy-mm-dd>/<nnn> under a data root)")
        return [str(check_in_root(one, s)) for s in sessions if needs_processing(s)]
    if (eid := as_eid(text)) is None:
        raise BadArgument(None, f"{text!r}: neither a session folder, a data root nor an eid (a UUID)")
    # an eid stays one (resolved when the task runs) unless a local ONE is given: then it must list it
    if (entry := _folder_of(eid, _resolvers(one, []))) == eid and one is not None and one.offline:
        raise BadArgument(None, f"{text!r}: an eid that the ONE tables of {one.cache_dir} do not list")
    return [entry]


def find_sessions(items: Iterable[str | Path], one: One | None = None) -> list[str]:
    """Queue entries for ``items``: a session folder as itself, a data root as its sessions without outputs, an eid
    as its folder where ``one`` is a local ONE that lists it, else as the eid; BadArgument for anything else.

    Every item is checked before any is returned: one bad item queues nothing. A session named twice is listed once."""
    entries: dict[str, str] = {}
    for item in items:
        for entry in _entry(item, one):
            if entry in entries:
                log.warning("%s: %s, already queued as %s", item, entry, entries[entry])
            entries.setdefault(entry, str(item))
    return list(entries)


def _resolvers(one: One | None, keys: list[str]) -> list[One]:
    """Local ONEs that can name an eid's folder: ``one``, else those of the data roots of the folders among ``keys``
    that already have ONE tables (read, never built here)."""
    if one is not None:
        return [one] if one.offline else []
    if not any(as_eid(key) for key in keys):
        return []
    from one.api import One

    roots = {data_root(Path(key)) for key in keys if Path(key).is_absolute() and session_root(key) == Path(key)}
    return [One(cache_dir=root, mode="local") for root in sorted(roots) if (root / "sessions.pqt").exists()]


def _folder_of(key: str, ones: list[One]) -> str:
    """A queue entry as a session folder where one of ``ones`` lists its eid, else as it is."""
    if (eid := as_eid(key)) is not None:
        for one in ones:
            if (folder := one.eid2path(eid)) is not None:
                return str(Path(folder).resolve())
    return key


def add_once(queue: TaskQueue, entries: Iterable[str], one: One | None = None, priority: int = 0, hold: bool = False) -> list[str]:
    """Queue ``entries`` (from :func:`find_sessions`) that have no task yet, whichever way the task names its session.

    Eids, new or queued (before this check existed, or without a local ONE), are compared as their folders
    wherever a local ONE lists them: ``one``, or the tables of the data roots of the folders involved.
    Returns the entries added; the others are logged."""
    entries, tasks = list(entries), queue.tasks()
    ones = _resolvers(one, [*entries, *(task.session for task in tasks)])
    queued = {_folder_of(task.session, ones): task for task in tasks}
    fresh: dict[str, str] = {}
    for entry in entries:
        key = _folder_of(entry, ones)
        if (task := queued.get(key)) is not None:
            log.warning("%s: already queued as task %s (%s)", entry, task.id, task.session)
        elif key in fresh:
            log.warning("%s: %s, already queued as %s", entry, key, fresh[key])
        else:
            fresh[key] = entry
    return queue.add(list(fresh), priority=priority, hold=hold)


def open_queue(db: str | Path | None = None, lease_seconds: float = LEASE_SECONDS, max_attempts: int = MAX_ATTEMPTS) -> TaskQueue:
    """``alyx``: the tasks of the Alyx database ONE is configured for; else a SQL queue (URL or SQLite file)."""
    if str(db) != "alyx":
        return Queue(db, lease_seconds=lease_seconds, max_attempts=max_attempts)
    from iblvideo.io.one import default_one
    from iblvideo.sessions.queue.alyx import AlyxQueue

    return AlyxQueue(default_one("--db alyx: no ONE database is configured (run ONE.setup())").alyx, lease_seconds=lease_seconds, max_attempts=max_attempts)


def run_queue(n_sessions: int = 10, db: str | Path | TaskQueue | None = None, one: One | None = None,
              cameras: tuple[str, ...] | None = None, tracker: str = "dlc", force: bool = False, weights: str | Path | None = None,
              device: str = "cpu", client: Client | None = None, lease_seconds: float = LEASE_SECONDS,
              max_attempts: int = MAX_ATTEMPTS, worker: str | None = None, pawstates: str | Path | None = None) -> list[Outcome]:
    """Run up to ``n_sessions`` queued sessions here, or on the Dask cluster of ``client``; returns how each ended.

    ``db`` is a queue (a :class:`Queue` or an :class:`~.alyx.AlyxQueue`), ``alyx``, a database URL,
    or an SQLite file (default ``./iblvideo-queue.sqlite``, or ``$IBLVIDEO_QUEUE_DB``). ``pawstates``: the Lightning
    Action set for the paw states after Lightning Pose (see :func:`~iblvideo.sessions.session.run_session`).
    """
    check_settings(lease_seconds, max_attempts)
    if tracker != TRUTH:
        from iblvideo.tracking.run import check_arguments

        check_arguments(tracker, weights, device)
    queue = open_queue(db, lease_seconds, max_attempts) if db is None or isinstance(db, (str, Path)) else db
    options = Options(tuple(cameras) if cameras else None, tracker, None if weights is None else str(weights), device, force,
                      None if pawstates is None else str(pawstates))
    if client is None:
        return work(queue, n_sessions, options, one=one, worker=worker)
    from iblvideo.sessions.queue.cluster import work_on_cluster

    return work_on_cluster(queue, client, n_sessions, options, worker=worker)
