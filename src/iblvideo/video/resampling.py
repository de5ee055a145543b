"""DALI's linear resize, which IBL's Lightning Pose networks were run (and lightning-pose 2.2 trained) with."""
from __future__ import annotations

import functools

import numpy as np
import torch


def dali_resize(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Images (..., h, w) resized to ``size`` = (width, height) as DALI's ``fn.resize`` (linear) resizes them."""
    h, w = images.shape[-2:]
    if (w, h) == tuple(size):
        return images
    rows, columns = (resampling(n, m, str(images.device)) for n, m in ((h, size[1]), (w, size[0])))
    return rows @ images @ columns.T


@functools.lru_cache(maxsize=64)
def resampling(n: int, m: int, device: str) -> torch.Tensor:
    """The (m, n) matrix of DALI's linear resize from n pixels to m: a triangle filter as wide as the
    shrink when shrinking (antialiasing), linear interpolation when growing; pixels beyond the edge are
    the edge pixel (which is where DALI and torch's antialiased resize part)."""
    scale = n / m
    radius = max(scale, 1.0)
    centres = (np.arange(m) + 0.5) * scale - 0.5
    taps = np.floor(centres - radius)[:, None] + np.arange(int(np.ceil(2 * radius)) + 2)
    weights = np.maximum(0.0, 1.0 - np.abs(taps - centres[:, None]) / radius)
    matrix = np.zeros((m, n))
    np.add.at(matrix, (np.repeat(np.arange(m), taps.shape[1]), np.clip(taps, 0, n - 1).astype(int).ravel()), weights.ravel())
    return torch.from_numpy(matrix / matrix.sum(1, keepdims=True)).float().to(device)
