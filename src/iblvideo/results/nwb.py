"""NWB export in the layout of IBL's own NWB conversion (catalystneuro/IBL-to-nwb), ready for DANDI.

What IBL's NWB files carry from video, on the camera times: processing module ``pose_estimation`` with
one ndx-pose ``PoseEstimation`` per camera (``LeftCamera``, ``RightCamera``, ``BodyCamera``), its series
named ``PoseEstimationSeries<Point>`` (``nose_tip`` → ``NoseTip``, ``paw_l`` → ``LeftPaw``) in ``px``, and
the ``Skeletons``; module ``pupil``: ``<Side>PupilDiameter`` and ``<Side>PupilDiameterSmoothed`` of the
side cameras' feature tables; module ``motion_energy``: ``<Cam>CameraMotionEnergy``, its ROI in the
description; module ``lick_times``: ndx-events ``EventsLickTimes`` of ``licks.times``.

IBL-to-nwb has no layout for the Lightning Action paw states (none of its data interfaces reads
``pawstates.pqt``), so ours is this: module ``paw_states`` with, per side camera and paw, a TimeSeries
``<Cam>Camera<Side>PawStates`` of the (frames, states) ensemble-mean probabilities and one
``<Cam>Camera<Side>PawStatesEnsembleVariance`` of their variance, the states' order in the description.

One addition for movement's NWB reader, whose defaults read ``behavior/PoseEstimation``: that holds the
left camera's (else the first camera's) pose as HDF5 links to the series of ``pose_estimation``, stored once.

The subject (sex, species, age or date of birth) comes from Alyx when the session is reached through
ONE (an eid), else from the caller; DANDI refuses files without them, so a missing one is an error.
"""
from __future__ import annotations

import datetime as dt
import logging
import re
import uuid
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from iblvideo import __version__
from iblvideo.cameras import CAMERAS
from iblvideo.errors import IblVideoError
from iblvideo.extras import needs_extra
from iblvideo.io.alf import LICKS, SessionPaths
from iblvideo.io.atomic import atomic_path, refuse_overwrite
from iblvideo.io.one import as_eid, as_folder, default_one
from iblvideo.io.session_files import read_npy, table_metadata
from iblvideo.results.load import PUPIL_COLUMNS, CameraResults, SessionResults, load_session
from iblvideo.results.plots import result_inputs

if TYPE_CHECKING:
    from one.api import One

log = logging.getLogger(__name__)

POSE_MODULE, PUPIL_MODULE, MOTION_ENERGY_MODULE, LICK_MODULE = "pose_estimation", "pupil", "motion_energy", "lick_times"
PAW_STATES_MODULE = "paw_states"
SKELETONS, LICK_EVENTS = "Skeletons", "EventsLickTimes"
MOVEMENT_MODULE, MOVEMENT_POSE = "behavior", "PoseEstimation"  # movement's from_nwb_file defaults
PUPIL_SERIES = dict(zip(PUPIL_COLUMNS, ("PupilDiameter", "PupilDiameterSmoothed"), strict=True))
SEXES = ("M", "F", "U", "O")  # NWB's and DANDI's spelling
MOUSE, MOUSE_NAMES = "Mus musculus", {"mouse", "laboratory mouse", "house mouse", "mus musculus"}  # Alyx keeps a common name
# an ISO 8601 duration (P90D, P12W, P1Y2M), or a range of two (P90D/P120D), as NWB wants an age
AGE_PATTERN = re.compile(r"P(?=\d)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+S)?)?(/(P(?=\d)(\d+[YMWD])+)?)?")
UNIT_PX = "px"
CONFIDENCE = "likelihood of the network's score map at the estimated position (0-1); IBL trusts positions at 0.9 and above"
REFERENCE_FRAME = "(0, 0) is the top-left corner of the camera's full-resolution frame, width by height; x grows rightwards, y downwards"


