"""IBL's Lightning Pose network sets: a profile of each known set (which folders play which network,
how many members each may have, where each crop sits, how each ensemble is smoothed), and the download.

A set is a folder of Lightning Pose model folders; every folder matching a network's pattern is one
member of that network's ensemble (IBL trains several seeds of some networks). The profile pins what
IBL's own pipeline (iblvideo 3.x, ``params_lp.py``) runs the set with, so a later set with other
settings is never run silently with these.
"""
from __future__ import annotations

import os
import re
import zipfile
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from iblvideo.errors import IblVideoError
from iblvideo.tracking.download import MAC_FOLDER, RECORD, files_in_folders, set_folder

# IBL's public bucket; the setting below points elsewhere (a mirror, a later set)
DEFAULT_URL = "https://ibl-brain-wide-map-public.s3.amazonaws.com/resources/lightning_pose/networks_v2.2.zip"
URL_VARIABLE = "IBLVIDEO_LP_NETWORKS"
SHA256_VARIABLE = "IBLVIDEO_LP_NETWORKS_SHA256"
MODEL_FILES = (".yaml", ".ckpt", ".csv")  # a model folder's config, checkpoint, and the table its keypoint names may come from


@dataclass(frozen=True)
class Crop:
    """Where a network's window sits: ``size`` (w, h) with its corner at the anchors' mean − ``offset``,
    in left-camera pixels (divided by the camera's scale elsewhere)."""

    anchors: tuple[str, ...]
    size: tuple[int, int]
    offset: tuple[int, int]


@dataclass(frozen=True)
class Network:
    """One of IBL's networks: its label (IBL's file names say it), folders, members, window and frames."""

    label: str
    pattern: str
    most: int  # members allowed; IBL smooths only the ensembles it names (eye, paws)
    crop: Crop | None = None  # None: the whole frame, resized
    brightness: float = 1.0  # IBL brightens eye crops four-fold, clipped, before its eye networks
    smoother: str = ""  # "pupil" or "single_view": how an ensemble of several members is smoothed


@dataclass(frozen=True)
class NetworkSet:
    """A known network set: its networks per kind of camera, the ROI network first, then the table's order."""

    name: str
    side: tuple[Network, ...]
    body: tuple[Network, ...]
    eks: str  # the ensemble-kalman-smoother release IBL smooths this set's ensembles with
    pupil_s: tuple[float, float]  # AR(1) coefficients of the pupil's diameter and centre
    paw_s: float  # step variance of the paws' random walk; paw_s_30hz for videos at 25-35 Hz
    paw_s_30hz: float
    paw_variance_inflation: float  # the paws' posterior variances ×this: their square root tracks pixel error

    def paw_step_variance(self, fps: float) -> float:
        """IBL's step variance for the paw ensembles of a video at ``fps`` (set by inspecting training videos)."""
        return self.paw_s_30hz if 25.0 <= fps <= 35.0 else self.paw_s

    def networks(self, camera: str) -> tuple[Network, ...]:
        return self.body if camera == "body" else self.side

    def members(self, root: Path, network: Network) -> list[Path]:
        """The model folders of ``network``'s ensemble, in name order."""
        found = sorted(path for path in root.glob(network.pattern) if path.is_dir())
        if not found:
            raise IblVideoError(root, f"no {network.pattern} network folder for the {network.label!r} network")
        return found


V2_2 = NetworkSet(
    "networks_v2.2",
    side=(Network("roi_detect", "roi_detect-*", 1_000),
          Network("nose_tip", "nose_tip-*", 1, Crop(("nose_tip",), (100, 100), (50, 50))),
          Network("eye", "eye-mic-*", 1_000, Crop(("pupil_top_r",), (100, 100), (50, 50)), brightness=4.0, smoother="pupil"),
          Network("paws", "paw2-mic-*", 1_000, smoother="single_view"),
          Network("tongue", "tongue-mic-*", 1, Crop(("tube_top", "tube_bottom"), (160, 160), (60, 100)))),
    # the body camera's ROI network is its tail network, whose window IBL computes but never cuts
    body=(Network("roi_detect", "tail-mic-*", 1_000), Network("tail_start", "tail-mic-*", 1)),
    eks="3.0.0", pupil_s=(0.9999, 0.999), paw_s=10.0, paw_s_30hz=100.0, paw_variance_inflation=100.0,
)
PROFILES = {profile.name: profile for profile in (V2_2,)}
ROI = "roi_detect"


def profile_for(root: Path, any_set: bool = False) -> NetworkSet:
    """The profile of the set in ``root``: known by its name and checked against its layout.

    A set of another name, or one whose folders the profile does not expect, is refused with one line
    unless ``any_set``, which runs it with the newest profile's settings (and says so in the metadata).
    """
    name = set_name(root)
    profile = PROFILES.get(name)
    if profile is None and not any_set:
        raise IblVideoError(root, f"unknown Lightning Pose network set {name!r} (known: {', '.join(PROFILES)}); its networks "
                                  "may need other windows or smoothing: pass any_set=True (--any-network-set) to run it with "
                                  f"{V2_2.name}'s settings")
    profile = profile or V2_2
    problem = layout_problem(root, profile)
    if problem and not any_set:
        raise IblVideoError(root, f"not the layout of {profile.name}: {problem}; pass any_set=True (--any-network-set) to run it anyway")
    return profile


def set_name(root: Path) -> str:
    """The set's name: its folder's (``networks_v2.2``); for a zip of bare model folders, the zip's."""
    if (root / RECORD).is_file():  # the cache's folder: the zip's name and its checksum's first digits
        return re.sub(r"-[0-9a-f]{16}$", "", root.name)
    return root.name


def layout_problem(root: Path, profile: NetworkSet) -> str:
    """What in ``root`` the profile does not expect ("" when nothing): a missing network, too many members, an unknown folder."""
    patterns = {n.pattern for side in (profile.side, profile.body) for n in side}
    for network in (*profile.side, *profile.body):
        found = [p for p in root.glob(network.pattern) if p.is_dir()]
        if not found:
            return f"no {network.pattern} folder ({network.label})"
        if network.label != ROI and len(found) > network.most:
            return f"{len(found)} {network.pattern} folders, but IBL runs {network.label} with at most {network.most}"
    unknown = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name != MAC_FOLDER
                     and not any(fnmatchcase(p.name, pattern) for pattern in patterns))
    return f"unknown network folder {unknown[0]}" if unknown else ""


def networks_dir(spec: str | Path | None = None, sha256: str | None = None) -> Path:
    """A network set folder: ``spec`` (a folder, or the http(s) URL of a zip), else ``$IBLVIDEO_LP_NETWORKS``, else IBL's set.

    Zips are downloaded once into the cache (resumable, locked), verified against ``sha256`` or
    ``$IBLVIDEO_LP_NETWORKS_SHA256`` when given, and re-verified file by file at every use.
    """
    return set_folder(str(spec or os.environ.get(URL_VARIABLE) or DEFAULT_URL), model_members,
                      sha256 or os.environ.get(SHA256_VARIABLE) or None, "Lightning Pose network folder not found")


def model_members(bundle: zipfile.ZipFile) -> list[str]:
    """What of a network set's zip is unpacked: the model files in folders a network names."""
    patterns = {n.pattern for profile in PROFILES.values() for side in (profile.side, profile.body) for n in side}
    return files_in_folders(bundle, patterns, lambda path: path.suffix in MODEL_FILES, "Lightning Pose model folder with a config or checkpoint")
