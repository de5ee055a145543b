"""DeepLabCut 2.x's ResNet pose network in PyTorch against DeepLabCut 2.3.11 itself.

The reference (tests/data/dlc-reference, written by benchmarks/dlc_reference.py in its own
TensorFlow environment) holds DeepLabCut's predictions of seeded ResNet-50 networks with 1, 2 and 4
joints on frames from 100×100 to 1280×1024; the seeded weights are drawn again here with the
script's own NumPy-only ``seeded_weights``, so the 100 MB checkpoints need not be committed.
"""
from __future__ import annotations

import copy
import importlib.util
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from iblvideo.errors import IblVideoError
from iblvideo.networks import dlc_resnet
from iblvideo.networks.dlc_resnet import (
    Bottleneck,
    ConvBN,
    DLCModel,
    DLCPoseNet,
    Head,
    Subsample,
    build_network,
    load_dlc_model,
    load_tf_tensors,
    read_out,
    read_pose_cfg,
    tf_shape,
    tf_tensors,
)

ROOT = Path(__file__).resolve().parents[1]
REF = ROOT / "tests" / "data" / "dlc-reference"
JOINTS = (1, 2, 4)
SIZES = ("100x100", "160x160", "220x220", "128x102", "131x97", "1280x1024")
SMALL = ("100x100", "128x102", "131x97")  # enough for the negative controls: even and odd sizes
PX, LIKELIHOOD = 1e-3, 1e-5

needs_reference = pytest.mark.skipif(not (REF / "predictions.npz").is_file(), reason="DeepLabCut reference not written yet")