@dataclass(frozen=True)
class Subject:
    """What DANDI needs of the subject: sex (M, F, U, O), species (Latin binomial), age (ISO 8601 duration) or date of birth."""

    subject_id: str | None = None
    sex: str | None = None
    species: str | None = None
    age: str | None = None
    date_of_birth: dt.date | None = None
    description: str | None = None

    def overridden_by(self, other: Subject | None) -> Subject:
        """This subject with every field ``other`` gives replaced by it."""
        given = {k: v for k, v in vars(other).items() if v is not None} if other else {}
        return replace(self, **given)


@dataclass(frozen=True)
class SessionRecord:
    """What Alyx says of a session: its eid, start, subject and the people and lab behind it."""

    eid: str
    start_time: dt.datetime | None = None
    subject: Subject = Subject()
    lab: str | None = None
    institution: str | None = None
    experimenters: tuple[str, ...] = ()


def _require_nwb():
    with needs_extra("nwb"):
        import ndx_events
        import ndx_pose
        import pynwb
    return pynwb, ndx_pose, ndx_events


def series_name(point: str) -> str:
    """IBL-to-nwb's name of a point's series: a side suffix becomes a prefix, the rest CamelCase (``paw_l`` → ``PoseEstimationSeriesLeftPaw``)."""
    parts = point.split("_")
    side = {"l": "Left", "r": "Right"}.get(parts[-1]) if len(parts) > 1 else None
    words = ([side] if side else []) + [p.capitalize() for p in (parts[:-1] if side else parts)]
    return "PoseEstimationSeries" + "".join(words)


def container_name(camera: str) -> str:
    """IBL-to-nwb's name of a camera's containers: ``left`` → ``LeftCamera``."""
    return f"{camera.capitalize()}Camera"


def default_output(results: SessionResults) -> Path:
    """``<session>/sub-<subject>_ses-<date>-<number>_pose.nwb`` (DANDI-style), else ``<session>/pose.nwb``."""
    if results.alf_parts is None:
        return results.path / "pose.nwb"
    subject, date, number = results.alf_parts
    return results.path / f"sub-{subject.replace('_', '-')}_ses-{date}-{number}_pose.nwb"


def check_subject(subject: Subject) -> Subject:
    """``subject`` if DANDI would take it; a one-line error naming what is missing or malformed otherwise."""
    missing = [flag for flag, value in (("--subject-sex", subject.sex), ("--subject-species", subject.species)) if not value]
    if subject.age is None and subject.date_of_birth is None:
        missing.append("--subject-age or --subject-dob")
    if missing:
        raise IblVideoError(None, f"NWB for DANDI needs the subject's sex, species and age or date of birth: pass {', '.join(missing)} "
                                  "(e.g. --subject-sex F --subject-species 'Mus musculus' --subject-age P90D), or export by eid through ONE")
    if subject.sex not in SEXES:
        raise IblVideoError(None, f"subject sex {subject.sex!r}: expected one of {', '.join(SEXES)}")
    if subject.age is not None and not AGE_PATTERN.fullmatch(subject.age):
        raise IblVideoError(None, f"subject age {subject.age!r}: expected an ISO 8601 duration such as P90D or P12W")
    return subject


def _date(text: str | None, what: str) -> dt.date | None:
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text[:10])
    except ValueError:
        raise IblVideoError(None, f"{what} {text!r}: expected a date as YYYY-MM-DD") from None


def parse_dob(text: str | None) -> dt.date | None:
    """A date of birth given as YYYY-MM-DD; a one-line error otherwise."""
    return _date(text, "subject date of birth")


def _first(records: list[dict], **match: Any) -> dict | None:
    """The first record matching every ``match`` field, else the first record, else None."""
    return next((r for r in records if all(r.get(k) == v for k, v in match.items())), records[0] if records else None)


