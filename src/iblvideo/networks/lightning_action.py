"""A Lightning Action model folder run with our own modules: per-frame class probabilities from features.

A folder as lightning-action's ``Model`` trains it: ``config.yaml`` (else ``hparams.yaml``) and a Lightning
checkpoint a few folders down (``*best*.ckpt``, else any ``.ckpt``; else a ``.pt`` state dict). The
segmentation models (``Segmenter``) are supported, with the three heads the package has: a dilated
TCN (``dtcn``, IBL's paw-state networks), a temporal MLP and a recurrent network (LSTM or GRU), each
followed by a linear classifier and a softmax. The package's video models (``VideoModel``: ResNet and
ViT-MAE backbones on frames) are not. Parameter names follow the package's checkpoints so they load as
they are; configs of lightning-action 0.2 (which calls the head ``backbone``) load too.

Prediction is the package's: the whole session's features go through the config's transforms (z-scored
by default, over the session, in float32), are cut into windows of ``sequence_length`` frames each with
the head's context on either side, and each window is classified alone. Edges as the package has them:
the first window's past is zeros; a window whose future runs past the last frame gets zeros for the
whole of it, and the frames after the last full window get no prediction (NaN).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from iblvideo.errors import IblVideoError
from iblvideo.networks.building import global_generator_kept
from iblvideo.tracking.cascade import torch_device

CONFIGS = ("config.yaml", "hparams.yaml")  # the package's order
CHECKPOINTS = ("*best*.ckpt", "*.ckpt", "*best*.pt", "*.pt")  # the package's order
HEADS = {"dtcn": "dtcn", "dilatedtcn": "dtcn", "temporalmlp": "temporalmlp", "rnn": "rnn"}
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU, "lrelu": lambda: nn.LeakyReLU(0.01), "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "linear": nn.Identity}
DEFAULT_TRANSFORMS = ("ZScore",)  # what the package applies when the config names none
RNN_WARMUP = 4  # frames of context a recurrent head gets on either side of a window
WINDOWS_PER_BATCH = 16
_ZSCORE_EPS = 1e-8  # features whose standard deviation is below this are centred, not scaled


def velocity_concat(x: np.ndarray) -> np.ndarray:
    """The features and their frame-to-frame differences (zero on the first frame), side by side."""
    return np.concatenate([x, np.diff(x, axis=0, prepend=x[:1])], axis=1)


def motion_energy(x: np.ndarray) -> np.ndarray:
    """Absolute frame-to-frame differences, zero on the first frame."""
    return np.abs(np.diff(x, axis=0, prepend=x[:1]))


def zscore(x: np.ndarray) -> np.ndarray:
    """Each feature less its mean over the session, over its standard deviation where that is not ~0."""
    mean, std = np.mean(x, axis=0), np.std(x, axis=0)
    out = x - mean
    scaled = std > _ZSCORE_EPS
    out[:, scaled] /= std[scaled]
    return out


TRANSFORMS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "VelocityConcat": velocity_concat, "MotionEnergy": motion_energy, "ZScore": zscore}
_WIDENS = {"VelocityConcat": 2}  # transforms that change the number of features


@dataclass(frozen=True)
class LAConfig:
    """What our network and its windows need from a lightning-action config."""

    head: str  # dtcn, temporalmlp or rnn
    output_size: int
    num_hid_units: int
    num_layers: int
    num_lags: int = 1
    activation: str = "lrelu"
    dropout_rate: float = 0.0  # in eval mode only the temporal MLP's layer numbering depends on it
    rnn_type: str = "lstm"
    bidirectional: bool = False
    transforms: tuple[str, ...] = DEFAULT_TRANSFORMS
    sequence_length: int = 500
    class_names: tuple[str, ...] | None = None

    @property
    def sequence_pad(self) -> int:
        """Frames of context either side of a window, as the package computes them for the head."""
        if self.head == "dtcn":  # two convolutions per block, dilation 2**block
            return sum(2 * 2**n * self.num_lags for n in range(self.num_layers))
        return self.num_lags if self.head == "temporalmlp" else RNN_WARMUP

    @property
    def widening(self) -> int:
        """Network inputs per feature."""
        return int(np.prod([_WIDENS.get(name, 1) for name in self.transforms]))


def find_config(model_dir: Path) -> Path:
    path = next((model_dir / name for name in CONFIGS if (model_dir / name).is_file()), None)
    if path is None:
        raise IblVideoError(model_dir, "not a Lightning Action model folder (no config.yaml)")
    return path


def read_config(model_dir: Path) -> LAConfig:
    """The config of a Lightning Action model folder, checked."""
    path = find_config(model_dir)
    try:
        cfg = yaml.safe_load(path.read_text())
        model, data, training = cfg["model"], cfg.get("data") or {}, cfg.get("training") or {}
        head = str(model.get("head", model.get("backbone", "temporalmlp"))).lower()  # 0.2 says backbone
        names, transforms = data.get("label_names"), data.get("transforms") or DEFAULT_TRANSFORMS
        if not isinstance(transforms, list | tuple):
            raise TypeError(f"transforms must be a list of names, not {transforms!r}")
        config = LAConfig(
            head=HEADS.get(head, head), output_size=int(model["output_size"]), num_hid_units=int(model["num_hid_units"]),
            num_layers=int(model["num_layers"]), num_lags=int(model.get("num_lags", 1)), activation=str(model.get("activation", "lrelu")),
            dropout_rate=float(model.get("dropout_rate", 0.0)), rnn_type=str(model.get("rnn_type", "lstm")).lower(),
            bidirectional=bool(model.get("bidirectional", False)), transforms=tuple(map(str, transforms)),
            sequence_length=int(training.get("sequence_length", 500)), class_names=tuple(map(str, names)) if names else None)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, KeyError, TypeError, ValueError, AttributeError) as err:
        raise IblVideoError(path, f"unreadable Lightning Action config ({type(err).__name__}: {err})") from None
    problem = _config_problem(config)
    if problem:
        raise IblVideoError(path, problem)
    return config


def _config_problem(config: LAConfig) -> str | None:
    if config.head not in HEADS.values():
        return f"head {config.head!r} is not supported (supported: {', '.join(HEADS)})"
    if config.activation not in ACTIVATIONS:
        return f"activation {config.activation!r} is not supported (supported: {', '.join(ACTIVATIONS)})"
    if config.head == "rnn" and config.rnn_type not in ("lstm", "gru"):
        return f"rnn_type {config.rnn_type!r} is not supported (lstm or gru)"
    unknown = [name for name in config.transforms if name not in TRANSFORMS]
    if unknown:
        return f"transform {unknown[0]!r} is not supported (supported: {', '.join(TRANSFORMS)})"
    if config.class_names is not None and len(config.class_names) != config.output_size:
        return f"names {len(config.class_names)} classes for an output of {config.output_size}"
    if min(config.output_size, config.num_hid_units, config.num_layers, config.sequence_length) < 1 or config.num_lags < 0:
        return "sizes must be positive"
    return None


def find_checkpoint(model_dir: Path) -> Path:
    """The checkpoint the package would load: the first kind of ``CHECKPOINTS`` found under the folder."""
    for pattern in CHECKPOINTS:
        # regular files only: a fifo named *.ckpt would hang the read
        found = sorted(path for path in model_dir.rglob(pattern) if path.is_file())
        if len(found) > 1:  # the package would take whichever the file system lists first
            raise IblVideoError(model_dir, f"{len(found)} checkpoints match {pattern}; expected one")
        if found:
            return found[0]
    raise IblVideoError(model_dir, "no checkpoint (.ckpt or .pt) below the Lightning Action model folder")


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """The named tensors of a checkpoint, read by torch's safe loader: anything but tensors and plain data is refused."""
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - whatever a damaged or foreign file makes torch raise: unreadable
        first_line = next(iter(str(err).splitlines()), "")
        raise IblVideoError(path, f"unreadable checkpoint ({type(err).__name__}: {first_line})") from None
    state = saved.get("state_dict", saved) if isinstance(saved, dict) else None
    tensors = {k: v for k, v in state.items() if isinstance(k, str) and isinstance(v, torch.Tensor)} if isinstance(state, dict) else {}
    if not tensors:
        raise IblVideoError(path, "unreadable checkpoint (it holds no state dict of tensors)")
    # lightning-action 0.2 named the head "backbone"
    return {("head." + k[len("backbone."):] if k.startswith("backbone.") else k): v for k, v in tensors.items()}


