"""What a processed session holds, read once for the labeled videos, figures, report and NWB export.

Every dataset is optional except the pose tables: a session tracked on one camera, without
trials or without motion energy, still gets whatever figures and exports its files allow.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from iblvideo.io.alf import SESSION_PATTERN, raw_video_path, table_metadata
from iblvideo.cameras import CAMERAS
from iblvideo.errors import IblVideoError
from iblvideo.measures.features import LIKELIHOOD_THRESHOLD, load_pose, load_times, point_names
from iblvideo.measures.motion_energy import Roi, output_paths, roi_from_pose
from iblvideo.measures.qc import REPORT_NAME

log = logging.getLogger(__name__)

# one saturated colour per IBL point (RGB), telling them apart on grey video and across figures
POINT_COLOURS = {
    "pupil_top_r": (255, 60, 60), "pupil_right_r": (255, 160, 0), "pupil_bottom_r": (255, 230, 0),
    "pupil_left_r": (255, 80, 200), "nose_tip": (0, 220, 255), "tongue_end_r": (60, 120, 255),
    "tongue_end_l": (170, 90, 255), "paw_r": (0, 230, 90), "paw_l": (170, 255, 60), "tail_start": (255, 0, 255),
}
OTHER_COLOUR = (255, 255, 255)


def point_colour(point: str) -> tuple[int, int, int]:
    return POINT_COLOURS.get(point, OTHER_COLOUR)


def pose_path(session: Path, camera: str) -> Path:
    return session / "alf" / f"_ibl_{camera}Camera.dlc.pqt"


@dataclass
class CameraResults:
    """One camera's pose table and what was derived from it; times are None when absent or mismatched."""

    camera: str
    pose: pd.DataFrame
    metadata: dict
    times: np.ndarray | None
    video: Path | None
    roi: Roi | None
    motion_energy: np.ndarray | None
    features: pd.DataFrame | None

    @property
    def points(self) -> list[str]:
        """Tracked points in the camera's canonical order (then any others, sorted)."""
        found = point_names(self.pose)
        canonical = [p for p in CAMERAS[self.camera].points if p in found]
        return canonical + [p for p in found if p not in canonical]

    @property
    def n_frames(self) -> int:
        return len(self.pose)

    def frame_times(self) -> np.ndarray:
        """Camera times, else frame index over the nominal rate (a session clock of its own)."""
        if self.times is not None:
            return self.times
        return np.arange(self.n_frames) / CAMERAS[self.camera].fps

    def confident_xy(self, point: str) -> np.ndarray:
        """(n_frames, 2) positions of ``point``, NaN where the likelihood is below 0.9."""
        xy = self.pose[[f"{point}_x", f"{point}_y"]].to_numpy(dtype=float, copy=True)
        xy[self.pose[f"{point}_likelihood"].to_numpy(dtype=float) < LIKELIHOOD_THRESHOLD] = np.nan
        return xy


@dataclass
class SessionResults:
    """Everything the result views read from one ALF session."""

    path: Path
    cameras: dict[str, CameraResults]
    trials: pd.DataFrame | None = None
    wheel: tuple[np.ndarray, np.ndarray] | None = None  # (timestamps, position in radians)
    licks: np.ndarray | None = None
    qc: dict | None = None

    @property
    def alf_parts(self) -> tuple[str, str, str] | None:
        """(subject, date, number) of an ALF session folder, else None."""
        match = SESSION_PATTERN.search(self.path.resolve().as_posix())
        return match.group("subject", "date", "number") if match else None

    @property
    def name(self) -> str:
        """``subject/date/number`` for an ALF session folder, else the folder's name."""
        return "/".join(self.alf_parts) if self.alf_parts else self.path.name


def _optional_npy(path: Path) -> np.ndarray | None:
    if not path.exists():
        return None
    try:
        return np.load(path)
    except (OSError, ValueError) as err:
        raise IblVideoError(path, f"cannot read: {err}") from None


def _matching_times(alf: Path, camera: str, n_frames: int) -> np.ndarray | None:
    """Camera times when there is one per pose frame; a warning and None otherwise."""
    times = load_times(alf, camera)
    if times is not None and len(times) != n_frames:
        log.warning("%s camera: %d camera times for %d pose frames; using frame numbers as time", camera, len(times), n_frames)
        return None
    return times


def _roi(session: Path, camera: str, pose: pd.DataFrame) -> Roi | None:
    """The saved motion-energy ROI, else the one IBL would place from the pose, else None."""
    saved = _optional_npy(output_paths(session, camera)[1])
    if saved is not None:
        return Roi(*(int(v) for v in saved))
    try:
        return roi_from_pose(pose, camera)
    except IblVideoError:
        return None


def load_camera(session: Path, camera: str) -> CameraResults:
    """One camera's pose table (required) and its times, video, ROI, motion energy and features (optional)."""
    path = pose_path(session, camera)
    pose = load_pose(path)
    alf = session / "alf"
    video = raw_video_path(session, camera)
    features = alf / f"_ibl_{camera}Camera.features.pqt"
    return CameraResults(
        camera=camera, pose=pose, metadata=table_metadata(path), times=_matching_times(alf, camera, len(pose)),
        video=video if video.exists() else None, roi=_roi(session, camera, pose),
        motion_energy=_optional_npy(output_paths(session, camera)[0]),
        features=pd.read_parquet(features) if features.exists() else None,
    )


def load_session(session: str | Path) -> SessionResults:
    """Read every camera with a pose table in ``session`` and the session's behaviour and QC."""
    session = Path(session)
    if not session.is_dir():
        raise IblVideoError(session, "no such session folder")
    cameras = {c: load_camera(session, c) for c in CAMERAS if pose_path(session, c).exists()}
    if not cameras:
        raise IblVideoError(session / "alf", "no pose tables (_ibl_<camera>Camera.dlc.pqt); run iblvideo dlc first")
    alf = session / "alf"
    trials = alf / "_ibl_trials.table.pqt"
    wheel_times, wheel_position = _optional_npy(alf / "_ibl_wheel.timestamps.npy"), _optional_npy(alf / "_ibl_wheel.position.npy")
    qc = alf / REPORT_NAME
    return SessionResults(
        path=session, cameras=cameras,
        trials=pd.read_parquet(trials) if trials.exists() else None,
        wheel=(wheel_times, wheel_position) if wheel_times is not None and wheel_position is not None else None,
        licks=_optional_npy(alf / "licks.times.npy"),
        qc=json.loads(qc.read_text()) if qc.exists() else None,
    )
