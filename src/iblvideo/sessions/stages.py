"""The stages after tracking, on a session's files: motion energy, features and licks, QC, paw states.

Each reads the pose table the session chose (``io.session_files.pose_tables``: the tracker's asked
for, else the only one), computes with ``measures``, writes IBL's datasets atomically, and records
which pose tables each output was made from. These back ``run_session`` and the ``motion-energy``,
``features``, ``qc`` and ``pawstates`` commands.
An output that iblvideo made (the provenance record names it) is recomputed from its sources; any
other file at an output's name (IBL's own dataset, a user's file) is kept unless ``force``, and an
input is never written over.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from iblvideo.errors import IblVideoError
from iblvideo.io.alf import CAMERA_NAMES, LICK_EVENTS, LICKS, QC_REPORT, TRIALS, WHEEL_POSITION, WHEEL_TIMES, SessionPaths, session_name
from iblvideo.io.atomic import refuse_overwrite
from iblvideo.io.session_files import (
    LIGHTNING_POSE,
    is_lightning_pose,
    pose_tables,
    provenance,
    read_parquet,
    read_pose,
    read_times,
    read_trials,
    read_wheel,
    record_provenance,
    require_pose_tables,
    write_json,
    write_npy,
    write_parquet,
    write_table,
)
from iblvideo.measures import paw_states
from iblvideo.measures.features import SMOOTHING_WINDOW, side_camera_features
from iblvideo.measures.licks import merge_lick_events
from iblvideo.measures.motion_energy import Roi, compute_motion_energy, roi_from_pose
from iblvideo.measures.qc import camera_data, session_report
from iblvideo.tracking import la_networks
from iblvideo.tracking.download import unpacked_sha256
from iblvideo.tracking.la_networks import ActionSet
from iblvideo.tracking.registry import attribute
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


class ActionModel(Protocol):
    """What the paw-states stage needs of a Lightning Action network (``networks.lightning_action.ActionModel``)."""

    @property
    def n_features(self) -> int: ...

    @property
    def class_names(self) -> Sequence[str] | None: ...

    def predict(self, features: np.ndarray, sequence_length: int | None = None) -> np.ndarray: ...


ModelLoader = Callable[[Path], ActionModel]


def _load_action_model(member: Path) -> ActionModel:
    """A member folder loaded by our Lightning Action loader (imported only when a stage runs the networks)."""
    from iblvideo.networks.lightning_action import load_action_model

    return load_action_model(member)


def _action_models(root: Path, profile: ActionSet, load: ModelLoader) -> tuple[dict[str, list[ActionModel]], list[str]]:
    """Each paw's ensemble, loaded, each member checked to read IBL's inputs (x, y, wheel velocity); and their states."""
    models: dict[str, list[ActionModel]] = {}
    states: list[str] = []
    for paw in profile.paws:
        models[paw] = []
        for member in profile.members(root, paw):
            model = load(member)
            if model.n_features != paw_states.N_INPUTS:
                raise IblVideoError(member, f"takes {model.n_features} inputs per frame, not IBL's {paw_states.N_INPUTS} (x, y, wheel velocity)")
            if not model.class_names:
                raise IblVideoError(member, "its config names no states (data.label_names); the table's columns are named after them")
            if states and list(model.class_names) != states:
                raise IblVideoError(member, f"its states {list(model.class_names)} are not the other networks' {states}")
            states = list(model.class_names)
            models[paw].append(model)
    return models, states


def _camera_pawstates(table: pd.DataFrame, times: np.ndarray, wheel: tuple[np.ndarray, np.ndarray], camera: str,
                      models: dict[str, list[ActionModel]], states: list[str], sequence_length: int) -> pd.DataFrame:
    """One camera's paw-states table, each paw's ensemble run on its inputs as IBL's pipeline runs it."""
    paws = {}
    for paw, ensemble in models.items():
        inputs, clock = paw_states.paw_inputs(table, times, wheel, camera, paw)
        members = [paw_states.on_frames(model.predict(inputs, sequence_length), clock, times) for model in ensemble]
        paws[paw] = paw_states.combine(members)
    return paw_states.pawstates_table(paws, states)


