"""Track one video with any tracker: ``track()``, and IBL's names for it, ``dlc()`` and ``lightning_pose()``."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from iblvideo import __version__
from iblvideo.cameras import Camera
from iblvideo.errors import BadArgument, IblVideoError
from iblvideo.io.alf import SessionPaths, pose_name, session_root
from iblvideo.io.session_files import read_pose, write_pose
from iblvideo.tracking import registry
from iblvideo.tracking.cascade import Consumer, check_batch_size, run_pass, torch_device
from iblvideo.tracking.tracker import Placed
from iblvideo.video.batching import BATCH_SIZE
from iblvideo.video.reader import VideoReader

log = logging.getLogger(__name__)

# called once the crop windows are placed, with what is known then; returns what else the decode pass
# should feed (e.g. measures.motion_energy.OnePassMotionEnergy)
ConsumersFor = Callable[[Placed], Iterable[Consumer]]
DECODE_ERRORS_LISTED = 10  # frames with concealed decoding errors named in a pose table's metadata


def output_path(video: Path, camera: Camera, tracker: str) -> Path:
    """``<session>/alf/_ibl_<cam>Camera.<attribute>.pqt`` for a video in an ALF session, else beside the video as
    ``<video stem>._ibl_<cam>Camera.<attribute>.pqt``: videos sharing a folder outside a session share no output."""
    attribute = registry.attribute(tracker)
    session = session_root(video.parent)
    if session is not None:
        return SessionPaths(session).pose(camera.name, attribute)
    return video.parent / f"{video.stem}.{pose_name(camera.name, attribute)}"


def keeps(out: Path, video: Path) -> bool:
    """Whether an existing output ``out`` is kept for ``video``: it is, unless its metadata says it tracked another video."""
    if not out.exists():
        return False
    try:
        tracked = read_pose(out).metadata.get("video")  # every page read and checked: a damaged table is not kept
    except Exception as err:  # noqa: BLE001 - not a parquet file at all: never kept as a pose table
        raise IblVideoError(out, f"exists but is not a readable table ({type(err).__name__}); pass --force (force=True) to replace it") from None
    if tracked not in (None, video.name):
        raise IblVideoError(out, f"is the table of {tracked}, not of {video.name}; pass --force (force=True) to replace it")
    log.info("%s exists; keeping it (force=True replaces it)", out)
    return True


def check_arguments(tracker: str, weights: str | Path | None, device: str) -> None:
    """One-line errors for a tracker, weights or device that cannot be, before any video is opened."""
    registry.entry(tracker)
    if weights is not None and not str(weights).strip():
        raise BadArgument(None, "the weights are an empty name; give a weights folder or URL, or leave them out for the default")
    torch_device(device)


def track(video: str | Path, tracker: str = "dlc", weights: str | Path | None = None, device: str = "cpu", batch_size: int = BATCH_SIZE,
          force: bool = False, camera: str | None = None, consumers_for: ConsumersFor | None = None,
          options: dict[str, Any] | None = None) -> Path:
    """Track ``video`` with ``tracker`` (see ``tracking.registry``) and its ``weights`` (None: its default);
    returns the path of the pose table, written atomically with its metadata. An existing output is kept
    unless ``force``. ``options``: the tracker's own (e.g. Lightning Pose's ``ibl_exact``).

    ``consumers_for``, when given, is called once the windows are placed (not when the output is kept)
    and its consumers get every decoded batch of the tracking pass, in order."""
    video = Path(video)
    check_arguments(tracker, weights, device)
    check_batch_size(batch_size)
    build = registry.factory(tracker)
    # a decoding thread per core even beside the networks: one thread was no faster on a stream that is
    # cheap to decode, and 23 % slower on a noisy one, where decoding is what tracking waits for
    with VideoReader(video) as reader:
        cam = reader.info.camera(camera)
        cam.check_size(video, reader.info.width, reader.info.height)
        out = output_path(video, cam, tracker)
        if not force and keeps(out, video):
            return out
        networks = build(cam, reader, weights, device, **(options or {}))
        start = time.perf_counter()
        placed = networks.place(reader)
        consumers = list(consumers_for(placed)) if consumers_for is not None else []
        placed = replace(placed, sample_tracks=None)  # the sampled frames (up to 100) freed before the pass
        log.info("%s: tracking %d frames", video.name, reader.info.n_frames)
        tracks = run_pass(reader, placed, batch_size, consumers)
        seconds = time.perf_counter() - start
        concealed = reader.concealed_frames()
    if concealed:
        log.warning("%s: FFmpeg concealed decoding errors in %d frame(s), from frame %d: the video is damaged there", video, len(concealed), concealed[0])
    tracks = replace(tracks, metadata={
        **tracks.metadata, "iblvideo_version": __version__, "tracker": tracker, **networks.provenance, "camera": cam.name, "video": video.name,
        "frames": len(tracks), "fps": reader.info.fps, "device": device, "seconds": round(seconds, 3),
        "crop_windows_whxy": {role: window.as_whxy() for role, window in placed.windows.items()},
        "decode_errors": {"frames": len(concealed), "first": concealed[:DECODE_ERRORS_LISTED]},
    })
    write_pose(tracks, out)
    log.info("%s: %d frames tracked in %.1f s (%.0f frames/s) -> %s", video.name, len(tracks), seconds, len(tracks) / seconds, out)
    return out


def dlc(video: str | Path, weights: str | Path | None = None, device: str = "cpu", batch_size: int = BATCH_SIZE,
        force: bool = False, camera: str | None = None, consumers_for: ConsumersFor | None = None, ibl_exact: bool = False) -> Path:
    """Track the IBL keypoints in ``video`` with IBL's DeepLabCut networks; returns the path of its ``.dlc.pqt``.

    ``weights``: IBL's ``weights_v2.2`` by default (``$IBLVIDEO_DLC_WEIGHTS``, else IBL's bucket; fetched
    once into the cache), a folder or zip URL of one of IBL's sets, or ``demo`` (or a set of our own
    networks): the synthetic rig's. An existing output is kept unless ``force``; nothing is written
    unless tracking succeeds. ``consumers_for``: other work fed by the same decode pass (see :func:`track`).
    ``ibl_exact``: IBL's sets' points mapped back as IBL's pipeline did (see ``tracking.dlc_cascade``).
    """
    return track(video, "dlc", weights, device, batch_size, force, camera, consumers_for, {"ibl_exact": ibl_exact} if ibl_exact else None)


def lightning_pose(video: str | Path, networks: str | Path | None = None, device: str = "cpu", batch_size: int = BATCH_SIZE,
                   force: bool = False, camera: str | None = None, consumers_for: ConsumersFor | None = None,
                   ibl_exact: bool = False, roi_sampling: str = "ibl", any_set: bool = False) -> Path:
    """Track ``video`` with IBL's Lightning Pose ensembles as IBL's pipeline runs them; returns the path of its ``.lightningPose.pqt``.

    ``networks``: a network set folder or the URL of its zip (default: ``$IBLVIDEO_LP_NETWORKS``, else
    IBL's ``networks_v2.2``). An existing output is kept unless ``force``. ``ibl_exact``: IBL's published
    table, its pupil labels and edge windows as IBL writes them (see ``tracking.lp_table``);
    ``roi_sampling="fast"``: the ROI network looks at frames near keyframes, cheaper to decode than
    IBL's evenly spread ones; ``any_set``: run a set that no profile knows with ``networks_v2.2``'s settings.
    """
    return track(video, "lightning-pose", networks, device, batch_size, force, camera, consumers_for,
                 {"ibl_exact": ibl_exact, "roi_sampling": roi_sampling, "any_set": any_set})
