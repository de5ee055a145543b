"""What a processed session holds, read once for the labeled videos, figures, report and NWB export.

Every dataset is optional except the pose tables: a session tracked on one camera, without
trials or without motion energy, still gets whatever figures and exports its files allow.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from iblvideo.cameras import CAMERAS
from iblvideo.errors import IblVideoError
from iblvideo.io.alf import LICK_EVENTS, LICKS, QC_REPORT, SESSION_PATTERN, SessionPaths
from iblvideo.io.session_files import read_json, read_npy, read_parquet, read_pose, read_times, read_trials, read_wheel, require_pose_tables
from iblvideo.measures.features import PUPIL_COLUMNS, SPEED_POINTS
from iblvideo.measures.licks import COLUMNS as LICK_EVENT_COLUMNS
from iblvideo.measures.motion_energy import Roi, roi_from_pose
from iblvideo.measures.paw_states import PAWS, VARIANCE_SUFFIX
from iblvideo.tracks import PoseTracks

log = logging.getLogger(__name__)
# what the figures read of the trials table: events, and the outcome that splits them
TRIAL_COLUMNS = ("stimOn_times", "feedback_times", "feedbackType")

# one saturated colour per IBL point (RGB), telling them apart on grey video and across figures
POINT_COLOURS = {
    "pupil_top_r": (255, 60, 60), "pupil_right_r": (255, 160, 0), "pupil_bottom_r": (255, 230, 0),
    "pupil_left_r": (255, 80, 200), "nose_tip": (0, 220, 255), "tongue_end_r": (60, 120, 255),
    "tongue_end_l": (170, 90, 255), "paw_r": (0, 230, 90), "paw_l": (170, 255, 60), "tail_start": (255, 0, 255),
}
OTHER_COLOUR = (255, 255, 255)


def point_colour(point: str) -> tuple[int, int, int]:
    return POINT_COLOURS.get(point, OTHER_COLOUR)


@dataclass
class CameraResults:
    """One camera's pose tracks and what was derived from them; times are None when absent or mismatched."""

    camera: str
    tracks: PoseTracks
    source: Path  # the pose table
    times: np.ndarray | None
    video: Path | None
    roi: Roi | None
    motion_energy: np.ndarray | None
    features: pd.DataFrame | None  # IBL's: pupilDiameter_raw, pupilDiameter_smooth
    speeds: pd.DataFrame | None = None  # per frame, a column per features.SPEED_POINTS (half-resolution px/s)
    sniffs: np.ndarray | None = None  # sniff times (s)
    pawstates: pd.DataFrame | None = None  # IBL's Lightning Action table (side cameras): per paw, state probabilities and ensemble variances

    @property
    def metadata(self) -> dict[str, Any]:
        """The pose table's provenance: tracker, networks, versions, crop windows."""
        return self.tracks.metadata

    @property
    def points(self) -> list[str]:
        """Tracked points in the camera's canonical order (then any others, sorted)."""
        found = self.tracks.points
        canonical = [p for p in CAMERAS[self.camera].points if p in found]
        return canonical + sorted(p for p in found if p not in canonical)

    @property
    def n_frames(self) -> int:
        return len(self.tracks)

    def frame_times(self) -> np.ndarray:
        """Camera times, else frame index over the nominal rate (a session clock of its own)."""
        if self.times is not None:
            return self.times
        return np.arange(self.n_frames) / CAMERAS[self.camera].fps

    def confident_xy(self, point: str) -> np.ndarray:
        """(n_frames, 2) positions of ``point``, NaN where the likelihood is below 0.9."""
        return self.tracks.confident_xy(point)

    @property
    def paws(self) -> list[str]:
        """The paws of the paw-states table, in IBL's order (none without one)."""
        if self.pawstates is None:
            return []
        return [paw for paw in PAWS if self.paw_states(paw)[0]]

    def paw_states(self, paw: str, variance: bool = False) -> tuple[list[str], np.ndarray]:
        """``paw``'s state names in the table's order and their (n_frames, n_states) probabilities (NaN where no
        prediction), or with ``variance`` their variance over the ensemble."""
        table = self.pawstates if self.pawstates is not None else pd.DataFrame()
        prefix = f"{paw}_"
        states = [c[len(prefix):] for c in table.columns if c.startswith(prefix) and not c.endswith(VARIANCE_SUFFIX)]
        suffix = VARIANCE_SUFFIX if variance else ""
        return states, table[[f"{prefix}{state}{suffix}" for state in states]].to_numpy(float)

    def paw_state_ethogram(self, paw: str) -> np.ndarray:
        """Per frame, the index of ``paw``'s most probable state, -1 where there is no prediction."""
        _, probabilities = self.paw_states(paw)
        finite = np.isfinite(probabilities).all(axis=1)
        return np.where(finite, np.argmax(np.nan_to_num(probabilities, nan=-1.0), axis=1), -1)


