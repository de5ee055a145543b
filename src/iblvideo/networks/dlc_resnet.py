"""DeepLabCut 2.x's single-animal pose network (``resnet_50``, ``_101``, ``_152``) in PyTorch.

The backbone is TF-slim's ``resnet_v1`` as DeepLabCut builds it for pose: output stride 16, so the
stride of block 3 is dropped and block 4 is dilated (rate 2); a block's stride sits on the 3×3
convolution of its last unit, whose shortcut subsamples (a 1×1 max-pool); a unit that changes depth
(each block's first) has a 1×1 convolution as its shortcut. Padding is TensorFlow's: slim pads strided convolutions explicitly and evenly
(``conv2d_same``), the 3×3/2 max-pool pads 'SAME' (one more cell after than before on even sizes).
Each head is a 3×3 stride-2 transposed convolution with 'SAME' output size (twice its input).

The read-out is DeepLabCut's: per joint the first cell of highest sigmoid score, refined by the
location-refinement offsets × ``locref_stdev``; a cell (row, col) is the pixel
(col · stride + stride / 2, row · stride + stride / 2). Frames go in as DeepLabCut feeds them:
RGB 0–255 minus ``mean_pixel``, at their own size.
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from torch import nn

from iblvideo.errors import IblVideoError
from iblvideo.networks.building import global_generator_kept
from iblvideo.networks.tf_checkpoint import choose_snapshot, read_checkpoint

# units per block of TF-slim's resnet_v1 variants
NET_UNITS = {"resnet_50": (3, 4, 6, 3), "resnet_101": (3, 4, 23, 3), "resnet_152": (3, 8, 36, 3)}
BASE_DEPTHS = (64, 128, 256, 512)
BLOCK_STRIDES = (2, 2, 2, 1)
OUTPUT_STRIDE = 16  # what DeepLabCut asks of slim
BN_EPS = 1e-5  # slim's resnet_arg_scope default, which DeepLabCut keeps
# what DeepLabCut's default_config gives a pose_cfg.yaml that leaves them out
DEFAULTS: dict[str, Any] = {"stride": 8.0, "locref_stdev": 7.2801, "mean_pixel": [123.68, 116.779, 103.939],
                            "location_refinement": False}
POSE_CFG = "pose_cfg.yaml"


@dataclass(frozen=True)
class DLCConfig:
    """What the network needs from a DeepLabCut ``pose_cfg.yaml``."""

    net_type: str
    joints: tuple[str, ...]
    stride: float
    locref_stdev: float
    mean_pixel: tuple[float, float, float]


def read_pose_cfg(path: Path) -> DLCConfig:
    """The network's settings in ``pose_cfg.yaml``, with DeepLabCut's defaults for those it leaves out."""
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise IblVideoError(path, f"unreadable DeepLabCut pose config ({type(err).__name__}: {str(err).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise IblVideoError(path, "not a DeepLabCut pose config (expected a mapping)")
    cfg = {**DEFAULTS, **raw}
    net_type = cfg.get("net_type")
    if net_type not in NET_UNITS:
        raise IblVideoError(path, f"net_type {net_type!r} is not supported (supported: {', '.join(NET_UNITS)})")
    if not cfg["location_refinement"]:
        raise IblVideoError(path, "location_refinement is off: DeepLabCut's single-animal read-out needs it")
    try:
        joints = tuple(str(name) for name in cfg["all_joints_names"])
        num_joints = int(cfg.get("num_joints", len(joints)))
        mean_pixel = tuple(float(v) for v in cfg["mean_pixel"])
        config = DLCConfig(net_type, joints, float(cfg["stride"]), float(cfg["locref_stdev"]),
                           (mean_pixel[0], mean_pixel[1], mean_pixel[2]))
    except (KeyError, TypeError, ValueError, IndexError) as err:
        raise IblVideoError(path, f"DeepLabCut pose config lacks or garbles a setting ({type(err).__name__}: {err})") from None
    if not joints or num_joints != len(joints) or len(mean_pixel) != 3:
        raise IblVideoError(path, f"num_joints {num_joints} does not match its {len(joints)} all_joints_names, or mean_pixel is not 3 values")
    return config


class ConvBN(nn.Module):
    """A slim ``conv2d`` with batch norm: no bias, evenly padded, ReLU unless told not to."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, rate: int = 1, relu: bool = True):
        super().__init__()
        # slim pads a strided conv evenly by (effective kernel - 1) / 2, as 'SAME' does a stride-1 one
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride, padding=rate * (kernel - 1) // 2, dilation=rate, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=BN_EPS)
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return F.relu(x) if self.relu else x


class Subsample(nn.Module):
    """slim's ``subsample``: a 1×1 max-pool of stride ``stride``, i.e. every stride-th cell."""

    def __init__(self, stride: int):
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, ::self.stride, ::self.stride]


