"""Hostile weights and network sets: checkpoints that would run code, zip bombs, and caches that mix sets up.

Every checkpoint payload here would only create a marker file; each test asserts it was not created.
"""
from __future__ import annotations

import copyreg
import hashlib
import io
import json
import os
import shutil
import struct
import sys
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from http_server import FileServer, zip_folder
from iblvideo.cli import main
from iblvideo.errors import IblVideoError
from iblvideo.networks.lightning_pose import load_lp_model
from iblvideo.synth import synthesize_session
from iblvideo.tracking.download import MAX_ENTRIES, MAX_RATIO, MAX_UNPACKED
from iblvideo.tracking.lp_networks import networks_dir
from iblvideo.tracking.weights import load_weights, write_manifest

CONFIG = Path(__file__).parent / "data" / "lp-reference" / "heatmap" / "config.yaml"
PROTOCOLS = range(6)
EXT_CODE = 0x7FFF_FF42  # an extension code nothing else registers


# --- a tiny pickle assembler: each payload spelled with the opcodes of one protocol -------------------

def _text(protocol: int, value: str) -> bytes:
    if protocol == 0:
        return b"V" + value.encode("raw_unicode_escape") + b"\n"
    return b"X" + struct.pack("<I", len(value.encode())) + value.encode()


def _global(protocol: int, module: str, name: str) -> bytes:
    """``module.name`` pushed as a protocol-``protocol`` pickler would: GLOBAL, or STACK_GLOBAL from 4 on."""
    if protocol >= 4:
        return _text(protocol, module) + _text(protocol, name) + b"\x93"
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _call(protocol: int, *args: str) -> bytes:
    """Call what is on the stack with string ``args``."""
    return b"(" + b"".join(_text(protocol, a) for a in args) + b"tR"


def _pickle(protocol: int, body: bytes) -> bytes:
    return (b"\x80" + bytes([protocol]) if protocol >= 2 else b"") + body + b"."


def _python(marker: Path) -> str:
    return f"open({str(marker)!r}, 'w').close()"


def payloads(protocol: int, marker: Path) -> dict[str, bytes]:
    """Every way we know for a name in a pickle to reach code, each creating ``marker`` if it ran."""
    found = {
        # the reported one: an allowed prefix, then an attribute walk to exec
        "walk from torch._utils": _global(protocol, "torch._utils", "_rebuild_tensor.__builtins__.get") + _call(protocol, "exec")
        + _call(protocol, _python(marker)),
        "walk from torch": _global(protocol, "torch", "serialization.__builtins__.get") + _call(protocol, "exec") + _call(protocol, _python(marker)),
        "builtins exec": _global(protocol, "builtins", "exec") + _call(protocol, _python(marker)),
        "builtins eval": _global(protocol, "builtins", "eval") + _call(protocol, _python(marker)),
        "os system": _global(protocol, "os", "system") + _call(protocol, f"touch {marker}"),
        "an importable module's side effects": _global(protocol, "iblvideo_hostile_marker", "anything") + _call(protocol),
        "INST opcode": b"(" + _text(protocol, _python(marker)) + b"ibuiltins\nexec\n",
        "OBJ opcode": b"(" + _global(protocol, "builtins", "exec") + _text(protocol, _python(marker)) + b"o",
        "EXT opcode": b"\x84" + struct.pack("<i", EXT_CODE) + _call(protocol, _python(marker)),
    }
    if protocol >= 4:  # a GLOBAL opcode walks attributes too once a PROTO 4 header came first
        found["walk in a GLOBAL opcode"] = _global(0, "torch._utils", "_rebuild_tensor.__builtins__.get") + _call(protocol, "exec") \
            + _call(protocol, _python(marker))
    return {name: _pickle(protocol, body) for name, body in found.items()}


