"""Training settings, importable without torch so the command line can show their defaults."""
from __future__ import annotations

from dataclasses import dataclass

Size = tuple[int, int]  # (width, height), as video tools print it


@dataclass(frozen=True)
class TrainSettings:
    """Everything that shapes the trained weights; a resumed run must match them exactly."""

    backbone: str = "efficientnet_lite0"
    input_size: Size = (224, 224)
    epochs: int = 40
    batch_size: int = 8
    learning_rate: float = 1e-3
    heatmap_sigma: float = 2.0  # in heatmap cells
    seed: int = 0
