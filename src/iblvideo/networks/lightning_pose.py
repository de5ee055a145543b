"""A Lightning Pose model folder run with our own modules: ``config.yaml`` plus a Lightning checkpoint.

Model types ``heatmap`` (one frame) and ``heatmap_mhcrnn`` (a five-frame context: a single-frame
head and a bidirectional convolutional RNN head, keeping per keypoint whichever is more confident),
on ResNet-50 backbones. Parameter names follow Lightning Pose's checkpoints so they load as they are.

The read-out is Lightning Pose's: heatmaps (a spatial softmax at a quarter of the input size) are
upsampled twice (bicubic, then a 5×5 binomial blur), sharpened by a softmax at temperature 1000, and
their expectation is the keypoint; the confidence is the sharpened mass in the 5×5 cells around it.
Model pixels map to image pixels by multiplication (x · W / w), the mapping the networks were trained with.
"""
from __future__ import annotations

import csv
import math
import pickle
import types
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn

from iblvideo.errors import IblVideoError
from iblvideo.networks.backbones import IMAGENET_MEAN, IMAGENET_STD, ResNet50
from iblvideo.networks.building import global_generator_kept
from iblvideo.networks.settings import Size
from iblvideo.video.resampling import dali_resize

MODEL_TYPES = ("heatmap", "heatmap_mhcrnn")
# torchvision's ResNet-50, whatever it was pretrained on (ImageNet, or the mmpose animal and human
# weights Lightning Pose offers, which IBL's networks start from)
BACKBONES = {name: ResNet50 for name in ("resnet50", "resnet50_animal_ap10k", "resnet50_animal_apose", "resnet50_human_jhmdb",
                                         "resnet50_human_res_rle", "resnet50_human_top_res", "resnet50_human_hand")}
PIXEL_ERRORS = "predictions_pixel_error.csv"
CONTEXT = 5  # frames a context model sees: t-2 … t+2
TEMPERATURE = 1000.0  # Lightning Pose's soft-argmax temperature
CONFIDENCE_RADIUS = 2  # floor(1.25 σ · 2): cells either side summed into the confidence
# torchvision's ResNet children, which Lightning Pose keeps as a Sequential, by index
_RESNET_CHILDREN = {"conv1": "0", "bn1": "1", "layer1": "4", "layer2": "5", "layer3": "6", "layer4": "7"}


@dataclass(frozen=True)
class LPConfig:
    """What our network needs from a Lightning Pose ``config.yaml``."""

    model_type: str
    backbone: str
    keypoints: tuple[str, ...]
    input_size: Size  # (width, height) the frames are resized to
    downsample_factor: int = 2

    @property
    def context(self) -> bool:
        return self.model_type == "heatmap_mhcrnn"


def read_config(model_dir: Path) -> LPConfig:
    """The config of a Lightning Pose model folder: ``.hydra/config.yaml`` (what the model was trained
    with), else ``config.yaml``, the order IBL's pipeline reads them in."""
    path = next((p for p in (model_dir / ".hydra" / "config.yaml", model_dir / "config.yaml") if p.is_file()), None)
    if path is None:
        raise IblVideoError(model_dir, "not a Lightning Pose model folder (no config.yaml)")
    try:
        cfg = yaml.safe_load(path.read_text())
        model, data = cfg["model"], cfg["data"]
        # older configs say keypoints; some of IBL's say neither, and name them in their pixel-error table
        keypoints = data.get("keypoint_names") or data.get("keypoints") or keypoints_of_errors(model_dir, path)
        config = LPConfig(model["model_type"], model["backbone"], tuple(keypoints),
                          (int(data["image_resize_dims"]["width"]), int(data["image_resize_dims"]["height"])),
                          int(data.get("downsample_factor", 2)))
    except (yaml.YAMLError, KeyError, TypeError) as err:
        raise IblVideoError(path, f"unreadable Lightning Pose config ({type(err).__name__}: {err})") from None
    if config.model_type not in MODEL_TYPES:
        raise IblVideoError(path, f"model type {config.model_type!r} is not supported (supported: {', '.join(MODEL_TYPES)})")
    if config.backbone not in BACKBONES:
        raise IblVideoError(path, f"backbone {config.backbone!r} is not supported (supported: {', '.join(BACKBONES)})")
    if config.context and config.downsample_factor != 2:
        raise IblVideoError(path, "heatmap_mhcrnn models need downsample_factor 2")
    return config