def torch_zip(data_pkl: bytes) -> bytes:
    """A real torch.save zip checkpoint whose ``data.pkl`` is ``data_pkl``."""
    saved = io.BytesIO()
    torch.save({"state_dict": {}}, saved)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(saved.getvalue())) as source, zipfile.ZipFile(out, "w") as bundle:
        for info in source.infolist():
            bundle.writestr(info, data_pkl if info.filename.endswith("/data.pkl") else source.read(info))
    return out.getvalue()


CASES = [(protocol, name, container) for protocol in PROTOCOLS for name in payloads(protocol, Path("m"))
         for container in ("pickle", "torch zip")]


@pytest.fixture()
def hostile_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An importable module and an extension code whose use would create the marker."""
    marker = tmp_path / "ran"
    modules = tmp_path / "modules"
    modules.mkdir()
    (modules / "iblvideo_hostile_marker.py").write_text(_python(marker) + "\nanything = print\n")
    monkeypatch.syspath_prepend(str(modules))
    copyreg.add_extension("builtins", "exec", EXT_CODE)
    yield marker
    copyreg.remove_extension("builtins", "exec", EXT_CODE)
    # imported, it would stay imported, and the next test's import would create no marker
    assert sys.modules.pop("iblvideo_hostile_marker", None) is None


def model_folder(root: Path, checkpoint: bytes) -> Path:
    (root / "tb_logs" / "v" / "checkpoints").mkdir(parents=True)
    shutil.copy(CONFIG, root / "config.yaml")
    (root / "tb_logs" / "v" / "checkpoints" / "x-best.ckpt").write_bytes(checkpoint)
    return root


def assert_refused(err: pytest.ExceptionInfo, path: Path, marker: Path) -> None:
    assert not marker.exists()
    assert str(err.value).startswith(f"{path}: ") and "\n" not in str(err.value)


@pytest.mark.parametrize(("protocol", "payload", "container"), CASES)
def test_no_checkpoint_name_runs_code(protocol: int, payload: str, container: str, tmp_path: Path, hostile_import: Path) -> None:
    data = payloads(protocol, hostile_import)[payload]
    folder = model_folder(tmp_path / "eye-mic-0", torch_zip(data) if container == "torch zip" else data)
    with pytest.raises(IblVideoError, match="unreadable checkpoint") as err:
        load_lp_model(folder)
    assert_refused(err, next(folder.rglob("*.ckpt")), hostile_import)


def test_checkpoint_of_the_wrong_shape_is_one_line(tmp_path: Path) -> None:
    """A checkpoint that reads but holds no state dict of tensors (a list, a dict of strings)."""
    for i, content in enumerate(([1, 2], {"state_dict": {"backbone.0.weight": "x"}}, {"state_dict": [torch.zeros(1)]})):
        saved = io.BytesIO()
        torch.save(content, saved)
        folder = model_folder(tmp_path / f"m{i}", saved.getvalue())
        with pytest.raises(IblVideoError) as err:
            load_lp_model(folder)
        assert_refused(err, next(folder.rglob("*.ckpt")), tmp_path / "none")


def test_checkpoint_in_a_downloaded_set_runs_nothing(tmp_path: Path, hostile_import: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture) -> None:
    """The report: ``--weights https://…/networks.zip`` holding a 140-byte ``x-best.ckpt``; the command says one line, exit 2."""
    monkeypatch.setenv("IBLVIDEO_CACHE", str(tmp_path / "cache"))
    data = payloads(4, hostile_import)["walk from torch._utils"]
    assert len(data) < 200
    model_folder(tmp_path / "set" / "roi_detect-0", data)
    video = synthesize_session(tmp_path / "session", cameras=("left",), seconds=0.5, seed=1) / "raw_video_data" / "_iblrig_leftCamera.raw.mp4"
    with FileServer({"networks.zip": zip_folder(tmp_path / "set", "networks_v9.9")}) as server:
        assert main(["dlc", "--tracker", "lightning-pose", "--any-network-set", "--weights", server.url("networks.zip"), str(video)]) == 2
    message = capsys.readouterr().err.strip()
    assert not hostile_import.exists()
    assert message.startswith("iblvideo: error: ") and message.count("\n") == 0
    assert "x-best.ckpt: unreadable checkpoint" in message and str(tmp_path / "cache") in message


