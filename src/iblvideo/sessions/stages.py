"""The stages after tracking, on a session's files: motion energy, features and licks, QC.

Each reads the pose table the session chose (``io.session_files.pose_tables``: the tracker's asked
for, else the only one), computes with ``measures``, writes IBL's datasets atomically, and records
which pose tables each output was made from. These back ``run_session`` and the ``motion-energy``,
``features`` and ``qc`` commands. An output that iblvideo made (the provenance record names it) is
recomputed from its sources; any other file at an output's name (IBL's own dataset, a user's file)
is kept unless ``force``, and an input is never written over.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from iblvideo.errors import IblVideoError
from iblvideo.io.alf import CAMERA_NAMES, LICK_EVENTS, LICKS, QC_REPORT, TRIALS, SessionPaths, session_name
from iblvideo.io.atomic import refuse_overwrite
from iblvideo.io.session_files import (
    is_lightning_pose,
    provenance,
    read_parquet,
    read_pose,
    read_times,
    read_trials,
    record_provenance,
    require_pose_tables,
    write_json,
    write_npy,
    write_parquet,
)
from iblvideo.measures.features import SMOOTHING_WINDOW, side_camera_features
from iblvideo.measures.licks import merge_lick_events
from iblvideo.measures.motion_energy import Roi, compute_motion_energy, roi_from_pose
from iblvideo.measures.qc import camera_data, session_report
from iblvideo.tracks import PoseTracks

log = logging.getLogger(__name__)


def _pose(path: Path, camera: str) -> PoseTracks:
    """A pose table's tracks, with its camera checked against the table's own metadata."""
    tracks = read_pose(path)
    recorded = tracks.metadata.get("camera")
    if recorded not in (None, camera):
        raise IblVideoError(path, f"this pose table is of the {recorded} camera, not the {camera} camera")
    return tracks


def _claim(session: Path, outputs: Iterable[Path], inputs: Iterable[Path], force: bool) -> None:
    """Refuse to write over an input, or over an existing file that iblvideo did not make unless ``force``."""
    inputs = list(inputs)
    for out in outputs:
        refuse_overwrite(out, inputs, force or bool(provenance(session, out.name)))


def save_motion_energy(session: Path, camera: str, energy: np.ndarray, roi: Roi, pose: Path, force: bool = False) -> tuple[Path, Path]:
    """Write the motion energy and its ROI (w, h, x, y) into ``alf/``, made from the pose table ``pose``
    (``force``: replace files iblvideo did not make)."""
    paths = SessionPaths(session)
    energy_path, roi_path = paths.motion_energy(camera)
    _claim(session, (energy_path, roi_path), (pose, paths.raw_video(camera)), force)
    written = write_npy(energy, energy_path), write_npy(roi.to_array(), roi_path)
    record_provenance(session, list(written), [pose])
    return written


def motion_energy_stage(session: str | Path, cameras: tuple[str, ...] = CAMERA_NAMES, tracker: str | None = None,
                        force: bool = False) -> dict[str, tuple[Path, Path]]:
    """Motion energy of every camera of ``session`` that has both a raw video and a pose table, in IBL's
    ROI placed from that table's final tracks (``force``: replace files iblvideo did not make)."""
    session = Path(session)
    paths = SessionPaths(session)
    with_video = tuple(c for c in cameras if paths.raw_video(c).exists())
    tables = require_pose_tables(session, tracker, with_video) if with_video else {}
    if not tables:
        raise IblVideoError(session, "no camera with both raw_video_data/_iblrig_<cam>Camera.raw.mp4 and a pose table in alf/")
    for camera, pose in tables.items():
        _claim(session, paths.motion_energy(camera), (pose, paths.raw_video(camera)), force)
    written = {}
    for camera, pose in tables.items():
        try:
            roi = roi_from_pose(_pose(pose, camera), camera)
        except IblVideoError as err:
            raise IblVideoError(pose, err.problem) from None
        written[camera] = save_motion_energy(session, camera, compute_motion_energy(paths.raw_video(camera), roi), roi, pose, force=True)  # claimed above
    return written


