"""IBL's Lightning Pose network sets (``networks_v2.2``): which folders play which cascade role, and the download.

A set is a folder of Lightning Pose model folders; every folder matching a role's pattern is one
member of that role's ensemble (IBL trains several seeds per network).
"""
from __future__ import annotations

import os
import re
import zipfile
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath

from iblvideo.errors import IblVideoError
from iblvideo.tracking.download import fetch_zip

# IBL's public bucket; the setting below points elsewhere (a mirror, a later set)
DEFAULT_URL = "https://ibl-brain-wide-map-public.s3.amazonaws.com/resources/lightning_pose/networks_v2.2.zip"
URL_VARIABLE = "IBLVIDEO_LP_NETWORKS"
SHA256_VARIABLE = "IBLVIDEO_LP_NETWORKS_SHA256"
MODEL_FILES = (".yaml", ".ckpt")  # what a model folder is read from: its config and its checkpoint


@dataclass(frozen=True)
class Role:
    """The model folders that play a cascade role, and how their frames are prepared."""

    pattern: str
    # IBL brightens eye crops four-fold (ffmpeg's colorlevels, clipped) before its eye networks
    brightness: float = 1.0


ROLES = {
    "roi": Role("roi_detect-*"),
    "eye": Role("eye-mic-*", brightness=4.0),
    "nose_tip": Role("nose_tip-*"),
    "tongue": Role("tongue-mic-*"),
    "paws": Role("paw2-mic-*"),
    # the body camera's ROI network is its tail network, run on frames sampled over the video
    "body_roi": Role("tail-mic-*"),
    "tail_start": Role("tail-mic-*"),
}


def networks_dir(spec: str | Path | None = None, sha256: str | None = None) -> Path:
    """A network set folder: ``spec`` (a folder, or the http(s) URL of a zip), else ``$IBLVIDEO_LP_NETWORKS``, else IBL's set.

    Zips are downloaded once into the cache (resumable, locked), verified against ``sha256`` or
    ``$IBLVIDEO_LP_NETWORKS_SHA256`` when given.
    """
    text = str(spec or os.environ.get(URL_VARIABLE) or DEFAULT_URL)
    if re.match(r"^https?://", text):
        return fetch_zip(text, model_members, sha256 or os.environ.get(SHA256_VARIABLE) or None)
    root = Path(text)
    if not root.is_dir():
        raise IblVideoError(root, "Lightning Pose network folder not found")
    return root


def model_members(bundle: zipfile.ZipFile) -> list[str]:
    """What of a network set's zip is unpacked: the configs and checkpoints in folders a role names,
    at the top of the archive or in its one folder."""
    patterns = sorted({role.pattern for role in ROLES.values()})
    chosen = []
    for name in bundle.namelist():
        path = PurePosixPath(name)
        folders = path.parts[:-1][:2]
        if not name.endswith("/") and path.suffix in MODEL_FILES and any(fnmatchcase(f, p) for f in folders for p in patterns):
            chosen.append(name)
    if not chosen:
        raise IblVideoError(None, f"no Lightning Pose model folder ({', '.join(patterns)}) with a config or checkpoint in the archive")
    return chosen


def member_dirs(root: Path, role: str) -> list[Path]:
    """The model folders of ``role``'s ensemble, in name order."""
    pattern = ROLES[role].pattern
    found = sorted(path for path in root.glob(pattern) if path.is_dir())
    if not found:
        raise IblVideoError(root, f"no {pattern} network folder for the {role!r} role")
    return found