def _reference_script() -> Any:
    spec = importlib.util.spec_from_file_location("dlc_reference", ROOT / "benchmarks" / "dlc_reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tf_shapes(network: DLCPoseNet) -> dict[str, tuple[int, ...]]:
    """Our network's variables by TensorFlow name, in TensorFlow's shapes."""
    return {name: tf_shape(tensor, kernel) for name, tensor, kernel in tf_tensors(network)}


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(REF / "predictions.npz") as npz:
        return dict(npz)


@pytest.fixture(scope="module")
def frames() -> dict[str, np.ndarray]:
    return {size: np.asarray(Image.open(REF / "frames" / f"{size}.png")) for size in SIZES}


@pytest.fixture(scope="module")
def weights() -> dict[int, dict[str, np.ndarray]]:
    """The seeded weights DeepLabCut's networks were given, per joint count (the backbone drawn once)."""
    seeded = _reference_script().seeded_weights
    with torch.device("meta"):  # shapes only
        networks = {joints: DLCPoseNet("resnet_50", joints) for joints in JOINTS}
    backbone = seeded({k: v for k, v in tf_shapes(networks[4]).items() if not k.startswith("pose/")})
    return {joints: backbone | seeded({k: v for k, v in tf_shapes(net).items() if k.startswith("pose/")})
            for joints, net in networks.items()}


def seeded_model(joints: int, weights: dict[int, dict[str, np.ndarray]]) -> DLCModel:
    folder = REF / f"joints{joints}" / "test"
    config = read_pose_cfg(folder / "pose_cfg.yaml")
    network = build_network(config)
    load_tf_tensors(network, weights[joints], folder)
    return DLCModel(folder, config, network)


@pytest.fixture(scope="module")
def models(weights: dict[int, dict[str, np.ndarray]]) -> dict[int, DLCModel]:
    return {joints: seeded_model(joints, weights) for joints in JOINTS}


Outputs = dict[str, tuple[np.ndarray, np.ndarray]]  # "<J>_<size>": sigmoid scores, locref


@pytest.fixture(scope="module")
def outputs(models: dict[int, DLCModel], frames: dict[str, np.ndarray]) -> Outputs:
    """Every network's heatmaps on every frame: the backbone (the same weights for every J) runs once a frame."""
    found = {}
    with torch.inference_mode():
        for size, frame in frames.items():
            features = models[4].network.features(models[4].inputs(frame[None]))
            for joints, model in models.items():
                logits, locref = model.network.heads(features)
                found[f"{joints}_{size}"] = torch.sigmoid(logits).numpy(), locref.numpy()
    return found


def disagreement(model: DLCModel, scores: np.ndarray, locref: np.ndarray, reference: dict[str, np.ndarray], key: str) -> tuple[float, float, int]:
    """Largest pixel and likelihood differences from DeepLabCut's pose, and how many joints sit on another cell."""
    xy, likelihood = read_out(scores, locref, model.config)
    pose = reference[f"{key}_pose"]
    cells = np.stack(np.unravel_index(scores[0].reshape(scores.shape[1], -1).argmax(axis=1), scores.shape[2:]), axis=1)
    return (float(np.abs(xy[0] - pose[:, :2]).max()), float(np.abs(likelihood[0] - pose[:, 2]).max()),
            int((cells != reference[f"{key}_cell"]).any(axis=1).sum()))


@needs_reference
def test_our_variables_are_deeplabcuts(models: dict[int, DLCModel], weights: dict[int, dict[str, np.ndarray]]) -> None:
    """Every variable of DeepLabCut's graphs is one of ours, of the same shape, and the seeded values are those it was given."""
    digests = json.loads((REF / "variables.json").read_text())["variables"]
    digest = _reference_script().digest
    for joints, model in models.items():
        theirs = {name.split(":", 1)[-1]: d for name, d in digests.items()
                  if ":" not in name or name.startswith(f"j{joints}:")}
        ours = tf_shapes(model.network)
        assert set(ours) == set(theirs), f"{joints} joints"
        for name, shape in ours.items():
            assert list(shape) == theirs[name]["shape"], name
            assert digest(weights[joints][name])["sha256"] == theirs[name]["sha256"], name


@needs_reference
@pytest.mark.parametrize("joints", JOINTS)
def test_predictions_equal_deeplabcut(joints: int, models: dict[int, DLCModel], outputs: Outputs,
                                      reference: dict[str, np.ndarray]) -> None:
    for size in SIZES:
        key = f"j{joints}_{size}"
        scores, locref = outputs[f"{joints}_{size}"]
        assert scores.shape[2:] == reference[f"{key}_scmap"].shape[:2], size
        px, likelihood, moved = disagreement(models[joints], scores, locref, reference, key)
        assert moved == 0, size
        assert px <= PX and likelihood <= LIKELIHOOD, (size, px, likelihood)
        # the maps themselves, where DeepLabCut keeps them (rows, cols, J) and (rows, cols, J, 2) × locref_stdev
        np.testing.assert_allclose(scores[0].transpose(1, 2, 0), reference[f"{key}_scmap"], atol=LIKELIHOOD, rtol=0)
        ours_locref = locref[0].transpose(1, 2, 0).reshape(*scores.shape[2:], joints, 2) * models[joints].config.locref_stdev
        np.testing.assert_allclose(ours_locref, reference[f"{key}_locref"], atol=PX, rtol=0)


@needs_reference
def test_predict_is_the_heatmaps_read_out(models: dict[int, DLCModel], outputs: Outputs, frames: dict[str, np.ndarray],
                                          reference: dict[str, np.ndarray]) -> None:
    """``predict`` on grey frames, and on the same frames as RGB, is DeepLabCut's pose."""
    model = models[4]
    for size in SMALL:
        grey = frames[size][None].repeat(2, axis=0)
        xy, likelihood = model.predict(grey)
        assert xy.shape == (2, 4, 2) and likelihood.shape == (2, 4)
        pose = reference[f"j4_{size}_pose"]
        assert np.abs(xy - pose[:, :2]).max() <= PX and np.abs(likelihood - pose[:, 2]).max() <= LIKELIHOOD
    rgb_xy, rgb_likelihood = model.predict(grey[..., None].repeat(3, axis=3))
    np.testing.assert_array_equal(rgb_xy, xy)
    np.testing.assert_array_equal(rgb_likelihood, likelihood)


def _stride_on_first_unit(network: DLCPoseNet) -> None:
    """Blocks 1 and 2 downsample in their first unit instead of their last (torchvision's convention)."""
    for block in list(network.blocks)[:2]:
        first, last = block[0], block[-1]
        assert isinstance(first, Bottleneck) and isinstance(last, Bottleneck)
        assert isinstance(first.shortcut, ConvBN) and isinstance(last.shortcut, Subsample)
        first.conv2.conv.stride = first.shortcut.conv.stride = (2, 2)
        last.conv2.conv.stride, last.shortcut.stride = (1, 1), 1


def _symmetric_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dlc_resnet, "_same_pool_padding", lambda size: (1, 1))


