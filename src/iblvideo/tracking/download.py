"""Downloads into the user cache: once, resumable, checksum-verified, safe when processes race."""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

from iblvideo.errors import IblVideoError
from iblvideo.io.atomic import atomic_dir
from iblvideo.progress import progress_bar

log = logging.getLogger(__name__)
CHUNK = 1 << 20
# what an archive may unpack to: a real network set (a few hundred MB of ResNet-50 checkpoints, which
# deflate to about 93 % of their size, in tens of files) fits many times over; a zip bomb does not
MAX_ENTRIES = 10_000
MAX_UNPACKED = 8 << 30
MAX_RATIO = 100  # unpacked bytes per byte of archive: float weights ~1.1, text configs ~5, deflated zeros ~1000
RECORD = ".iblvideo-unpacked.json"  # in each unpacked folder: the URL and every file's sha256
# what macOS adds to the zips it makes: resource forks, never part of a set
MAC_FOLDER, MAC_PREFIX = "__MACOSX", "._"
Members = Callable[[zipfile.ZipFile], list[str]]  # the names of an archive's entries to unpack


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


def _url_error(url: str, problem: str) -> IblVideoError:
    """An error naming a URL as it is (as a path, its ``//`` would collapse)."""
    return IblVideoError(None, f"{url}: {problem}")


def _fetch(url: str, part: Path, timeout: float) -> None:
    """Append the rest of ``url`` to ``part``, resuming from its size when the server allows ranges."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # we already hold every byte
            return
        raise _url_error(url, f"download failed: HTTP {err.code} {err.reason}") from None
    except (urllib.error.URLError, OSError) as err:
        raise _url_error(url, f"download failed: {getattr(err, 'reason', err)}") from None
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
        raise _url_error(url, f"download interrupted after {got} of {expected} bytes; run again to resume")


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
            raise _url_error(url, f"checksum mismatch: expected sha256 {sha256}, got {got}; the partial download was removed")
        os.replace(part, dest)
    return dest


def archive_path(url: str, root: Path | None = None) -> Path:
    """Where the cache keeps the zip downloaded from ``url``: under the URL's hash."""
    name = Path(urlparse(url).path).name or "download.zip"
    return Path(root or cache_dir()) / "downloads" / hashlib.sha256(url.encode()).hexdigest()[:16] / name


def fetch_zip(url: str, members: Members, sha256: str | None = None, root: Path | None = None,
              verify: Callable[[Path], object] | None = None) -> Path:
    """The folder a zip at ``url`` unpacks to, in the cache: downloaded once, unpacked once, checked at every use.

    The download is kept under the URL's hash, the unpacked folder under the content's, so that two
    URLs never share a set unless their bytes are the same. Only ``members(zip)`` are unpacked, within
    the limits above; ``verify`` is run on the unpacked folder before it enters the cache, so a set it
    refuses is never kept. Every later use re-hashes the unpacked files against what was unpacked.
    """
    root = Path(root or cache_dir())
    archive = download(url, archive_path(url, root), sha256)
    digest = sha256 or sha256sum(archive)
    target = root / f"{archive.stem}-{digest[:16]}"
    with file_lock(target.with_name(f".{target.name}.lock")):
        if target.is_dir():
            _check_unpacked(target)
        else:
            _unpack(url, archive, digest, target, members, verify)
    return _top(target)


def set_folder(spec: str, members: Members, sha256: str | None, missing: str) -> Path:
    """A network set's folder: ``spec`` itself, or the zip at the http(s) URL ``spec`` (:func:`fetch_zip`);
    a folder that is not there is the one-line error ``missing``."""
    if re.match(r"^https?://", spec):
        return fetch_zip(spec, members, sha256)
    root = Path(spec)
    if not root.is_dir():
        raise IblVideoError(root, missing)
    return root


def files_in_folders(bundle: zipfile.ZipFile, patterns: Iterable[str], wanted: Callable[[PurePosixPath], bool], what: str) -> list[str]:
    """The entries of ``bundle`` that are ``wanted`` files in folders matching ``patterns``, at the top of the
    archive or in its one folder; never what macOS adds beside them. None is the one-line error ``what``."""
    patterns = sorted(set(patterns))
    chosen = []
    for name in bundle.namelist():
        path = PurePosixPath(name)
        if name.endswith("/") or MAC_FOLDER in path.parts or path.name.startswith(MAC_PREFIX) or not wanted(path):
            continue
        if any(fnmatchcase(folder, pattern) for folder in path.parts[:-1][:2] for pattern in patterns):
            chosen.append(name)
    if not chosen:
        raise IblVideoError(None, f"no {what} ({', '.join(patterns)}) in the archive")
    return chosen


