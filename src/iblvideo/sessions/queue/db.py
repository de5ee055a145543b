"""The task queue in a SQL database (SQLAlchemy): SQLite for one machine, PostgreSQL for many.

One row per session, with Alyx's task statuses. Claiming is a compare-and-set on a revision number,
so two workers never hold the same task, on SQLite and PostgreSQL alike. A claim is a lease that the
worker renews while it works; a worker that dies (kill -9, a lost machine) stops renewing, and once
the lease has run out the task is claimable again. Every attempt is kept in a second table. Leases
compare the workers' clocks: machines sharing a queue need synchronised clocks (NTP), which the
default lease of ten minutes leaves ample margin for.
"""
from __future__ import annotations

import json
import math
import os
import socket
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Generic, TypeVar

from iblvideo.errors import BadArgument, IblVideoError
from iblvideo.extras import needs_extra

with needs_extra("queue"):
    from sqlalchemy import DateTime, Float, ForeignKey, Integer, String, Text, Update, create_engine, event, or_, select, update
    from sqlalchemy.dialects import postgresql, sqlite
    from sqlalchemy.engine import Engine, make_url
    from sqlalchemy.exc import IntegrityError, ProgrammingError
    from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

STATUSES = ("Waiting", "Started", "Complete", "Errored", "Empty", "Held")
DEFAULT_DB = Path("iblvideo-queue.sqlite")
LEASE_SECONDS = 600.0
MAX_ATTEMPTS = 3
LOG_CHARS = 20_000  # the tail of a task's log kept in the database
SCHEMES = ("sqlite", "postgresql")  # the databases the queue runs on (sqlite:///FILE, postgresql://HOST/DB)
INTEGER_RANGE = range(-(2**31), 2**31)  # PostgreSQL's INTEGER, the narrower of the two


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def worker_name() -> str:
    """``host:pid``: unique among live workers, and says where to look."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Base(DeclarativeBase):
    pass


class Task(Base):
    """One session to process."""

    __tablename__ = "iblvideo_tasks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session: Mapped[str] = mapped_column(String(1024), unique=True)  # a session folder or an eid
    status: Mapped[str] = mapped_column(String(16), index=True, default="Waiting")
    priority: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=MAX_ATTEMPTS)
    revision: Mapped[int] = mapped_column(Integer, default=0)  # bumped on every change: the compare-and-set key
    worker: Mapped[str | None] = mapped_column(String(256), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    started: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    ended: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    log: Mapped[str | None] = mapped_column(Text, nullable=True)
    summary: Mapped[str | None] = mapped_column(Text, nullable=True)  # run_session's summary as JSON


class Run(Base):
    """One attempt at a task: who ran it, when, and how it ended (Lost: the worker's lease ran out)."""

    __tablename__ = "iblvideo_runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("iblvideo_tasks.id"), index=True)
    worker: Mapped[str] = mapped_column(String(256))
    started: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    ended: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="Started")
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


# a task's id: an integer in the SQL queue, a UUID string in Alyx
TaskId = TypeVar("TaskId", int, str)


@dataclass(frozen=True)
class Claim(Generic[TaskId]):
    """A task a worker holds: run ``session``, then report back with the same ``id`` and ``worker``."""

    id: TaskId
    session: str
    worker: str
    attempt: int


@dataclass(frozen=True)
class TaskView:
    """What a listing shows of a task, whichever queue holds it (the SQL rows have the same attributes)."""

    id: int | str
    session: str
    status: str
    attempts: int
    max_attempts: int
    seconds: float | None
    error: str | None


