"""Pose QC: IBL's quality checks, thresholds and outcome aggregation, per camera and per session.

Every check returns an outcome (and sometimes a value); the camera's outcome is the worst outcome
of the aggregated checks (IBL's DlcQC leaves the pupil SNR out of it), the session's the worst camera's.
A Lightning Pose table gets IBL's LpQC instead: the four checks of IBL's PoseQC (trace lengths, all-NaN
traces, the box, lick detection), every one aggregated; DlcQC's pupil and paw checks are reported as
NOT_SET (skipped), which leaves the outcome as LpQC's.
Where IBL's own QC would crash or be skipped (no camera times, an all-NaN trace, no trials table)
the check says so with an outcome and a note instead.

The report also carries the session's ``extended_qc`` as IBL writes it to Alyx: ``_<namespace>_<check>``
per check (namespace ``dlcLeft``, ``lightningPoseBody``, ...) holding the outcome, or (outcome, value)
for the pupil SNR, the one check IBL gives a value; plus the namespace itself holding the camera's
aggregate, which IBL raises the session's QC field to. iblvideo's own check (decode errors) goes under
``_iblvideo<Camera>_<check>``: the damage is worth seeing on Alyx, but not in IBL's namespaces, where
IBL's tools would take it for theirs, nor in IBL's aggregate, and the leading underscore keeps it out
of the outcome IBL computes back from the extended QC (``compute_outcome_from_extended_qc``).
"""
from __future__ import annotations

import functools
import logging
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from iblvideo.measures.features import PUPIL_POINTS, SAMPLING, SMOOTHING_WINDOW, pupil_diameter, smooth_pupil_diameter
from iblvideo.tracks import PoseTracks

log = logging.getLogger(__name__)

# IBL's empirical boxes around the mean of all points; sessions outside them often had faulty video
BOUNDING_BOXES = {
    "body": (range(201, 500), range(81, 330)),
    "left": (range(301, 700), range(181, 470)),
    "right": (range(301, 600), range(110, 275)),
}
PUPIL_STD_LIMIT = {"left": 10, "right": 5}  # also the pupil SNR floor
PAW_NAN_WARNING, PAW_NAN_FAIL = 0.10, 0.20
LICK_NAN_LIMIT = 0.1  # both tongue points NaN in fewer frames than this: locked onto the spout or mouth
TRIAL_WINDOW = (-0.5, 2.0)  # seconds from stimulus onset: lag, length
NOT_AGGREGATED = ("pupil_diameter_snr",)  # DlcQC's ignore_checks; LpQC's are none
NOT_IN_LP_QC = ("pupil_blocked", "pupil_diameter_snr", "paw_close_nan", "paw_far_nan")  # DlcQC's own checks
NOT_IBL = ("decode_errors",)  # iblvideo's checks that IBL's QC does not run
WITH_VALUE = ("pupil_diameter_snr", "decode_errors")  # written as [outcome, value]: IBL does so for the SNR alone


class Outcome(IntEnum):
    """IBL's QC outcomes; a larger value is worse, except that NOT_SET sits below PASS."""

    NOT_SET = 0
    PASS = 10
    WARNING = 30
    FAIL = 40
    CRITICAL = 50


@dataclass
class Check:
    """One check's outcome, with its measured value and a note where those help."""

    outcome: Outcome
    value: float | None = None
    note: str = ""

    def to_json(self) -> dict:
        record: dict = {"outcome": self.outcome.name}
        if self.value is not None:
            record["value"] = None if math.isnan(self.value) else self.value
        if self.note:
            record["note"] = self.note
        return record


@dataclass
class CameraData:
    """What the checks read for one camera; coordinates are (2, n_frames), NaN below likelihood 0.9."""

    camera: str
    coords: dict[str, np.ndarray]
    times: np.ndarray | None = None
    stim_on_times: np.ndarray | None = None
    pupil_raw: np.ndarray | None = None
    pupil_smooth: np.ndarray | None = None
    decode_errors: int | None = None  # frames the decoder concealed errors in; None: not counted
    lightning_pose: bool = False  # IBL's Lightning Pose table: LpQC's checks
    n_frames: int = field(init=False)

    def __post_init__(self) -> None:
        self.n_frames = next(iter(self.coords.values())).shape[1] if self.coords else 0