def _transpose_crops_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """The transposed convolution's extra cell dropped at the start (torch's padding=1, output_padding=1)."""
    monkeypatch.setattr(Head, "forward", lambda self, x: self.deconv(x)[:, :, 1:2 * x.shape[2] + 1, 1:2 * x.shape[3] + 1])


@needs_reference
@pytest.mark.parametrize("change", ["stride on the first unit", "symmetric max-pool padding", "transpose crops the first cell"])
def test_a_wrong_network_fails_the_comparison(change: str, models: dict[int, DLCModel], frames: dict[str, np.ndarray],
                                              reference: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch) -> None:
    """Negative control: the comparison tells the network TF-slim builds from near misses."""
    model = copy.deepcopy(models[4])
    changes: dict[str, Callable[[], None]] = {
        "stride on the first unit": lambda: _stride_on_first_unit(model.network),
        "symmetric max-pool padding": lambda: _symmetric_pool(monkeypatch),
        "transpose crops the first cell": lambda: _transpose_crops_first(monkeypatch),
    }
    changes[change]()
    failed = []
    for size in SMALL:
        scores, locref = model.heatmaps(frames[size][None])
        if scores.shape[2:] != reference[f"j4_{size}_scmap"].shape[:2]:
            failed.append(size)
            continue
        px, likelihood, moved = disagreement(model, scores, locref, reference, f"j4_{size}")
        if moved or px > PX or likelihood > LIKELIHOOD:
            failed.append(size)
    assert failed, f"{change}: the comparison did not notice"


# --- the model folder and its one-line errors (no reference needed, small networks of our own tensors)


def _pose_cfg(folder: Path, **changes: Any) -> Path:
    cfg = {"net_type": "resnet_50", "all_joints_names": ["paw_l", "paw_r"], "num_joints": 2, "all_joints": [[0], [1]],
           "stride": 8.0, "locref_stdev": 7.2801, "mean_pixel": [123.68, 116.779, 103.939], "location_refinement": True} | changes
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pose_cfg.yaml").write_text(yaml.safe_dump(cfg))
    return folder / "pose_cfg.yaml"


def _zeros(network: DLCPoseNet) -> dict[str, np.ndarray]:
    return {name: np.zeros(shape, np.float32) for name, shape in tf_shapes(network).items()}


@pytest.fixture(scope="module")
def network() -> DLCPoseNet:
    return DLCPoseNet("resnet_50", 2)


def test_load_dlc_model_takes_deeplabcuts_snapshot(tmp_path: Path, network: DLCPoseNet, monkeypatch: pytest.MonkeyPatch) -> None:
    _pose_cfg(tmp_path)
    for iteration in (5000, 1030000, 20000):
        (tmp_path / f"snapshot-{iteration}.index").write_bytes(b"")
    tensors = _zeros(network)
    tensors["pose/part_pred/block4/biases"] = np.array([3.0, -1.0], np.float32)
    tensors["pose/locref_pred/block4/biases"] = np.array([0.5, -0.25, 0.0, 1.0], np.float32)
    read: list[Path] = []
    monkeypatch.setattr(dlc_resnet, "read_checkpoint", lambda prefix: read.append(Path(prefix)) or tensors)
    model = load_dlc_model(tmp_path)
    assert read == [tmp_path / "snapshot-1030000"]
    assert model.joints == ("paw_l", "paw_r")
    xy, likelihood = model.predict(np.zeros((1, 37, 45), np.uint8))
    # every cell scores alike: the first cell (0, 0) wins, at stride / 2 plus the bias offsets × locref_stdev
    np.testing.assert_allclose(xy[0], [[4 + 0.5 * 7.2801, 4 - 0.25 * 7.2801], [4.0, 4 + 7.2801]], rtol=1e-6)
    np.testing.assert_allclose(likelihood[0], 1 / (1 + np.exp([-3.0, 1.0])), rtol=1e-6)


