"""Readers and writers of a session's files: pose tables of every tracker, camera times, features,
motion energy, licks, QC, trials and wheel. Reads fail in one line naming the file; writes are atomic.
Tables carry a checksum of every page, which reads verify: a damaged page is an error, not wrong numbers.

Which pose table a stage reads is decided here (``pose_tables``): the tracker's asked for, else the
only one a camera has. What each derived output was made from is kept in ``alf/_iblvideo_provenance.json``.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from iblvideo import __version__
from iblvideo.errors import IblVideoError
from iblvideo.io.alf import CAMERA_NAMES, PROVENANCE, TRIALS, WHEEL_POSITION, WHEEL_TIMES, SessionPaths
from iblvideo.io.atomic import atomic_path
from iblvideo.tracking.registry import TRACKERS, attribute
from iblvideo.tracks import PoseTracks

log = logging.getLogger(__name__)
METADATA_KEY = b"iblvideo"
LIGHTNING_POSE = "lightning-pose"  # the tracker whose tables IBL's PostLP and LpQC read


def write_table(table: pd.DataFrame, path: str | Path, metadata: dict[str, Any] | None = None) -> Path:
    """Write ``table`` as parquet atomically, without its index, with ``metadata`` (JSON) under the key ``iblvideo``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrow = pa.Table.from_pandas(table, preserve_index=False)
    if metadata:
        arrow = arrow.replace_schema_metadata({**(arrow.schema.metadata or {}), METADATA_KEY: json.dumps(metadata).encode()})
    with atomic_path(path) as tmp:
        pq.write_table(arrow, tmp, write_page_checksum=True)
    return Path(path)


def table_metadata(path: str | Path) -> dict[str, Any]:
    """The ``iblvideo`` metadata that :func:`write_table` stored in a parquet file."""
    import pyarrow.parquet as pq

    raw = (pq.read_schema(path).metadata or {}).get(METADATA_KEY)
    return json.loads(raw) if raw else {}


def write_pose(tracks: PoseTracks, path: str | Path) -> Path:
    """A pose table (one row per frame) with its provenance as metadata."""
    return write_table(tracks.to_frame(), path, tracks.metadata)


def read_pose(path: str | Path) -> PoseTracks:
    """Pose tracks from a parquet pose table of any tracker; a one-line error when unreadable or without points."""
    try:
        table = pd.read_parquet(path, page_checksum_verification=True)
        metadata = table_metadata(path)
    except (OSError, ValueError) as err:
        raise IblVideoError(path, f"cannot read pose table: {err}") from None
    try:
        return PoseTracks.from_frame(table, metadata.get("fps"), metadata)
    except ValueError as err:
        raise IblVideoError(path, f"pose table has {err}") from None


def pose_tables(session: str | Path, tracker: str | None = None, cameras: tuple[str, ...] = CAMERA_NAMES) -> dict[str, Path]:
    """Each camera's pose table: the one ``tracker`` wrote, else the only one the camera has (a one-line
    error when it has the tables of several trackers). Cameras without one are left out."""
    paths = SessionPaths(Path(session))
    attributes = [attribute(tracker)] if tracker else list(dict.fromkeys(entry.attribute for entry in TRACKERS.values()))
    found = {}
    for camera in cameras:
        present = [paths.pose(camera, a) for a in attributes if paths.pose(camera, a).exists()]
        if len(present) > 1:
            raise IblVideoError(paths.alf, f"the {camera} camera has pose tables of several trackers ({', '.join(p.name for p in present)}); "
                                           f"pass --tracker ({' or '.join(TRACKERS)}) to choose")
        if present:
            found[camera] = present[0]
    return found


def require_pose_tables(session: str | Path, tracker: str | None = None, cameras: tuple[str, ...] = CAMERA_NAMES) -> dict[str, Path]:
    """:func:`pose_tables`, with a one-line error when there is none at all."""
    found = pose_tables(session, tracker, cameras)
    if not found:
        which = f"of tracker {tracker!r} " if tracker else ""
        raise IblVideoError(SessionPaths(Path(session)).alf, f"no pose tables {which}(_ibl_<camera>Camera.dlc.pqt or .lightningPose.pqt); "
                                                             "run iblvideo dlc first")
    return found


def is_lightning_pose(pose: str | Path) -> bool:
    """Whether ``pose`` is a Lightning Pose table (``_ibl_<cam>Camera.lightningPose.pqt``): what IBL's PostLP
    and LpQC read, rather than PostDLC and DlcQC."""
    return Path(pose).name.endswith(f".{attribute(LIGHTNING_POSE)}.pqt")