def alyx_record(one: One, eid: str) -> SessionRecord:
    """The session's start, lab and subject as Alyx holds them (IBL-to-nwb's sources); only the eid in local mode."""
    if one.offline or getattr(one, "alyx", None) is None:
        return SessionRecord(eid)
    session = _rest(one, eid, "sessions", "read", id=eid)
    name = session.get("lab")
    lab = (_first(list(_rest(one, eid, "labs", "list", name=name)), name=name) if name else None) or {}
    found = _first(list(_rest(one, eid, "subjects", "list", nickname=session.get("subject"))), lab=name) or {}
    subject = Subject(subject_id=session.get("subject"), sex=found.get("sex") or None, species=_species(found.get("species")),
                      date_of_birth=_date(found.get("birth_date"), "Alyx birth_date"), description=found.get("description") or None)
    start = session.get("start_time")
    start_time = dt.datetime.fromisoformat(start) if start else None
    if start_time is not None and start_time.tzinfo is None:
        start_time = start_time.replace(tzinfo=_timezone(lab.get("timezone")))
    users = session.get("users") or ()
    return SessionRecord(eid, start_time, subject, name, lab.get("institution") or None, tuple(users))


def _rest(one: One, eid: str, *args: Any, **filters: Any) -> Any:
    """Alyx's answer through ONE's REST client; a one-line error when it gives none."""
    try:
        return one.alyx.rest(*args, **filters)
    except Exception as err:  # noqa: BLE001 - ONE's client raises requests', Alyx's and its own errors
        raise IblVideoError(None, f"{eid}: Alyx gave no {args[0]} record ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})") from None


def _species(alyx: str | None) -> str | None:
    """The Latin binomial of Alyx's common name of a species (IBL-to-nwb writes Mus musculus for IBL's mice); any other name as it is."""
    if not alyx:
        return None
    return MOUSE if alyx.strip().lower() in MOUSE_NAMES else alyx


def _timezone(name: str | None) -> dt.tzinfo:
    """The lab's time zone, which Alyx's start times are in; UTC when Alyx names none."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name) if name else dt.timezone.utc
    except (ZoneInfoNotFoundError, ValueError):
        return dt.timezone.utc


def reach(session: str | Path, one: One | None = None) -> tuple[Path, SessionRecord | None]:
    """A session folder as it is, or an eid through ONE (``one``, else the configured one): its local folder and Alyx's record."""
    if (folder := as_folder(str(session))) is not None:
        return folder, None
    eid = as_eid(str(session))
    if eid is None:
        raise IblVideoError(None, f"{session}: no such session folder, and not an eid (a UUID) either")
    one = one or default_one(f"{session}: no such session folder, and no ONE database is configured to look it up as an eid (run ONE.setup())")
    folder = one.eid2path(eid)
    if folder is None or not Path(folder).is_dir():
        raise IblVideoError(None, f"{session}: ONE knows no local folder of this session ({folder}); download its alf/ datasets first")
    return Path(folder), alyx_record(one, eid)


def _start_time(results: SessionResults, record: SessionRecord | None) -> dt.datetime:
    """Alyx's start time, else midnight UTC of the session date from the ALF path (ALF keeps no clock time), else the Unix epoch."""
    if record is not None and record.start_time is not None:
        return record.start_time
    day = dt.date.fromisoformat(results.alf_parts[1]) if results.alf_parts else dt.date(1970, 1, 1)
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.timezone.utc)


def _nwb_subject(pynwb, subject: Subject, start: dt.datetime):
    born = None if subject.date_of_birth is None else dt.datetime.combine(subject.date_of_birth, dt.time(), tzinfo=start.tzinfo)
    return pynwb.file.Subject(subject_id=subject.subject_id, sex=subject.sex, species=subject.species, age=subject.age,
                              date_of_birth=born, description=subject.description)


def _tracked_with(camera: CameraResults) -> str:
    """Which tracker and weights made the camera's table, from its provenance."""
    meta = camera.metadata
    weights = f"{meta.get('weights', 'unknown weights')} {meta.get('weights_version', '')}".strip()
    return f"{meta.get('tracker', 'an iblvideo tracker')} with {weights}"