# --- zip bombs ------------------------------------------------------------------------------------------

def raw_zip(entries: list[tuple[str, bytes, int, int]]) -> bytes:
    """A zip of already-deflated entries (name, deflated bytes, crc32, size): how a bomb is made without the GiBs."""
    out, central = io.BytesIO(), io.BytesIO()
    for name, deflated, crc, size in entries:
        offset, encoded = out.tell(), name.encode()
        out.write(struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0, crc, len(deflated), size, len(encoded), 0) + encoded + deflated)
        central.write(struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 8, 0, 0, crc, len(deflated), size, len(encoded), 0, 0, 0, 0, 0,
                                  offset) + encoded)
    start = out.tell()
    out.write(central.getvalue())
    out.write(struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(entries), len(entries), len(central.getvalue()), start, 0))
    return out.getvalue()


def zeros(mib: int) -> tuple[bytes, int, int]:
    """``mib`` MiB of zeros, deflated (about a thousandth of the size), with their crc32 and size."""
    pack, chunk, crc = zlib.compressobj(1, zlib.DEFLATED, -15), bytes(1 << 20), 0
    parts = [pack.compress(chunk) for _ in range(mib)] + [pack.flush()]
    for _ in range(mib):
        crc = zlib.crc32(chunk, crc)
    return b"".join(parts), crc, mib << 20


def weights_bomb(entries: list[tuple[str, bytes, int, int]], tmp_path: Path) -> bytes:
    """A weights set whose manifest lists every entry, so that only the limits stand in the way."""
    manifest = {"name": "weights_v1.0", "networks": {"eye": {"path": "eye", "files": {Path(name).name: "0" * 64 for name, *_ in entries}}}}
    text = json.dumps(manifest).encode()
    return raw_zip([("weights_v1.0/manifest.json", zlib.compress(text)[2:-4], zlib.crc32(text), len(text))]
                   + [(f"weights_v1.0/eye/{name}", *rest) for name, *rest in entries])


