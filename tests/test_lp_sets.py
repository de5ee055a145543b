"""IBL's Lightning Pose network sets: the profile each known set is run with, how a set's folders and
configs are read as IBL reads them, and what a set no profile knows gets."""
from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import pytest

from http_server import FileServer
from iblvideo.errors import IblVideoError
from iblvideo.networks.lightning_pose import read_config
from iblvideo.tracking.download import unpacked_sha256
from iblvideo.tracking.lp_networks import V2_2, layout_problem, networks_dir, profile_for

FOLDERS = ("roi_detect-0", "eye-mic-0", "eye-mic-1", "nose_tip-0", "tongue-mic-0", "paw2-mic-0", "paw2-mic-1", "tail-mic-0")


def empty_set(root: Path, folders: tuple[str, ...] = FOLDERS) -> Path:
    for name in folders:
        (root / name).mkdir(parents=True)
        (root / name / "config.yaml").write_text("model: {}\n")
    return root


def test_the_known_set_has_ibls_settings(tmp_path: Path) -> None:
    profile = profile_for(empty_set(tmp_path / "networks_v2.2"))
    assert profile is V2_2 and profile.eks == "3.0.0" and profile.pupil_s == (0.9999, 0.999)
    assert [n.label for n in profile.side] == ["roi_detect", "nose_tip", "eye", "paws", "tongue"]  # IBL's table order
    assert [n.label for n in profile.body] == ["roi_detect", "tail_start"] and profile.body[1].crop is None
    tongue = profile.side[4].crop
    assert tongue is not None and (tongue.anchors, tongue.size, tongue.offset) == (("tube_top", "tube_bottom"), (160, 160), (60, 100))


def test_an_unknown_set_is_refused_in_one_line(tmp_path: Path) -> None:
    root = empty_set(tmp_path / "networks_v2.3")
    with pytest.raises(IblVideoError) as err:
        profile_for(root)
    assert "unknown Lightning Pose network set 'networks_v2.3'" in str(err.value) and "\n" not in str(err.value)
    assert profile_for(root, any_set=True) is V2_2


@pytest.mark.parametrize(("change", "problem"), [
    (lambda root: (root / "nose_tip-1").mkdir(), "2 nose_tip-* folders, but IBL runs nose_tip with at most 1"),
    (lambda root: (root / "tail-mic-1").mkdir(), "2 tail-mic-* folders, but IBL runs tail_start with at most 1"),
    (lambda root: (root / "whisker-mic-0").mkdir(), "unknown network folder whisker-mic-0"),
    (lambda root: (root / "tongue-mic-0" / "config.yaml").unlink() or (root / "tongue-mic-0").rmdir(), "no tongue-mic-* folder (tongue)"),
])
def test_a_layout_the_profile_does_not_know_is_refused(change, problem: str, tmp_path: Path) -> None:
    root = empty_set(tmp_path / "networks_v2.2")
    assert layout_problem(root, V2_2) == ""
    change(root)
    assert layout_problem(root, V2_2) == problem
    with pytest.raises(IblVideoError, match=r"not the layout of networks_v2\.2"):
        profile_for(root)


def mac_zip(folder: Path, top: str) -> bytes:
    """A zip as macOS's Finder makes it: the set (in folder ``top``, or at the archive's top when "") and a
    ``__MACOSX`` folder of resource forks beside it."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            name = f"{top}/{path.relative_to(folder)}".lstrip("/")
            bundle.write(path, name)
            folders, _, file = name.rpartition("/")
            bundle.writestr(f"__MACOSX/{folders}/._{file}", b"\x00\x05\x16\x07")
    return buffer.getvalue()


@pytest.mark.parametrize("top", ["networks_v2.2", ""])
def test_a_zip_from_a_mac_is_the_set(top: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Finder's ``__MACOSX/`` folder is never unpacked, so it hides nothing: the set is the archive's one
    folder, or the archive itself, named after it; the zip's sha256 is kept for the metadata."""
    monkeypatch.setenv("IBLVIDEO_CACHE", str(tmp_path / "cache"))
    data = mac_zip(empty_set(tmp_path / "set"), top)
    with FileServer({"networks_v2.2.zip": data}) as server:
        root = networks_dir(server.url("networks_v2.2.zip"))
    assert profile_for(root) is V2_2 and sorted(p.name for p in root.iterdir() if not p.name.startswith(".")) == sorted(FOLDERS)
    assert not list(root.parent.rglob("._*")) and not list(root.parent.rglob("__MACOSX"))
    assert unpacked_sha256(root) == hashlib.sha256(data).hexdigest()
    assert unpacked_sha256(tmp_path / "set") == ""  # a folder of the user's: no zip


def model(root: Path) -> Path:
    """A model folder's config (what ``read_config`` reads), no checkpoint."""
    folder = root / "nose_tip-0"
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text("data: {image_resize_dims: {width: 64, height: 64}, keypoint_names: [nose_tip]}\n"
                                        "model: {model_type: heatmap, backbone: resnet50}\n")
    return folder


def test_the_hydra_config_is_read_first(tmp_path: Path) -> None:
    """IBL reads ``.hydra/config.yaml`` (what the model was trained with) before ``config.yaml``."""
    folder = model(tmp_path)
    (folder / ".hydra").mkdir()
    (folder / ".hydra" / "config.yaml").write_text("data: {image_resize_dims: {width: 128, height: 96}, keypoint_names: [nose_tip]}\n"
                                                   "model: {model_type: heatmap_mhcrnn, backbone: resnet50}\n")
    config = read_config(folder)
    assert (config.model_type, config.input_size) == ("heatmap_mhcrnn", (128, 96))


def test_keypoint_names_from_the_pixel_error_table(tmp_path: Path) -> None:
    """A config with ``keypoint_names: null`` (some of IBL's paw networks): the names are the pixel-error table's columns, as IBL takes them."""
    folder = model(tmp_path)
    (folder / "config.yaml").write_text("data: {image_resize_dims: {width: 64, height: 64}, keypoint_names: null}\n"
                                        "model: {model_type: heatmap, backbone: resnet50}\n")
    with pytest.raises(IblVideoError) as err:
        read_config(folder)
    assert "names no keypoints" in str(err.value) and "predictions_pixel_error.csv" in str(err.value)
    (folder / "predictions_pixel_error.csv").write_text(",paw_r,paw_l,set\nlabeled-data/a.png,1.5,2.5,train\n")
    assert read_config(folder).keypoints == ("paw_r", "paw_l")
