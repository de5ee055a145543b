"""Downloads into the user cache: once, resumable, checksum-verified, safe when processes race."""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

from iblvideo.errors import IblVideoError
from iblvideo.io.atomic import atomic_dir
from iblvideo.progress import progress_bar

log = logging.getLogger(__name__)
CHUNK = 1 << 20


def cache_dir() -> Path:
    """``$IBLVIDEO_CACHE``, else ``$XDG_CACHE_HOME/iblvideo``, else ``~/.cache/iblvideo``."""
    if os.environ.get("IBLVIDEO_CACHE"):
        return Path(os.environ["IBLVIDEO_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "iblvideo"


def sha256sum(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if needed): the second process waits, then reuses."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _fetch(url: str, part: Path, timeout: float) -> None:
    """Append the rest of ``url`` to ``part``, resuming from its size when the server allows ranges."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # we already hold every byte
            return
        raise IblVideoError(url, f"download failed: HTTP {err.code} {err.reason}") from None
    except (urllib.error.URLError, OSError) as err:
        raise IblVideoError(url, f"download failed: {getattr(err, 'reason', err)}") from None
    with response:
        resumed = response.status == 206
        if have and not resumed:
            log.info("%s: server ignored the range request; downloading from the start", url)
            have = 0
        length = response.headers.get("Content-Length")
        expected = have + int(length) if length else None
        bar = progress_bar(total=expected, desc=Path(urlparse(url).path).name, unit="B")
        bar.update(have)
        try:
            with open(part, "ab" if resumed else "wb") as out:
                for block in iter(lambda: response.read(CHUNK), b""):
                    out.write(block)
                    bar.update(len(block))
        except OSError as err:
            log.debug("%s: connection lost: %s", url, err)
        finally:
            bar.close()
    got = part.stat().st_size
    if expected is not None and got < expected:  # what arrived stays, for the next try to resume
        raise IblVideoError(url, f"download interrupted after {got} of {expected} bytes; run again to resume")


def download(url: str, dest: Path, sha256: str | None = None, timeout: float = 60.0) -> Path:
    """``dest`` holding the bytes of ``url``; downloaded only if absent, verified when a checksum is given."""
    dest = Path(dest)
    with file_lock(dest.with_name(dest.name + ".lock")):
        if dest.exists() and (sha256 is None or sha256sum(dest) == sha256):
            return dest
        part = dest.with_name(dest.name + ".part")
        _fetch(url, part, timeout)
        if sha256 is not None and (got := sha256sum(part)) != sha256:
            part.unlink()
            raise IblVideoError(url, f"checksum mismatch: expected sha256 {sha256}, got {got}; the partial download was removed")
        os.replace(part, dest)
    return dest


def fetch_zip(url: str, sha256: str | None = None, root: Path | None = None) -> Path:
    """The folder a zip at ``url`` unpacks to, in the cache: downloaded and unpacked once."""
    root = Path(root or cache_dir())
    name = Path(urlparse(url).path).name or "download.zip"
    archive = root / "downloads" / name
    target = root / Path(name).stem
    with file_lock(root / f"{Path(name).stem}.lock"):
        if not target.is_dir():
            download(url, archive, sha256)
            _unpack(archive, target)
    entries = [entry for entry in target.iterdir() if not entry.name.startswith(".")]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else target


def _unpack(archive: Path, target: Path) -> None:
    """Unpack ``archive`` into ``target`` as a whole, refusing entries that would escape it."""
    try:
        with zipfile.ZipFile(archive) as bundle, atomic_dir(target) as tmp:
            for member in bundle.namelist():
                if Path(member).is_absolute() or ".." in Path(member).parts:
                    raise IblVideoError(archive, f"unsafe path in archive: {member}")
            bundle.extractall(tmp)
    except zipfile.BadZipFile:
        archive.unlink(missing_ok=True)
        raise IblVideoError(archive, "not a valid zip archive; removed it so the next run downloads it again") from None