def read_times(path: str | Path) -> np.ndarray | None:
    """Camera times (one per frame, on the session clock); None when absent, a one-line error when unreadable."""
    times = read_npy(path, "camera times")
    if times is None:
        return None
    if times.ndim != 1:
        raise IblVideoError(path, f"camera times must be one-dimensional, got shape {times.shape}")
    return times.astype(float)


def read_npy(path: str | Path, what: str = "") -> np.ndarray | None:
    """An .npy array (``what`` it holds names it in errors); None when absent, a one-line error when
    unreadable (never unpickled)."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise IblVideoError(path, f"cannot read {what or 'it'}: {err}") from None


def write_npy(values: np.ndarray, path: str | Path) -> Path:
    """Write ``values`` to ``path`` as .npy, atomically (np.save would append .npy to the temporary name)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.save(handle, values)
    return Path(path)


def read_parquet(path: str | Path, columns: list[str] | None = None) -> pd.DataFrame | None:
    """A parquet table; None when absent, a one-line error when unreadable or lacking ``columns``."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        return pd.read_parquet(path, columns=columns, page_checksum_verification=True)
    except (OSError, ValueError, KeyError) as err:
        # pyarrow names the file again: once is enough
        raise IblVideoError(path, f"cannot read table: {str(err).replace(f'Could not open Parquet input source {str(path)!r}: ', '')}") from None


def write_parquet(table: pd.DataFrame, path: str | Path) -> Path:
    """A table with its index (IBL's feature tables), atomically."""
    with atomic_path(path) as tmp:
        table.to_parquet(tmp, write_page_checksum=True)
    return Path(path)


def read_json(path: str | Path) -> dict[str, Any] | None:
    """A JSON report; None when absent, a one-line error when unreadable."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise IblVideoError(path, f"cannot read: {err}") from None


def write_json(record: dict[str, Any], path: str | Path) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(record, indent=2) + "\n")
    return Path(path)


def read_trials(session: str | Path, needs: tuple[str, ...] = ()) -> pd.DataFrame | None:
    """The session's trials table, or None; a one-line error when unreadable, without a column it ``needs``,
    or when a column holds anything but numbers."""
    path = SessionPaths(Path(session)).session_file(TRIALS)
    trials = read_parquet(path)
    if trials is None:
        return None
    missing = [column for column in needs if column not in trials.columns]
    if missing:
        raise IblVideoError(path, f"trials table has no {', '.join(missing)} column(s)")
    not_numbers = [str(c) for c in trials.columns if not pd.api.types.is_numeric_dtype(trials[c])]
    if not_numbers:
        raise IblVideoError(path, f"trials table column(s) {', '.join(not_numbers)} hold something other than numbers")
    return trials


def read_wheel(session: str | Path) -> tuple[np.ndarray, np.ndarray] | None:
    """(timestamps, position in radians) of the wheel, or None."""
    paths = SessionPaths(Path(session))
    times, position = read_npy(paths.session_file(WHEEL_TIMES)), read_npy(paths.session_file(WHEEL_POSITION))
    return None if times is None or position is None else (times, position)


# what a pose table's metadata says of its networks, repeated for every output made from it
POSE_PROVENANCE = ("tracker", "weights", "weights_version", "network_set", "network_set_sha256", "mode")


def record_provenance(session: str | Path, outputs: list[Path], sources: list[Path]) -> None:
    """Note in ``alf/_iblvideo_provenance.json`` that ``outputs`` were made from ``sources`` (file names),
    and with which networks, where a source is a pose table that says."""
    path = SessionPaths(Path(session)).session_file(PROVENANCE)
    record = read_json(path) or {}
    networks = {source.name: {key: metadata[key] for key in POSE_PROVENANCE if key in metadata}
                for source in sources if source.suffix == ".pqt" and (metadata := table_metadata(source)).get("tracker")}
    for output in outputs:
        record[output.name] = {"made_from": [source.name for source in sources], "iblvideo_version": __version__,
                               **({"networks": networks} if networks else {})}
    write_json(dict(sorted(record.items())), path)


def provenance(session: str | Path, output: str) -> list[str]:
    """The file names ``output`` was made from (empty when not recorded)."""
    record = read_json(SessionPaths(Path(session)).session_file(PROVENANCE)) or {}
    return list(record.get(output, {}).get("made_from", []))
