"""A session's pose tables as DeepLabCut h5 / csv or Lightning Pose csv, named so that those tools find them.

Each tracked camera's table goes beside its raw video (``raw_video_data/``) by default: DeepLabCut's
tools look for a video's analysis in the video's folder (``auxiliaryfunctions.find_analyzed_data``
takes the ``.h5`` files there whose names start with ``<video stem><scorer>``, and its plotting
recovers the video's name as what precedes ``DLC`` in the file's), then read it with
``pd.read_hdf(path)``, no key given: the h5 holds the one table ``df_with_missing``. Lightning Pose
names a video's predictions ``<video stem>.csv``. None of these names is an ALF dataset name, so ONE
and Alyx leave them alone.
"""
from __future__ import annotations

import logging
from pathlib import Path

from iblvideo.errors import IblVideoError
from iblvideo.io.alf import SessionPaths
from iblvideo.io.atomic import refuse_overwrite
from iblvideo.io.pose_formats import DLC_FORMATS, default_path, dlc_scorer, write_poses
from iblvideo.results.load import CameraResults, load_session
from iblvideo.results.plots import result_inputs

log = logging.getLogger(__name__)
POSE_EXPORTS = (*DLC_FORMATS, "lp-csv")


def export_scorer(camera: CameraResults) -> str:
    """DeepLabCut's scorer for a pose table: its tracker as the network, its weights as the task and their
    version as the snapshot (``DLC_Dlc_iblvideoweightsv2-2shuffle1_snapshot_2-2``)."""
    meta = camera.metadata
    tracker = meta.get("tracker") or camera.source.name.split(".")[1]  # truth tables carry no provenance
    return dlc_scorer(tracker, f"iblvideo{meta.get('weights', '')}", meta.get("weights_version") or "")


def export_poses(session: str | Path, fmt: str, out: str | Path | None = None, tracker: str | None = None,
                 force: bool = False) -> list[Path]:
    """Write each tracked camera's pose table (``tracker``'s, default the only ones) in ``fmt`` into folder
    ``out`` (default: beside each raw video) and return the paths; existing outputs are kept unless ``force``."""
    if fmt not in POSE_EXPORTS:
        raise IblVideoError(None, f"unknown export format {fmt!r}; choose from {', '.join(POSE_EXPORTS)}")
    results = load_session(session, tracker)
    folder = Path(out) if out is not None else None
    if folder is not None and folder.exists() and not folder.is_dir():
        raise IblVideoError(folder, "is a file; --out names a folder for the pose tables")
    inputs = result_inputs(results.path, results.cameras.values())
    planned = []
    for camera in results.cameras.values():
        scorer = export_scorer(camera)
        video = camera.video or SessionPaths(results.path).raw_video(camera.camera)  # its stem starts the name
        path = default_path(video, fmt, scorer)
        path = path if folder is None else folder / path.name
        planned.append((refuse_overwrite(path, inputs, force), camera, scorer))  # every output checked before any is written
    for path, camera, scorer in planned:
        write_poses(path, fmt, camera.tracks, scorer)
        log.info("%s camera's pose table written to %s", camera.camera, path)
    return [path for path, _, _ in planned]