def _dilated_conv(in_channels: int, channels: int, lags: int, dilation: int) -> nn.Conv1d:
    """A weight-normalised convolution over t ± lags·dilation, keeping the length."""
    return weight_norm(nn.Conv1d(in_channels, channels, 2 * lags + 1, dilation=dilation, padding=lags * dilation))


class DilationBlock(nn.Module):
    """Two weight-normalised dilated convolutions, each followed by the activation, plus a residual."""

    def __init__(self, in_channels: int, channels: int, lags: int, dilation: int, activation: str):
        super().__init__()
        self.conv0 = _dilated_conv(in_channels, channels, lags, dilation)
        self.conv1 = _dilated_conv(channels, channels, lags, dilation)
        self.downsample = nn.Conv1d(in_channels, channels, 1) if in_channels != channels else None
        self.activation = ACTIVATIONS[activation]()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.activation(self.conv1(self.activation(self.conv0(x))))
        return self.activation(out + (x if self.downsample is None else self.downsample(x)))


class DilatedTCN(nn.Module):
    """Dilation blocks with dilations 1, 2, 4, … over (batch, time, features)."""

    def __init__(self, in_features: int, config: LAConfig):
        super().__init__()
        self.model = nn.Sequential()
        for i in range(config.num_layers):
            block = DilationBlock(in_features if i == 0 else config.num_hid_units, config.num_hid_units,
                                  config.num_lags, 2**i, config.activation)
            self.model.add_module(f"tcn_block_{i:02d}", block)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.transpose(1, 2)).transpose(1, 2)


