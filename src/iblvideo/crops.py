"""Crop geometry: windows in canonical left-camera pixels, cut from any camera's decoded frames.

IBL's networks see every side camera as a left camera: the right camera (640×512) is flipped
horizontally and upsampled ×2. Rather than transforming whole frames, each window is mapped back to
the camera's own pixels, cut there, then flipped and resized: the same pixels for a fraction of the work.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .cameras import Camera

CHUNK = 16  # frames converted to float at once


@dataclass(frozen=True)
class Window:
    """A crop window (w, h, x0, y0) in canonical pixels, as IBL writes them."""

    w: int
    h: int
    x0: int
    y0: int

    @classmethod
    def around(cls, x: float, y: float, w: int, h: int, dx: int, dy: int) -> "Window":
        """The w×h window whose top-left corner is (x − dx, y − dy), on whole pixels."""
        return cls(w, h, int(x) - dx, int(y) - dy)

    def as_whxy(self) -> tuple[int, int, int, int]:
        return (self.w, self.h, self.x0, self.y0)


@dataclass(frozen=True)
class View:
    """How a camera's pixels relate to the canonical left-camera frame."""

    width: int
    height: int
    scale: float = 1.0  # canonical pixels per camera pixel
    flip: bool = False

    @classmethod
    def of(cls, camera: Camera) -> "View":
        if camera.name == "right":
            return cls(camera.width, camera.height, scale=2.0, flip=True)
        return cls(camera.width, camera.height)

    @property
    def canonical_size(self) -> tuple[int, int]:
        return round(self.width * self.scale), round(self.height * self.scale)

    # Points are pixel centres (pixel i spans [i - 0.5, i + 0.5]); flips and scaling act on edges.
    def to_camera(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Canonical → camera pixels."""
        edge = (np.asarray(x, float) + 0.5) / self.scale
        if self.flip:
            edge = self.width - edge
        return edge - 0.5, (np.asarray(y, float) + 0.5) / self.scale - 0.5

    def to_canonical(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Camera → canonical pixels."""
        edge = np.asarray(x, float) + 0.5
        if self.flip:
            edge = self.width - edge
        return edge * self.scale - 0.5, (np.asarray(y, float) + 0.5) * self.scale - 0.5

    def snap(self, window: Window) -> Window:
        """``window`` moved and grown by less than one camera pixel so its edges are camera pixel edges."""
        s = self.scale
        return Window(math.ceil(window.w / s) * s, math.ceil(window.h / s) * s, math.floor(window.x0 / s) * s, math.floor(window.y0 / s) * s)

    def full_window(self, size: tuple[int, int] | None = None) -> Window:
        """The whole canonical frame; given a network input ``size``, padded at the right or bottom
        to that aspect ratio, so that resizing to ``size`` keeps pixels square."""
        w, h = self.canonical_size
        if size is not None:
            w, h = max(w, math.ceil(h * size[0] / size[1])), max(h, math.ceil(w * size[1] / size[0]))
        return self.snap(Window(w, h, 0, 0))


def cut(frames: torch.Tensor, view: View, window: Window, size: tuple[int, int]) -> torch.Tensor:
    """Cut ``window`` from a batch of camera frames (B, H, W) as float (B, 1, h, w) at ``size`` = (w, h).

    Parts of the window outside the frame are zero-padded, never shifted, so network coordinates map
    back to the frame with the window's own offset. The window must lie on the camera's pixel grid
    (``view.snap``), so that what is cut is exactly what coordinates are mapped back with.
    """
    if view.snap(window) != window:
        raise ValueError(f"{window} does not fall on the camera's pixel grid; pass it through View.snap")
    left, right = window.x0 / view.scale, (window.x0 + window.w) / view.scale
    if view.flip:
        left, right = view.width - right, view.width - left
    x0, x1 = round(left), round(right)
    y0, y1 = round(window.y0 / view.scale), round((window.y0 + window.h) / view.scale)
    pad = (max(0, -x0), max(0, x1 - view.width), max(0, -y0), max(0, y1 - view.height))

    def part(chunk: torch.Tensor) -> torch.Tensor:
        patch = chunk[:, max(y0, 0):min(y1, view.height), max(x0, 0):min(x1, view.width)]
        if any(pad):
            patch = F.pad(patch, pad)
        # resampling is symmetric, so flipping the small result equals resizing the flipped patch
        small = _resize(patch, size)
        return small.flip(-1) if view.flip else small

    # a few frames at a time: a whole frame in float is four times its size
    return torch.cat([part(chunk) for chunk in frames.split(CHUNK)])


def _resize(patch: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Grey ``patch`` (N, H, W), uint8 or float, as float (N, 1, h, w) at ``size`` = (w, h): the mean of
    each block when it shrinks by a whole factor, else antialiased bilinear."""
    out_w, out_h = size
    h, w = patch.shape[-2:]
    factor = h // out_h
    if factor > 1 and (h, w) == (out_h * factor, out_w * factor):
        return _block_mean(patch, factor).unsqueeze(1)
    patch = patch.unsqueeze(1).float()
    if (h, w) == (out_h, out_w):
        return patch
    return F.interpolate(patch, size=(out_h, out_w), mode="bilinear", align_corners=False, antialias=w > out_w or h > out_h)


def _block_mean(patch: torch.Tensor, factor: int) -> torch.Tensor:
    """Mean of each ``factor``×``factor`` block of ``patch`` (N, H, W).

    Adding whole rows of small integers is a tenth of the cost of converting the frame to float first:
    it is what makes shrinking a whole 1280×1024 frame for the paws cheap.
    """
    n, h, w = patch.shape
    rows = patch.reshape(n, h // factor, factor, w)
    if patch.dtype == torch.uint8 and factor * 255 <= torch.iinfo(torch.int16).max:
        total = rows[:, :, 0].to(torch.int16)
        for k in range(1, factor):
            total += rows[:, :, k]
    else:
        total = rows.float().sum(2)
    blocks = total.reshape(n, h // factor, w // factor, factor).sum(-1, dtype=torch.float32)
    return blocks / factor**2


def from_window(x: np.ndarray, y: np.ndarray, window: Window, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Network-input pixels of a cut at ``size`` → canonical pixels."""
    sx, sy = window.w / size[0], window.h / size[1]
    # pixel centres: input pixel i covers canonical [x0 + i·sx, x0 + (i+1)·sx)
    return window.x0 + (np.asarray(x) + 0.5) * sx - 0.5, window.y0 + (np.asarray(y) + 0.5) * sy - 0.5