def test_read_out_is_argmax_pose_predict(tmp_path: Path) -> None:
    """Ties go to the first cell in row-major order, as numpy's argmax; x from the column, y from the row."""
    scores = np.zeros((1, 2, 3, 4), np.float32)
    scores[0, 0, 1, 2] = scores[0, 0, 2, 0] = 0.9  # a tie: (1, 2) comes first
    scores[0, 1, 2, 3] = 0.7
    locref = np.zeros((1, 4, 3, 4), np.float32)
    locref[0, 0, 1, 2], locref[0, 1, 1, 2] = 1.0, -2.0  # joint 0's (dx, dy) at (1, 2)
    config = read_pose_cfg(_pose_cfg(tmp_path, stride=8.0, locref_stdev=2.0))
    xy, likelihood = read_out(scores, locref, config)
    np.testing.assert_allclose(xy[0], [[2 * 8 + 4 + 2.0, 1 * 8 + 4 - 4.0], [3 * 8 + 4, 2 * 8 + 4]])
    np.testing.assert_allclose(likelihood[0], [0.9, 0.7])


@pytest.mark.parametrize("changes, words", [
    ({"net_type": "resnet_34"}, "net_type 'resnet_34' is not supported"),
    ({"net_type": "mobilenet_v2_1.0"}, "net_type 'mobilenet_v2_1.0' is not supported"),
    ({"location_refinement": False}, "location_refinement is off"),
    ({"num_joints": 3}, "num_joints 3 does not match"),
    ({"mean_pixel": "grey"}, "garbles"),
])
def test_unsupported_pose_cfg_is_one_line(tmp_path: Path, changes: dict[str, Any], words: str) -> None:
    path = _pose_cfg(tmp_path, **changes)
    with pytest.raises(IblVideoError) as err:
        load_dlc_model(tmp_path)
    assert words in str(err.value) and str(path) in str(err.value) and "\n" not in str(err.value)


def test_a_folder_without_pose_cfg_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(IblVideoError, match="not a DeepLabCut model folder"):
        load_dlc_model(tmp_path)


def test_missing_or_misshapen_tensor_is_named(network: DLCPoseNet) -> None:
    tensors = _zeros(network)
    del tensors["resnet_v1_50/block2/unit_4/bottleneck_v1/conv2/BatchNorm/moving_variance"]
    with pytest.raises(IblVideoError, match="lacks tensor resnet_v1_50/block2/unit_4/bottleneck_v1/conv2/BatchNorm/moving_variance"):
        load_tf_tensors(network, tensors, Path("snapshot-1"))
    tensors = _zeros(network)
    tensors["pose/locref_pred/block4/weights"] = np.zeros((3, 3, 2048, 4), np.float32)  # in and out swapped
    with pytest.raises(IblVideoError) as err:
        load_tf_tensors(network, tensors, Path("snapshot-1"))
    assert str(err.value) == "snapshot-1: tensor pose/locref_pred/block4/weights has shape (3, 3, 2048, 4), expected (3, 3, 4, 2048)"


def test_deeper_resnets_have_slims_variables() -> None:
    """resnet_101 and _152: slim's unit counts, the stride in the last unit, block 4 dilated."""
    for net_type, block3 in (("resnet_101", 23), ("resnet_152", 36)):
        plans = dlc_resnet.unit_plans(net_type)
        assert [len(p) for p in plans][2] == block3
        assert plans[0][-1] == plans[1][-1] == (2, 1) and all(p == (1, 1) for p in plans[2]) and all(p == (1, 2) for p in plans[3])
    assert dlc_resnet.unit_plans("resnet_50") == [[(1, 1)] * 2 + [(2, 1)], [(1, 1)] * 3 + [(2, 1)], [(1, 1)] * 6, [(1, 2)] * 3]


def test_bad_frames_are_one_line(network: DLCPoseNet, tmp_path: Path) -> None:
    config = read_pose_cfg(_pose_cfg(tmp_path))
    with pytest.raises(IblVideoError, match="frames must be"):
        DLCModel(Path("m"), config, network).predict(np.zeros((1, 10, 10, 4), np.uint8))