class TemporalMLP(nn.Module):
    """A convolution over t ± lags, then dense layers (activations between them, none after the last)."""

    def __init__(self, in_features: int, config: LAConfig):
        super().__init__()
        hidden, act = config.num_hid_units, config.activation
        # the package numbers its layers with the activations and dropouts among them: kept, for its names
        extras = [ACTIVATIONS[act]()] * (act != "linear") + [nn.Dropout(config.dropout_rate)] * (config.dropout_rate > 0)
        layers: list[nn.Module] = [nn.Conv1d(in_features, hidden, 2 * config.num_lags + 1, padding=config.num_lags), *extras]
        for i in range(config.num_layers):
            layers.append(nn.Linear(hidden, hidden))
            if i < config.num_layers - 1:
                layers.extend(extras)
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x.transpose(1, 2)).transpose(1, 2) if isinstance(layer, nn.Conv1d) else layer(x)
        return x


class RecurrentHead(nn.Module):
    """An LSTM or GRU (optionally bidirectional), projected back to the hidden size."""

    def __init__(self, in_features: int, config: LAConfig):
        super().__init__()
        rnn = nn.LSTM if config.rnn_type == "lstm" else nn.GRU
        self.rnn = rnn(in_features, config.num_hid_units, config.num_layers, batch_first=True, bidirectional=config.bidirectional)
        self.output_projection = nn.Linear(config.num_hid_units * (2 if config.bidirectional else 1), config.num_hid_units)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output_projection(self.rnn(x)[0])


_HEAD_MODULES: dict[str, type[nn.Module]] = {"dtcn": DilatedTCN, "temporalmlp": TemporalMLP, "rnn": RecurrentHead}


class ActionNetwork(nn.Module):
    """Head and linear classifier: windows (batch, time, inputs) → class probabilities (batch, time, classes)."""

    def __init__(self, in_features: int, config: LAConfig):
        super().__init__()
        self.head = _HEAD_MODULES[config.head](in_features, config)
        self.classifier = nn.Linear(config.num_hid_units, config.output_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.head(x)).softmax(-1)