class Bottleneck(nn.Module):
    """slim's ``bottleneck_v1`` unit: 1×1, 3×3 (stride, rate), 1×1, plus the shortcut, then ReLU."""

    def __init__(self, c_in: int, depth: int, stride: int, rate: int):
        super().__init__()
        width = depth // 4
        self.shortcut: nn.Module = Subsample(stride) if c_in == depth else ConvBN(c_in, depth, 1, stride, relu=False)
        self.conv1 = ConvBN(c_in, width, 1)
        self.conv2 = ConvBN(width, width, 3, stride, rate)
        self.conv3 = ConvBN(width, depth, 1, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.shortcut(x) + self.conv3(self.conv2(self.conv1(x))))


def unit_plans(net_type: str) -> list[list[tuple[int, int]]]:
    """(stride, rate) of every unit of every block, as slim's ``stack_blocks_dense`` sets them."""
    current, rate = 4, 1  # the root block's conv and pool have already divided by 4
    plans = []
    for n_units, block_stride in zip(NET_UNITS[net_type], BLOCK_STRIDES, strict=True):
        plan = []
        for i in range(n_units):
            stride = block_stride if i == n_units - 1 else 1
            if current == OUTPUT_STRIDE:  # stride reached: later strides become dilation
                plan.append((1, rate))
                rate *= stride
            else:
                plan.append((stride, 1))
                current *= stride
        plans.append(plan)
    return plans


def _same_pool_padding(size: int, kernel: int = 3, stride: int = 2) -> tuple[int, int]:
    """TensorFlow's 'SAME' padding (before, after) of one dimension."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def max_pool_same(x: torch.Tensor) -> torch.Tensor:
    """A 3×3 stride-2 max-pool with TensorFlow's 'SAME' padding (padded cells never win)."""
    top, bottom = _same_pool_padding(x.shape[2])
    left, right = _same_pool_padding(x.shape[3])
    return F.max_pool2d(F.pad(x, (left, right, top, bottom), value=-math.inf), 3, 2)


class Head(nn.Module):
    """slim's ``conv2d_transpose`` 3×3 stride 2, 'SAME': twice the input size, with a bias."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.deconv = nn.ConvTranspose2d(c_in, c_out, 3, 2, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # TensorFlow's 'SAME' transpose pads nothing before, so of the full (2n + 1) output it drops the last cell
        return self.deconv(x)[:, :, :2 * x.shape[2], :2 * x.shape[3]]


class DLCPoseNet(nn.Module):
    """The network: scoremap logits (N, J, H/8, W/8) and location refinement (N, 2J, H/8, W/8)."""

    def __init__(self, net_type: str, n_joints: int):
        super().__init__()
        self.net_type = net_type
        self.conv1 = ConvBN(3, 64, 7, 2)
        blocks, c_in = [], 64
        for base, plan in zip(BASE_DEPTHS, unit_plans(net_type), strict=True):
            units = []
            for stride, rate in plan:
                units.append(Bottleneck(c_in, base * 4, stride, rate))
                c_in = base * 4
            blocks.append(nn.Sequential(*units))
        self.blocks = nn.Sequential(*blocks)
        self.part_pred = Head(c_in, n_joints)
        self.locref_pred = Head(c_in, 2 * n_joints)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The backbone's output (N, 2048, H/16, W/16)."""
        return self.blocks(max_pool_same(self.conv1(x)))

    def heads(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Scoremap logits and location refinement of backbone ``features``."""
        return self.part_pred(features), self.locref_pred(features)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.heads(self.features(x))


def _conv_bn_tensors(tf_scope: str, module: ConvBN) -> Iterator[tuple[str, torch.Tensor, bool]]:
    yield f"{tf_scope}/weights", module.conv.weight, True
    bn = module.bn
    for tf_name, tensor in (("gamma", bn.weight), ("beta", bn.bias), ("moving_mean", bn.running_mean),
                            ("moving_variance", bn.running_var)):
        assert tensor is not None  # affine, tracking running statistics
        yield f"{tf_scope}/BatchNorm/{tf_name}", tensor, False


def tf_tensors(net: DLCPoseNet) -> Iterator[tuple[str, torch.Tensor, bool]]:
    """(TensorFlow variable name, our tensor, whether it is a kernel to transpose) of every weight."""
    root = f"resnet_v1_{net.net_type.split('_')[1]}"
    yield from _conv_bn_tensors(f"{root}/conv1", net.conv1)
    for b, block in enumerate(net.blocks):
        for u, unit in enumerate(cast(nn.Sequential, block)):
            assert isinstance(unit, Bottleneck)
            scope = f"{root}/block{b + 1}/unit_{u + 1}/bottleneck_v1"
            if isinstance(unit.shortcut, ConvBN):
                yield from _conv_bn_tensors(f"{scope}/shortcut", unit.shortcut)
            for name in ("conv1", "conv2", "conv3"):
                yield from _conv_bn_tensors(f"{scope}/{name}", getattr(unit, name))
    for head in ("part_pred", "locref_pred"):
        deconv = getattr(net, head).deconv
        yield f"pose/{head}/block4/weights", deconv.weight, True
        yield f"pose/{head}/block4/biases", deconv.bias, False


def tf_shape(ours: torch.Tensor, kernel: bool) -> tuple[int, ...]:
    """The shape TensorFlow keeps our tensor in."""
    if not kernel:
        return tuple(ours.shape)
    # TF kernels are (h, w, in, out) for a conv and (h, w, out, in) for a transpose; torch's
    # Conv2d keeps (out, in, h, w) and ConvTranspose2d (in, out, h, w): the same permutation
    return ours.shape[2], ours.shape[3], ours.shape[1], ours.shape[0]


@torch.no_grad()
def load_tf_tensors(net: DLCPoseNet, tensors: dict[str, np.ndarray], source: Path) -> None:
    """Copy the checkpoint's ``tensors`` into ``net``; a missing or misshapen one is an error naming it."""
    for name, ours, kernel in tf_tensors(net):
        if name not in tensors:
            raise IblVideoError(source, f"checkpoint lacks tensor {name} (for a {net.net_type} "
                                        f"with {net.part_pred.deconv.out_channels} joints)")
        value = np.asarray(tensors[name])
        if value.shape != tf_shape(ours, kernel):
            raise IblVideoError(source, f"tensor {name} has shape {value.shape}, expected {tf_shape(ours, kernel)}")
        if kernel:
            value = value.transpose(3, 2, 0, 1)
        ours.copy_(torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32)))