def cache_bytes(cache: Path) -> int:
    return sum(p.stat().st_size for p in cache.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def kernel() -> tuple[bytes, int, int]:
    return zeros(256)


@pytest.mark.parametrize("bomb", ["ratio", "total", "entries"])
def test_zip_bombs_are_refused_before_unpacking(bomb: str, kernel: tuple[bytes, int, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IBLVIDEO_CACHE", str(tmp_path / "cache"))
    if bomb == "ratio":  # 256 MiB from 256 kB
        entries = [("model.safetensors", *kernel)]
    elif bomb == "total":  # 33 × 256 MiB in 8 MB: over the total (checked before the ratio)
        entries = [(f"part{i}.bin", *kernel) for i in range(MAX_UNPACKED // kernel[2] + 1)]
    else:
        empty = (zlib.compress(b"")[2:-4], 0, 0)
        entries = [(f"f{i}", *empty) for i in range(MAX_ENTRIES + 1)]
    data = weights_bomb(entries, tmp_path)
    with FileServer({"w.zip": data}) as server, pytest.raises(IblVideoError) as err:
        load_weights(server.url("w.zip"))
    message = str(err.value)
    assert message.startswith(server.url("w.zip") + ": ") and "\n" not in message
    assert {"ratio": f"more than {MAX_RATIO} times", "total": "GiB", "entries": "entries"}[bomb] in message
    assert cache_bytes(tmp_path / "cache") < 1 << 20  # nothing unpacked, and the download removed


def test_only_what_the_manifest_lists_is_unpacked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IBLVIDEO_CACHE", str(tmp_path / "cache"))
    root = one_network_set(tmp_path, b"w" * 1000)
    (root / "eye" / "run_me.py").write_text("print('hi')\n")
    (root / "notes.bin").write_bytes(b"n" * 1000)
    with FileServer({"w.zip": zip_folder(root, "weights_v1.0")}) as server:
        weights = load_weights(server.url("w.zip"))
    assert sorted(p.relative_to(weights.root).as_posix() for p in weights.root.rglob("*") if p.is_file()) == ["eye/model.safetensors", "manifest.json"]


def test_only_model_folders_of_a_network_set_are_unpacked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IBLVIDEO_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "set"
    model_folder(root / "eye-mic-0", b"ckpt")
    (root / "eye-mic-0" / "hook.py").write_text("print('hi')\n")
    (root / "eye-mic-0" / ".hydra").mkdir()
    (root / "eye-mic-0" / ".hydra" / "config.yaml").write_text("a: 1\n")
    (root / "scratch").mkdir()
    (root / "scratch" / "config.yaml").write_text("a: 1\n")
    (root / "big.bin").write_bytes(b"b" * 1000)
    with FileServer({"n.zip": zip_folder(root, "networks_v2.2")}) as server:
        folder = networks_dir(server.url("n.zip"))
    assert folder.name == "networks_v2.2"
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == [
        "eye-mic-0/.hydra/config.yaml", "eye-mic-0/config.yaml", "eye-mic-0/tb_logs/v/checkpoints/x-best.ckpt"]
    with FileServer({"n.zip": zip_folder(root / "scratch", "networks_v2.2")}) as server, pytest.raises(IblVideoError) as err:
        networks_dir(server.url("n.zip"))
    assert "no Lightning Pose model folder" in str(err.value) and "\n" not in str(err.value)


# --- the cache: keyed on the URL and the content ---------------------------------------------------------

def one_network_set(folder: Path, weights: bytes, description: str = "") -> Path:
    """A weights set ``weights_v1.0`` in ``folder`` whose one network's weights are ``weights``."""
    root = folder / "weights_v1.0"
    (root / "eye").mkdir(parents=True)
    (root / "eye" / "model.safetensors").write_bytes(weights)
    write_manifest(root, "weights_v1.0", {"eye": {"path": "eye"}}, description=description)
    return root


def weights_zip(tmp_path: Path, description: str) -> bytes:
    return zip_folder(one_network_set(tmp_path / description, description.encode() * 100, description), "weights_v1.0")


def test_two_urls_with_the_same_file_name_are_two_sets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IBLVIDEO_CACHE", str(tmp_path / "cache"))
    with FileServer({"a/weights.zip": weights_zip(tmp_path, "set A"), "b/weights.zip": weights_zip(tmp_path, "set B")}) as server:
        first, second = load_weights(server.url("a/weights.zip")), load_weights(server.url("b/weights.zip"))
        again = load_weights(server.url("a/weights.zip"))
    assert (first.description, second.description, again.description) == ("set A", "set B", "set A")
    assert first.root != second.root and again.root == first.root
    assert len(server.requests) == 2


def test_a_damaged_cached_set_names_the_folder_to_delete(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IBLVIDEO_CACHE", str(tmp_path / "cache"))
    with FileServer({"weights.zip": weights_zip(tmp_path, "set A")}) as server:
        weights = load_weights(server.url("weights.zip"))
        (weights.root / "eye" / "model.safetensors").write_bytes(b"tampered")
        with pytest.raises(IblVideoError) as err:
            load_weights(server.url("weights.zip"))
        folder = weights.root.parent
        assert str(err.value).startswith(f"{weights.root / 'eye' / 'model.safetensors'}: ") and "\n" not in str(err.value)
        assert f"delete {folder}" in str(err.value)
        shutil.rmtree(folder)
        assert load_weights(server.url("weights.zip")).description == "set A"
    assert len(server.requests) == 1  # unpacked again from the kept download


def test_a_bad_set_is_never_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IBLVIDEO_CACHE", str(tmp_path / "cache"))
    root = one_network_set(tmp_path, b"w" * 100)
    (root / "eye" / "model.safetensors").write_bytes(b"x" * 100)
    data = zip_folder(root, "weights_v1.0")
    with FileServer({"weights.zip": data}) as server:
        for _ in range(2):  # the same one line each time, never a set in the cache
            with pytest.raises(IblVideoError) as err:
                load_weights(server.url("weights.zip"), sha256=hashlib.sha256(data).hexdigest())
            assert str(err.value).startswith(server.url("weights.zip") + ": eye/model.safetensors: checksum mismatch")
            assert "\n" not in str(err.value)
            assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file() and p.suffix != ".lock"]


@pytest.mark.parametrize(("names", "problem"), [(("networks_v2.2/eye-mic-0/config.yaml", "../eye-mic-0/evil.yaml"), "unsafe path"),
                                               (("eye-mic-0/config.yaml", "/tmp/eye-mic-0/evil.yaml"), "unsafe path"),
                                               (("eye-mic-0/config.yaml", "eye-mic-0/config.yaml/x.ckpt"), "both a file and a folder")])
def test_entries_that_escape_or_clash_are_refused(names: tuple[str, ...], problem: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IBLVIDEO_CACHE", str(tmp_path / "cache"))
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as bundle:
        for name in names:
            bundle.writestr(zipfile.ZipInfo(name), "a: 1\n")
    with FileServer({"n.zip": data.getvalue()}) as server, pytest.raises(IblVideoError) as err:
        networks_dir(server.url("n.zip"))
    assert str(err.value).startswith(server.url("n.zip") + ": ") and "\n" not in str(err.value) and problem in str(err.value)
    assert not list(tmp_path.rglob("evil.yaml")) and not list((tmp_path / "cache").glob("n-*"))


HOSTILE_MANIFESTS = {
    "not JSON": "{",
    "a list": [1],
    "networks a list": {"name": "weights_v1.0", "networks": [1]},
    "a network a string": {"name": "weights_v1.0", "networks": {"eye": "x"}},
    "a path a number": {"name": "weights_v1.0", "networks": {"eye": {"path": 3}}},
    "files a list": {"name": "weights_v1.0", "networks": {"eye": {"path": "eye", "files": ["m"]}}},
    "a name a number": {"name": 1, "networks": {}},
    "a version a list": {"name": "weights_v1.0", "version": [1], "networks": {}},
    "a file outside": {"name": "weights_v1.0", "networks": {"eye": {"path": "../..", "files": {"etc/passwd": "0"}}}},
    "an absolute folder": {"name": "weights_v1.0", "networks": {"eye": {"path": "/etc"}}},
}


@pytest.mark.parametrize("manifest", HOSTILE_MANIFESTS)
@pytest.mark.parametrize("given_as", ["folder", "zip URL"])
def test_hostile_manifests_are_one_line(manifest: str, given_as: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IBLVIDEO_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "weights_v1.0"
    (root / "eye").mkdir(parents=True)
    (root / "eye" / "m").write_text("m")
    content = HOSTILE_MANIFESTS[manifest]
    (root / "manifest.json").write_text(content if isinstance(content, str) else json.dumps(content))
    if given_as == "folder":
        with pytest.raises(IblVideoError) as err:
            load_weights(root)
        where = str(root / "manifest.json")
    else:
        with FileServer({"w.zip": zip_folder(root, "weights_v1.0")}) as server, pytest.raises(IblVideoError) as err:
            load_weights(server.url("w.zip"))
        where = server.url("w.zip") + ": weights_v1.0/manifest.json"
    assert str(err.value).startswith(f"{where}: ") and "\n" not in str(err.value)


def test_a_checkpoint_that_is_not_a_file_is_never_read(tmp_path: Path) -> None:
    """A fifo named ``*.ckpt`` would block the read forever; a link to /dev/zero would never end it."""
    folder = model_folder(tmp_path / "eye-mic-0", b"")
    checkpoint = next(folder.rglob("*.ckpt"))
    for make in (lambda: os.mkfifo(checkpoint), lambda: checkpoint.symlink_to("/dev/zero")):
        checkpoint.unlink()
        make()
        with pytest.raises(IblVideoError, match=r"expected one \.ckpt checkpoint") as err:
            load_lp_model(folder)
        assert "\n" not in str(err.value)