def features_stage(session: str | Path, tracker: str | None = None, force: bool = False) -> dict[str, Path]:
    """Each side camera's feature table, speeds and sniff times, and the licks of both merged on the session
    clock, as IBL's PostLP computes them from Lightning Pose tables and PostDLC from the others; and the
    lick events (one row per lick, ``measures.licks``) of both cameras merged.

    Camera times (``_ibl_<cam>Camera.times.npy``) put events on the session clock. Returns the written
    files by name (``left_features``, ``left_speeds``, ``left_sniffs``, ``licks``, ``lick_events``, ...).
    ``force``: replace files iblvideo did not make.
    """
    session = Path(session)
    paths = SessionPaths(session)
    tables = require_pose_tables(session, tracker)
    sides = [camera for camera in tables if camera in SMOOTHING_WINDOW]
    outputs = [out for camera in sides for out in (paths.features(camera), paths.speeds(camera), paths.sniffs(camera))]
    session_outputs = [paths.session_file(LICKS), paths.session_file(LICK_EVENTS)] if sides else []
    _claim(session, outputs + session_outputs, [*tables.values(), *map(paths.times, sides)], force)
    written: dict[str, Path] = {}
    licks: list[np.ndarray] = []
    events: dict[str, np.ndarray] = {}
    used: list[Path] = []
    if not sides:
        log.warning("%s: no side camera's pose table; IBL computes features for the left and right cameras only", session)
    for camera in sides:
        pose = tables[camera]
        try:
            result = side_camera_features(_pose(pose, camera), read_times(paths.times(camera)), camera, is_lightning_pose(pose))
        except IblVideoError as err:
            raise IblVideoError(pose, err.problem) from None
        written[f"{camera}_features"] = write_parquet(result.table, paths.features(camera))
        written[f"{camera}_speeds"] = write_parquet(result.speeds, paths.speeds(camera))
        outputs = [written[f"{camera}_features"], written[f"{camera}_speeds"]]
        if result.sniffs is not None:
            written[f"{camera}_sniffs"] = write_npy(result.sniffs, paths.sniffs(camera))
            outputs.append(written[f"{camera}_sniffs"])
        record_provenance(session, outputs, [pose])
        if result.licks is not None and result.lick_events is not None:
            licks.append(result.licks)
            events[camera] = result.lick_events
            used.append(pose)
    if licks:
        written["licks"] = write_npy(np.sort(np.concatenate(licks)), paths.session_file(LICKS))
        written["lick_events"] = write_parquet(merge_lick_events(events), paths.session_file(LICK_EVENTS))
        record_provenance(session, [written["licks"], written["lick_events"]], used)
    else:
        log.warning("%s: no lick times (no side camera with tongue points and camera times)", session)
    return written


def _stim_on_times(session: Path) -> np.ndarray | None:
    trials = read_trials(session)
    return trials["stimOn_times"].to_numpy(float) if trials is not None and "stimOn_times" in trials.columns else None


def _pupil(paths: SessionPaths, camera: str) -> tuple[np.ndarray, np.ndarray] | None:
    """Raw and smoothed pupil diameters from the camera's feature table, when there is one."""
    features = read_parquet(paths.features(camera), columns=["pupilDiameter_raw", "pupilDiameter_smooth"])
    if features is None:
        return None
    return features["pupilDiameter_raw"].to_numpy(float), features["pupilDiameter_smooth"].to_numpy(float)


def qc_stage(session: str | Path, tracker: str | None = None, force: bool = False) -> dict:
    """IBL's pose QC of every camera with a pose table (LpQC on Lightning Pose tables, DlcQC on the others);
    writes ``alf/_iblvideo_dlc.qc.json`` and returns the report.

    Pupil diameters come from the feature tables when present (as IBL's DlcQC reads them), else from the tracks.
    The report iblvideo wrote is rewritten; another file of its name is kept unless ``force``.
    """
    session = Path(session)
    paths = SessionPaths(session)
    tables = require_pose_tables(session, tracker)
    _claim(session, [paths.session_file(QC_REPORT)],
           [*tables.values(), paths.session_file(TRIALS), *(f(c) for c in tables for f in (paths.times, paths.features))], force)
    stim_on = _stim_on_times(session)
    data = {}
    for camera, pose in tables.items():
        lightning_pose = is_lightning_pose(pose)  # LpQC reads no pupil diameter
        data[camera] = camera_data(camera, _pose(pose, camera), read_times(paths.times(camera)), stim_on,
                                   None if lightning_pose else _pupil(paths, camera), lightning_pose=lightning_pose)
    report = session_report(session_name(session), data)
    report["pose_tables"] = {camera: pose.name for camera, pose in tables.items()}
    out = write_json(report, paths.session_file(QC_REPORT))
    record_provenance(session, [out], list(tables.values()))
    log.info("QC %s; report written to %s", report["outcome"], out)
    return report
