"""Train a heatmap pose network on labeled frames; resumable, deterministic given the seed."""
from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from iblvideo import __version__
from iblvideo.errors import BadArgument, IblVideoError
from iblvideo.io.atomic import atomic_path
from iblvideo.networks.backbones import BACKBONES
from iblvideo.networks.model_dir import CHECKPOINT, CONFIG, WEIGHTS, PoseModel, build_network, read_config, save_weights, write_config
from iblvideo.networks.pose import PoseNetwork, rescale_points, resize_frames, spatial_log_softmax
from iblvideo.networks.settings import TrainSettings
from iblvideo.progress import progress_bar
from iblvideo.tracking.cascade import torch_device
from iblvideo.training.augment import Augmentation
from iblvideo.training.evaluate import pixel_errors
from iblvideo.training.labels import LabeledFrames, read_labels

log = logging.getLogger(__name__)

SPLIT_FRACTIONS = {"validation": 0.1, "test": 0.1}
# a network input side beyond any IBL frame's: 32768x32768 images asked torch for 103 GB before training began
MAX_INPUT_SIDE = 2048


def split_frames(names: tuple[str, ...], seed: int) -> dict[str, list[str]]:
    """A seeded train / validation / test split of the frame names, each in table order."""
    n = len(names)
    counts = {part: max(1, round(n * fraction)) for part, fraction in SPLIT_FRACTIONS.items()}
    if n - sum(counts.values()) < 2:
        raise IblVideoError(None, f"{n} labeled frames are too few to split into train, validation and test")
    order = np.random.default_rng(seed).permutation(n)
    split, start = {}, 0
    for part, count in counts.items():
        split[part] = sorted(order[start : start + count].tolist())
        start += count
    split["train"] = sorted(order[start:].tolist())
    return {part: [names[i] for i in rows] for part, rows in split.items()}


def heatmap_targets(points: torch.Tensor, shape: tuple[int, int], sigma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian distributions (N, K, h, w) centred on points (N, K, 2) in heatmap cells, and the labeled mask (N, K)."""
    labeled = ~torch.isnan(points).any(-1)
    points = torch.nan_to_num(points, nan=0.0)
    ys = torch.arange(shape[0], dtype=points.dtype, device=points.device).view(1, 1, -1, 1)
    xs = torch.arange(shape[1], dtype=points.dtype, device=points.device).view(1, 1, 1, -1)
    d2 = (xs - points[..., 0, None, None]) ** 2 + (ys - points[..., 1, None, None]) ** 2
    target = torch.exp(-d2 / (2 * sigma**2))
    return target / target.sum(dim=(-1, -2), keepdim=True).clamp(min=1e-12), labeled


def heatmap_loss(heatmaps: torch.Tensor, target: torch.Tensor, labeled: torch.Tensor) -> torch.Tensor:
    """KL divergence from the target distributions to the heatmaps' spatial softmax, over labeled keypoints only."""
    divergence = (torch.special.xlogy(target, target) - target * spatial_log_softmax(heatmaps)).sum(dim=(-1, -2))
    return (divergence * labeled).sum() / labeled.sum().clamp(min=1)


def _epoch_generator(seed: int, epoch: int) -> torch.Generator:
    # one generator per epoch, so a resumed run draws what an uninterrupted one would have
    return torch.Generator().manual_seed(int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0]))


def _learning_rate(settings: TrainSettings, step: int, steps: int) -> float:
    """Linear warm-up over the first 5% of steps, then cosine decay to 1% of the peak."""
    warmup = max(1, steps // 20)
    if step < warmup:
        return settings.learning_rate * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return settings.learning_rate * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * progress)))


