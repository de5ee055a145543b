"""ALF session layout and writes that never leave a half-written file behind."""
from __future__ import annotations

import contextlib
import os
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    import pandas as pd

SESSION_PATTERN = re.compile(r"(?P<subject>[^/\\]+)[/\\](?P<date>\d{4}-\d{2}-\d{2})[/\\](?P<number>\d{1,3})$")


def raw_video_path(session: Path, camera: str) -> Path:
    return Path(session) / "raw_video_data" / f"_iblrig_{camera}Camera.raw.mp4"


def session_root(path: str | Path) -> Path | None:
    """The ALF session folder holding ``path`` (``<subject>/<yyyy-mm-dd>/<nnn>``), or None."""
    path = Path(path).resolve()
    for candidate in (path, *path.parents):
        if SESSION_PATTERN.search(candidate.as_posix()):
            return candidate
    return None


def _temporary_sibling(path: Path) -> Path:
    return path.with_name(f".{path.name}.partial-{os.getpid()}")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``path`` to write; it becomes ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_sibling(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: str | Path, force: bool = False) -> Iterator[Path]:
    """Yield a temporary folder that replaces ``path`` as a whole when the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_sibling(path)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        if path.exists():
            if not force:
                raise FileExistsError(path)
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_table(table: "pd.DataFrame", path: str | Path, metadata: dict | None = None) -> Path:
    """Write ``table`` as parquet atomically, with ``metadata`` (JSON) under the key ``iblvideo``."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    arrow = pa.Table.from_pandas(table, preserve_index=False)
    if metadata:
        arrow = arrow.replace_schema_metadata({**(arrow.schema.metadata or {}), b"iblvideo": json.dumps(metadata).encode()})
    with atomic_path(path) as tmp:
        pq.write_table(arrow, tmp)
    return Path(path)


def table_metadata(path: str | Path) -> dict:
    """The ``iblvideo`` metadata that :func:`write_table` stored in a parquet file."""
    import json

    import pyarrow.parquet as pq

    raw = (pq.read_schema(path).metadata or {}).get(b"iblvideo")
    return json.loads(raw) if raw else {}