def _pose_estimation(nwbfile, ndx_pose, camera: CameraResults, skeletons):
    """The camera's PoseEstimation in IBL-to-nwb's names, its skeleton added to ``skeletons`` and its camera to ``nwbfile``'s devices."""
    if camera.times is None:
        raise IblVideoError(None, f"{camera.camera} camera: no alf/_ibl_{camera.camera}Camera.times.npy with one time per pose frame; NWB needs them")
    spec, name = CAMERAS[camera.camera], container_name(camera.camera)
    device = nwbfile.create_device(name=spec.label, description=f"IBL {camera.camera} camera, {spec.width}x{spec.height} at {spec.fps:g} Hz")
    points = sorted(camera.points)  # IBL-to-nwb's order
    skeleton = ndx_pose.Skeleton(name=name, nodes=[series_name(p) for p in points], edges=np.zeros((0, 2), dtype="uint8"), subject=nwbfile.subject)
    skeletons.add_skeletons(skeleton)
    series: list[Any] = []  # PoseEstimationSeries: ndx_pose has no type hints
    for point in points:
        series.append(ndx_pose.PoseEstimationSeries(
            name=series_name(point), description=f"Position of IBL's point '{point}' in the {camera.camera} camera's video, tracked by iblvideo",
            data=camera.tracks.point_xy(point).astype(float), unit=UNIT_PX, reference_frame=REFERENCE_FRAME,
            confidence=camera.tracks.point_likelihood(point).astype(float), confidence_definition=CONFIDENCE,
            timestamps=series[0] if series else camera.times,
        ))
    meta = camera.metadata
    return ndx_pose.PoseEstimation(
        name=name, pose_estimation_series=series, skeleton=skeleton, device=device,
        description=f"Estimated positions of body parts on the {camera.camera} camera, by {_tracked_with(camera)}: "
                    f"{meta.get('weights_description', 'no description recorded')}",
        scorer=f"{meta.get('weights', 'unknown weights')} {meta.get('weights_version', '')}".strip(),
        source_software="iblvideo", source_software_version=meta.get("iblvideo_version", __version__),
    )


def _same_length(values, n_frames: int, path: Path, what: str):
    """``values`` when it has one row per camera frame; a one-line error naming the file otherwise."""
    if len(values) != n_frames:
        raise IblVideoError(path, f"{what} has {len(values)} rows for {n_frames} camera times")
    return values


def _add_pupil(nwbfile, pynwb, paths: SessionPaths, camera: CameraResults, clock) -> None:
    """The side camera's raw and smoothed pupil diameters of ``camera.features`` (IBL's), if it has a feature table."""
    features = camera.features  # as load_session read it
    if features is None:
        return
    _same_length(features, len(camera.tracks), paths.features(camera.camera), "feature table")
    module = _module(nwbfile, PUPIL_MODULE, "Pupil diameters from the side cameras' four pupil points, as IBL computes them: "
                                            "per frame the median of the two direct diameters and four chord-based estimates")
    side = camera.camera.capitalize()
    explained = {"pupilDiameter_raw": "frame by frame, NaN where the pupil points are not trusted",
                 "pupilDiameter_smooth": "smoothed over time and interpolated over the untrusted frames"}
    for column, series in PUPIL_SERIES.items():
        module.add(pynwb.TimeSeries(name=f"{side}{series}", data=features[column].to_numpy(float), unit=UNIT_PX, timestamps=clock,
                                    description=f"Pupil diameter on the {camera.camera} camera ({column} of IBL's feature table), {explained[column]}"))


def _add_motion_energy(nwbfile, pynwb, paths: SessionPaths, camera: CameraResults, clock) -> None:
    """The camera's motion energy, its ROI in the description as IBL-to-nwb writes it, if both are there."""
    energy_path, roi_path = paths.motion_energy(camera.camera)
    # the energy as load_session read it; the ROI from its file, since load_session places a missing one from the pose
    energy, roi = camera.motion_energy, read_npy(roi_path, "motion-energy ROI")
    if energy is None or roi is None:
        return
    if roi.shape != (4,):
        raise IblVideoError(roi_path, f"motion-energy ROI must be 4 numbers (w, h, x, y), got shape {roi.shape}")
    width, height, x, y = (int(v) for v in roi)
    module = _module(nwbfile, MOTION_ENERGY_MODULE, "Motion energy: the movement inside a region of interest of each camera's video, "
                                                    "the mean absolute grey-level change from each frame to the next, as IBL computes it")
    module.add(pynwb.TimeSeries(
        name=f"{container_name(camera.camera)}MotionEnergy", unit="a.u.", timestamps=clock,
        data=_same_length(energy.astype(float), len(camera.tracks), energy_path, "motion energy"),
        description=f"Motion energy in a region of the {camera.camera} camera's video: {width} px wide, {height} px tall, top-left corner at "
                    f"x={x}, y={y} (frame rows {y}:{y + height}, columns {x}:{x + width}); ROI (w, h, x, y) = ({width}, {height}, {x}, {y})",
    ))