def _side_only(check: Callable[[CameraData], Check]) -> Callable[[CameraData], Check]:
    """IBL sets the side-camera checks to NOT_SET on the body camera."""
    @functools.wraps(check)
    def wrapped(data: CameraData) -> Check:
        return Check(Outcome.NOT_SET) if data.camera == "body" else check(data)
    return wrapped


def check_time_trace_length_match(data: CameraData) -> Check:
    """Every trace has as many frames as the camera has times."""
    if data.times is None:
        return Check(Outcome.FAIL, note="no camera times file")
    if data.times.shape[0] != data.n_frames:
        return Check(Outcome.FAIL, note=f"{data.times.shape[0]} camera times for {data.n_frames} pose frames")
    return Check(Outcome.PASS)


def check_trace_all_nan(data: CameraData) -> Check:
    """No trace (spout 'tube' points aside) is NaN throughout."""
    for point, xy in data.coords.items():
        if "tube" not in point and np.isnan(xy).all(axis=1).any():
            return Check(Outcome.FAIL, note=f"{point} is NaN in every frame")
    return Check(Outcome.PASS)


def check_mean_in_bbox(data: CameraData) -> Check:
    """The mean position over all points and frames lies in the camera's box."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN points drop out of the mean
        x_mean, y_mean = (np.nanmean([np.nanmean(xy[axis]) for xy in data.coords.values()]) for axis in (0, 1))
    if np.isnan(x_mean) or np.isnan(y_mean):
        return Check(Outcome.FAIL, note="no point is ever tracked")
    xrange, yrange = BOUNDING_BOXES[data.camera]
    inside = int(x_mean) in xrange and int(y_mean) in yrange
    return Check(Outcome.PASS if inside else Outcome.FAIL, note=f"mean at ({x_mean:.1f}, {y_mean:.1f})")


@_side_only
def check_lick_detection(data: CameraData) -> Check:
    """Fails when both tongue points are seen in over 90 % of frames: they lock onto the spout or mouth."""
    missing = [p for p in ("tongue_end_l", "tongue_end_r") if p not in data.coords]
    if missing:
        return Check(Outcome.NOT_SET, note=f"no {', '.join(missing)} trace")
    nan_l, nan_r = (float(np.mean(np.isnan(data.coords[p][0]))) for p in ("tongue_end_l", "tongue_end_r"))
    return Check(Outcome.FAIL if nan_l < LICK_NAN_LIMIT and nan_r < LICK_NAN_LIMIT else Outcome.PASS)


@_side_only
def check_pupil_blocked(data: CameraData) -> Check:
    """Fails when the raw pupil diameter is NaN in over 90 % of frames or too unstable (SD above 10 px left, 5 px right)."""
    if data.pupil_raw is None:
        return Check(Outcome.NOT_SET, note="no pupil diameter")
    if np.mean(np.isnan(data.pupil_raw)) > 0.9:
        return Check(Outcome.FAIL, note="pupil diameter NaN in over 90% of frames")
    spread = float(np.nanstd(data.pupil_raw))
    return Check(Outcome.FAIL if spread > PUPIL_STD_LIMIT[data.camera] else Outcome.PASS, value=spread)


@_side_only
def check_pupil_diameter_snr(data: CameraData) -> Check:
    """Variance of the smoothed diameter over that of its residual; fails below 10 (left) or 5 (right)."""
    if data.pupil_raw is None or data.pupil_smooth is None:
        return Check(Outcome.NOT_SET, note="no pupil diameter")
    both = ~np.isnan(data.pupil_smooth) & ~np.isnan(data.pupil_raw)
    if not both.any():
        # IBL's ratio is then NaN, which compares as passing
        return Check(Outcome.PASS, value=float("nan"), note="no frame with both raw and smoothed diameters")
    smooth, raw = data.pupil_smooth[both], data.pupil_raw[both]
    snr = float(round(np.var(smooth) / np.var(smooth - raw), 3))
    return Check(Outcome.FAIL if snr < PUPIL_STD_LIMIT[data.camera] else Outcome.PASS, value=snr)


def nearest_frames(times: np.ndarray, events: np.ndarray) -> np.ndarray:
    """Index of the frame time nearest each event (ties to the later frame; NaN events to the last frame)."""
    index = np.searchsorted(times, events, side="left")
    index[index == len(times)] -= 1
    # index - 1 wraps to the last frame at 0, which is never nearer than the first: IBL's quirk, harmless
    index[np.abs(events - times[index - 1]) < np.abs(events - times[index])] -= 1
    index[index == -1] = 0
    return index


def _paw_nan_fraction(data: CameraData, point: str) -> tuple[float | None, str]:
    """Fraction of NaN x coordinates of ``point`` in the windows around stimulus onsets, or None and why not."""
    if data.times is None or data.times.shape[0] == 0:
        return None, "no camera times"
    if data.stim_on_times is None or data.stim_on_times.size == 0:
        return None, "no trials"
    if point not in data.coords:
        return None, f"no {point} trace"
    lag, length = TRIAL_WINDOW
    starts = nearest_frames(data.times, data.stim_on_times + lag)
    if np.all(starts == 0):
        return None, "every stimulus onset precedes the video"
    ends = starts + int(length * SAMPLING[data.camera])
    in_windows = np.concatenate([data.coords[point][0, a:b] for a, b in zip(starts, ends, strict=True)])
    if in_windows.size == 0:
        return None, "no frame in any trial window"
    return float(np.sum(np.isnan(in_windows)) / in_windows.shape[0]), ""


def _paw_check(data: CameraData, point: str) -> Check:
    fraction, why = _paw_nan_fraction(data, point)
    if fraction is None:
        return Check(Outcome.NOT_SET, note=why)
    outcome = Outcome.FAIL if fraction > PAW_NAN_FAIL else Outcome.WARNING if fraction > PAW_NAN_WARNING else Outcome.PASS
    return Check(outcome, value=fraction)


@_side_only
def check_paw_close_nan(data: CameraData) -> Check:
    """NaN fraction of the paw nearer the camera (paw_r) around stimulus onsets: WARNING above 10 %, FAIL above 20 %."""
    return _paw_check(data, "paw_r")


@_side_only
def check_paw_far_nan(data: CameraData) -> Check:
    """NaN fraction of the far paw (paw_l) around stimulus onsets: WARNING above 10 %, FAIL above 20 %."""
    return _paw_check(data, "paw_l")


def check_decode_errors(data: CameraData) -> Check:
    """WARNING when the decoder concealed errors in any frame: damaged video decodes to partly guessed pixels, and tracks there may be wrong."""
    if data.decode_errors is None:
        return Check(Outcome.NOT_SET, note="the pose table does not say whether decoding met errors")
    if data.decode_errors:
        return Check(Outcome.WARNING, value=float(data.decode_errors), note=f"the decoder concealed errors in {data.decode_errors} frame(s): the video is damaged")
    return Check(Outcome.PASS, value=0.0)


CHECKS: dict[str, Callable[[CameraData], Check]] = {
    check.__name__.removeprefix("check_"): check
    for check in (
        check_time_trace_length_match, check_trace_all_nan, check_mean_in_bbox, check_lick_detection,
        check_pupil_blocked, check_pupil_diameter_snr, check_paw_close_nan, check_paw_far_nan, check_decode_errors,
    )
}


def overall_outcome(outcomes: list[Outcome]) -> Outcome:
    """IBL's aggregation: the worst outcome, NOT_SET counting below PASS."""
    return max(outcomes, default=Outcome.NOT_SET)