def read_out(scores: np.ndarray, locref: np.ndarray, config: DLCConfig) -> tuple[np.ndarray, np.ndarray]:
    """DeepLabCut's argmax read-out: pixels (N, J, 2) and likelihoods (N, J) from sigmoid scores
    (N, J, H, W) and offsets (N, 2J, H, W)."""
    n, j, h, w = scores.shape
    cell = scores.reshape(n, j, h * w).argmax(axis=2)  # numpy: the first of equal maxima
    row, col = np.divmod(cell, w)
    offsets = locref.reshape(n, j, 2, h * w)
    pick = np.take_along_axis(offsets, cell[:, :, None, None].repeat(2, axis=2), axis=3)[..., 0]
    pick = pick * np.float32(config.locref_stdev)
    half = 0.5 * config.stride
    xy = np.stack([col * config.stride + half + pick[:, :, 0], row * config.stride + half + pick[:, :, 1]], axis=2)
    likelihood = np.take_along_axis(scores.reshape(n, j, h * w), cell[:, :, None], axis=2)[..., 0]
    return xy, likelihood


@dataclass
class DLCModel:
    """A DeepLabCut model folder's network, loaded."""

    path: Path
    config: DLCConfig
    network: DLCPoseNet

    @property
    def joints(self) -> tuple[str, ...]:
        return self.config.joints

    def inputs(self, frames: np.ndarray) -> torch.Tensor:
        """Frames (N, H, W) grey or (N, H, W, 3) RGB uint8 as DeepLabCut feeds them: RGB minus ``mean_pixel``, (N, 3, H, W)."""
        if frames.ndim == 3:
            frames = frames[..., None].repeat(3, axis=3)
        if frames.ndim != 4 or frames.shape[3] != 3:
            raise IblVideoError(None, f"frames must be (N, H, W) grey or (N, H, W, 3) RGB, not {frames.shape}")
        device = next(self.network.parameters()).device
        x = torch.from_numpy(np.ascontiguousarray(frames)).to(device).permute(0, 3, 1, 2).float()
        return x - torch.tensor(self.config.mean_pixel, device=device).view(1, 3, 1, 1)

    @torch.inference_mode()
    def heatmaps(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sigmoid scores (N, J, H', W') and raw location refinement (N, 2J, H', W') of ``frames``."""
        logits, locref = self.network(self.inputs(frames))
        return torch.sigmoid(logits).cpu().numpy(), locref.cpu().numpy()

    def predict(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Frame pixels (N, J, 2) and likelihoods (N, J) of each joint in ``frames``, as DeepLabCut gives them."""
        return read_out(*self.heatmaps(frames), self.config)


def build_network(config: DLCConfig) -> DLCPoseNet:
    """An unloaded network for ``config``, in evaluation mode, torch's random state untouched."""
    with global_generator_kept():
        return DLCPoseNet(config.net_type, len(config.joints)).eval()


def load_dlc_model(folder: str | Path, snapshotindex: int = -1, device: str | torch.device = "cpu") -> DLCModel:
    """The network of a DeepLabCut model folder (``pose_cfg.yaml`` and its snapshots), on ``device``."""
    folder = Path(folder)
    cfg_path = folder / POSE_CFG
    if not cfg_path.is_file():
        raise IblVideoError(folder, f"not a DeepLabCut model folder (no {POSE_CFG})")
    config = read_pose_cfg(cfg_path)
    prefix = choose_snapshot(folder, snapshotindex)
    network = build_network(config)
    load_tf_tensors(network, read_checkpoint(prefix), Path(prefix))
    return DLCModel(folder, config, network.to(device))