def paw_states_name(camera: str, paw: str) -> str:
    """Our name of a camera's paw-state series: ``left``, ``paw_r`` → ``LeftCameraRightPawStates``."""
    return f"{container_name(camera)}{series_name(paw).removeprefix('PoseEstimationSeries')}States"


def _add_paw_states(nwbfile, pynwb, paths: SessionPaths, camera: CameraResults, clock) -> None:
    """Each paw's Lightning Action state probabilities and their ensemble variance, if the camera has a paw-states table."""
    if not camera.paws:
        return
    module = _module(nwbfile, PAW_STATES_MODULE, "Paw states: IBL's Lightning Action networks' segmentation of each paw's movement, "
                                                 "from the paw's Lightning Pose track and the wheel velocity, per side camera")
    networks = table_metadata(paths.pawstates(camera.camera)).get("network_set", "IBL's Lightning Action networks")
    for paw in camera.paws:
        states, probabilities = camera.paw_states(paw)
        _, variance = camera.paw_states(paw, variance=True)
        order = ", ".join(states)
        name = paw_states_name(camera.camera, paw)
        module.add(pynwb.TimeSeries(
            name=name, data=probabilities, unit="probability", timestamps=clock,
            description=f"Probability of each state of {paw} on the {camera.camera} camera, the mean over the ensemble of {networks}; "
                        f"columns: {order}; NaN on frames without a prediction (the frames after the last whole sequence)"))
        module.add(pynwb.TimeSeries(
            name=f"{name}EnsembleVariance", data=variance, unit="probability squared", timestamps=clock,
            description=f"Variance over the ensemble (ddof=1) of each state's probability of {paw} on the {camera.camera} camera; columns: {order}"))


def _add_licks(nwbfile, ndx_events, paths: SessionPaths, licks: np.ndarray | None) -> None:
    """IBL's ``licks.times`` (as load_session read it): every frame of either side camera where a tongue point jumps, as ndx-events Events."""
    path = paths.session_file(LICKS)
    if licks is None:
        return
    if licks.ndim != 1:
        raise IblVideoError(path, f"lick times must be one-dimensional, got shape {licks.shape}")
    module = _module(nwbfile, LICK_MODULE, "Lick times from the tongue points of the side cameras' pose tracks")
    module.add(ndx_events.Events(name=LICK_EVENTS, timestamps=licks.astype(float), description=(
        "IBL's licks.times: the times of the frames, of the left and right cameras merged, where a tongue point's x or y changes "
        "by more than a quarter of the standard deviation of its frame-to-frame changes; a lick spans several such frames")))


def _module(nwbfile, name: str, description: str):
    """The processing module ``name``, made on first use."""
    return nwbfile.processing[name] if name in nwbfile.processing else nwbfile.create_processing_module(name=name, description=description)


def _link_for_movement(pynwb, ndx_pose, path: Path, camera: str) -> None:
    """Add ``behavior/PoseEstimation``, movement's default, as links to ``camera``'s series in the written file."""
    with pynwb.NWBHDF5IO(path, "a") as io:
        nwbfile = io.read()
        source = nwbfile.processing[POSE_MODULE][container_name(camera)]
        series: list[Any] = []
        for item in source.pose_estimation_series.values():
            series.append(ndx_pose.PoseEstimationSeries(
                name=item.name, description=item.description, data=item, unit=item.unit, reference_frame=item.reference_frame,
                confidence=item.confidence, confidence_definition=item.confidence_definition, timestamps=series[0] if series else item,
            ))
        module = nwbfile.create_processing_module(name=MOVEMENT_MODULE, description=(
            f"The {camera} camera's pose where movement's NWB reader looks by default: links to {POSE_MODULE}/{source.name}, stored once"))
        module.add(ndx_pose.PoseEstimation(
            name=MOVEMENT_POSE, pose_estimation_series=series, skeleton=source.skeleton, device=source.device,
            description=f"{source.description} (links to {POSE_MODULE}/{source.name})", scorer=source.scorer,
            source_software=source.source_software, source_software_version=source.source_software_version,
        ))
        io.write(nwbfile)


