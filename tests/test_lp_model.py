"""Lightning Pose model folders run by our own modules: parity with the lightning-pose package at IBL's pin, 2.2.0.

lightning-pose cannot be installed beside the CPU torch these tests run with (it needs torchvision),
so benchmarks/lp_reference.py ran it once, in its own environment, on ResNet-50 ``heatmap`` and
``heatmap_mhcrnn`` models filled with the seeded weights of tests/lp_seeded.py, and the predictions
are committed in tests/data/lp-reference (its docstring says how it stands in for 2.2.0's GPU-only
video loader on the CPU). Here the same weights are written as a Lightning checkpoint by our code,
loaded back from the model folder, and run on the same video.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from iblvideo.errors import IblVideoError
from iblvideo.networks.lightning_pose import LPNetwork, load_lp_model, predict_frames, read_config, save_lp_checkpoint, to_lp_key
from iblvideo.video.reader import VideoReader
from lp_seeded import seeded_weights

REFERENCE = Path(__file__).parent / "data" / "lp-reference"
VIDEO = Path(__file__).parent / "data" / "mirror-mouse" / "videos" / "test_vid.mp4"
FRAMES = 12  # enough for the context model's edges and a batch boundary; ResNet-50 is slow on two cores
PIXEL_TOLERANCE = 0.05
LIKELIHOOD_TOLERANCE = 1e-3


def test_reference_is_ibls_lightning_pose() -> None:
    assert json.loads((REFERENCE / "info.json").read_text())["lightning-pose"] == "2.2.0"


def seeded_model_dir(model_type: str, root: Path) -> Path:
    """A Lightning Pose model folder: the reference's config.yaml and our checkpoint of the seeded weights."""
    model_dir = root / model_type
    model_dir.mkdir()
    shutil.copy(REFERENCE / model_type / "config.yaml", model_dir / "config.yaml")
    network = LPNetwork(read_config(model_dir))
    state = network.state_dict()
    weights = seeded_weights({to_lp_key(k): tuple(v.shape) for k, v in state.items()})
    network.load_state_dict({k: torch.from_numpy(weights[to_lp_key(k)]) for k in state})
    save_lp_checkpoint(network, model_dir / "tb_logs" / "m" / "version_0" / "checkpoints" / "epoch=0.ckpt")
    return model_dir


@pytest.mark.parametrize("model_type", ["heatmap", "heatmap_mhcrnn"])
def test_predictions_match_lightning_pose(model_type: str, tmp_path: Path) -> None:
    model = load_lp_model(seeded_model_dir(model_type, tmp_path))
    assert model.config.model_type == model_type
    # lightning-pose decodes RGB (limited-range luma stretched), as our reader's RGB mode does, and
    # resizes as DALI does (antialiased): the reference is within ~0.003 px and 2e-5 of ours, while
    # 2.4's unantialiased resize would be tens of pixels away on these weights
    with VideoReader(VIDEO, grey=False) as reader:
        xy, likelihood = predict_frames(model, (frames for _, frames in reader.batches(5, stop=FRAMES)))
    table = pd.read_csv(REFERENCE / f"{model_type}.csv.gz", header=[0, 1, 2], index_col=0)
    points = list(model.keypoints)
    expected_xy = np.stack([table.loc[:, (slice(None), points, c)].to_numpy() for c in ("x", "y")], axis=-1)
    expected_likelihood = table.loc[:, (slice(None), points, "likelihood")].to_numpy()
    # the last two frames of a context model borrow frame n-3's prediction: compare those with frames
    # whose whole context lies inside the clip
    n = FRAMES - 2 if model.config.context else FRAMES
    assert np.abs(xy[:n] - expected_xy[:n]).max() < PIXEL_TOLERANCE
    assert np.abs(likelihood[:n] - expected_likelihood[:n]).max() < LIKELIHOOD_TOLERANCE
    assert expected_xy[:n].std() > 5  # the reference is not degenerate: predictions move with the image
    if model.config.context:
        np.testing.assert_array_equal(xy[:3], xy[[2, 2, 2]])
        np.testing.assert_array_equal(xy[-2:], xy[[-3, -3]])


class DictConfig(dict):
    """Pickled under OmegaConf's name, as Lightning pickles hyper-parameters; OmegaConf is not installed here."""

    __module__ = "omegaconf.dictconfig"

    def __reduce__(self):
        return (DictConfig, (), {"_content": dict(self)})


class Payload:
    """A checkpoint entry that would run a command when unpickled with pickle's defaults."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_lightning_checkpoint_loads_without_lightning_and_runs_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Lightning's extras (OmegaConf hyper-parameters, the RNN's second layer names) are ignored, and nothing in the file runs."""
    model_dir = seeded_model_dir("heatmap_mhcrnn", tmp_path)
    ckpt = next(model_dir.rglob("*.ckpt"))
    state = torch.load(ckpt, weights_only=True)["state_dict"]
    state.update({k.replace(".head_mf.W_f.", ".head_mf.layers.1."): v for k, v in state.items() if ".head_mf.W_f." in k})
    marker = tmp_path / "ran"
    module = types.ModuleType("omegaconf.dictconfig")
    module.DictConfig = DictConfig
    # importable only while saving
    monkeypatch.setitem(sys.modules, "omegaconf", types.ModuleType("omegaconf"))
    monkeypatch.setitem(sys.modules, "omegaconf.dictconfig", module)
    torch.save({"state_dict": state, "hyper_parameters": {"optimizer_params": DictConfig(lr=1e-3)}, "callbacks": Payload(marker)}, ckpt)
    monkeypatch.delitem(sys.modules, "omegaconf.dictconfig")
    monkeypatch.delitem(sys.modules, "omegaconf")
    assert load_lp_model(model_dir).keypoints[0] == "paw1LH_top"
    assert not marker.exists()


def test_model_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(IblVideoError, match=r"no config\.yaml"):
        load_lp_model(tmp_path)
    model_dir = seeded_model_dir("heatmap", tmp_path)
    ckpt = next(model_dir.rglob("*.ckpt"))
    shutil.copy(ckpt, ckpt.with_name("epoch=1.ckpt"))
    with pytest.raises(IblVideoError, match="best"):
        load_lp_model(model_dir)
    ckpt.rename(ckpt.with_name("epoch=0-best.ckpt"))
    assert load_lp_model(model_dir).config.model_type == "heatmap"
    (model_dir / "config.yaml").write_text((model_dir / "config.yaml").read_text().replace("model_type: heatmap", "model_type: regression"))
    with pytest.raises(IblVideoError, match="not supported"):
        load_lp_model(model_dir)


def test_pose_pretrained_resnet50_is_a_resnet50(tmp_path: Path) -> None:
    """IBL's networks start from mmpose's animal-pose ResNet-50: the same architecture and names."""
    model_dir = seeded_model_dir("heatmap", tmp_path)
    config = model_dir / "config.yaml"
    config.write_text(config.read_text().replace("backbone: resnet50", "backbone: resnet50_animal_ap10k"))
    assert load_lp_model(model_dir).config.backbone == "resnet50_animal_ap10k"
