"""The ALF session layout: every folder and dataset name iblvideo reads or writes, spelled here only.

A session is ``<subject>/<yyyy-mm-dd>/<nnn>``; raw videos are in ``raw_video_data/``, everything
derived in ``alf/``, a synthetic session's ground truth in ``truth/``.

IBL's own datasets keep IBL's names. What iblvideo adds lives in ALF objects of its own (namespace
``_iblvideo_``, objects IBL does not have), so that ONE's ``load_object`` of IBL's objects (``leftCamera``,
``licks``) never meets a dataset of another length, and the ground truth never answers a query for a
real dataset.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from iblvideo.cameras import CAMERAS

SESSION_PATTERN = re.compile(r"(?P<subject>[^/\\]+)[/\\](?P<date>\d{4}-\d{2}-\d{2})[/\\](?P<number>\d{1,3})$")
CAMERA_NAMES = tuple(CAMERAS)  # IBL's order: left, right, body
RAW_VIDEO_COLLECTION, ALF_COLLECTION, TRUTH_COLLECTION = "raw_video_data", "alf", "truth"
PAWSTATES_COLLECTION = f"{ALF_COLLECTION}/lightningaction"  # IBL's Lightning Action outputs

# session-wide datasets
LICKS = "licks.times.npy"
QC_REPORT = "_iblvideo_dlc.qc.json"
PROVENANCE = "_iblvideo_provenance.json"
TRIALS = "_ibl_trials.table.pqt"
WHEEL_POSITION, WHEEL_TIMES = "_ibl_wheel.position.npy", "_ibl_wheel.timestamps.npy"
RAW_VIDEO_PATTERN = "_iblrig_*Camera.raw.*"
LICK_EVENTS = "_iblvideo_lickEvents.table.pqt"  # one row per lick: times, side

# a synthetic session's ground truth, in truth/
TRUTH_ATTRIBUTE = "dlc"  # the true pose table is in IBL's pose schema
TRUTH_LICKS = "_iblvideo_trueLicks.times.npy"
TRUTH_SPONTANEOUS_LICKS = "_iblvideo_trueLicks.spontaneous.npy"  # flags: the lick was away from the spout


def raw_video_name(camera: str, extension: str = "mp4") -> str:
    return f"_iblrig_{camera}Camera.raw.{extension}"


def pose_name(camera: str, attribute: str) -> str:
    """``_ibl_<cam>Camera.<attribute>.pqt``: ``dlc`` or ``lightningPose`` (see ``tracking.registry``)."""
    return f"_ibl_{camera}Camera.{attribute}.pqt"


def times_name(camera: str) -> str:
    return f"_ibl_{camera}Camera.times.npy"


def features_name(camera: str) -> str:
    return f"_ibl_{camera}Camera.features.pqt"


def sniffs_name(camera: str) -> str:
    return f"_iblvideo_{camera}Sniffs.times.npy"


def speeds_name(camera: str) -> str:
    """One row per frame, a column per point (``paw_r``, ``paw_l``, ``nose_tip``), half-resolution pixels per second."""
    return f"_iblvideo_{camera}Speeds.table.pqt"


def motion_energy_names(camera: str) -> tuple[str, str]:
    """IBL's motion energy and its ROI (w, h, x, y): ``<cam>Camera.ROIMotionEnergy.npy``, ``<cam>ROIMotionEnergy.position.npy``."""
    return f"{camera}Camera.ROIMotionEnergy.npy", f"{camera}ROIMotionEnergy.position.npy"


def pawstates_name(camera: str) -> str:
    """IBL's paw states of a side camera, in ``alf/lightningaction/``: one row per frame, each paw's state probabilities."""
    return f"_ibl_{camera}Camera.pawstates.pqt"


def truth_pose_name(camera: str) -> str:
    return f"_iblvideo_{camera}TruePose.{TRUTH_ATTRIBUTE}.pqt"


def truth_pupil_name(camera: str) -> str:
    return f"_iblvideo_{camera}TruePupil.diameter.npy"


def truth_anchors_name(camera: str) -> str:
    return f"_iblvideo_{camera}TrueAnchors.positions.json"


def truth_paw_states_name(camera: str) -> str:
    """One row per frame of a side camera: ``paw_r``, ``paw_l`` each hold the paw's true state (``still``, ``move``, ...)."""
    return f"_iblvideo_{camera}TruePawStates.table.pqt"


def camera_of(name: str) -> str | None:
    """The camera an IBL file name is of (``_iblrig_leftCamera.raw.mp4`` → ``left``), or None."""
    match = re.search(r"_(?:iblrig|ibl|iblvideo)_(left|right|body)Camera\.", name)
    return match.group(1) if match else None


def session_name(session: str | Path) -> str:
    """``<subject>/<yyyy-mm-dd>/<nnn>`` of an ALF session folder (else the folder's name): where it is, not which disk."""
    match = SESSION_PATTERN.search(Path(session).resolve().as_posix())
    return "/".join(match.group("subject", "date", "number")) if match else Path(session).name


def session_root(path: str | Path) -> Path | None:
    """The ALF session folder holding ``path`` (``<subject>/<yyyy-mm-dd>/<nnn>``), or None."""
    path = Path(path).resolve()
    for candidate in (path, *path.parents):
        if SESSION_PATTERN.search(candidate.as_posix()):
            return candidate
    return None


@dataclass(frozen=True)
class SessionPaths:
    """Where each dataset of one session lives."""

    root: Path

    @property
    def alf(self) -> Path:
        return self.root / ALF_COLLECTION

    @property
    def truth(self) -> Path:
        return self.root / TRUTH_COLLECTION

    @property
    def raw_video_data(self) -> Path:
        return self.root / RAW_VIDEO_COLLECTION

    def raw_video(self, camera: str) -> Path:
        return self.raw_video_data / raw_video_name(camera)

    def pose(self, camera: str, attribute: str) -> Path:
        return self.alf / pose_name(camera, attribute)

    def times(self, camera: str) -> Path:
        return self.alf / times_name(camera)

    def features(self, camera: str) -> Path:
        return self.alf / features_name(camera)

    def sniffs(self, camera: str) -> Path:
        return self.alf / sniffs_name(camera)

    def speeds(self, camera: str) -> Path:
        return self.alf / speeds_name(camera)

    def pawstates(self, camera: str) -> Path:
        return self.root / PAWSTATES_COLLECTION / pawstates_name(camera)

    def truth_pose(self, camera: str) -> Path:
        return self.truth / truth_pose_name(camera)

    def motion_energy(self, camera: str) -> tuple[Path, Path]:
        energy, roi = motion_energy_names(camera)
        return self.alf / energy, self.alf / roi

    def session_file(self, name: str) -> Path:
        """A session-wide dataset of ``alf/`` (LICKS, QC_REPORT, TRIALS, ...)."""
        return self.alf / name


def raw_video_path(session: Path, camera: str) -> Path:
    return SessionPaths(Path(session)).raw_video(camera)