def export_nwb(session: str | Path, out: str | Path | None = None, tracker: str | None = None, force: bool = False,
               subject: Subject | None = None, one: One | None = None) -> Path:
    """Write the session (a folder, or an eid through ONE) as an NWB file in IBL's layout (default beside its
    alf folder) and return its path: ``tracker``'s pose tables (default the only ones), pupil diameters,
    motion energy and licks. ``subject`` gives or overrides what Alyx says of the subject; an existing
    file is kept unless ``force``."""
    pynwb, ndx_pose, ndx_events = _require_nwb()
    folder, record = reach(session, one)
    results = load_session(folder, tracker)
    out = refuse_overwrite(Path(out) if out else default_output(results), result_inputs(results.path, results.cameras.values()), force)
    known = record.subject if record else Subject()
    if known.subject_id is None and results.alf_parts:
        known = replace(known, subject_id=results.alf_parts[0])
    chosen = check_subject(known.overridden_by(subject))
    start = _start_time(results, record)
    nwbfile = pynwb.NWBFile(
        session_description=f"IBL rig video of {results.name}: pose, pupil diameters, motion energy and licks by iblvideo {__version__}",
        identifier=str(uuid.uuid5(uuid.NAMESPACE_URL, f"iblvideo:{record.eid if record else results.name}")),
        session_start_time=start, session_id=record.eid if record else results.name.replace("/", "_"),
        subject=_nwb_subject(pynwb, chosen, start),
        experiment_description="Video of a mouse in the International Brain Laboratory's rig, and what iblvideo derives from it",
        keywords=["IBL", "pose estimation", "pupil diameter", "motion energy", "licks"],
        lab=record.lab if record else None, institution=record.institution if record else None,
        experimenter=list(record.experimenters) if record and record.experimenters else None,
    )
    paths = SessionPaths(results.path)
    trackers = sorted({str(c.metadata.get("tracker", "iblvideo")) for c in results.cameras.values()})
    pose_module = _module(nwbfile, POSE_MODULE, f"Pose estimation from the rig's videos by iblvideo ({', '.join(trackers)})")
    skeletons = ndx_pose.Skeletons(name=SKELETONS)
    estimations = [_pose_estimation(nwbfile, ndx_pose, camera, skeletons) for camera in results.cameras.values()]
    pose_module.add(skeletons)
    for camera, estimation in zip(results.cameras.values(), estimations, strict=True):
        pose_module.add(estimation)
        clock = next(iter(estimation.pose_estimation_series.values()))  # the camera times, stored once
        if camera.camera != "body":  # IBL has pupil diameters of the side cameras only
            _add_pupil(nwbfile, pynwb, paths, camera, clock)
        _add_motion_energy(nwbfile, pynwb, paths, camera, clock)
        _add_paw_states(nwbfile, pynwb, paths, camera, clock)
    _add_licks(nwbfile, ndx_events, paths, results.licks)
    with atomic_path(out) as tmp, warnings.catch_warnings():
        # the temporary name of the atomic write does not end in .nwb; the final name does
        warnings.filterwarnings("ignore", message=".*does not end in '.nwb'")
        with pynwb.NWBHDF5IO(tmp, "w") as io:
            io.write(nwbfile)
        _link_for_movement(pynwb, ndx_pose, tmp, "left" if "left" in results.cameras else next(iter(results.cameras)))
    log.info("%d cameras written to %s in IBL's NWB layout", len(estimations), out)
    return out