def _skipped(name: str) -> Check:
    return Check(Outcome.NOT_SET, note=f"IBL's LpQC does not run {name}")


def run_camera_qc(data: CameraData) -> dict:
    """Every check on one camera (those IBL's LpQC lacks skipped on a Lightning Pose table), and the camera's aggregated outcome."""
    skipped = NOT_IN_LP_QC if data.lightning_pose else ()
    checks = {name: _skipped(name) if name in skipped else check(data) for name, check in CHECKS.items()}
    not_aggregated = () if data.lightning_pose else NOT_AGGREGATED
    outcome = overall_outcome([c.outcome for name, c in checks.items() if name not in not_aggregated])
    return {"outcome": outcome.name, "ibl_qc": "LpQC" if data.lightning_pose else "DlcQC", "checks": {name: c.to_json() for name, c in checks.items()}}


def camera_data(camera: str, tracks: PoseTracks, times: np.ndarray | None = None, stim_on_times: np.ndarray | None = None,
                pupil: tuple[np.ndarray, np.ndarray] | None = None, decode_errors: int | None = None,
                lightning_pose: bool = False) -> CameraData:
    """What the checks read of one camera's tracks; ``pupil`` (raw, smoothed diameters), else computed
    from the tracks where the camera films the pupil (and DlcQC reads it); ``decode_errors``, else the count
    in the tracks' metadata; ``lightning_pose``: the tracks are IBL's Lightning Pose table (LpQC's checks)."""
    confident = tracks.confident()
    # in name order, as IBL's checks walk the points
    coords = {p: confident.point_xy(p).T for p in sorted(tracks.points)}
    if camera not in SMOOTHING_WINDOW or lightning_pose:
        pupil = None
    elif pupil is None and tracks.has(*PUPIL_POINTS):
        raw = pupil_diameter(confident)
        pupil = raw, smooth_pupil_diameter(raw, camera)
    recorded = tracks.metadata.get("decode_errors")
    if decode_errors is None and isinstance(recorded, dict) and isinstance(recorded.get("frames"), int):
        decode_errors = recorded["frames"]
    return CameraData(camera=camera, coords=coords, times=times, stim_on_times=stim_on_times,
                      pupil_raw=None if pupil is None else pupil[0], pupil_smooth=None if pupil is None else pupil[1], decode_errors=decode_errors,
                      lightning_pose=lightning_pose)