def keypoints_of_errors(model_dir: Path, config: Path) -> list[str]:
    """Keypoint names from the header of the folder's ``predictions_pixel_error.csv`` (its first column
    names the image, its last the split), IBL's fallback for a config without them."""
    table = model_dir / PIXEL_ERRORS
    try:
        with table.open(newline="") as file:
            header = next(csv.reader(file))
    except (OSError, StopIteration, UnicodeDecodeError, csv.Error):
        raise IblVideoError(config, f"names no keypoints (keypoint_names), and there is no readable {PIXEL_ERRORS} beside it to take them from") from None
    if len(header) < 3:
        raise IblVideoError(table, "names no keypoints in its header")
    return header[1:-1]


def find_checkpoint(model_dir: Path) -> Path:
    """The ``.ckpt`` file under ``model_dir`` (Lightning writes it a few folders down); of several, the one marked best."""
    # regular files only: a fifo or a device named *.ckpt would hang or never end the read
    found = sorted(path for path in model_dir.rglob("*.ckpt") if path.is_file())
    if len(found) > 1:
        found = [path for path in found if path.name.endswith("-best.ckpt")]
    if len(found) != 1:
        raise IblVideoError(model_dir, "expected one .ckpt checkpoint below the model folder, or one named *-best.ckpt among several")
    return found[0]