@dataclass
class SessionResults:
    """Everything the result views read from one ALF session."""

    path: Path
    cameras: dict[str, CameraResults]
    trials: pd.DataFrame | None = None
    wheel: tuple[np.ndarray, np.ndarray] | None = None  # (timestamps, position in radians)
    licks: np.ndarray | None = None  # IBL's licks.times: every frame where a tongue coordinate jumps
    lick_events: pd.DataFrame | None = None  # one row per lick: times (s), side ('left', 'right', 'both')
    qc: dict | None = None

    @property
    def alf_parts(self) -> tuple[str, str, str] | None:
        """(subject, date, number) of an ALF session folder, else None."""
        match = SESSION_PATTERN.search(self.path.resolve().as_posix())
        if match is None:
            return None
        subject, date, number = match.group("subject", "date", "number")
        return subject, date, number

    @property
    def name(self) -> str:
        """``subject/date/number`` for an ALF session folder, else the folder's name."""
        return "/".join(self.alf_parts) if self.alf_parts else self.path.name


def _matching_times(path: Path, camera: str, n_frames: int) -> np.ndarray | None:
    """Camera times when there is one per pose frame; a warning and None otherwise."""
    times = read_times(path)
    if times is not None and len(times) != n_frames:
        log.warning("%s camera: %d camera times for %d pose frames; using frame numbers as time", camera, len(times), n_frames)
        return None
    return times


def _roi(saved: np.ndarray | None, camera: str, tracks: PoseTracks) -> Roi | None:
    """The saved motion-energy ROI, else the one IBL would place from the tracks, else None."""
    if saved is not None:
        return Roi(*(int(v) for v in saved))
    try:
        return roi_from_pose(tracks, camera)
    except IblVideoError:
        return None


def load_camera(session: Path, camera: str, tracker: str | None = None) -> CameraResults:
    """One camera's pose table (required; ``tracker``'s, else the only one) and its times, video, ROI,
    motion energy, features, speeds and sniffs (optional)."""
    pose = require_pose_tables(session, tracker, (camera,))[camera]
    return _camera(SessionPaths(session), camera, pose)


def _camera(paths: SessionPaths, camera: str, pose: Path) -> CameraResults:
    tracks = read_pose(pose)
    video = paths.raw_video(camera)
    energy, roi = paths.motion_energy(camera)
    return CameraResults(
        camera=camera, tracks=tracks, source=pose, times=_matching_times(paths.times(camera), camera, len(tracks)),
        video=video if video.exists() else None, roi=_roi(read_npy(roi), camera, tracks),
        motion_energy=read_npy(energy), features=read_parquet(paths.features(camera), columns=list(PUPIL_COLUMNS)),
        speeds=read_parquet(paths.speeds(camera), columns=list(SPEED_POINTS)), sniffs=read_npy(paths.sniffs(camera)),
        pawstates=_pawstates(paths, camera, len(tracks)),
    )


def _pawstates(paths: SessionPaths, camera: str, n_frames: int) -> pd.DataFrame | None:
    """The camera's paw-states table when it has a row per pose frame (a warning and None otherwise)."""
    table = read_parquet(paths.pawstates(camera))
    if table is not None and len(table) != n_frames:
        log.warning("%s camera: %d paw-state rows for %d pose frames; the views show no paw states", camera, len(table), n_frames)
        return None
    return table


def _trials(session: Path) -> pd.DataFrame | None:
    """The trials table, when it has what the views read of it (a warning and None otherwise)."""
    trials = read_trials(session)
    missing = [c for c in TRIAL_COLUMNS if trials is not None and c not in trials.columns]
    if missing:
        log.warning("%s: the trials table has no %s; the views show no trials", session, ", ".join(missing))
        return None
    return trials


def load_session(session: str | Path, tracker: str | None = None) -> SessionResults:
    """Read every camera with a pose table in ``session`` (``tracker``'s, else the only one each camera
    has) and the session's behaviour and QC."""
    session = Path(session)
    if not session.is_dir():
        raise IblVideoError(session, "no such session folder")
    paths = SessionPaths(session)
    cameras = {camera: _camera(paths, camera, pose) for camera, pose in require_pose_tables(session, tracker).items()}
    return SessionResults(
        path=session, cameras=cameras, trials=_trials(session), wheel=read_wheel(session),
        licks=read_npy(paths.session_file(LICKS)), lick_events=read_parquet(paths.session_file(LICK_EVENTS), columns=list(LICK_EVENT_COLUMNS)),
        qc=read_json(paths.session_file(QC_REPORT)),
    )
