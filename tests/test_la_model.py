"""Lightning Action models in our own PyTorch modules against the lightning-action package itself.

The references in tests/data/la-reference/ were made by benchmarks/la_reference.py in the package's own
environment: model folders as its ``Model.train`` writes them, with seeded weights, and its
``Model.from_dir`` + ``Model.predict`` on seeded features (info.json holds each model's versions, seeds
and runs):

- ``ibl-dtcn-0.2.4``: lightning-action 0.2.4, the version IBL pins, with IBL's model (configs/ibl.yaml:
  dilated TCN, 32 units, 2 layers, 4 lags, VelocityConcat + ZScore) predicted with IBL's sequences of
  500; its folder names the head ``backbone``, as every IBL network folder does.
- ``dtcn-small``, ``temporalmlp``, ``lstm``, ``gru``: lightning-action 1.1.0, for the heads IBL does not
  use and 1.x's folder layout (``head``); 1.1.0 itself cannot load a VelocityConcat model (see the script).

Tolerance: 2e-6 on probabilities, for both versions. With one window per forward pass, as the package
predicts, ours are bit for bit the package's on this machine; we classify 16 windows per pass (40 times
faster), where oneDNN sums the convolutions in another order: float32 rounding, measured at most 5.7e-7
(4.8 ulp of 1.0; 0.2.4's 8600 frames) and 4.2e-7 (1.1.0). 2e-6 is 3.5 times that, while the mistakes it
must catch are far larger (on 0.2.4's 1010 frames): giving the last window its real future instead of the
package's zeros is 0.23 off, skipping the z-scoring 0.98.

0.2.4 refuses a session of a single window (700 frames at 500: "Must have at least two sequences", its
data module splits even for prediction); we predict it. Recorded in info.json, not compared.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from iblvideo.errors import IblVideoError
from iblvideo.networks.lightning_action import find_checkpoint, load_action_model, windows

REFERENCE = Path(__file__).parent / "data" / "la-reference"
INFO = json.loads((REFERENCE / "info.json").read_text())
TOLERANCE = 2e-6
IBL = "ibl-dtcn-0.2.4"
RUNS = [(name, run["frames"], run["sequence_length"]) for name, model in INFO["models"].items()
        for run in model["runs"].values() if "package_error" not in run]


@pytest.fixture(scope="module")
def models() -> dict:
    return {name: load_action_model(REFERENCE / name) for name in INFO["models"]}


@pytest.mark.parametrize(("name", "frames", "length"), RUNS, ids=[f"{n}-{t}-{s}" for n, t, s in RUNS])
def test_probabilities_match_the_package(models: dict, name: str, frames: int, length: int) -> None:
    folder = REFERENCE / name
    reference = np.load(folder / f"probs-{frames}-{length}.npy")
    ours = models[name].predict(np.load(folder / f"features-{frames}.npy"), length)
    assert ours.shape == reference.shape == (frames, 5)
    # the frames after the last whole window get no prediction, from the package as from us
    tail = frames % length
    assert np.array_equal(np.isnan(ours), np.isnan(reference))
    assert np.isnan(ours[frames - tail:]).all() and not np.isnan(ours[:frames - tail]).any()
    difference = np.abs(ours - reference)[: frames - tail].max()
    print(f"{name} ({INFO['models'][name]['versions']['lightning-action']}) {frames} frames, sequence {length}: max |Δp| = {difference:.2e}")
    assert difference <= TOLERANCE
    np.testing.assert_allclose(ours[: frames - tail].sum(1), 1, atol=1e-5)


def test_references_cover_ibls_version() -> None:
    """IBL's model is 0.2.4's, in 0.2's names, and is compared on a tail, an exact multiple and more than one batch."""
    assert INFO["models"][IBL]["versions"]["lightning-action"] == "0.2.4"
    assert yaml.safe_load((REFERENCE / IBL / "config.yaml").read_text())["model"]["backbone"] == "dtcn"
    assert all(key.startswith(("backbone.", "classifier.")) for key in torch.load(find_checkpoint(REFERENCE / IBL), weights_only=True)["state_dict"])
    assert {(frames, length) for name, frames, length in RUNS if name == IBL} == {(1010, 500), (2000, 500), (8600, 500)}


def test_model_describes_itself(models: dict) -> None:
    ibl = models[IBL]
    assert (ibl.n_features, ibl.n_classes) == (3, 5)
    assert ibl.class_names == ("background", "still", "move", "wheel_turn", "groom")
    assert ibl.config.head == "dtcn" and ibl.config.sequence_pad == 24  # (2·1 + 2·2)·4 frames either side
    assert ibl.config.transforms == ("VelocityConcat", "ZScore")
    assert models["dtcn-small"].config.transforms == ("ZScore",)  # the package's default


def test_windows_have_the_package_edges() -> None:
    """710 frames in windows of 100 with 24 frames of context: seven windows; the first has zeros for its
    past, the last (whose future would run 14 frames past the end) zeros for all its future."""
    frames = np.arange(1, 711, dtype=np.float32)[:, None]
    got = [w[:, 0] for w in windows(frames, 100, 24)]
    assert len(got) == 7 and all(len(w) == 148 for w in got)
    np.testing.assert_array_equal(got[0], np.r_[np.zeros(24), np.arange(1, 125)])
    np.testing.assert_array_equal(got[5], np.arange(477, 625))
    np.testing.assert_array_equal(got[6], np.r_[np.arange(577, 701), np.zeros(24)])


def _copy(name: str, tmp_path: Path) -> Path:
    folder = tmp_path / name
    shutil.copytree(REFERENCE / name, folder)
    return folder


class Foreign:
    """A class a checkpoint must not be able to make us build."""


@pytest.mark.parametrize("damage", ["truncated", "foreign", "not-a-checkpoint", "wrong-architecture"])
def test_bad_checkpoint_gives_one_line(tmp_path: Path, damage: str) -> None:
    folder = _copy(IBL, tmp_path)
    checkpoint = find_checkpoint(folder)
    if damage == "truncated":
        checkpoint.write_bytes(checkpoint.read_bytes()[:5000])
    elif damage == "foreign":
        torch.save({"state_dict": {"head.x": torch.zeros(1)}, "payload": Foreign()}, checkpoint)
    elif damage == "not-a-checkpoint":
        checkpoint.write_bytes(b"\x00" * 100)
    else:
        shutil.copy(find_checkpoint(REFERENCE / "dtcn-small"), checkpoint)
    with pytest.raises(IblVideoError) as err:
        load_action_model(folder)
    message = str(err.value)
    assert "\n" not in message and str(checkpoint) in message


def test_bad_config_and_inputs_give_one_line(models: dict, tmp_path: Path) -> None:
    folder = _copy(IBL, tmp_path)
    config = yaml.safe_load((folder / "config.yaml").read_text())
    config["model"]["head"] = "transformer"
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(IblVideoError, match="head 'transformer' is not supported"):
        load_action_model(folder)
    (folder / "config.yaml").unlink()
    with pytest.raises(IblVideoError, match=r"no config\.yaml"):
        load_action_model(folder)
    model = models[IBL]
    with pytest.raises(IblVideoError, match=r"needs at least 524 frames"):
        model.predict(np.zeros((523, 3)), 500)
    with pytest.raises(IblVideoError, match=r"shape \(frames, 3\)"):
        model.predict(np.zeros((600, 2)))


def test_loading_leaves_torch_random_state_alone() -> None:
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    load_action_model(REFERENCE / IBL)
    assert torch.equal(torch.rand(3), expected)
