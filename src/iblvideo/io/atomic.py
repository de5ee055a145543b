"""Writes that never leave a half-written file behind: write a temporary sibling, rename when complete.

A temporary is created exclusively (never through a link or over an existing name) under an
unpredictable name that still tells what it is: ``.<output name>.partial-<pid>-<host>-<random>``.
Each write first removes the leftovers of its own output name whose process is gone (a killed run's),
and any failure to write becomes one line naming the folder and the problem.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import re
import secrets
import shutil
import socket
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

from iblvideo.errors import IblVideoError

log = logging.getLogger(__name__)
PARTIAL = ".partial-"
_NAME_KEPT = 200  # of the output's name in a temporary's: the whole name stays under 255 bytes
_LEFTOVER = re.compile(r"(?P<pid>\d+)(?:-(?P<host>[0-9a-f]{8})-[0-9a-f]+)?")  # old leftovers: only the pid


def _host() -> str:
    """Eight hex digits naming this machine: a pid is only known dead on the machine that ran it."""
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def _prefix(path: Path) -> str:
    return f".{path.name[:_NAME_KEPT]}{PARTIAL}"


def _gone(pid: int) -> bool:
    """Whether no process ``pid`` runs on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # someone else's process
        return False
    return False


def _stale_partials(path: str | Path) -> list[Path]:
    """Temporaries of output ``path`` left by processes of this machine that are gone."""
    path = Path(path)
    prefix, host = _prefix(path), _host()
    try:
        names = [entry.name for entry in os.scandir(path.parent) if entry.name.startswith(prefix)]
    except OSError:
        return []
    stale = []
    for name in names:
        match = _LEFTOVER.fullmatch(name[len(prefix):])
        if match and match["host"] in (None, host) and _gone(int(match["pid"])):
            stale.append(path.parent / name)
    return stale


def discard(tmp: Path) -> None:
    """Remove a temporary file, folder or planted link (a link itself, never what it points to); errors ignored."""
    with contextlib.suppress(OSError):
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink()


def _write_error(folder: Path, name: str, err: OSError) -> IblVideoError:
    reason = err.strerror or str(err) or type(err).__name__
    if err.errno in (errno.EACCES, errno.EPERM):
        reason += " (the folder cannot be written to)"
    return IblVideoError(folder, f"cannot write {name}: {reason}")


def _create(path: Path, folder: bool) -> tuple[Path, os.stat_result]:
    """A new temporary file or folder beside ``path``, created exclusively, with its stat."""
    for _ in range(100):
        tmp = path.with_name(f"{_prefix(path)}{os.getpid()}-{_host()}-{secrets.token_hex(6)}")
        try:
            if folder:
                os.mkdir(tmp, 0o777)  # mkdir never follows a link: an existing name fails
                return tmp, os.lstat(tmp)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
        except FileExistsError:
            continue
        try:
            return tmp, os.fstat(fd)
        finally:
            os.close(fd)
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(path))


def _ours(tmp: Path, created: os.stat_result) -> bool:
    """Whether ``tmp`` is still the file or folder created for the write (not swapped for a link or another file)."""
    now = os.lstat(tmp)
    return (now.st_dev, now.st_ino, stat.S_IFMT(now.st_mode)) == (created.st_dev, created.st_ino, stat.S_IFMT(created.st_mode))


@contextlib.contextmanager
def _temporary(path: Path, folder: bool) -> Iterator[tuple[Path, os.stat_result]]:
    """Stale temporaries of ``path`` removed, a fresh one created; it is removed however the block ends.

    An OSError of the block (a full disk, a read-only folder) becomes one IblVideoError naming the folder."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError as err:
        raise IblVideoError(path.parent, f"is a file, not a folder; cannot write {path.name} in it") from err
    except OSError as err:
        raise _write_error(path.parent, path.name, err) from err
    remove_stale(path)
    try:
        tmp, created = _create(path, folder)
    except OSError as err:
        raise _write_error(path.parent, path.name, err) from err
    try:
        yield tmp, created
    except FileExistsError:
        raise
    except OSError as err:
        raise _write_error(path.parent, path.name, err) from err
    finally:
        discard(tmp)


def remove_stale(path: str | Path) -> None:
    """Remove the temporaries of output ``path`` left by processes that are gone."""
    for leftover in _stale_partials(path):
        log.info("removing %s, left by an interrupted run", leftover)
        discard(leftover)


@contextlib.contextmanager
def scratch_dir(path: str | Path) -> Iterator[Path]:
    """A fresh folder named as ``path``'s temporaries (so that the next run removes a killed run's), removed however the block ends."""
    with _temporary(Path(path), folder=True) as (tmp, _):
        yield tmp


def _commit(tmp: Path, created: os.stat_result, path: Path) -> None:
    if not _ours(tmp, created):
        raise IblVideoError(tmp, f"the temporary file of {path.name} was replaced while it was written; {path} was left as it was")
    os.replace(tmp, path)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``path`` to write; it becomes ``path`` only if the block succeeds.

    The temporary already exists, as an empty regular file of this process: writers open it by its
    path and truncate it."""
    path = Path(path)
    with _temporary(path, folder=False) as (tmp, created):
        yield tmp
        _commit(tmp, created, path)


@contextlib.contextmanager
def atomic_dir(path: str | Path, force: bool = False) -> Iterator[Path]:
    """Yield a temporary folder that replaces ``path`` as a whole when the block succeeds."""
    path = Path(path)
    with _temporary(path, folder=True) as (tmp, created):
        yield tmp
        if path.exists():
            if not force:
                raise FileExistsError(errno.EEXIST, "exists", str(path))
            shutil.rmtree(path)
        _commit(tmp, created, path)


def refuse_overwrite(out: str | Path, inputs: Iterable[str | Path] = (), force: bool = False) -> Path:
    """``out``, unless it is one of ``inputs`` (never written over, even with ``force``) or already exists
    (kept unless ``force``); a one-line IblVideoError otherwise."""
    out = Path(out)
    if not out.exists():
        return out
    for source in inputs:
        with contextlib.suppress(OSError):
            if os.path.samefile(out, source):
                raise IblVideoError(out, f"is an input of this command ({Path(source).name}); choose another output")
    if out.is_dir():
        raise IblVideoError(out, "is a folder; give a file name for the output")
    if not force:
        raise IblVideoError(out, "already exists; pass --force (force=True) to replace it")
    return out
