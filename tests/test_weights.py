"""Weights sets: manifests, checksums, and downloads from a real HTTP server on loopback."""
from __future__ import annotations

import hashlib
import multiprocessing
import os

import numpy as np
import pytest

from conftest import write_video
from http_server import FileServer, zip_folder
from iblvideo.cli import main
from iblvideo.errors import IblVideoError
from iblvideo.tracking.weights import load_weights, write_manifest


@pytest.fixture()
def weights_folder(tmp_path):
    root = tmp_path / "weights_v1.2"
    rng = np.random.default_rng(0)
    for role in ("eye", "paws"):
        (root / role).mkdir(parents=True)
        (root / role / "model.safetensors").write_bytes(rng.bytes(300_000))
        (root / role / "config.json").write_text(f'{{"role": "{role}"}}')
    write_manifest(root, "weights_v1.2", {"eye": {"path": "eye"}, "paws": {"path": "paws"}}, description="test set")
    return root


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("IBLVIDEO_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_folder_set_verifies(weights_folder):
    weights = load_weights(weights_folder)
    assert weights.name == "weights_v1.2" and weights.version == "1.2" and set(weights.networks) == {"eye", "paws"}
    assert weights.network_dir("eye") == weights_folder / "eye"
    with pytest.raises(IblVideoError, match="has no 'tail' network"):
        weights.network_dir("tail")


def test_corrupt_missing_or_unversioned_sets_are_refused(weights_folder):
    model = weights_folder / "eye" / "model.safetensors"
    model.write_bytes(model.read_bytes()[:-1] + b"x")
    with pytest.raises(IblVideoError, match=f"{model}: checksum mismatch for the 'eye' network"):
        load_weights(weights_folder)
    model.unlink()
    with pytest.raises(IblVideoError, match="missing file of the 'eye' network"):
        load_weights(weights_folder)
    (weights_folder / "manifest.json").unlink()
    with pytest.raises(IblVideoError, match="weights set has no manifest"):
        load_weights(weights_folder)
    with pytest.raises(IblVideoError, match="weights folder not found"):
        load_weights(weights_folder / "nope")


def test_url_downloads_once_then_uses_the_cache(weights_folder, cache):
    data = zip_folder(weights_folder, "weights_v1.2")
    with FileServer({"weights_v1.2.zip": data}) as server:
        first = load_weights(server.url("weights_v1.2.zip"), sha256=hashlib.sha256(data).hexdigest())
        second = load_weights(server.url("weights_v1.2.zip"))
    # the unpacked set is keyed on the content: the archive's name and its sha256
    assert first.root == second.root == cache / f"weights_v1.2-{hashlib.sha256(data).hexdigest()[:16]}" / "weights_v1.2"
    assert len(server.requests) == 1
    assert not list(cache.rglob("*.part"))


def test_interrupted_download_resumes_from_where_it_stopped(weights_folder, cache):
    data = zip_folder(weights_folder, "weights_v1.2")
    with FileServer({"w.zip": data}) as server:
        server.drop_after = 250_000
        with pytest.raises(IblVideoError, match="download"):
            load_weights(server.url("w.zip"))
        assert not list(cache.glob("w-*"))
        weights = load_weights(server.url("w.zip"), sha256=hashlib.sha256(data).hexdigest())
    assert server.requests[-1] == ("w.zip", "bytes=250000-")
    assert weights.name == "weights_v1.2"


def test_checksum_mismatch_and_http_errors(weights_folder, cache):
    data = zip_folder(weights_folder, "weights_v1.2")
    with FileServer({"w.zip": data}) as server:
        with pytest.raises(IblVideoError, match="checksum mismatch: expected sha256 0000"):
            load_weights(server.url("w.zip"), sha256="0" * 64)
        with pytest.raises(IblVideoError, match="HTTP 404"):
            load_weights(server.url("missing.zip"))
    assert not list(cache.rglob("*.zip")) and not list(cache.rglob("*.part")) and not list(cache.glob("w-*"))


def _fetch_in_child(url: str, cache: str, queue) -> None:
    os.environ["IBLVIDEO_CACHE"] = cache
    queue.put(str(load_weights(url).root))


def test_two_processes_asking_at_once_download_once(weights_folder, cache):
    data = zip_folder(weights_folder, "weights_v1.2")
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    with FileServer({"w.zip": data}) as server:
        children = [context.Process(target=_fetch_in_child, args=(server.url("w.zip"), str(cache), queue)) for _ in range(2)]
        for child in children:
            child.start()
        for child in children:
            child.join(120)
        results = {queue.get(timeout=5) for _ in children}
    assert [child.exitcode for child in children] == [0, 0]
    assert len(results) == 1 and len(server.requests) == 1


def test_a_url_in_a_message_is_printed_intact(tmp_path, cache, capsys):
    assert str(IblVideoError("https://example.org/sets/w.zip", "gone")) == "https://example.org/sets/w.zip: gone"
    video = write_video(tmp_path / "body.mp4", 3, width=640, height=512)
    with FileServer({}) as server:
        assert main(["-q", "dlc", "--weights", server.url("missing.zip"), str(video)]) == 2
    assert capsys.readouterr().err == f"iblvideo: error: {server.url('missing.zip')}: download failed: HTTP 404 Not Found\n"
