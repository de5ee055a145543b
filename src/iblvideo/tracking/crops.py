"""Crop geometry: windows in canonical left-camera pixels, cut from any camera's decoded frames.

IBL's networks see every side camera as a left camera: the right camera (640×512) is flipped
horizontally and upsampled ×2. Rather than transforming whole frames, each window is mapped back to
the camera's own pixels, cut there, then flipped and resized: the same pixels for a fraction of the work.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from iblvideo.cameras import Camera

CHUNK = 16  # frames converted to float at once
_NUMPY = {torch.int16: np.int16, torch.float32: np.float32}


@dataclass(frozen=True)
class Window:
    """A crop window (w, h, x0, y0) in canonical pixels, as IBL writes them."""

    w: int
    h: int
    x0: int
    y0: int

    @classmethod
    def around(cls, x: float, y: float, w: int, h: int, dx: int, dy: int) -> Window:
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
    def of(cls, camera: Camera) -> View:
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
        # round: the products are whole numbers, and a Window holds ints (they reach the tables' metadata)
        return Window(round(math.ceil(window.w / s) * s), round(math.ceil(window.h / s) * s),
                      round(math.floor(window.x0 / s) * s), round(math.floor(window.y0 / s) * s))

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
    x0, x1, y0, y1 = _camera_box(view, window)
    (left, right, cols), (top, bottom, rows) = _inside(x0, x1, view.width), _inside(y0, y1, view.height)
    pad = (left, right, top, bottom)

    def part(chunk: torch.Tensor) -> torch.Tensor:
        # resampling is symmetric, so flipping the small result equals resizing the flipped patch
        small = _resize(chunk[:, rows, cols], size, pad)
        return small.flip(-1) if view.flip else small

    # a few frames at a time: a whole frame in float is four times its size
    return torch.cat([part(chunk) for chunk in frames.split(CHUNK)])


def cut_each(frames: torch.Tensor, view: View, windows: list[Window], size: tuple[int, int]) -> torch.Tensor:
    """``cut`` with a window of its own for each frame, all of one size: small windows that follow a
    moving point. Each is copied into one batch (zero where it leaves the frame), then all are resized at once.
    Several windows a frame (several points) come as whole rounds: window ``i`` is cut from frame ``i % N``."""
    if any((window.w, window.h) != (windows[0].w, windows[0].h) for window in windows):
        raise ValueError("cut_each needs windows of one size")
    if len(windows) % len(frames):
        raise ValueError(f"cut_each needs a whole number of windows for each of the {len(frames)} frames, not {len(windows)}")
    boxes = [_camera_box(view, window) for window in windows]
    width, height = boxes[0][1] - boxes[0][0], boxes[0][3] - boxes[0][2]
    patches = frames.new_zeros((len(windows), height, width))
    for patch, frame, (x0, x1, y0, y1) in zip(patches, itertools.cycle(frames), boxes):
        (left, right, cols), (top, bottom, rows) = _inside(x0, x1, view.width), _inside(y0, y1, view.height)
        patch[top:height - bottom, left:width - right] = frame[rows, cols]
    small = _resize(patches, size)
    return small.flip(-1) if view.flip else small


def _inside(start: int, stop: int, length: int) -> tuple[int, int, slice]:
    """Padding before and after, and the slice in between, that make [start, stop) of a 0..length axis."""
    first, last = min(max(start, 0), length), min(max(stop, 0), length)
    last = max(last, first)
    before = min(max(-start, 0), stop - start)
    return before, (stop - start) - before - (last - first), slice(first, last)


def _camera_box(view: View, window: Window) -> tuple[int, int, int, int]:
    """Camera pixel columns [x0, x1) and rows [y0, y1) of ``window`` (possibly beyond the frame)."""
    if view.snap(window) != window:
        raise ValueError(f"{window} does not fall on the camera's pixel grid; pass it through View.snap")
    left, right = window.x0 / view.scale, (window.x0 + window.w) / view.scale
    if view.flip:
        left, right = view.width - right, view.width - left
    return round(left), round(right), round(window.y0 / view.scale), round((window.y0 + window.h) / view.scale)


def _resize(patch: torch.Tensor, size: tuple[int, int], pad: tuple[int, int, int, int] = (0, 0, 0, 0)) -> torch.Tensor:
    """Grey ``patch`` (N, H, W), uint8 or float, zero-padded by ``pad`` (left, right, top, bottom), as
    float (N, 1, h, w) at ``size`` = (w, h): the mean of each block when it shrinks by a whole factor,
    else antialiased bilinear."""
    out_w, out_h = size
    left, right, top, bottom = pad
    h, w = patch.shape[-2] + top + bottom, patch.shape[-1] + left + right
    factor = h // out_h
    if factor > 1 and (h, w) == (out_h * factor, out_w * factor):
        return _block_mean(patch, factor, pad).unsqueeze(1)
    patch = F.pad(patch, pad) if any(pad) else patch
    patch = patch.unsqueeze(1).float()
    if (h, w) == (out_h, out_w):
        return patch
    return F.interpolate(patch, size=(out_h, out_w), mode="bilinear", align_corners=False, antialias=w > out_w or h > out_h)


def _block_mean(patch: torch.Tensor, factor: int, pad: tuple[int, int, int, int]) -> torch.Tensor:
    """Mean of each ``factor``×``factor`` block of ``patch`` (N, H, W) zero-padded by ``pad``.

    This is what makes shrinking a whole 1280×1024 frame for the paws cheap: rows are added as small
    integers, whole blocks of them as views of the frame, straight into one array of block rows,
    before anything is converted to float; and the padding is never copied, as zeros add nothing to a
    block's sum.
    """
    left, right, top, bottom = pad
    n, h, w = patch.shape
    exact = patch.dtype == torch.uint8 and factor * 255 <= torch.iinfo(torch.int16).max
    kind = torch.int16 if exact else torch.float32
    first = min((-top) % factor, h)  # rows of the patch in a block that starts in the padding
    whole = (h - first) // factor  # blocks wholly inside the patch
    last = first + whole * factor
    row = top // factor  # the block row that holds the patch's first row
    summed = patch.new_empty((n, (top + h + bottom) // factor, left + w + right), dtype=kind)
    inside = summed[:, :, left:left + w]
    if first:
        torch.sum(patch[:, :first], 1, dtype=kind, out=inside[:, row])
        row += 1
    rows = patch[:, first:last].reshape(n, whole, factor, w)
    if patch.device.type == "cpu":
        # NumPy adds uint8 rows into int16 a third faster than torch, which converts each row first
        np.add.reduce(rows.numpy(), axis=2, dtype=_NUMPY[kind], out=inside[:, row:row + whole].numpy())
    else:
        body = inside[:, row:row + whole]
        body.copy_(rows[:, :, 0])
        for k in range(1, factor):
            body += rows[:, :, k]
    row += whole
    if last < h:
        torch.sum(patch[:, last:], 1, dtype=kind, out=inside[:, row])
        row += 1
    # zeros where the blocks hold only padding
    summed[:, :top // factor] = 0
    summed[:, row:] = 0
    summed[:, :, :left] = 0
    summed[:, :, left + w:] = 0
    # then columns, each block's row sums added in a type they fit: asked for no type, torch would add
    # int16 as int64, and that made this step 2.5 times slower than strided slices added one by one
    wide = kind if exact and factor * factor * 255 <= torch.iinfo(torch.int16).max else torch.float32
    out = summed.view(n, summed.shape[1], -1, factor).sum(-1, dtype=wide)
    return out / factor**2


def from_window(x: np.ndarray, y: np.ndarray, window: Window, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Network-input pixels of a cut at ``size`` → canonical pixels."""
    sx, sy = window.w / size[0], window.h / size[1]
    # pixel centres: input pixel i covers canonical [x0 + i·sx, x0 + (i+1)·sx)
    return window.x0 + (np.asarray(x) + 0.5) * sx - 0.5, window.y0 + (np.asarray(y) + 0.5) * sy - 0.5