def namespace(camera: str, ibl_qc: str) -> str:
    """IBL's extended-QC namespace of a camera's pose QC: ``dlcLeft``, ``lightningPoseBody``, ..."""
    return f"{'lightningPose' if ibl_qc == 'LpQC' else 'dlc'}{camera.capitalize()}"


def _extended_value(name: str, check: dict) -> str | list:
    """A check as IBL stores it in extended_qc: the outcome, or [outcome, value] (NaN as None)."""
    return [check["outcome"], check["value"]] if name in WITH_VALUE and "value" in check else check["outcome"]


def camera_extended_qc(camera: str, result: dict) -> dict:
    """One camera's extended_qc keys from its :func:`run_camera_qc` result: IBL's checks and aggregate, iblvideo's own checks apart."""
    ibl_qc, checks = result["ibl_qc"], result["checks"]
    ours = {name: check for name, check in checks.items() if name in NOT_IBL}
    theirs = {name: check for name, check in checks.items() if name not in ours and not (ibl_qc == "LpQC" and name in NOT_IN_LP_QC)}
    ignored = NOT_AGGREGATED if ibl_qc == "DlcQC" else ()
    space = namespace(camera, ibl_qc)
    extended: dict = {f"_{space}_{name}": _extended_value(name, check) for name, check in theirs.items()}
    extended.update({f"_iblvideo{camera.capitalize()}_{name}": _extended_value(name, check) for name, check in ours.items()})
    extended[space] = overall_outcome([Outcome[c["outcome"]] for name, c in theirs.items() if name not in ignored]).name
    return extended


def session_report(session: str, cameras: dict[str, CameraData]) -> dict:
    """Every camera's checks, the session's outcome (the worst camera's) and the session's extended_qc as IBL
    writes it, which leaves out a camera without camera times (IBL's tasks run no pose QC there)."""
    per_camera = {camera: run_camera_qc(data) for camera, data in cameras.items()}
    outcome = overall_outcome([Outcome[result["outcome"]] for result in per_camera.values()])
    extended = {key: value for camera, result in per_camera.items() if cameras[camera].times is not None
                for key, value in camera_extended_qc(camera, result).items()}
    return {"session": session, "outcome": outcome.name, "cameras": per_camera, "extended_qc": extended}


def format_report(report: dict) -> str:
    """The report as an aligned text table: one row per check, one column per camera."""
    cameras = list(report["cameras"])
    names = list(CHECKS)
    width = max(len(n) for n in names) + 2

    def cell(camera: str, name: str) -> str:
        check = report["cameras"][camera]["checks"][name]
        value = check.get("value")
        return check["outcome"] + ("" if value is None else f" ({value:.3g})")

    rows = [f"{'check':<{width}}" + "".join(f"{c:<22}" for c in cameras)]
    rows += [f"{n:<{width}}" + "".join(f"{cell(c, n):<22}" for c in cameras) for n in names]
    rows.append(f"{'camera outcome':<{width}}" + "".join(f"{report['cameras'][c]['outcome']:<22}" for c in cameras))
    rows.append(f"session outcome: {report['outcome']}")
    rows += [
        f"  {camera} {name}: {check['note']}"
        for camera in cameras for name, check in report["cameras"][camera]["checks"].items()
        if check.get("note") and check["outcome"] != Outcome.PASS.name
    ]
    return "\n".join(rows)
