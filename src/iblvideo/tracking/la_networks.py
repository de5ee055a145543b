"""IBL's Lightning Action network sets: the profile of each known set, and the download.

A set (``networks_v1.2``, as iblvideo 3.x's ``download_la_models`` fetches it) holds one folder per paw,
``paw_r_networks/`` and ``paw_l_networks/``, each a folder of lightning-action model folders
``network-*`` (a ``config.yaml`` or ``hparams.yaml`` and a checkpoint); every member of a paw's
folder is one member of that paw's ensemble, run in name order. Both side cameras run both paws'
networks (the right camera's inputs mirrored back to the left camera's view); the body camera none.
Located, downloaded, unpacked and re-verified under the same rules as the Lightning Pose sets
(``tracking.download``).
"""
from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

from iblvideo.errors import IblVideoError
from iblvideo.tracking.download import MAC_FOLDER, archive_path, files_in_folders, set_folder
from iblvideo.tracking.lp_networks import set_name
from iblvideo.tracking.weights import demo_weights_dir

DEFAULT_URL = "https://ibl-brain-wide-map-public.s3.amazonaws.com/resources/lightning_action/networks_v1.2.zip"
URL_VARIABLE = "IBLVIDEO_LA_NETWORKS"
SHA256_VARIABLE = "IBLVIDEO_LA_NETWORKS_SHA256"
MEMBER_PATTERN = "network-*"
CONFIGS = ("config.yaml", "hparams.yaml")  # what lightning-action reads a model folder's settings from, in that order
MODEL_FILES = (".yaml", ".ckpt", ".pt")
DEMO = "demo"  # the demo set that ships in the package (weights_demo/lightning_action): the synthetic rig's paws


@dataclass(frozen=True)
class ActionSet:
    """A known Lightning Action set: a folder of members per paw, and the sequence length IBL runs them with."""

    name: str
    paws: tuple[str, ...]
    sequence_length: int

    @staticmethod
    def folder(paw: str) -> str:
        return f"{paw}_networks"

    def members(self, root: Path, paw: str) -> list[Path]:
        """The model folders of ``paw``'s ensemble, in name order (IBL's)."""
        found = sorted(path for path in (root / self.folder(paw)).glob(MEMBER_PATTERN) if path.is_dir())
        if not found:
            raise IblVideoError(root / self.folder(paw), f"no {MEMBER_PATTERN} model folder for the {paw} networks")
        return found


V1_2 = ActionSet("networks_v1.2", paws=("paw_r", "paw_l"), sequence_length=500)
# the demo set: V1_2's layout and settings, trained on the synthetic rig (scripts/train_demo_action_networks.py)
DEMO_SET = ActionSet("lightning_action", paws=V1_2.paws, sequence_length=V1_2.sequence_length)
PROFILES = {profile.name: profile for profile in (V1_2, DEMO_SET)}


def profile_for(root: Path, any_set: bool = False) -> ActionSet:
    """The profile of the set in ``root``, known by its name and checked against its layout (``any_set``: run an
    unknown set with the newest profile's settings)."""
    name = set_name(root)
    profile = PROFILES.get(name)
    if profile is None and not any_set:
        raise IblVideoError(root, f"unknown Lightning Action network set {name!r} (known: {', '.join(PROFILES)}); "
                                  f"pass any_set=True to run it with {V1_2.name}'s settings")
    profile = profile or V1_2
    if problem := layout_problem(root, profile):
        raise IblVideoError(root, f"not the layout of {profile.name}: {problem}")
    return profile


def layout_problem(root: Path, profile: ActionSet) -> str:
    """What in ``root`` the profile does not expect ("" when nothing): a paw without members, a member without a config, an unknown folder."""
    for paw in profile.paws:
        members = sorted((root / profile.folder(paw)).glob(MEMBER_PATTERN))
        if not members:
            return f"no {profile.folder(paw)}/{MEMBER_PATTERN} folder"
        for member in members:
            if not any((member / config).is_file() for config in CONFIGS):
                return f"{profile.folder(paw)}/{member.name} has no {' or '.join(CONFIGS)}"
    known = {profile.folder(paw) for paw in profile.paws}
    unknown = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name != MAC_FOLDER and p.name not in known)
    return f"unknown network folder {unknown[0]}" if unknown else ""


def networks_dir(spec: str | Path | None = None, sha256: str | None = None) -> Path:
    """A Lightning Action set folder: ``spec`` (``demo``, a folder, or the http(s) URL of a zip), else ``$IBLVIDEO_LA_NETWORKS``, else IBL's set."""
    if str(spec) == DEMO:
        return demo_weights_dir() / DEMO_SET.name
    return set_folder(str(spec or os.environ.get(URL_VARIABLE) or DEFAULT_URL), model_members,
                      sha256 or os.environ.get(SHA256_VARIABLE) or None, "Lightning Action network folder not found")


def found(spec: str | Path | None = None) -> str | Path | None:
    """The set to run without asking for a download: ``spec``, else ``$IBLVIDEO_LA_NETWORKS``, else IBL's set if the
    cache already holds its zip; None when there is none (paw states are an extra a session gets when its networks are there)."""
    spec = spec or os.environ.get(URL_VARIABLE)
    if spec:
        return spec
    return DEFAULT_URL if archive_path(DEFAULT_URL).is_file() else None


def model_members(bundle: zipfile.ZipFile) -> list[str]:
    """What of a set's zip is unpacked: the model files under a paw's folder."""
    folders = {ActionSet.folder(paw) for profile in PROFILES.values() for paw in profile.paws}
    return files_in_folders(bundle, folders, lambda path: path.suffix in MODEL_FILES, "Lightning Action model folder with a config or checkpoint")
