"""scripts/check_dlc_test_data.py against a loopback server holding a made-up ``dlc_test_data`` and seeded set.

The test data is a synthetic session's videos as IBL's zip lays them out, with our own tables of them as
IBL's outputs: equal but for the left camera's, perturbed by known amounts, so every printed figure is known.
"""
from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from http_server import FileServer, zip_folder
from iblvideo import dlc
from iblvideo.networks import dlc_resnet
from iblvideo.synth import synthesize_session
from test_dlc_cascade import NARROW, weights  # noqa: F401  (weights: the seeded set, a fixture)

SCRIPT = Path(__file__).parents[1] / "scripts" / "check_dlc_test_data.py"
CAMERAS = ("left", "body")  # the right camera's flip and scaling are test_dlc_cascade's, and slow to run
SHIFT_X = 1.5  # px, on every frame of the left camera's nose_tip
SHIFT_Y = np.array([0.0, 0.2, 0.4, 0.6, 0.8, 3.0])  # px, frame by frame, on the same point
DOUBT = 0.5  # IBL's paw_l likelihood on the left camera's frame 0: that frame is not compared


def load_script():
    spec = importlib.util.spec_from_file_location("check_dlc_test_data", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def test_data(tmp_path_factory: pytest.TempPathFactory, weights: Path) -> bytes:  # noqa: F811
    """IBL's layout: input/ the raw videos, output/ our tables of them, the left one perturbed."""
    session = synthesize_session(tmp_path_factory.mktemp("session"), cameras=CAMERAS, seconds=0.1, seed=5)
    root = tmp_path_factory.mktemp("dlc_test_data")
    (root / "input").mkdir()
    (root / "output").mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(dlc_resnet, "BASE_DEPTHS", NARROW)
        for camera in CAMERAS:
            video = shutil.copyfile(session / "raw_video_data" / f"_iblrig_{camera}Camera.raw.mp4",
                                    root / "input" / f"_iblrig_{camera}Camera.raw.mp4")
            table = pd.read_parquet(dlc(shutil.copy(video, tmp_path_factory.mktemp(camera)), weights=weights, camera=camera))
            if camera == "left":
                assert len(table) == len(SHIFT_Y)
                table["nose_tip_x"] += SHIFT_X
                table["nose_tip_y"] += SHIFT_Y
                table.loc[0, "paw_l_likelihood"] = DOUBT
                table["paw_l_x"] += 100.0 * (np.arange(len(table)) == 0)  # off, but on the frame not compared
                table["tongue_end_l_likelihood"] -= 0.01
            table.to_parquet(root / "output" / f"_ibl_{camera}Camera.dlc.pqt", index=False)
    return zip_folder(root, "dlc_test_data_v2.2")


def figures(out: str, camera: str, point: str) -> list[str]:
    """The printed row of ``point`` under ``camera``'s heading."""
    block = out.split(f"{camera}: ", 1)[1]
    return next(line.split()[1:] for line in block.splitlines() if line.split()[:1] == [point])


def test_measures_against_ibls_tables_once(test_data: bytes, weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
                                          capsys: pytest.CaptureFixture) -> None:
    script = load_script()
    monkeypatch.setattr(dlc_resnet, "BASE_DEPTHS", NARROW)
    monkeypatch.setenv("IBLVIDEO_CACHE", str(tmp_path / "cache"))
    with FileServer({"dlc_test_data_v2.2.zip": test_data, "weights_v2.2.zip": zip_folder(weights, "weights_v2.2")}) as server:
        urls = ["--test-data", server.url("dlc_test_data_v2.2.zip"), "--weights", server.url("weights_v2.2.zip")]
        assert script.main([*urls, "--max-median-px", "1.0"]) == 1  # a check: the 1.5 px is over
        checked = capsys.readouterr().out
        assert script.main(urls) == 0  # a measurement, from the cache's copies: each zip downloaded once
        out = capsys.readouterr().out
        assert sorted(name for name, _ in server.requests) == ["dlc_test_data_v2.2.zip", "weights_v2.2.zip"]
    print(out)
    assert checked == out + "FAILED: over --max-median-px 1.0\n"
    for camera in CAMERAS:
        assert f"{camera}: columns equal" in out
    frames = len(SHIFT_Y)
    y = [np.median(SHIFT_Y), np.percentile(SHIFT_Y, 95), SHIFT_Y.max()]
    assert figures(out, "left", "nose_tip") == [f"{frames}/{frames}", *[f"{v:.4f}" for v in (SHIFT_X,) * 3 + tuple(y) + (0, 0, 0)]]
    assert figures(out, "left", "paw_l") == [f"{frames - 1}/{frames}", *["0.0000"] * 9]
    assert figures(out, "left", "tongue_end_l")[1:] == ["0.0000"] * 6 + ["0.0100"] * 3
    assert figures(out, "body", "tail_start")[1:] == ["0.0000"] * 9
    assert out.endswith(f"largest median |Δ|: {SHIFT_X:.4f} px (left nose_tip x med)\n")
    # the cached inputs were tracked from scratch copies: the only tables in the cache are IBL's
    assert sorted(p.name for p in (tmp_path / "cache").rglob("*.pqt")) == [f"_ibl_{c}Camera.dlc.pqt" for c in ("body", "left")]


def test_offline_names_the_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    script = load_script()
    monkeypatch.setenv("IBLVIDEO_CACHE", str(tmp_path / "cache"))
    with FileServer({}) as server:
        url = server.url("dlc_test_data_v2.2.zip")
        assert script.main(["--test-data", url]) == 2
    message = capsys.readouterr().err
    assert message.startswith(f"check_dlc_test_data: error: {url}: download failed: HTTP 404") and message.count("\n") == 1


def test_a_foreign_zip_is_one_line(weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
                                   capsys: pytest.CaptureFixture) -> None:
    script = load_script()
    monkeypatch.setenv("IBLVIDEO_CACHE", str(tmp_path / "cache"))
    with FileServer({"dlc_test_data_v2.2.zip": zip_folder(weights, "dlc_test_data_v2.2")}) as server:
        assert script.main(["--test-data", server.url("dlc_test_data_v2.2.zip")]) == 2
    assert script.main(["--test-data", str(weights)]) == 2  # a folder is taken as it is
    messages = capsys.readouterr().err.splitlines()
    assert len(messages) == 2 and all("input: not IBL's dlc_test_data: no _iblrig_<cam>Camera.raw.mp4 here" in m for m in messages)
    assert messages[1].startswith(f"check_dlc_test_data: error: {weights / 'input'}: ")
    assert not list((tmp_path / "cache").glob("dlc_test_data*"))  # refused, so never kept
