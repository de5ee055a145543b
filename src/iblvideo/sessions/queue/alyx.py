"""Alyx's ``tasks`` table as the queue, read and updated through ONE's REST client (``AlyxClient``).

A task here is an Alyx task named ``iblvideo`` on a session (eid). The worker, its lease and the
attempt count live in the task's ``arguments``; the log tail, ``version`` and ``time_elapsed_secs``
in the fields Alyx has for them. Alyx's REST API offers no compare-and-set, so a claim is written
and read back, and kept only if the database holds this worker's claim; two workers writing in the
same instant can still both win. Where many workers share a queue, use the SQL queue.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from iblvideo.sessions.queue.db import LEASE_SECONDS, LOG_CHARS, MAX_ATTEMPTS, STATUSES, Claim, TaskView, check_settings, utcnow

if TYPE_CHECKING:
    from one.webclient import AlyxClient

TASK_NAME = "iblvideo"


class AlyxQueue:
    """The same operations as :class:`~iblvideo.queue.db.Queue`, on the tasks of an Alyx database."""

    def __init__(self, alyx: AlyxClient, name: str = TASK_NAME, lease_seconds: float = LEASE_SECONDS, max_attempts: int = MAX_ATTEMPTS):
        check_settings(lease_seconds, max_attempts)
        self.alyx, self.name = alyx, name
        self.lease = timedelta(seconds=lease_seconds)
        self.max_attempts = max_attempts

    def records(self, status: str | None = None) -> list[dict]:
        """This queue's Alyx task records, highest priority first, then oldest."""
        filters = {"status": status} if status else {}
        records = list(self.alyx.rest("tasks", "list", name=self.name, no_cache=True, **filters))
        return sorted(records, key=lambda task: (-(task.get("priority") or 0), task.get("datetime") or ""))

    def _patch(self, task_id: str, **data: object) -> dict:
        return self.alyx.rest("tasks", "partial_update", id=task_id, data=data)

    def add(self, eids: Iterable[str], priority: int = 0, hold: bool = False) -> list[str]:
        """Create a task for every eid that has none yet; returns the eids added."""
        known = {task["session"] for task in self.records()}
        added = []
        for eid in dict.fromkeys(map(str, eids)):
            if eid not in known:
                self.alyx.rest("tasks", "create", data={
                    "name": self.name, "session": eid, "status": "Held" if hold else "Waiting", "priority": priority,
                    "executable": "iblvideo.run_session", "arguments": {"attempts": 0},
                })
                added.append(eid)
        return added

    def _claimable(self, task: dict, now: datetime) -> bool:
        arguments = task.get("arguments") or {}
        if task["status"] == "Waiting":
            return True
        if task["status"] == "Errored":
            return arguments.get("attempts", 0) < self.max_attempts
        return task["status"] == "Started" and datetime.fromisoformat(arguments.get("lease_until") or "1970-01-01") < now

    def claim(self, worker: str) -> Claim[str] | None:
        """Take the first claimable task (see the module note on what Alyx cannot guarantee)."""
        now = utcnow()
        for task in filter(lambda t: self._claimable(t, now), self.records()):
            arguments = task.get("arguments") or {}
            attempts = arguments.get("attempts", 0)
            if attempts >= self.max_attempts:  # its worker was lost on the last attempt
                self._patch(task["id"], status="Errored", log=f"gave up after {attempts} attempts; the last worker, {arguments.get('worker')}, was lost")
                continue
            claimed = {**arguments, "worker": worker, "attempts": attempts + 1, "lease_until": (now + self.lease).isoformat()}
            self._patch(task["id"], status="Started", arguments=claimed)
            if self._holds(task["id"], worker):
                return Claim(task["id"], task["session"], worker, attempts + 1)
        return None

    def _holds(self, task_id: str, worker: str) -> dict | None:
        """The task record if ``worker`` holds it now, else None."""
        task = self.alyx.rest("tasks", "read", id=task_id, no_cache=True)
        return task if task["status"] == "Started" and (task.get("arguments") or {}).get("worker") == worker else None

    def heartbeat(self, claim: Claim[str]) -> bool:
        task = self._holds(claim.id, claim.worker)
        if task is None:
            return False
        self._patch(claim.id, arguments={**task["arguments"], "lease_until": (utcnow() + self.lease).isoformat()})
        return True

    def finish(self, claim: Claim[str], status: str, seconds: float, version: str, error: str | None = None,
               log: str = "", summary: dict | None = None) -> bool:
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        task = self._holds(claim.id, claim.worker)
        if task is None:
            return False
        arguments = {**task["arguments"], "lease_until": None, "error": error, "qc": (summary or {}).get("qc")}
        text = "\n".join(filter(None, [log, error]))[-LOG_CHARS:]
        self._patch(claim.id, status=status, log=text, version=version, time_elapsed_secs=round(seconds, 3), arguments=arguments)
        return True

    def tasks(self, status: str | None = None) -> list[TaskView]:
        """The tasks as ``iblvideo queue list`` shows them."""
        return [
            TaskView(t["id"], t["session"], t["status"], (t.get("arguments") or {}).get("attempts", 0), self.max_attempts,
                     t.get("time_elapsed_secs"), (t.get("arguments") or {}).get("error"))
            for t in self.records(status)
        ]

    def busy(self) -> int:
        return len(self.records("Started"))

    def retry(self, ids: Iterable[int | str] = (), statuses: tuple[str, ...] = ("Errored", "Held")) -> int:
        """Put Errored or Held tasks (all, or those ``ids``) back to Waiting with fresh attempts."""
        wanted = set(map(str, ids))
        count = 0
        for task in self.records():
            if task["status"] in statuses and (not wanted or task["id"] in wanted):
                self._patch(task["id"], status="Waiting", arguments={**(task.get("arguments") or {}), "attempts": 0})
                count += 1
        return count
