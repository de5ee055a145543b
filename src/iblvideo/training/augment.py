"""Training augmentation on batches of grey frames and their keypoints, in torch.

Every random draw comes from the generator passed in, so a seed fixes the augmentation exactly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Augmentation:
    """Ranges of the random changes; each photometric change is applied to a ``probability`` share of frames."""

    rotation_deg: float = 15.0
    scale: tuple[float, float] = (0.85, 1.15)
    shift: float = 0.08  # of the image size
    brightness: float = 0.15
    contrast: tuple[float, float] = (0.7, 1.3)
    blur_sigma: tuple[float, float] = (0.5, 1.5)
    noise_std: float = 0.03
    probability: float = 0.3

    def __call__(self, frames: torch.Tensor, points: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Augmented copies of frames (N, 1, H, W) in [0, 1] and points (N, K, 2) in pixels (NaN = unlabeled)."""
        frames, points = self.affine(frames, points, generator)
        frames = self.photometric(frames, generator)
        return frames.clamp_(0.0, 1.0), points

    def _uniform(self, n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
        return torch.rand(n, generator=generator) * (high - low) + low

    def _chosen(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return torch.rand(n, generator=generator) < self.probability

    def affine(self, frames: torch.Tensor, points: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Rotate, scale and shift about the image centre; keypoints pushed out of the frame become unlabeled."""
        n, _, h, w = frames.shape
        angle = self._uniform(n, -1, 1, generator) * math.radians(self.rotation_deg)
        scale = self._uniform(n, *self.scale, generator)
        shift = self._uniform(2 * n, -self.shift, self.shift, generator).view(n, 2) * torch.tensor([w, h])
        forward = _pixel_affine(angle, scale, shift, w, h)  # input pixels -> output pixels
        to_norm = _normalising(w, h)
        # grid_sample wants, for each output position, where to read in the input, in normalised coordinates
        theta = (to_norm @ torch.linalg.inv(forward) @ torch.linalg.inv(to_norm))[:, :2]
        grid = nn.functional.affine_grid(theta.to(frames), list(frames.shape), align_corners=False)
        frames = nn.functional.grid_sample(frames, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        moved = points @ forward[:, :2, :2].transpose(1, 2) + forward[:, None, :2, 2]
        outside = (moved[..., 0] < -0.5) | (moved[..., 0] > w - 0.5) | (moved[..., 1] < -0.5) | (moved[..., 1] > h - 0.5)
        moved[outside] = float("nan")
        return frames, moved

    def photometric(self, frames: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Brightness and contrast on every frame; blur and noise on some."""
        n = frames.shape[0]
        mean = frames.mean(dim=(1, 2, 3), keepdim=True)
        contrast = self._uniform(n, *self.contrast, generator).view(n, 1, 1, 1)
        brightness = self._uniform(n, -self.brightness, self.brightness, generator).view(n, 1, 1, 1)
        frames = (frames - mean) * contrast + mean + brightness
        blurred, sigmas = self._chosen(n, generator), self._uniform(n, *self.blur_sigma, generator)
        for i in torch.nonzero(blurred).flatten().tolist():
            frames[i] = gaussian_blur(frames[i : i + 1], float(sigmas[i]))[0]
        noisy = self._chosen(n, generator).view(n, 1, 1, 1)
        noise = torch.randn(frames.shape, generator=generator) * self.noise_std
        return frames + noise * noisy


def _pixel_affine(angle: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, w: int, h: int) -> torch.Tensor:
    """(N, 3, 3) maps of pixel coordinates: rotate and scale about the centre, then shift."""
    centre = torch.tensor([(w - 1) / 2, (h - 1) / 2])
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    matrix = torch.zeros(angle.shape[0], 3, 3)
    matrix[:, 0, 0], matrix[:, 0, 1], matrix[:, 1, 0], matrix[:, 1, 1] = cos, -sin, sin, cos
    matrix[:, :2, 2] = centre + shift - (matrix[:, :2, :2] @ centre)
    matrix[:, 2, 2] = 1.0
    return matrix


def _normalising(w: int, h: int) -> torch.Tensor:
    """Pixel coordinates to grid_sample's [-1, 1] (align_corners=False)."""
    return torch.tensor([[2 / w, 0, 1 / w - 1], [0, 2 / h, 1 / h - 1], [0, 0, 1]])


def gaussian_blur(frames: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (N, 1, H, W) frames."""
    radius = max(1, int(math.ceil(3 * sigma)))
    taps = torch.exp(-0.5 * (torch.arange(-radius, radius + 1, dtype=frames.dtype) / sigma) ** 2)
    taps = taps / taps.sum()
    frames = nn.functional.pad(frames, (radius, radius, radius, radius), mode="reflect")
    frames = nn.functional.conv2d(frames, taps.view(1, 1, 1, -1))
    return nn.functional.conv2d(frames, taps.view(1, 1, -1, 1))
