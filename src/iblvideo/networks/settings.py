"""Training settings, importable without torch so the command line can show their defaults."""
from __future__ import annotations

from dataclasses import dataclass

Size = tuple[int, int]  # (width, height), as video tools print it
HEAD_CHANNELS = 64
HEATMAP_STRIDE = 2  # input pixels per heatmap cell, whatever the backbone's stride


@dataclass(frozen=True)
class TrainSettings:
    """Everything that shapes the trained weights; a resumed run must match them exactly."""

    backbone: str = "efficientnet_lite0"
    input_size: Size = (224, 224)
    epochs: int = 100
    batch_size: int = 8
    learning_rate: float = 1e-3
    heatmap_sigma: float = 2.0  # in heatmap cells
    seed: int = 0
    head_channels: int = HEAD_CHANNELS
    heatmap_stride: int = HEATMAP_STRIDE  # 1 for inputs shrunk so far that every input pixel counts
    # where the head's learnt layers stop, bilinear upsampling doing the rest (0: at heatmap_stride)
    head_stride: int = 0
    # False: an empty cell means "not labeled" and is left out of the loss (DeepLabCut, Lightning Pose).
    # True: it means "not visible", and the network learns a flat heatmap there, so its likelihood drops.
    empty_means_absent: bool = False
