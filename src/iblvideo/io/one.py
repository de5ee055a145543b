"""Sessions through the ONE API: cache tables of a local data folder, eids, downloads and registration.

A folder of ALF sessions gets ONE cache tables (``sessions.pqt``, ``datasets.pqt``) on first use;
after that they are only ever updated, never rebuilt, because ONE draws the eids of a fresh build
from a random namespace and rebuilding would change every session's eid. Every update holds a lock
on the data folder and replaces each table file atomically, so workers on many sessions of one
folder neither lose each other's records nor leave a half-written table.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from iblvideo.errors import IblVideoError
from iblvideo.extras import needs_extra
from iblvideo.io import atomic

if TYPE_CHECKING:
    from one.api import One

log = logging.getLogger(__name__)

LOCK_NAME = ".iblvideo-cache.lock"
SESSIONS = "sessions.pqt"  # the table whose presence marks a folder indexed
_TABLES = "one-tables"  # the tables are written in temporaries of this name: .one-tables.partial-<pid>-...
# ids of the sessions and datasets added here: stable per relative path
_NAMESPACE = uuid.UUID("5f1d3a0e-7c1b-4e0a-9c55-2b8f4d6e9a10")


def data_root(session: Path) -> Path:
    """The folder that holds ``session`` as ``[lab/Subjects/]subject/date/number``."""
    with needs_extra("sessions"):
        from one.alf.path import get_alf_path

    depth = len(Path(get_alf_path(session)).parts)
    return session.parents[depth - 1]


def as_folder(text: str) -> Path | None:
    """``text`` as an existing folder, or None: not one, empty, or not even a possible path (too long, a NUL in it)."""
    path = Path(text).expanduser()
    try:
        return path if text.strip() and path.is_dir() else None
    except (OSError, ValueError):
        return None


def as_eid(text: str) -> str | None:
    """``text`` as an eid in UUID's canonical spelling (lower case, hyphens), or None if it is not a UUID."""
    try:
        return str(uuid.UUID(text.strip()))
    except ValueError:
        return None