class Trainer:
    """One training run into one model folder: config first, checkpoint every epoch, weights at the end."""

    def __init__(self, frames: LabeledFrames, out: Path, settings: TrainSettings, device: str):
        self.frames, self.out, self.settings, self.device = frames, out, settings, device
        self.config = self._config()
        self.split = {part: frames.subset(names) for part, names in self.config["split"].items()}
        torch.manual_seed(settings.seed)
        self.network: PoseNetwork = build_network(self.config)
        self.network.start_from_imagenet()
        self.network.to(device)
        self.optimizer = torch.optim.Adam((p for p in self.network.parameters() if p.requires_grad), lr=settings.learning_rate)
        self.augment = Augmentation()
        train = self.split["train"]
        self.images = resize_frames(train.images, settings.input_size)
        self.points = torch.as_tensor(rescale_points(train.points, frames.image_size, settings.input_size))
        # a last batch of one frame is left out: batch norm cannot train on it
        self.steps_per_epoch = math.ceil(len(train.images) / settings.batch_size) - (len(train.images) % settings.batch_size == 1)

    def _config(self) -> dict[str, Any]:
        fresh: dict[str, Any] = {
            "iblvideo_version": __version__,
            "keypoints": list(self.frames.keypoints),
            "image_size": list(self.frames.image_size),
            **{k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self.settings).items()},
            "training_data": {"labels": str(self.frames.path), "sha256": self.frames.sha256, "frames": len(self.frames.image_paths)},
            "split": split_frames(self.frames.image_paths, self.settings.seed),
            "epochs_done": 0,
            "history": [],
        }
        if not (self.out / CONFIG).exists():
            return fresh
        existing = read_config(self.out)
        defaults = asdict(TrainSettings())  # a setting newer than the folder's config had its default there
        changed = [k for k in ("keypoints", "image_size", "split", *asdict(self.settings)) if existing.get(k, defaults.get(k)) != fresh[k]]
        if existing.get("training_data", {}).get("sha256") != fresh["training_data"]["sha256"]:
            changed.append("training data")
        if changed:
            raise IblVideoError(self.out, f"holds a model trained with other settings ({', '.join(changed)}); choose another output folder")
        return existing

    def run(self) -> Path:
        if (self.out / WEIGHTS).exists() and self.config["epochs_done"] == self.settings.epochs:
            log.info("%s: already trained for %d epochs", self.out, self.settings.epochs)
            return self.out
        start = self._resume()
        write_config(self.out, self.config)
        steps = self.settings.epochs * self.steps_per_epoch
        with progress_bar(total=steps, desc="training", unit="step") as bar:
            bar.update(start * self.steps_per_epoch)
            for epoch in range(start, self.settings.epochs):
                started = time.perf_counter()
                loss = self._train_epoch(epoch, bar)
                error = self._validation_error()
                self.config["history"].append({"epoch": epoch + 1, "train_loss": loss, "validation_median_px": error,
                                               "seconds": round(time.perf_counter() - started, 2)})
                self.config["epochs_done"] = epoch + 1
                self._checkpoint()
                log.debug("epoch %d: loss %.3g, validation median error %.2f px", epoch + 1, loss, error)
        save_weights(self.out, self.network)
        write_config(self.out, self.config)
        (self.out / CHECKPOINT).unlink(missing_ok=True)
        return self.out

    def _resume(self) -> int:
        """The epoch to start from: after the last checkpoint, if one is there."""
        path = self.out / CHECKPOINT
        if not path.exists():
            self.config["history"], self.config["epochs_done"] = [], 0
            return 0
        state = torch.load(path, map_location=self.device, weights_only=True)
        self.network.load_state_dict(state["network"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.config["history"] = self.config["history"][: state["epoch"]]
        self.config["epochs_done"] = state["epoch"]
        log.info("%s: resuming after epoch %d of %d", self.out, state["epoch"], self.settings.epochs)
        return state["epoch"]

    def _checkpoint(self) -> None:
        with atomic_path(self.out / CHECKPOINT) as tmp:
            torch.save({"network": self.network.state_dict(), "optimizer": self.optimizer.state_dict(), "epoch": self.config["epochs_done"]}, tmp)
        write_config(self.out, self.config)

    def _train_epoch(self, epoch: int, bar: Any) -> float:
        generator = _epoch_generator(self.settings.seed, epoch)
        order = torch.randperm(len(self.images), generator=generator)
        total = 0.0
        self.network.train()
        for i in range(self.steps_per_epoch):
            rows = order[i * self.settings.batch_size : (i + 1) * self.settings.batch_size]
            images, points = self.augment(self.images[rows].clone(), self.points[rows].clone(), generator)
            for group in self.optimizer.param_groups:
                group["lr"] = _learning_rate(self.settings, epoch * self.steps_per_epoch + i, self.settings.epochs * self.steps_per_epoch)
            loss = self._step(images.to(self.device), points.to(self.device))
            total += loss
            bar.update(1)
            bar.set_postfix(epoch=epoch + 1, loss=f"{loss:.3g}")
        return total / self.steps_per_epoch

    def _step(self, images: torch.Tensor, points: torch.Tensor) -> float:
        heatmaps = self.network(images)
        target, labeled = heatmap_targets(self.network.input_to_heatmap(points), heatmaps.shape[-2:], self.settings.heatmap_sigma)
        if self.settings.empty_means_absent:
            # an absent point's target is the flat distribution: no cell more likely than another
            target = torch.where(labeled[..., None, None], target, 1.0 / target[0, 0].numel())
            labeled = torch.ones_like(labeled)
        loss = heatmap_loss(heatmaps, target, labeled)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.item()

    def _validation_error(self) -> float:
        model = PoseModel(self.network, self.frames.keypoints, self.config)
        return float(np.nanmedian(pixel_errors(model, self.split["validation"])))


def train(labels: str | Path, out: str | Path, settings: TrainSettings = TrainSettings(), device: str = "cpu") -> Path:
    """Train on ``labels`` into the model folder ``out``; rerunning continues an interrupted run."""
    if settings.backbone not in BACKBONES:
        raise IblVideoError(None, f"unknown backbone {settings.backbone!r}; choose from {', '.join(BACKBONES)}")
    if settings.batch_size < 2 or settings.epochs < 1:
        raise BadArgument(None, "batch size must be at least 2 and epochs at least 1")
    if settings.seed < 0:
        raise BadArgument(None, f"seed must be a whole number from 0; got {settings.seed}")
    width, height = settings.input_size
    if not (0 < width <= MAX_INPUT_SIDE and 0 < height <= MAX_INPUT_SIDE):
        raise BadArgument(None, f"input size {width}x{height}: width and height must be at most {MAX_INPUT_SIDE} (the left camera films 1280x1024)")
    stride = BACKBONES[settings.backbone]().stride
    if width % stride or height % stride:
        raise IblVideoError(None, f"input size {width}x{height}: width and height must be multiples of {stride} for {settings.backbone}")
    torch_device(device)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise IblVideoError(out, "is a file; --out names the model folder")
    frames = read_labels(labels)
    out.mkdir(parents=True, exist_ok=True)
    return Trainer(frames, out, settings, device).run()