def unpacked_sha256(root: Path) -> str:
    """The sha256 of the zip ``root`` was unpacked from, as the cache recorded it ("" for a folder of the user's)."""
    for folder in (root, root.parent):
        try:
            return str(json.loads((folder / RECORD).read_text()).get("sha256", ""))
        except (OSError, ValueError, AttributeError):
            continue
    return ""


def _top(folder: Path) -> Path:
    """The archive's one top folder, if it has one: the set itself."""
    entries = [entry for entry in folder.iterdir() if not entry.name.startswith(".")]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else folder


def _check_unpacked(target: Path) -> None:
    """Every file unpacked into ``target`` still has the bytes it was unpacked with."""
    clear = f"delete {target} to unpack it again"
    try:
        record = json.loads((target / RECORD).read_text())
        files = dict(record["files"])
    except (OSError, ValueError, KeyError, TypeError):
        raise IblVideoError(target / RECORD, f"the cache's record of what was unpacked is missing or unreadable; {clear}") from None
    for relative, digest in files.items():
        path = target / relative
        if not path.is_file() or sha256sum(path) != digest:
            raise IblVideoError(path, f"changed since it was unpacked from {record.get('url')}; {clear}")


def _unpack(url: str, archive: Path, digest: str, target: Path, members: Members, verify: Callable[[Path], object] | None) -> None:
    """Unpack the chosen members of ``archive`` into ``target`` as a whole; anything refused removes the download."""
    try:
        with zipfile.ZipFile(archive) as bundle, atomic_dir(target) as tmp:
            files = {}
            for info in _chosen(bundle, members, archive.stat().st_size):
                files[info.filename] = _extract(bundle, info, tmp / info.filename)
            (tmp / RECORD).write_text(json.dumps({"url": url, "sha256": digest, "files": files}, indent=1))
            _verify_unpacked(verify, _top(tmp))
    except IblVideoError as err:
        archive.unlink(missing_ok=True)
        raise _url_error(url, f"{err}; removed the download, so the next run fetches it again") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, ValueError) as err:
        archive.unlink(missing_ok=True)
        raise _url_error(url, f"not a valid zip archive ({err}); removed the download, so the next run fetches it again") from None
    except OSError as err:  # a full disk, say: the download stays
        raise _url_error(url, f"could not unpack {archive} into {target.parent} ({err})") from None


def _verify_unpacked(verify: Callable[[Path], object] | None, folder: Path) -> None:
    """Run ``verify``, naming a file it refuses by its place in the archive rather than the temporary folder."""
    if verify is None:
        return
    try:
        verify(folder)
    except IblVideoError as err:
        if err.path is None or not err.path.is_relative_to(folder):
            raise
        raise IblVideoError(err.path.relative_to(folder), err.problem) from None


def _chosen(bundle: zipfile.ZipFile, members: Members, size: int) -> list[zipfile.ZipInfo]:
    """The entries to unpack, refused as a whole when any name escapes the folder or a limit is passed."""
    if len(bundle.infolist()) > MAX_ENTRIES:
        raise IblVideoError(None, f"an archive of {len(bundle.infolist())} entries, over the limit of {MAX_ENTRIES}")
    for member in bundle.namelist():
        if Path(member).is_absolute() or ".." in Path(member).parts:
            raise IblVideoError(None, f"unsafe path in archive: {member}")
    chosen = []
    for name in dict.fromkeys(members(bundle)):
        try:
            chosen.append(bundle.getinfo(name))
        except KeyError:
            raise IblVideoError(None, f"the archive lacks {name}") from None
    names = {info.filename for info in chosen}
    for name in names:
        if clash := next((str(folder) for folder in PurePosixPath(name).parents if str(folder) in names), None):
            raise IblVideoError(None, f"{clash} is both a file and a folder in the archive")
    total = sum(info.file_size for info in chosen)
    if total > MAX_UNPACKED:
        raise IblVideoError(None, f"would unpack to {total / (1 << 30):.1f} GiB, over the limit of {MAX_UNPACKED >> 30} GiB")
    if total > MAX_RATIO * size:
        raise IblVideoError(None, f"would unpack to more than {MAX_RATIO} times its {size} bytes ({total} bytes): refused as a zip bomb")
    return chosen


def _extract(bundle: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path) -> str:
    """Write one entry to ``dest`` (zipfile stops at the size the entry declares); its sha256."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with bundle.open(info) as source, open(dest, "wb") as out:
        for block in iter(lambda: source.read(CHUNK), b""):
            out.write(block)
            digest.update(block)
    return digest.hexdigest()
