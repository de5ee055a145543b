"""Self-describing model folders: ``config.json`` (everything needed to rebuild and judge the network)
and ``model.safetensors`` (its weights); loadable without the training data."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from iblvideo.errors import IblVideoError
from iblvideo.io.atomic import atomic_path
from iblvideo.networks.building import global_generator_kept
from iblvideo.networks.pose import PoseNetwork, rescale_points, resize_frames
from iblvideo.networks.settings import HEAD_CHANNELS, HEATMAP_STRIDE
from iblvideo.tracking.cascade import torch_device

CONFIG = "config.json"
WEIGHTS = "model.safetensors"
CHECKPOINT = "checkpoint.pt"
EVALUATION = "evaluation.csv"
REQUIRED = ("backbone", "keypoints", "input_size")  # what rebuilds the network


@dataclass
class PoseModel:
    """A trained network with its keypoint names and the size of the images it was trained on."""

    network: PoseNetwork
    keypoints: tuple[str, ...]
    config: dict[str, Any]

    def predict(self, frames: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Keypoints (N, K, 2) in the frames' own pixels and likelihood (N, K) for grey frames (N, H, W)."""
        size = (frames.shape[-1], frames.shape[-2])
        xy, likelihood = self.network.predict(resize_frames(frames, self.network.input_size)[:, 0])
        return rescale_points(xy, self.network.input_size, size), likelihood


def build_network(config: dict[str, Any]) -> PoseNetwork:
    """An untrained network of the architecture ``config`` describes."""
    return PoseNetwork(config["backbone"], len(config["keypoints"]), tuple(config["input_size"]),
                       config.get("head_channels", HEAD_CHANNELS), config.get("heatmap_stride", HEATMAP_STRIDE),
                       config.get("head_stride", 0))


def read_config(model_dir: str | Path) -> dict[str, Any]:
    """A model folder's config; a one-line error when it is unreadable or lacks what rebuilds the network."""
    path = Path(model_dir) / CONFIG
    if not path.is_file():
        raise IblVideoError(model_dir, f"not a model folder (no {CONFIG})")
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as err:  # ValueError: not JSON, or not UTF-8
        raise IblVideoError(path, f"unreadable model config ({err})") from None
    if not isinstance(config, dict):
        raise IblVideoError(path, f"model config is a JSON {type(config).__name__}, not an object")
    missing = [key for key in REQUIRED if key not in config]
    if missing:
        raise IblVideoError(path, f"model config has no {', '.join(missing)}")
    keypoints = config["keypoints"]
    if not isinstance(keypoints, list) or not keypoints or not all(isinstance(k, str) for k in keypoints):
        raise IblVideoError(path, "model config's keypoints must be a non-empty list of names")
    return config


def write_config(model_dir: Path, config: dict[str, Any]) -> None:
    with atomic_path(model_dir / CONFIG) as tmp:
        tmp.write_text(json.dumps(config, indent=2) + "\n")


def save_weights(model_dir: Path, network: PoseNetwork) -> None:
    with atomic_path(model_dir / WEIGHTS) as tmp:
        # save_file would put a file of its own in the temporary file's place: its bytes go into this one
        tmp.write_bytes(save({k: v.detach().cpu().contiguous() for k, v in network.state_dict().items()}))


def load_model(model_dir: str | Path, device: str = "cpu") -> PoseModel:
    """The trained model in ``model_dir``, on ``device``, ready to predict."""
    model_dir = Path(model_dir)
    device = str(torch_device(device))
    config = read_config(model_dir)
    weights = model_dir / WEIGHTS
    if not weights.is_file():
        raise IblVideoError(model_dir, f"holds no trained weights ({WEIGHTS}); training has not finished")
    with global_generator_kept():  # folding for inference makes new layers too
        try:
            network = build_network(config)
        except (KeyError, TypeError, ValueError) as err:
            raise IblVideoError(model_dir / CONFIG, f"model config does not describe a network ({type(err).__name__}: {err})") from None
        try:
            state = load_file(str(weights))
        except (SafetensorError, OSError) as err:
            raise IblVideoError(weights, f"unreadable weights, not a whole safetensors file ({str(err).splitlines()[0]})") from None
        try:
            network.load_state_dict(state)
        except (RuntimeError, OSError) as err:
            raise IblVideoError(weights, f"weights do not match the config's architecture ({str(err).splitlines()[0]})") from None
        # channels-last convolutions run faster on CPUs and on GPUs' tensor cores; torch's overloads of
        # Module.to leave out the memory_format one it documents and takes
        network = network.for_inference().to(device, memory_format=torch.channels_last)  # type: ignore[call-overload]
    return PoseModel(network, tuple(config["keypoints"]), config)
