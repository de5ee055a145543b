"""One session end to end: ``run_session()`` and ``iblvideo session``.

Every camera of the session is tracked and gets its motion energy; features and QC follow for the
session as a whole. Outputs land in ``alf/`` and are added to ONE's records (the local cache tables,
or datasets registered on Alyx), so ``one.load_object(eid, "leftCamera", collection="alf")`` sees
them. A camera whose video is missing, corrupt or empty fails alone, with the reason.

Each video is decoded once. The cascade first runs its ROI network on frames sampled over the
video (about one a second, 20-100 frames: the only decoding before the pass); the specialised
networks that track the motion-energy ROI's points (eye and nose tip; tail start on the body camera)
then run on those same frames, and IBL's ROI definition applied to that sample of the tracks places
the ROI. The single tracking pass then feeds both the networks and the motion-energy accumulator
(``OnePassMotionEnergy``). IBL places its ROI from the means of the final tracks instead; on
synthetic sessions the two ROIs came out equal or 1 px apart and the motion-energy traces
correlated above 0.9999 (``benchmarks/one_pass_motion_energy.py``). The exact IBL ROI is what
``iblvideo motion-energy`` computes from an existing pose table, and what a camera gets here when
its pose table is kept (no ``force``) or comes from the ``truth`` tracker: tracking does not decode
then, so motion energy is still the only pass. Should the sample not place the ROI (a point never
confidently tracked in it), motion energy falls back to the final tracks, at the cost of a second
decode; so does a tracker that keeps no sample: Lightning Pose, whose ROI is thus IBL's, from the
Kalman-smoothed points of its table, as IBL's LightningPose task places it. Features and QC then run
as IBL's PostLP and LpQC on Lightning Pose tables, PostDLC and DlcQC on the others (``stages``); after
Lightning Pose, the side cameras get IBL's Lightning Action paw states when a network set is there.
"""
from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from iblvideo.errors import IblVideoError
from iblvideo.io.alf import CAMERA_NAMES, QC_REPORT, RAW_VIDEO_PATTERN, SessionPaths, camera_of, session_root
from iblvideo.io.atomic import atomic_path
from iblvideo.io.one import as_eid, as_folder, check_in_root, data_root, default_one, listed_cameras, local_one, register_local, register_remote, session_eid, update_alyx_qc
from iblvideo.io.session_files import LIGHTNING_POSE
from iblvideo.tracking.registry import TRUTH, attribute

if TYPE_CHECKING:
    from one.api import One

    from iblvideo.measures.motion_energy import OnePassMotionEnergy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Options:
    """How to process sessions (run_session's arguments; picklable, for Dask workers)."""

    cameras: tuple[str, ...] | None = None
    tracker: str = "dlc"
    weights: str | None = None  # the tracker's: a name, folder or URL; None for its default
    device: str = "cpu"
    force: bool = False
    pawstates: str | None = None  # the Lightning Action network set (a folder or URL); None: the set found locally, if any


def _copy_truth(paths: SessionPaths, camera: str, options: Options) -> Path:
    """The ground-truth pose of a synthetic session, so that every stage after tracking runs without weights."""
    truth = paths.truth_pose(camera)
    if not truth.exists():
        raise IblVideoError(truth, "no ground-truth pose; tracker 'truth' works on synthetic sessions (iblvideo synth) only")
    out = paths.pose(camera, attribute(TRUTH))
    if options.force or not out.exists():
        with atomic_path(out) as tmp:
            shutil.copyfile(truth, tmp)
    return out


def _track(paths: SessionPaths, camera: str, options: Options, energy: OnePassMotionEnergy) -> Path:
    """The camera's pose table, tracked by the session's tracker with motion energy fed from its decode pass."""
    if options.tracker == TRUTH:
        return _copy_truth(paths, camera, options)
    from iblvideo.tracking.run import track  # imports torch: only when tracking for real

    return track(paths.raw_video(camera), options.tracker, options.weights, options.device, force=options.force, camera=camera,
                 consumers_for=energy)


@dataclass
class CameraResult:
    """What happened to one camera: Complete or Errored, its files, and how long it took."""

    camera: str
    status: str
    outputs: list[Path] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None

    def to_json(self) -> dict:
        return {"status": self.status, "outputs": [str(p) for p in self.outputs], "seconds": round(self.seconds, 3), "error": self.error}


