"""Versioned weights sets: a folder (or the URL of a zip of one) with a manifest of its networks.

``manifest.json``::

    {"name": "weights_v1.0", "version": "1.0", "description": "...", "trained_on": "...",
     "networks": {"eye": {"path": "eye", "keypoints": [...], "files": {"model.safetensors": "<sha256>", ...}}, ...}}

Every file a network lists is checked against its sha256 before use.
"""
from __future__ import annotations

import json
import re
import zipfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any

from iblvideo.errors import IblVideoError
from iblvideo.tracking.download import fetch_zip, sha256sum

MANIFEST = "manifest.json"
MAX_MANIFEST = 1 << 20  # bytes: a manifest lists a few networks' files
_NAME = re.compile(r"^weights_v(\d+)\.(\d+)$")


@dataclass(frozen=True)
class WeightsSet:
    """A verified weights set: where it lives and what its manifest says."""

    root: Path
    name: str
    version: str
    description: str
    networks: dict[str, dict[str, Any]] = field(repr=False)

    def network_dir(self, role: str) -> Path:
        """The folder of the network that plays ``role`` (e.g. ``eye``)."""
        if role not in self.networks:
            raise IblVideoError(self.root / MANIFEST, f"weights set {self.name} has no {role!r} network (has: {', '.join(self.networks)})")
        return self.root / self.networks[role]["path"]


def demo_weights_dir() -> Path:
    """The demo weights that ship inside the package."""
    return Path(str(resources.files("iblvideo") / "weights_demo"))


def load_weights(spec: str | Path, sha256: str | None = None) -> WeightsSet:
    """Resolve ``demo``, a folder, or an http(s) URL of a zip, and verify the set it names."""
    text = str(spec)
    if text == "demo":
        root = demo_weights_dir()
    elif re.match(r"^https?://", text):
        root = fetch_zip(text, manifest_members, sha256, verify=_verified)
    else:
        root = Path(spec)
    return _verified(root)


def manifest_members(bundle: zipfile.ZipFile) -> list[str]:
    """What of a weights set's zip is unpacked: its manifest (at the top, or in its one folder) and the files it lists."""
    found = [info for info in bundle.infolist() if PurePosixPath(info.filename).name == MANIFEST and len(PurePosixPath(info.filename).parts) <= 2]
    if len(found) != 1:
        raise IblVideoError(None, f"expected one {MANIFEST} at the top of the archive or of its one folder, found {len(found)}")
    info = found[0]
    if info.file_size > MAX_MANIFEST:
        raise IblVideoError(Path(info.filename), f"a manifest of {info.file_size} bytes, over the limit of {MAX_MANIFEST}")
    networks = _parse_manifest(bundle.read(info), Path(info.filename))["networks"]
    top = PurePosixPath(info.filename).parent
    return [info.filename, *(str(top / network["path"] / filename) for network in networks.values() for filename in network.get("files", {}))]


def _parse_manifest(text: str | bytes, path: Path) -> dict[str, Any]:
    """A manifest, checked: a versioned name, and networks each with a ``path`` inside the set and its ``files``."""
    try:
        manifest = json.loads(text)
        name, networks = manifest["name"], manifest["networks"]
        # each network's folder, then its files
        listed = [PurePosixPath(network["path"], filename) for network in networks.values() for filename in ("", *network.get("files", {}).keys())]
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise IblVideoError(path, f"unreadable weights manifest ({type(err).__name__}: {err})") from None
    if not isinstance(name, str) or not _NAME.match(name):
        raise IblVideoError(path, f"weights set name {name!r} is not of the form weights_v<MAJOR>.<MINOR>")
    if not all(isinstance(manifest.get(key, ""), str) for key in ("version", "description")):
        raise IblVideoError(path, "unreadable weights manifest (its version and description must be text)")
    for file in listed:
        if file.is_absolute() or ".." in file.parts:
            raise IblVideoError(path, f"the manifest lists {file}, outside the weights set")
    return manifest


def _verified(root: Path) -> WeightsSet:
    manifest_path = root / MANIFEST
    if not root.is_dir():
        raise IblVideoError(root, "weights folder not found")
    if not manifest_path.is_file():
        raise IblVideoError(manifest_path, "weights set has no manifest")
    manifest = _parse_manifest(manifest_path.read_bytes(), manifest_path)
    name, networks = manifest["name"], manifest["networks"]
    for role, network in networks.items():
        for filename, expected in network.get("files", {}).items():
            path = root / network["path"] / filename
            if not path.is_file():
                raise IblVideoError(path, f"missing file of the {role!r} network")
            if sha256sum(path) != expected:
                raise IblVideoError(path, f"checksum mismatch for the {role!r} network: the file is corrupt or not the one the manifest names")
    return WeightsSet(root=root, name=name, version=manifest.get("version", name.removeprefix("weights_v")),
                      description=manifest.get("description", ""), networks=networks)


def write_manifest(root: Path, name: str, networks: dict[str, dict[str, Any]], **extra: Any) -> Path:
    """Write ``manifest.json`` for the networks under ``root``, hashing every file of each."""
    for network in networks.values():
        folder = root / network["path"]
        network["files"] = {p.name: sha256sum(p) for p in sorted(folder.iterdir()) if p.is_file()}
    manifest = {"name": name, "version": name.removeprefix("weights_v"), **extra, "networks": networks}
    path = root / MANIFEST
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return path