def check_in_root(one: One | None, session: Path) -> Path:
    """``session``, if it is a session of the local ONE ``one`` (under its data root) or no local ONE is given."""
    if one is not None and one.offline:
        root, own = Path(one.cache_dir).resolve(), data_root(session)
        if own != root:
            raise IblVideoError(session, f"not a session of the data root {root} (--root), but of {own}; "
                                         "pass its own root, or none")
    return session


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    """Hold an exclusive lock on the cache tables of ``root``; each holder opens the file itself, so threads exclude each other too."""
    with open(root / LOCK_NAME, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def _tables_folder(root: Path) -> Iterator[Path]:
    """A fresh folder to write tables in, whose tables then replace those of ``root``.

    It is named as atomic's temporaries, so that a killed run's is known as one. The sessions table
    moves last: a kill between two renames leaves the sessions of the old tables (or none, and the
    folder is indexed again), so no session is listed without its datasets."""
    with atomic.scratch_dir(root / _TABLES) as tmp:
        yield tmp
        for table in sorted(tmp.glob("*.pqt"), key=lambda table: table.name == SESSIONS):
            os.replace(table, root / table.name)


def local_one(root: str | Path) -> One:
    """ONE in local mode on a folder of ALF sessions, indexing the folder first if it has no tables."""
    with needs_extra("sessions"):
        from one.alf.cache import make_parquet_db
        from one.api import One

    root = Path(root).resolve()
    if not root.is_dir():
        raise IblVideoError(root, "no such data folder")
    with _locked(root):
        atomic.remove_stale(root / _TABLES)  # a killed run's table folder (a live one's is being written)
        # earlier versions wrote their tables in .one-tables-<random> while holding this lock: one found
        # under the lock is a killed run's
        for leftover in root.glob(f".{_TABLES}-*"):
            atomic.discard(leftover)
        if not (root / SESSIONS).exists():
            log.info("%s: no ONE cache tables; indexing the folder", root)
            with _tables_folder(root) as tmp:
                make_parquet_db(root, out_dir=tmp)
        try:
            return One(cache_dir=root, mode="local")
        # pyarrow's ArrowInvalid is a ValueError; a folder in a table's place is a TypeError, missing columns a KeyError
        except (OSError, ValueError, TypeError, KeyError) as err:
            raise IblVideoError(root, f"unreadable ONE cache tables ({type(err).__name__}: {str(err).splitlines()[0]}); "
                                      "delete sessions.pqt and datasets.pqt to index the folder again") from None


def default_one(unconfigured: str) -> One:
    """The ONE that the user configured (``ONE.setup``); the one-line error ``unconfigured`` when there is none."""
    with needs_extra("sessions"):
        import one.params

    try:
        configured = one.params.get_default_client() is not None
    except OSError:  # no home folder for ONE's parameters
        configured = False
    if not configured:
        raise IblVideoError(None, unconfigured)
    from one.api import ONE

    return ONE(silent=True)


def file_md5(path: Path) -> str:
    """MD5 of a file, read in blocks (raw videos can be gigabytes)."""
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def session_records(session: Path, eid: str, paths: list[Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """ONE ``sessions`` and ``datasets`` rows for files of a session (md5 included: ONE checks it)."""
    from one.alf.path import session_path_parts

    lab, subject, date, number = session_path_parts(session, as_dict=False, assert_valid=True)
    sessions = pd.DataFrame(
        {"lab": [lab or ""], "subject": [subject], "date": [pd.Timestamp(date).date()], "number": [int(number)],
         "task_protocol": [""], "projects": [""]},
        index=pd.Index([uuid.UUID(eid)], name="id"),  # ONE keeps ids as UUID objects in memory
    )
    rows = []
    for path in paths:
        rel = Path(path).relative_to(session).as_posix()
        rows.append({
            "eid": uuid.UUID(eid), "id": uuid.uuid5(_NAMESPACE, f"{eid}/{rel}"), "rel_path": rel,
            "file_size": path.stat().st_size, "hash": file_md5(path),
            "exists": True, "qc": "NOT_SET",
        })
    return sessions, pd.DataFrame(rows).set_index(["eid", "id"])


def _merge(one: One, sessions: pd.DataFrame, datasets: pd.DataFrame) -> None:
    from one.alf.cache import merge_tables

    # a record for a file already listed (a rerun) replaces it: same session and relative path
    existing = one._cache["datasets"]
    if not existing.empty:
        known = existing.reset_index().set_index(["eid", "rel_path"])["id"]
        keys = list(zip(datasets.index.get_level_values("eid"), datasets["rel_path"], strict=True))
        ids = [known.get(key, default) for key, default in zip(keys, datasets.index.get_level_values("id"), strict=True)]
        datasets = datasets.set_axis(pd.MultiIndex.from_arrays([datasets.index.get_level_values("eid"), ids], names=["eid", "id"]))
    fresh_sessions = sessions[~sessions.index.isin(one._cache["sessions"].index)]
    merge_tables(one._cache, sessions=fresh_sessions, datasets=datasets)


def register_local(one: One, session: Path, eid: str, paths: list[Path]) -> None:
    """Add ``paths`` (files of ``session``) to the local cache tables on disk and in ``one``."""
    from one.api import One

    sessions, datasets = session_records(session, eid, paths)
    root = Path(one.cache_dir)
    with _locked(root):
        # merge into the tables as they are on disk now: other workers may have added records
        current = One(cache_dir=root, mode="local")
        _merge(current, sessions, datasets)
        with _tables_folder(root) as tmp:
            current.save_cache(save_dir=tmp, clobber=True)
    _merge(one, sessions, datasets)


def session_eid(one: One, session: Path) -> str:
    """The eid of ``session``; a session the local tables do not list yet is added to them first."""
    from one.alf.path import ALFPath, get_alf_path

    eid = one.path2eid(session)
    if eid is not None:
        return str(eid)
    if not one.offline:
        raise IblVideoError(session, "the ONE database has no such session")
    eid = str(uuid.uuid5(_NAMESPACE, get_alf_path(session)))
    register_local(one, session, eid, list(ALFPath(session).iter_datasets(recursive=True)))
    return eid


def register_remote(one: One, paths: list[Path]) -> list[Path]:
    """Register on the Alyx database ``one`` talks to those of ``paths`` that Alyx has a dataset type and a
    data format for; the others stay local, named in one log line. Returns the files registered."""
    from one.registration import RegistrationClient

    client = RegistrationClient(one)
    # ONE's own filter (extension, then exactly one matching dataset type), which would drop files silently
    accepted, *_ = client.prepare_files([str(p) for p in paths])
    kept = {Path(session, rel) for session, files in accepted.items() for rel in files}
    registered = [p for p in paths if Path(p) in kept]
    local = [p for p in paths if Path(p) not in kept]
    if local:
        log.warning("kept local, not registered on Alyx (no dataset type or data format there for them): %s", ", ".join(p.name for p in local))
    if registered:
        client.register_files(file_list=[str(p) for p in registered], server_only=False)
    return registered


def update_alyx_qc(one: One, eid: str, extended_qc: dict) -> str:
    """Merge ``extended_qc`` into the Alyx session's and raise its QC field to the worst namespace outcome, as ibllib's
    ``QC.update_extended_qc`` and ``QC.update`` do (a worse outcome already there stays); returns the session's QC now."""
    from one.alf.spec import QC

    one.alyx.json_field_update(endpoint="sessions", uuid=eid, field_name="extended_qc", data=extended_qc)
    # keys without a leading underscore are namespaces (dlcLeft, ...), each holding its camera's aggregate
    outcome = max((QC.validate(v) for k, v in extended_qc.items() if not k.startswith("_")), default=QC.NOT_SET)
    current = QC.validate(one.alyx.rest("sessions", "read", id=eid, no_cache=True)["qc"])
    if outcome > current:
        current = QC.validate(one.alyx.rest("sessions", "partial_update", id=eid, data={"qc": outcome.name})["qc"])
    return current.name


def listed_cameras(one: One, eid: str) -> list[str]:
    """Cameras whose raw video ONE lists for the session, each downloaded first when ONE talks to a database."""
    cameras = []
    for name in one.list_datasets(eid, collection="raw_video_data", filename="_iblrig_*Camera.raw.*"):
        cameras.append(Path(name).name[len("_iblrig_"):].split("Camera.")[0])
        if one.offline:
            continue
        try:
            one.load_dataset(eid, Path(name).name, collection="raw_video_data", download_only=True)
        except Exception as err:  # noqa: BLE001 - the camera then fails on its missing video, with the reason logged here
            log.warning("%s: could not download %s: %s", eid, name, err)
    return cameras