def _write_ahead_log(connection: sqlite3.Connection, seconds: float = 60.0) -> None:
    """Put the database in WAL mode. Workers opening a fresh database at once all try to switch it, and
    SQLite answers "locked" at once, without waiting, to all but one of them: they try again."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _sqlite_engine(url: str) -> Engine:
    engine = create_engine(url, connect_args={"timeout": 60})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # let the "begin" hook below open transactions
        _write_ahead_log(dbapi_connection)

    @event.listens_for(engine, "begin")
    def _begin(connection) -> None:
        # take the write lock up front: a read that later upgrades to a write can fail under concurrency
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _rows_changed(db: Session, statement: Update) -> int:
    # Session.execute returns a CursorResult for an UPDATE, but is typed to return a plain Result,
    # which has no rowcount (sqlalchemy#9185)
    return db.execute(statement).rowcount  # type: ignore[attr-defined]


def database_url(db: str | Path | None) -> str:
    """A SQLAlchemy URL: given as one (SQLite or PostgreSQL), else an SQLite file path (default ./iblvideo-queue.sqlite)."""
    text = str(db or os.environ.get("IBLVIDEO_QUEUE_DB") or DEFAULT_DB)
    if "://" not in text:
        return f"sqlite:///{Path(text).expanduser().resolve()}"
    scheme = text.split("://", 1)[0]
    try:
        backend = make_url(text).get_backend_name()
    except Exception:  # noqa: BLE001 - a malformed URL: said in one line below
        backend = None
    if backend not in SCHEMES:
        raise BadArgument(None, f"--db {scheme}://...: not a database the queue runs on; expected sqlite:///FILE, "
                                "postgresql://USER@HOST/DB, alyx, or an SQLite file path")
    return text.replace("postgresql://", "postgresql+psycopg://", 1) if text.startswith("postgresql://") else text


def check_settings(lease_seconds: float, max_attempts: int) -> None:
    """BadArgument unless the lease is a positive, finite number of seconds and a task gets at least one attempt."""
    if not (math.isfinite(lease_seconds) and lease_seconds > 0):
        raise BadArgument(None, f"--lease {lease_seconds!r}: a lease is a positive number of seconds (default {LEASE_SECONDS:g})")
    if not (max_attempts in INTEGER_RANGE and max_attempts >= 1):
        raise BadArgument(None, f"--max-attempts {max_attempts!r}: a task needs at least one attempt")


def check_priority(priority: int) -> None:
    if priority not in INTEGER_RANGE:
        raise BadArgument(None, f"--priority {priority!r}: a priority is an integer from {INTEGER_RANGE.start} to {INTEGER_RANGE.stop - 1}")


def task_ids(ids: Iterable[int | str]) -> list[int]:
    """The SQL queue's task ids, which are integers (the command line gives them as text)."""
    numbers = []
    for given in ids:
        try:
            numbers.append(int(given))
        except ValueError:
            raise BadArgument(None, f"task id {given!r}: not a number ('iblvideo queue list' shows the ids)") from None
    return numbers


def _create_tables(engine: Engine) -> None:
    """The queue's tables, unless they exist; a second try when another worker created them at the same moment."""
    try:
        Base.metadata.create_all(engine)
    except (IntegrityError, ProgrammingError):  # PostgreSQL: both saw no table, one lost the race to create it
        Base.metadata.create_all(engine)


