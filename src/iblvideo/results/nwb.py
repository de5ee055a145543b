"""NWB export of the pose tracks with ndx-pose: one PoseEstimation per camera, on the camera times.

Each point becomes a PoseEstimationSeries (x, y in pixels, likelihood as confidence); the series of
one camera share the first one's timestamps, so the camera times are stored once per camera.
"""
from __future__ import annotations

import datetime as dt
import logging
import uuid
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from iblvideo import __version__
from iblvideo.cameras import CAMERAS
from iblvideo.errors import IblVideoError
from iblvideo.extras import needs_extra
from iblvideo.io.atomic import atomic_path, refuse_overwrite
from iblvideo.results.load import CameraResults, SessionResults, load_session
from iblvideo.results.plots import result_inputs

log = logging.getLogger(__name__)

MODULE = "behavior"
CONFIDENCE = "likelihood of the network's score map at the estimated position (0-1); IBL trusts positions at 0.9 and above"
REFERENCE_FRAME = "(0, 0) is the top-left corner of the camera's full-resolution frame; x grows rightwards, y downwards"


def _require_nwb():
    with needs_extra("nwb"):
        import ndx_pose
        import pynwb
    return pynwb, ndx_pose


def default_output(results: SessionResults) -> Path:
    """``<session>/sub-<subject>_ses-<date>-<number>_pose.nwb`` (DANDI-style), else ``<session>/pose.nwb``."""
    if results.alf_parts is None:
        return results.path / "pose.nwb"
    subject, date, number = results.alf_parts
    return results.path / f"sub-{subject.replace('_', '-')}_ses-{date}-{number}_pose.nwb"


def _start_time(results: SessionResults) -> dt.datetime:
    """Midnight UTC of the session date from the ALF path (ALF keeps no clock time), else the Unix epoch."""
    day = dt.date.fromisoformat(results.alf_parts[1]) if results.alf_parts else dt.date(1970, 1, 1)
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.timezone.utc)


def _pose_estimation(nwbfile, ndx_pose, camera: CameraResults, skeletons: list):
    """The camera's PoseEstimation, with its Device and Skeleton added to ``nwbfile``/``skeletons``."""
    if camera.times is None:
        raise IblVideoError(None, f"{camera.camera} camera: no alf/_ibl_{camera.camera}Camera.times.npy with one time per pose frame; NWB needs them")
    spec = CAMERAS[camera.camera]
    device = nwbfile.create_device(name=spec.label, description=f"IBL {camera.camera} camera, {spec.width}x{spec.height} at {spec.fps:g} Hz")
    skeleton = ndx_pose.Skeleton(name=f"{spec.label}_skeleton", nodes=camera.points, edges=np.zeros((0, 2), dtype="uint8"))
    skeletons.append(skeleton)
    series: list[Any] = []  # PoseEstimationSeries: ndx_pose has no type hints
    for point in camera.points:
        xy = camera.tracks.point_xy(point).astype(float)
        series.append(ndx_pose.PoseEstimationSeries(
            name=point, description=f"{point} on the {camera.camera} camera", data=xy, unit="pixels",
            reference_frame=REFERENCE_FRAME, confidence=camera.tracks.point_likelihood(point).astype(float),
            confidence_definition=CONFIDENCE, timestamps=series[0] if series else camera.times,
        ))
    meta = camera.metadata
    weights = f"{meta.get('weights', 'unknown weights')} {meta.get('weights_version', '')}".strip()
    return ndx_pose.PoseEstimation(
        name=f"{spec.label}PoseEstimation", pose_estimation_series=series,
        description=f"IBL keypoints tracked by iblvideo with {weights}: {meta.get('weights_description', 'no description recorded')}",
        scorer=weights, source_software="iblvideo", source_software_version=meta.get("iblvideo_version", __version__),
        device=device, skeleton=skeleton,
    )


def export_nwb(session: str | Path, out: str | Path | None = None, tracker: str | None = None, force: bool = False) -> Path:
    """Write the session's pose tracks (``tracker``'s, default the only ones) to an NWB file (default beside
    the session's alf folder) and return its path; an existing file is kept unless ``force``."""
    pynwb, ndx_pose = _require_nwb()
    results = load_session(session, tracker)
    out = refuse_overwrite(Path(out) if out else default_output(results), result_inputs(results.path, results.cameras.values()), force)
    parts = results.alf_parts
    nwbfile = pynwb.NWBFile(
        session_description=f"pose tracks of {results.name} by iblvideo {__version__}",
        identifier=str(uuid.uuid5(uuid.NAMESPACE_URL, f"iblvideo:{results.name}")),
        session_start_time=_start_time(results), session_id=results.name,
        subject=pynwb.file.Subject(subject_id=parts[0], species="Mus musculus") if parts else None,
    )
    module = nwbfile.create_processing_module(name=MODULE, description="pose estimation from the IBL rig cameras")
    skeletons: list = []
    estimations = [_pose_estimation(nwbfile, ndx_pose, camera, skeletons) for camera in results.cameras.values()]
    module.add(ndx_pose.Skeletons(skeletons=skeletons))
    for estimation in estimations:
        module.add(estimation)
    with atomic_path(out) as tmp, warnings.catch_warnings():
        # the temporary name of the atomic write does not end in .nwb; the final name does
        warnings.filterwarnings("ignore", message=".*does not end in '.nwb'")
        with pynwb.NWBHDF5IO(tmp, "w") as io:
            io.write(nwbfile)
    log.info("%d cameras' pose tracks written to %s", len(estimations), out)
    return out