def upsampling_layers(in_channels: int, n_keypoints: int, n_layers: int) -> nn.Sequential:
    """Pixel shuffle then ``n_layers`` stride-2 transposed convolutions, no activations in between."""
    layers: list[nn.Module] = [nn.PixelShuffle(2)]
    for i in range(n_layers):
        layers.append(nn.ConvTranspose2d(in_channels // 4 if i == 0 else n_keypoints, n_keypoints, 3, 2, 1, output_padding=1))
    return nn.Sequential(*layers)


def spatial_softmax(x: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    n, k, h, w = x.shape
    return (x.reshape(n, k, h * w) * temperature).softmax(-1).reshape(n, k, h, w)


class HeatmapHead(nn.Module):
    """Features of one frame → per-keypoint heatmaps (probabilities over the cells)."""

    def __init__(self, in_channels: int, n_keypoints: int, stride: int, downsample_factor: int):
        super().__init__()
        self.upsampling_layers = upsampling_layers(in_channels, n_keypoints, int(math.log2(stride)) - downsample_factor - 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return spatial_softmax(self.upsampling_layers(features))


def _recurrent(n_keypoints: int, filters: int = 16) -> nn.Sequential:
    """The hidden-state map: a grouped 2×2 convolution down and back up, per keypoint."""
    return nn.Sequential(nn.Conv2d(n_keypoints, n_keypoints * filters, 2, 2, groups=n_keypoints),
                         nn.ConvTranspose2d(n_keypoints * filters, n_keypoints, 2, 2, groups=n_keypoints))


class ContextHead(nn.Module):
    """Lightning Pose's multi-frame head: a bidirectional convolutional RNN over five frames' features."""

    def __init__(self, in_channels: int, n_keypoints: int):
        super().__init__()
        self.pixel_shuffle = nn.PixelShuffle(2)
        self.W_pre = nn.ConvTranspose2d(in_channels // 4, n_keypoints, 3, 2, 1, output_padding=1)
        self.W_f = nn.ConvTranspose2d(n_keypoints, n_keypoints, 3, 2, 1, output_padding=1)
        self.H_f = _recurrent(n_keypoints)
        self.W_b = nn.ConvTranspose2d(n_keypoints, n_keypoints, 3, 2, 1, output_padding=1)
        self.H_b = _recurrent(n_keypoints)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Heatmaps of the centre frames of every five-frame window of a sequence of features (T, C, h, w)."""
        # the input maps are per frame: computed once, shared by the (up to) five windows a frame is in
        x = self.W_pre(self.pixel_shuffle(features))
        forward, backward = self.W_f(x), self.W_b(x)
        n = features.shape[0] - CONTEXT + 1
        state_f, state_b = forward[:n], backward[CONTEXT - 1:]
        for k in range(1, CONTEXT):
            state_f = forward[k:k + n] + self.H_f(state_f)
            state_b = backward[CONTEXT - 1 - k:CONTEXT - 1 - k + n] + self.H_b(state_b)
        return spatial_softmax((state_f + state_b) / 2)


def _upsample(heatmaps: torch.Tensor) -> torch.Tensor:
    """Twice the size: bicubic interpolation, then the 5×5 binomial (pyramid) blur, zero-padded."""
    k = heatmaps.shape[1]
    up = nn.functional.interpolate(heatmaps, scale_factor=2, mode="bicubic", align_corners=False)
    taps = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], dtype=up.dtype, device=up.device)
    kernel = (taps[:, None] * taps[None, :] / 256.0).expand(k, 1, 5, 5)
    return nn.functional.conv2d(up, kernel, padding=2, groups=k)


def read_out(heatmaps: torch.Tensor, downsample_factor: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Keypoints (N, K, 2) in model pixels and confidences (N, K) from heatmaps, as Lightning Pose reads them."""
    for _ in range(downsample_factor):
        heatmaps = _upsample(heatmaps)
    n, k, h, w = heatmaps.shape
    sharp = spatial_softmax(heatmaps, TEMPERATURE)
    xy = torch.stack([(sharp.sum(2) * torch.arange(w, dtype=sharp.dtype, device=sharp.device)).sum(-1),
                      (sharp.sum(3) * torch.arange(h, dtype=sharp.dtype, device=sharp.device)).sum(-1)], dim=-1)
    r = CONFIDENCE_RADIUS
    # the window sits on the truncated expectation, before the offset below, as in Lightning Pose
    mass = nn.functional.avg_pool2d(sharp, 2 * r + 1, stride=1, padding=r, count_include_pad=True) * (2 * r + 1) ** 2
    cells = xy.long().clamp_min(0)
    rows, cols = cells[..., 1].clamp_max(h - 1), cells[..., 0].clamp_max(w - 1)
    confidence = mass.reshape(n, k, h * w).gather(-1, (rows * w + cols)[..., None])[..., 0]
    # the upsampling shifts the grid by half a cell per doubling
    return xy - (2 ** downsample_factor - 1) / 2, confidence


class ContextHeads(nn.Module):
    """The two heads of a context model, under Lightning Pose's names: each frame alone, and five-frame windows."""

    def __init__(self, in_channels: int, n_keypoints: int, stride: int, downsample_factor: int):
        super().__init__()
        self.head_sf = HeatmapHead(in_channels, n_keypoints, stride, downsample_factor)
        self.head_mf = ContextHead(in_channels, n_keypoints)


class LPNetwork(nn.Module):
    """Backbone and head(s) of a Lightning Pose heatmap model."""

    # ImageNet statistics, registered as buffers so that they follow the network to its device
    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, config: LPConfig):
        super().__init__()
        self.config = config
        self.backbone = BACKBONES[config.backbone]()
        n, channels, stride = len(config.keypoints), self.backbone.out_channels, self.backbone.stride
        heads = ContextHeads if config.context else HeatmapHead
        self.head: HeatmapHead | ContextHeads = heads(channels, n, stride, config.downsample_factor)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def features(self, frames: torch.Tensor) -> torch.Tensor:
        """Backbone features of frames (N, 1 or 3, h, w) in [0, 1] at the input size."""
        return self.backbone((frames.expand(-1, 3, -1, -1) - self.mean) / self.std)

    def single(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keypoints and confidences of each frame on its own."""
        head = self.head.head_sf if isinstance(self.head, ContextHeads) else self.head
        return read_out(head(features), self.config.downsample_factor)

    def windows(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keypoints and confidences of the centre frames of a sequence's five-frame windows."""
        if not isinstance(self.head, ContextHeads):
            raise ValueError(f"a {self.config.model_type} model has no five-frame head")
        xy, confidence = self.single(features[CONTEXT // 2:len(features) - CONTEXT // 2])
        xy_mf, confidence_mf = read_out(self.head.head_mf(features), self.config.downsample_factor)
        better = confidence_mf > confidence
        return torch.where(better[..., None], xy_mf, xy), torch.where(better, confidence_mf, confidence)


def to_lp_key(key: str) -> str:
    """Our parameter name → Lightning Pose's (the backbone is a Sequential of torchvision's children)."""
    if key.startswith("backbone."):
        _, child, rest = key.split(".", 2)
        return f"backbone.{_RESNET_CHILDREN[child]}.{rest}"
    return key


def _lp_state_dict(checkpoint: Any, path: Path) -> dict[str, torch.Tensor]:
    """The named tensors of a checkpoint (Lightning's ``state_dict``, or the file's own dict)."""
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    # the RNN head also lists its layers in a ModuleList: the same tensors under a second name
    tensors = {k: v for k, v in state.items() if isinstance(k, str) and isinstance(v, torch.Tensor)
               and ".head_mf.layers." not in k} if isinstance(state, dict) else {}
    if not tensors:
        raise IblVideoError(path, "unreadable checkpoint (it holds no state dict of tensors)")
    return tensors


class _Opaque(dict):
    """Stands in for whatever a checkpoint holds beside its tensors (Lightning's hyper-parameters as
    OmegaConf objects, callback states): built from nothing, so no code from the file runs."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__()

    def __setstate__(self, state: Any) -> None:
        pass

    def append(self, item: Any) -> None:
        pass

    def extend(self, items: Any) -> None:
        pass


# the globals a state dict of tensors is rebuilt from, as exact (module, name) pairs: from protocol 4 on
# pickle resolves a dotted name attribute by attribute, so admitting a prefix (``_rebuild…``) let
# ``_rebuild_tensor.__builtins__.get`` reach exec
_TENSOR_GLOBALS = frozenset({("collections", "OrderedDict"), ("torch.storage", "UntypedStorage"),
                             *(("torch._utils", name) for name in ("_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_parameter")),
                             *(("torch", name) for name in dir(torch) if name.endswith("Storage") or isinstance(getattr(torch, name), torch.dtype))})


class _CheckpointUnpickler(pickle.Unpickler):
    """Tensors as they are, everything else opaque: neither OmegaConf nor Lightning needs to be installed,
    and no other module is imported nor any other callable reached."""

    def find_class(self, module: str, name: str) -> Any:
        return super().find_class(module, name) if (module, name) in _TENSOR_GLOBALS else _Opaque


_CHECKPOINT_PICKLE = types.SimpleNamespace(Unpickler=_CheckpointUnpickler, __name__=__name__,
                                           load=lambda file, **kwargs: _CheckpointUnpickler(file, **kwargs).load())


def _read_checkpoint(path: Path) -> Any:
    try:
        # torch's safe loader refuses Lightning's hyper-parameters outright; ours keeps the tensors
        # and makes everything else inert
        return torch.load(path, map_location="cpu", weights_only=False, pickle_module=_CHECKPOINT_PICKLE)
    except Exception as err:  # noqa: BLE001 - whatever a damaged or hostile pickle makes torch raise: unreadable
        first_line = next(iter(str(err).splitlines()), "")
        raise IblVideoError(path, f"unreadable checkpoint ({type(err).__name__}: {first_line})") from None


@dataclass
class LPModel:
    """A loaded Lightning Pose model folder."""

    path: Path
    config: LPConfig
    network: LPNetwork

    @property
    def keypoints(self) -> tuple[str, ...]:
        return self.config.keypoints

    @property
    def input_size(self) -> Size:
        return self.config.input_size

    def stream(self) -> Stream:
        return Stream(self)

    @torch.inference_mode()
    def single(self, frames: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Model-pixel keypoints and confidences of each frame on its own (a context model's single-frame head)."""
        return _numpy(self.network.single(self.network.features(frames)))


def load_lp_model(model_dir: str | Path, device: str | torch.device = "cpu") -> LPModel:
    """The Lightning Pose model in ``model_dir``, on ``device``, in evaluation mode."""
    model_dir = Path(model_dir)
    config = read_config(model_dir)
    checkpoint = find_checkpoint(model_dir)
    state = _lp_state_dict(_read_checkpoint(checkpoint), checkpoint)
    with global_generator_kept():
        network = LPNetwork(config)
    ours = {key: to_lp_key(key) for key in network.state_dict()}
    missing = [lp for lp in ours.values() if lp not in state]
    if missing:
        raise IblVideoError(checkpoint, f"checkpoint does not match a {config.model_type} {config.backbone} model "
                                        f"with {len(config.keypoints)} keypoints (missing {missing[0]}, …)")
    try:
        network.load_state_dict({key: state[lp] for key, lp in ours.items()})
    except RuntimeError as err:
        raise IblVideoError(checkpoint, f"checkpoint does not match its config ({str(err).splitlines()[-1].strip()})") from None
    return LPModel(model_dir, config, network.to(device).eval())


def save_lp_checkpoint(network: LPNetwork, path: Path) -> Path:
    """Write ``network``'s weights as a Lightning checkpoint with Lightning Pose's parameter names."""
    state = {to_lp_key(k): v.detach().cpu() for k, v in network.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": state}, path)
    return path


def save_lp_model(network: LPNetwork, model_dir: Path, name: str = "model") -> Path:
    """A Lightning Pose model folder for ``network``: ``config.yaml`` and ``tb_logs/<name>/version_0/checkpoints/``."""
    config = network.config
    model_dir.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump({
        "data": {"image_resize_dims": {"width": config.input_size[0], "height": config.input_size[1]},
                 "downsample_factor": config.downsample_factor, "num_keypoints": len(config.keypoints), "keypoint_names": list(config.keypoints)},
        "model": {"model_type": config.model_type, "backbone": config.backbone, "model_name": name},
    }, sort_keys=False)
    (model_dir / "config.yaml").write_text(text)
    save_lp_checkpoint(network, model_dir / "tb_logs" / name / "version_0" / "checkpoints" / "epoch=0-step=0.ckpt")
    return model_dir


class Stream:
    """Predictions for consecutive frames fed batch by batch; a context model answers two frames late.

    Each frame's prediction uses frames t-2 … t+2; the first two frames take frame 2's and the last
    two frame n-3's, as Lightning Pose does at the ends of a video.
    """

    def __init__(self, model: LPModel):
        self.network, self.context = model.network, model.config.context
        self._features = torch.empty(0)  # features of the last frames, needed by the next windows
        self._seen = 0
        self._last: tuple[torch.Tensor, torch.Tensor] | None = None

    @torch.inference_mode()
    def push(self, frames: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Model-pixel keypoints (n, K, 2) and confidences (n, K) for the next frames whose context is complete.

        ``frames`` (N, 1, h, w) in [0, 1], at the model's input size.
        """
        features = self.network.features(frames)
        if not self.context:
            return _numpy(self.network.single(features))
        if len(self._features):
            features = torch.cat([self._features, features])
        self._features = features[-(CONTEXT - 1):]
        if len(features) < CONTEXT:
            return _empty(len(self.network.config.keypoints))
        xy, confidence = self.network.windows(features)
        if self._seen == 0:  # the first two frames have no past: they take frame 2's prediction
            xy, confidence = torch.cat([xy[:1]] * 2 + [xy]), torch.cat([confidence[:1]] * 2 + [confidence])
        self._seen += len(xy)
        self._last = xy[-1:], confidence[-1:]
        return _numpy((xy, confidence))

    def close(self) -> tuple[np.ndarray, np.ndarray]:
        """The last two frames of a context model, which have no future: frame n-3's prediction."""
        if not self.context:
            return _empty(len(self.network.config.keypoints))
        if self._last is None:
            raise IblVideoError(None, f"a context model needs at least {CONTEXT} frames")
        xy, confidence = self._last
        return _numpy((xy.repeat(2, 1, 1), confidence.repeat(2, 1)))


def _numpy(pair: tuple[torch.Tensor, torch.Tensor]) -> tuple[np.ndarray, np.ndarray]:
    return pair[0].float().cpu().numpy(), pair[1].float().cpu().numpy()


def _empty(k: int) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((0, k, 2), np.float32), np.zeros((0, k), np.float32)


def resize(frames: torch.Tensor, size: Size) -> torch.Tensor:
    """Frames (N, H, W) or (N, H, W, 3), 0–255, as (N, C, h, w) in [0, 1], resized as lightning-pose 2.2.0's
    DALI pipeline resizes them (antialiased when shrinking; 2.4's OpenCV reader does not antialias)."""
    x = frames.float().div(255.0)
    return dali_resize(x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2), size)


def predict_frames(model: LPModel, batches: Iterable[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints (N, K, 2) in the frames' pixels and confidences (N, K) of consecutive frames, as lightning-pose predicts a video.

    ``batches``: uint8 frames (n, H, W) or (n, H, W, 3), in order.
    """
    stream, got, shape = model.stream(), [], None
    device = next(model.network.parameters()).device
    for frames in batches:
        shape = frames.shape[1:3]
        got.append(stream.push(resize(torch.from_numpy(np.ascontiguousarray(frames)).to(device), model.input_size)))
    if shape is None:
        raise IblVideoError(model.path, "no frames to predict")
    got.append(stream.close())
    xy = np.concatenate([g[0] for g in got]) * np.divide((shape[1], shape[0]), model.input_size, dtype=np.float32)
    return xy, np.concatenate([g[1] for g in got])