class Queue:
    """Sessions to process, in a database; safe for any number of workers on any number of machines."""

    def __init__(self, db: str | Path | None = None, lease_seconds: float = LEASE_SECONDS, max_attempts: int = MAX_ATTEMPTS):
        check_settings(lease_seconds, max_attempts)
        self.url = database_url(db)
        self.lease = timedelta(seconds=lease_seconds)
        self.max_attempts = max_attempts
        try:
            with needs_extra("postgres"):  # a postgresql:// URL loads psycopg here
                self.engine = _sqlite_engine(self.url) if self.url.startswith("sqlite") else create_engine(self.url, pool_pre_ping=True)
            _create_tables(self.engine)
        except Exception as err:  # noqa: BLE001 - a wrong URL or a server that is down: one line
            raise IblVideoError(None, f"cannot open the queue database {make_url(self.url)!r}: {err.__class__.__name__}: {str(err).splitlines()[0]}") from None

    def add(self, sessions: Iterable[str], priority: int = 0, hold: bool = False) -> list[str]:
        """Queue sessions (folders or eids, as ``find_sessions`` gives them) not queued yet; returns those added.

        The unique ``session`` column decides: a session that another process queues at the same time is
        skipped here rather than failing the whole transaction."""
        check_priority(priority)
        insert = (postgresql if self.engine.dialect.name == "postgresql" else sqlite).insert
        added = []
        with Session(self.engine) as db, db.begin():
            for session in dict.fromkeys(sessions):
                row = insert(Task).values(session=session, priority=priority, max_attempts=self.max_attempts, status="Held" if hold else "Waiting")
                # RETURNING says whether the row went in: psycopg gives no row count for an INSERT
                if db.execute(row.on_conflict_do_nothing(index_elements=[Task.session]).returning(Task.id)).first() is not None:
                    added.append(session)
        return added

    def claim(self, worker: str) -> Claim[int] | None:
        """Take the next task: Waiting, Errored with attempts left, or Started by a worker whose lease ran out."""
        while True:
            with Session(self.engine) as db, db.begin():
                now = utcnow()
                task = db.scalars(
                    select(Task).where(or_(
                        Task.status == "Waiting",
                        (Task.status == "Errored") & (Task.attempts < Task.max_attempts),
                        (Task.status == "Started") & (Task.lease_until < now),
                    )).order_by(Task.priority.desc(), Task.id).limit(1)
                ).first()
                if task is None:
                    return None
                lost = task.status == "Started"
                if task.attempts >= task.max_attempts:  # lost its worker on the last attempt
                    error = f"gave up after {task.attempts} attempts; the last worker, {task.worker}, was lost"
                    if self._set(db, task, status="Errored", error=error, lease_until=None):
                        self._close_runs(db, task.id, "Lost", error)
                    continue
                if not self._set(db, task, status="Started", worker=worker, lease_until=now + self.lease,
                                 attempts=task.attempts + 1, started=now, ended=None):
                    continue  # another worker took it first
                if lost:  # only now: the task row is ours, so these runs are the dead worker's
                    self._close_runs(db, task.id, "Lost", f"{task.worker} stopped renewing its lease")
                db.add(Run(task_id=task.id, worker=worker, started=now))
                return Claim(task.id, task.session, worker, task.attempts + 1)

    @staticmethod
    def _set(db: Session, task: Task, **values: object) -> bool:
        """Compare-and-set: apply ``values`` only if nobody changed the task since it was read."""
        return _rows_changed(db, update(Task).where(Task.id == task.id, Task.revision == task.revision)
                             .values(revision=task.revision + 1, **values).execution_options(synchronize_session=False)) == 1

    @staticmethod
    def _close_runs(db: Session, task_id: int, status: str, error: str | None) -> None:
        db.execute(update(Run).where(Run.task_id == task_id, Run.ended.is_(None)).values(ended=utcnow(), status=status, error=error))

    def heartbeat(self, claim: Claim[int]) -> bool:
        """Renew the lease; False if the task is no longer this worker's."""
        with Session(self.engine) as db, db.begin():
            return _rows_changed(db, update(Task).where(Task.id == claim.id, Task.worker == claim.worker, Task.status == "Started")
                                 .values(lease_until=utcnow() + self.lease, revision=Task.revision + 1)) == 1

    def finish(self, claim: Claim[int], status: str, seconds: float, version: str, error: str | None = None,
               log: str = "", summary: dict | None = None) -> bool:
        """Record how the task ended; False (and nothing recorded) if the claim was lost meanwhile."""
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        with Session(self.engine) as db, db.begin():
            changed = _rows_changed(db, update(Task).where(Task.id == claim.id, Task.worker == claim.worker, Task.status == "Started")
                                    .values(status=status, ended=utcnow(), seconds=seconds, version=version, lease_until=None,
                                            error=error, log=log[-LOG_CHARS:], summary=json.dumps(summary) if summary else None,
                                            revision=Task.revision + 1))
            if changed != 1:
                return False
            self._close_runs(db, claim.id, status, error)
            return True

    def retry(self, ids: Iterable[int | str] = (), statuses: tuple[str, ...] = ("Errored", "Held")) -> int:
        """Put Errored or Held tasks (all, or those ``ids``) back to Waiting with fresh attempts; returns how many."""
        numbers = task_ids(ids)
        with Session(self.engine) as db, db.begin():
            query = update(Task).where(Task.status.in_(statuses))
            if numbers:
                query = query.where(Task.id.in_(numbers))
            return _rows_changed(db, query.values(status="Waiting", attempts=0, revision=Task.revision + 1))

    def tasks(self, status: str | None = None) -> list[Task]:
        """Every task (or those in ``status``), oldest first, detached from the database."""
        with Session(self.engine, expire_on_commit=False) as db:
            query = select(Task).order_by(Task.id)
            if status:
                query = query.where(Task.status == status)
            return list(db.scalars(query))

    def runs(self, task_id: int | None = None) -> list[Run]:
        """Every attempt (or those of one task), in order."""
        with Session(self.engine, expire_on_commit=False) as db:
            query = select(Run).order_by(Run.id)
            if task_id is not None:
                query = query.where(Run.task_id == task_id)
            return list(db.scalars(query))

    def busy(self) -> int:
        """Number of tasks that workers hold now."""
        with Session(self.engine) as db:
            return len(db.scalars(select(Task.id).where(Task.status == "Started")).all())

    def counts(self) -> dict[str, int]:
        """Number of tasks per status."""
        found = {status: 0 for status in STATUSES}
        for task in self.tasks():
            found[task.status] += 1
        return found

    def close(self) -> None:
        self.engine.dispose()