def network_inputs(state: dict[str, torch.Tensor], config: LAConfig, path: Path) -> int:
    """The network's input width, from the weights of its first layer (configs hold it before or after VelocityConcat)."""
    first = {"dtcn": "head.model.tcn_block_00.conv0.parametrizations.weight.original1", "temporalmlp": "head.layers.0.weight",
             "rnn": "head.rnn.weight_ih_l0"}[config.head]
    if first not in state or state[first].ndim < 2:
        raise IblVideoError(path, f"checkpoint does not hold a {config.head} head (no {first})")
    width = int(state[first].shape[1])
    if width % config.widening:
        raise IblVideoError(path, f"a first layer of {width} inputs does not fit the transforms {', '.join(config.transforms)}")
    return width


def windows(x: np.ndarray, length: int, pad: int) -> Iterator[np.ndarray]:
    """The package's windows of ``x`` (T, F): frames [bL, (b+1)L) with ``pad`` frames either side, for
    every whole window; context before the first frame is zeros, and so is a window's whole future
    when any of it lies past the last frame."""
    n_frames = len(x)
    for start in range(0, n_frames - length + 1, length):
        end = start + length
        lo, hi = start - pad, end + pad if end + pad <= n_frames else end
        window = np.zeros((length + 2 * pad, x.shape[1]), np.float32)
        window[max(lo, 0) - lo:hi - lo] = x[max(lo, 0):hi]
        yield window


def _batches(items: Iterator[np.ndarray], size: int) -> Iterator[list[np.ndarray]]:
    batch: list[np.ndarray] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


@dataclass
class ActionModel:
    """A loaded Lightning Action model folder."""

    path: Path
    config: LAConfig
    network: ActionNetwork
    n_features: int  # features per frame, before the transforms

    @property
    def n_classes(self) -> int:
        return self.config.output_size

    @property
    def class_names(self) -> tuple[str, ...] | None:
        return self.config.class_names

    @torch.inference_mode()
    def predict(self, features: np.ndarray, sequence_length: int | None = None) -> np.ndarray:
        """Class probabilities (T, n_classes), float32, of features (T, n_features) of one session, as the
        package predicts them; ``sequence_length`` (the config's if None; IBL's pipeline uses 500) sets the
        windows. The last T mod sequence_length frames get NaN, as from the package."""
        length = self.config.sequence_length if sequence_length is None else int(sequence_length)
        pad = self.config.sequence_pad
        x = np.asarray(features)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise IblVideoError(self.path, f"expects features of shape (frames, {self.n_features}), got {x.shape}")
        if length < 1 or len(x) < length + pad:  # where the package's first window fails
            raise IblVideoError(self.path, f"needs at least {length + pad} frames (sequence length {length} and {pad} of context), got {len(x)}")
        x = x.astype(np.float32)  # as the package reads features
        for name in self.config.transforms:
            x = TRANSFORMS[name](x)
        probs = np.full((len(x), self.n_classes), np.nan, np.float32)
        device = next(self.network.parameters()).device
        done = 0
        for batch in _batches(windows(x, length, pad), WINDOWS_PER_BATCH):
            out = self.network(torch.from_numpy(np.stack(batch)).to(device))[:, pad:pad + length]
            probs[done:done + len(batch) * length] = out.reshape(-1, self.n_classes).float().cpu().numpy()
            done += len(batch) * length
        return probs


def load_action_model(folder: str | Path, device: str = "cpu") -> ActionModel:
    """The Lightning Action model in ``folder``, on ``device``, in evaluation mode."""
    folder, target = Path(folder), torch_device(device)
    config = read_config(folder)
    checkpoint = find_checkpoint(folder)
    state = read_weights(checkpoint)
    width = network_inputs(state, config, checkpoint)
    with global_generator_kept():
        network = ActionNetwork(width, config)
    missing = [key for key in network.state_dict() if key not in state]
    if missing:
        raise IblVideoError(checkpoint, f"checkpoint does not match a {config.head} model of its config (missing {missing[0]}, …)")
    try:
        network.load_state_dict({key: state[key] for key in network.state_dict()})
    except RuntimeError as err:
        raise IblVideoError(checkpoint, f"checkpoint does not match its config ({str(err).splitlines()[-1].strip()})") from None
    return ActionModel(folder, config, network.to(target).eval(), width // config.widening)