def _wheel(session: Path) -> tuple[np.ndarray, np.ndarray]:
    """The wheel's velocity on its 1 kHz clock (``paw_states.wheel_velocity``): a one-line error when the wheel data are
    absent, not two matching series of increasing times, or too short."""
    paths = SessionPaths(session)
    wheel = read_wheel(session)
    if wheel is None:
        raise IblVideoError(paths.alf, f"no wheel data ({WHEEL_POSITION} and {WHEEL_TIMES}); IBL's paw-state networks read the wheel velocity")
    times, position = (np.asarray(a, float) for a in wheel)
    if times.ndim != 1 or times.shape != position.shape or len(times) < 2 or not np.all(np.diff(times) > 0):
        raise IblVideoError(paths.session_file(WHEEL_TIMES), "wheel times and positions must be two 1-D series of the same length "
                                                             "(at least two samples, times increasing)")
    try:
        return paw_states.wheel_velocity(times, position)
    except IblVideoError as err:
        raise IblVideoError(paths.session_file(WHEEL_TIMES), err.problem) from None


def paw_states_stage(session: str | Path, force: bool = False, networks: str | Path | None = None,
                     model_loader: ModelLoader | None = None, tracker: str = LIGHTNING_POSE) -> dict[str, Path]:
    """IBL's paw states of each side camera with a Lightning Pose table: ``alf/lightningaction/_ibl_<cam>Camera.pawstates.pqt``.

    Each paw's Lightning Action ensemble (``networks``: a set folder or URL, else IBL's networks_v1.2) reads
    the paw's smoothed x, y and the wheel velocity on the camera's clock (``measures.paw_states``). No
    networks, no wheel data or no Lightning Pose table is a one-line error; a camera whose table or
    times cannot serve is skipped with a warning (an error when no camera can). Nothing else is written
    over. ``model_loader`` loads one member folder (default ``networks.lightning_action.load_action_model``).
    ``tracker``: whose pose tables (IBL's networks read Lightning Pose's; the demo set, any with the paw columns).
    """
    session = Path(session)
    paths = SessionPaths(session)
    tables = pose_tables(session, tracker, paw_states.SIDE_CAMERAS)
    if not tables:
        raise IblVideoError(paths.alf, f"no side camera's {tracker} pose table (_ibl_<left|right>Camera.{attribute(tracker)}.pqt): "
                                       "the paw-state networks read its smoothed paws")
    wheel = _wheel(session)
    outputs = [paths.pawstates(camera) for camera in tables]
    wheel_files = [paths.session_file(WHEEL_POSITION), paths.session_file(WHEEL_TIMES)]
    _claim(session, outputs, [*tables.values(), *map(paths.times, tables), *wheel_files], force)
    root = la_networks.networks_dir(networks)
    profile = la_networks.profile_for(root)
    models, states = _action_models(root, profile, model_loader or _load_action_model)
    metadata = {"network_set": profile.name, "network_set_sha256": unpacked_sha256(root), "sequence_length": profile.sequence_length,
                "members": {paw: [m.name for m in profile.members(root, paw)] for paw in profile.paws}}
    written, problems = {}, []
    for camera, pose in tables.items():
        try:
            table = read_parquet(pose)
            assert table is not None  # pose_tables found it
            if missing := paw_states.missing_columns(table):
                raise IblVideoError(pose, f"has no {', '.join(missing)} column(s); IBL's paw-state networks read the smoothed paws")
            times = read_times(paths.times(camera))
            if times is None:
                raise IblVideoError(paths.times(camera), "no camera times; the paw states are computed on the camera's clock")
            try:
                pawstates = _camera_pawstates(table, times, wheel, camera, models, states, profile.sequence_length)
            except IblVideoError as err:
                raise IblVideoError(err.path or pose, err.problem) from None
        except IblVideoError as err:
            log.warning("paw states of the %s camera skipped: %s", camera, err)
            problems.append(str(err))
            continue
        written[camera] = write_table(pawstates, paths.pawstates(camera), {"camera": camera, **metadata})
        record_provenance(session, [written[camera]], [pose, paths.times(camera), *wheel_files])
    if not written:
        raise IblVideoError(paths.alf, f"no paw states written: {'; '.join(problems)}")
    return written