@dataclass
class SessionResult:
    """Per-camera results, session-wide outputs (licks, QC report), the QC outcome and any session-level errors."""

    session: Path
    eid: str
    cameras: dict[str, CameraResult]
    outputs: list[Path] = field(default_factory=list)
    qc: str | None = None
    extended_qc: dict | None = field(default=None, repr=False)  # the QC report's, for Alyx
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # stages skipped by design, not failures
    seconds: float = 0.0

    @property
    def status(self) -> str:
        """Alyx's task statuses: Empty (no video at all), Errored (any camera or stage failed), else Complete."""
        if not self.cameras:
            return "Empty"
        if self.errors or any(c.status != "Complete" for c in self.cameras.values()):
            return "Errored"
        return "Complete"

    @property
    def error(self) -> str | None:
        """All failures in one line each, or None."""
        lines = [f"{c.camera} camera: {c.error}" for c in self.cameras.values() if c.error] + self.errors
        return "\n".join(lines) or None

    def to_json(self) -> dict:
        return {
            "session": str(self.session), "eid": self.eid, "status": self.status, "qc": self.qc,
            "seconds": round(self.seconds, 3), "outputs": [str(p) for p in self.outputs], "errors": self.errors, "notes": self.notes,
            "cameras": {name: result.to_json() for name, result in self.cameras.items()},
        }


def _failure(err: Exception) -> str:
    """One line for a stage failure: a user error as it reads, anything else with its type (and a logged traceback)."""
    if isinstance(err, IblVideoError):
        return str(err)
    log.error("unexpected failure", exc_info=err)
    return f"{type(err).__name__}: {err}"


def _run_camera(session: Path, camera: str, options: Options) -> CameraResult:
    """Track one camera and compute its motion energy in the same decode pass; any failure is caught and reported."""
    from iblvideo.measures.motion_energy import OnePassMotionEnergy
    from iblvideo.sessions.stages import motion_energy_stage, save_motion_energy
    from iblvideo.video.reader import probe

    start = time.perf_counter()
    paths = SessionPaths(session)
    try:
        probe(paths.raw_video(camera))  # a missing, empty, truncated or corrupt video fails here, before any output is written
        in_pass = OnePassMotionEnergy()
        pose = _track(paths, camera, options, in_pass)
        if in_pass.ran and in_pass.roi is not None:
            energy = save_motion_energy(session, camera, in_pass.result(), in_pass.roi, pose, options.force)
        else:  # no tracking pass (pose kept, or ground truth), or no ROI from the sample: IBL's ROI from the final tracks
            energy = motion_energy_stage(session, cameras=(camera,), tracker=options.tracker, force=options.force)[camera]
    except Exception as err:  # noqa: BLE001 - one camera's failure must not stop the others
        log.warning("%s camera failed: %s", camera, err)
        return CameraResult(camera, "Errored", seconds=time.perf_counter() - start, error=_failure(err))
    return CameraResult(camera, "Complete", [pose, *energy], time.perf_counter() - start)


def _run_session_stages(result: SessionResult, options: Options) -> None:
    """Features and QC over the cameras that were tracked; their files go to the cameras they belong to."""
    from iblvideo.sessions.stages import features_stage, qc_stage

    if not any(c.status == "Complete" for c in result.cameras.values()):
        return
    try:
        for key, path in features_stage(result.session, options.tracker, options.force).items():
            owner = result.cameras.get(key.split("_")[0])
            (owner.outputs if owner is not None else result.outputs).append(path)
        report = qc_stage(result.session, options.tracker, options.force)
        result.qc, result.extended_qc = report["outcome"], report["extended_qc"]
        result.outputs.append(SessionPaths(result.session).session_file(QC_REPORT))
    except Exception as err:  # noqa: BLE001 - reported as the session's error; the camera outputs stand
        result.errors.append(_failure(err))


def _run_paw_states(result: SessionResult, options: Options) -> None:
    """IBL's Lightning Action paw states after the Lightning Pose tracker, when its networks are there; a failure is
    the session's one-line error and touches no other output."""
    from iblvideo.measures.paw_states import SIDE_CAMERAS
    from iblvideo.sessions.stages import paw_states_stage
    from iblvideo.tracking import la_networks

    networks = la_networks.found(options.pawstates)
    if not any(c.status == "Complete" and c.camera in SIDE_CAMERAS for c in result.cameras.values()):
        return
    if networks is None:
        if options.tracker == LIGHTNING_POSE:
            result.notes.append("paw states not run: no Lightning Action network set found (pass pawstates=, or set $IBLVIDEO_LA_NETWORKS)")
        return
    if options.tracker != LIGHTNING_POSE and str(networks) != la_networks.DEMO:  # the demo set reads the synthetic rig's tables
        result.notes.append(f"paw states skipped: IBL's Lightning Action networks read Lightning Pose tables, and the tracker is {options.tracker}")
        return
    try:
        for camera, path in paw_states_stage(result.session, options.force, networks, tracker=options.tracker).items():
            owner = result.cameras.get(camera)
            (owner.outputs if owner is not None else result.outputs).append(path)
    except Exception as err:  # noqa: BLE001 - reported as the session's error; the other outputs stand
        result.errors.append(f"paw states: {_failure(err)}")


