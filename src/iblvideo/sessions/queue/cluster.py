"""Tasks on a Dask cluster: this process claims and records, the cluster's workers run the sessions.

Each session is submitted with the resource annotation ``{"GPU": 1}``, so a worker started with
``--resources GPU=1`` (one per GPU, ``CUDA_VISIBLE_DEVICES`` set per worker) runs one session at a
time. The database is reached from this process only; the workers need the data folders, not the
queue. Leases of tasks in flight are renewed from here.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from iblvideo.errors import IblVideoError
from iblvideo.extras import needs_extra
from iblvideo.sessions.queue.db import Claim, worker_name
from iblvideo.sessions.queue.worker import Lease, Outcome, TaskQueue, execute, lease_period, record
from iblvideo.sessions.session import Options

if TYPE_CHECKING:
    from distributed import Client

log = logging.getLogger(__name__)

RESOURCES = {"GPU": 1}
CONNECT_SECONDS = 5.0  # a scheduler that is up answers in well under a second


def connect(address: str) -> Client:
    """A client of the Dask scheduler at ``address``; a one-line error if it does not answer within CONNECT_SECONDS."""
    with needs_extra("queue"):
        from distributed import Client

    try:
        return Client(address, timeout=CONNECT_SECONDS)
    except Exception as err:  # noqa: BLE001 - refused, unresolvable, timed out or not an address: one line
        reason = (str(err).splitlines() or [""])[0]
        raise IblVideoError(None, f"--scheduler {address}: cannot connect to a Dask scheduler ({type(err).__name__}: {reason})") from None


def _slots(client: Client) -> int:
    """How many sessions the cluster runs at once: its GPUs, or its workers where none declares any."""
    workers = client.scheduler_info()["workers"].values()
    gpus = sum(int(w.get("resources", {}).get("GPU", 0)) for w in workers)
    if not gpus:
        raise IblVideoError(None, "no Dask worker offers the GPU resource; start each worker with --resources GPU=1")
    return gpus


def work_on_cluster(queue: TaskQueue, client: Client, n_sessions: int, options: Options,
                    worker: str | None = None) -> list[Outcome]:
    """Claim up to ``n_sessions`` tasks, keeping every GPU of the cluster busy, and record each result."""
    with needs_extra("queue"):
        from distributed import as_completed

    worker = f"{worker or worker_name()}/dask"
    in_flight: dict[object, Claim] = {}
    pending = as_completed()
    claimed = 0

    def submit() -> bool:
        nonlocal claimed
        claim = queue.claim(worker) if claimed < n_sessions else None
        if claim is None:
            return False
        claimed += 1
        future = client.submit(execute, claim.session, options, resources=RESOURCES, pure=False,
                               key=f"iblvideo-task-{claim.id}-{claim.attempt}")
        in_flight[future] = claim
        pending.add(future)
        log.info("task %s (%s): sent to the cluster", claim.id, claim.session)
        return True

    outcomes = []
    with Lease(queue, [], lease_period(queue)) as lease:
        for _ in range(_slots(client)):
            if not submit():
                break
        lease.claims[:] = in_flight.values()
        for future in pending:
            claim = in_flight.pop(future)
            try:
                outcome = future.result()
            except Exception as err:  # noqa: BLE001 - a worker lost mid-task: the task errs and can be retried
                outcome = Outcome(claim.session, "Errored", 0.0, f"Dask: {type(err).__name__}: {err}")
            outcomes.append(record(queue, claim, outcome))
            submit()
            lease.claims[:] = in_flight.values()
    return outcomes