def find_cameras(session: Path, listed: list[str] | tuple[str, ...] = ()) -> list[str]:
    """Cameras with a raw video on disk or listed by the database, in IBL's order."""
    on_disk = {camera_of(path.name) for path in SessionPaths(session).raw_video_data.glob(RAW_VIDEO_PATTERN)}
    return [camera for camera in CAMERA_NAMES if camera in on_disk or camera in listed]


def resolve(eid_or_path: str | Path, one: One | None = None) -> tuple[Path, str, One]:
    """Session folder, eid and ONE of a session folder (local ONE on its data root, or ``one`` if it is that root's) or an eid."""
    text = str(eid_or_path)
    if (candidate := as_folder(text)) is not None:
        session = session_root(candidate)
        if session is None:
            raise IblVideoError(candidate, "not an ALF session folder (<subject>/<yyyy-mm-dd>/<nnn>)")
        one = one or local_one(data_root(session))
        return check_in_root(one, session), session_eid(one, session), one
    one = one or default_one(f"{text}: no such session folder, and no ONE database is configured to look it up as an eid "
                             "(run ONE.setup(), or pass --root DATA_ROOT for ONE in local mode)")
    eid = as_eid(text)
    if eid is None:
        raise IblVideoError(None, f"{text}: no such session folder, and not an eid (a UUID) either")
    session = one.eid2path(eid)
    if session is None:
        raise IblVideoError(None, f"{text}: neither a session folder nor an eid that ONE knows ({one.cache_dir})")
    return Path(session), eid, one


def _register(one: One, result: SessionResult) -> None:
    paths = [p for p in (*result.outputs, *(p for c in result.cameras.values() for p in c.outputs)) if p.exists()]
    if not paths:
        return
    try:
        if one.offline:
            register_local(one, result.session, result.eid, paths)
        else:
            register_remote(one, paths)
    except Exception as err:  # noqa: BLE001 - the files are written; the registration failure is the session's error
        result.errors.append(f"registering outputs with ONE failed: {_failure(err)}")


def _update_alyx_qc(one: One, result: SessionResult) -> None:
    """On Alyx, the session's extended_qc and QC field from the QC stage's report, as IBL's pose QC updates them."""
    if one.offline or result.extended_qc is None:
        return
    try:
        update_alyx_qc(one, result.eid, result.extended_qc)
    except Exception as err:  # noqa: BLE001 - the QC report is written; the update failure is the session's error
        result.errors.append(f"updating the session's QC on Alyx failed: {_failure(err)}")


def run_session(eid_or_path: str | Path, one: One | None = None, cameras: tuple[str, ...] | None = None,
                tracker: str = "dlc", force: bool = False, weights: str | Path | None = None, device: str = "cpu",
                pawstates: str | Path | None = None) -> SessionResult:
    """Track, motion energy, features and QC for every camera of a session; outputs in ``alf/`` and in ONE.

    ``eid_or_path`` is a session folder (ONE runs in local mode on its data root) or an eid of the
    ``one`` given (or of the configured ONE). ``cameras`` defaults to every camera with a raw video.
    ``tracker`` is ``dlc`` (``weights``: a weights set, default the demo weights), ``lightning-pose``
    (``weights``: a network set, default IBL's), or ``truth`` to take a synthetic session's ground-truth pose.
    After Lightning Pose, the side cameras get IBL's paw states (``stages.paw_states_stage``) from the Lightning
    Action set ``pawstates`` (a folder or URL), else the one found locally (``$IBLVIDEO_LA_NETWORKS``, or IBL's
    set already in the cache); with no set found they are left out, and another tracker skips them with a note.
    """
    if tracker != TRUTH:
        from iblvideo.tracking.run import check_arguments  # imports torch: only when tracking for real

        check_arguments(tracker, weights, device)  # one line now, rather than every camera Errored
    unknown = [c for c in cameras or () if c not in CAMERA_NAMES]
    if unknown:
        raise IblVideoError(None, f"unknown camera {unknown[0]!r}; expected left, right or body")
    options = Options(tuple(cameras) if cameras else None, tracker, None if weights is None else str(weights), device, force,
                      None if pawstates is None else str(pawstates))
    start = time.perf_counter()
    session, eid, one = resolve(eid_or_path, one)
    available = find_cameras(session, listed_cameras(one, eid))
    # a session without any video is Empty; a camera asked for by name but missing fails
    names = list(cameras) if cameras and available else available
    log.info("%s (%s): cameras %s", session, eid, ", ".join(names) or "none")
    result = SessionResult(session, eid, {name: _run_camera(session, name, options) for name in names})
    _run_session_stages(result, options)
    _run_paw_states(result, options)
    _register(one, result)
    _update_alyx_qc(one, result)
    result.seconds = time.perf_counter() - start
    log.info("%s: %s in %.1f s", session, result.status, result.seconds)
    return result
