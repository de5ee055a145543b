"""Drawing primitives: anti-aliased shapes on small patches, composited into a frame with light and noise.

Shapes are signed-distance coverage maps (alpha in [0, 1]) evaluated only over their bounding box, with
coordinates in the camera's pixels, pixel centres at integer positions (column x, row y). A frame is the
lit static background copied in, sprites painted over it, and a slice of a precomputed noise field added:
no per-frame work touches the whole frame except one copy and one integer add.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter, zoom

NOISE_MEAN = 6  # sensor noise is Binomial(12, 1/2): mean 6, sd 1.7 grey levels
NOISE_PAD = 64  # the noise field is this much larger than the frame; each frame takes a random window
CEILING = 255 - 2 * NOISE_MEAN  # painted values stay below this so the noise add cannot overflow
GAIN_STEP = 0.004  # re-light the background when illumination has drifted this much (half a grey level)

Box = tuple[int, int, int, int]  # y0, y1, x0, x1


@dataclass(frozen=True)
class View:
    """Maps canonical left-camera pixels to a camera's pixels: optional mirror about x = 640, then scale.

    The right camera uses ``x_r = (1280 - x_c) / 2, y_r = y_c / 2``: IBL flips the right frame and
    upsamples it twice to look like a left frame, so the scene is defined once in left-camera pixels.
    """

    scale: float = 1.0
    mirror: bool = False

    def point(self, x: np.ndarray | float, y: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(x, float)
        y = np.asarray(y, float)
        return ((1280.0 - x) if self.mirror else x) * self.scale, y * self.scale

    def vector(self, dx: float, dy: float) -> tuple[float, float]:
        return (-dx if self.mirror else dx) * self.scale, dy * self.scale

    def angle(self, radians: float) -> float:
        return np.pi - radians if self.mirror else radians


def box_around(x: float, y: float, rx: float, ry: float, shape: tuple[int, int]) -> Box | None:
    """The integer box holding an extent of ``rx``, ``ry`` (plus a pixel of anti-aliasing) about (x, y)."""
    y0, y1 = max(int(np.floor(y - ry - 1)), 0), min(int(np.ceil(y + ry + 2)), shape[0])
    x0, x1 = max(int(np.floor(x - rx - 1)), 0), min(int(np.ceil(x + rx + 2)), shape[1])
    return (y0, y1, x0, x1) if y0 < y1 and x0 < x1 else None


def ellipse_box(cx: float, cy: float, ax: float, ay: float, shape: tuple[int, int]) -> Box | None:
    """A box holding an ellipse with semi-axes ``ax``, ``ay`` at any orientation."""
    return box_around(cx, cy, max(ax, ay), max(ax, ay), shape)


def segment_box(x0: float, y0: float, x1: float, y1: float, r: float, shape: tuple[int, int]) -> Box | None:
    """The box holding a segment thickened by ``r``."""
    return box_around((x0 + x1) / 2, (y0 + y1) / 2, abs(x1 - x0) / 2 + r, abs(y1 - y0) / 2 + r, shape)


def union(*boxes: Box | None) -> Box | None:
    present = [b for b in boxes if b is not None]
    if not present:
        return None
    return min(b[0] for b in present), max(b[1] for b in present), min(b[2] for b in present), max(b[3] for b in present)


def in_view(box: Box | None, part: str) -> Box:
    """The box of a part that the scene keeps in the frame."""
    if box is None:
        raise ValueError(f"the {part} lies outside the frame")
    return box


def grid(box: Box) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates of a box as a column of rows and a row of columns (broadcast, not a mesh)."""
    y0, y1, x0, x1 = box
    return np.arange(y0, y1, dtype=np.float32)[:, None], np.arange(x0, x1, dtype=np.float32)[None, :]


def _coverage(distance: np.ndarray) -> np.ndarray:
    """Signed distance (negative inside) to pixel coverage, one pixel of anti-aliasing."""
    return np.clip(0.5 - distance, 0.0, 1.0)


def ellipse(ys: np.ndarray, xs: np.ndarray, cx: float, cy: float, ax: float, ay: float, angle: float = 0.0) -> np.ndarray:
    """Coverage of an ellipse with semi-axes ``ax`` (along ``angle``) and ``ay``."""
    c, s = np.cos(angle), np.sin(angle)
    dx, dy = xs - cx, ys - cy
    u = (dx * c + dy * s) / ax
    v = (dy * c - dx * s) / ay
    k = np.sqrt(u * u + v * v)
    # first-order distance to the outline: (k - 1) / |grad k|, exact enough within a pixel of the edge
    gradient = np.sqrt((u / ax) ** 2 + (v / ay) ** 2) / np.maximum(k, 1e-6)
    return _coverage((k - 1) / np.maximum(gradient, 1e-6))


def circle(ys: np.ndarray, xs: np.ndarray, cx: float, cy: float, r: float) -> np.ndarray:
    return _coverage(np.sqrt((xs - cx) ** 2 + (ys - cy) ** 2) - r)


def capsule(ys: np.ndarray, xs: np.ndarray, x0: float, y0: float, x1: float, y1: float, r: float) -> np.ndarray:
    """Coverage of a segment from (x0, y0) to (x1, y1) thickened by ``r``."""
    ux, uy = x1 - x0, y1 - y0
    h = np.clip(((xs - x0) * ux + (ys - y0) * uy) / max(ux * ux + uy * uy, 1e-9), 0.0, 1.0)
    return _coverage(np.sqrt((xs - x0 - h * ux) ** 2 + (ys - y0 - h * uy) ** 2) - r)


def bar(ys: np.ndarray, xs: np.ndarray, x0: float, y0: float, x1: float, y1: float, half_width: float,
        rounding: float) -> np.ndarray:
    """Coverage of a rectangle from end (x0, y0) to end (x1, y1), ``half_width`` across, corners rounded."""
    length = max(np.hypot(x1 - x0, y1 - y0), 1e-6)
    c, s = (x1 - x0) / length, (y1 - y0) / length
    dx, dy = xs - (x0 + x1) / 2, ys - (y0 + y1) / 2
    qu = np.abs(dx * c + dy * s) - (length / 2 - rounding)
    qv = np.abs(dy * c - dx * s) - (half_width - rounding)
    outside = np.sqrt(np.maximum(qu, 0) ** 2 + np.maximum(qv, 0) ** 2)
    return _coverage(outside + np.minimum(np.maximum(qu, qv), 0) - rounding)


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Gaussian-smoothed white noise scaled to unit standard deviation: fur, texture."""
    # wide blurs are made on a coarse grid and interpolated up: the same look for a fraction of the time
    step = max(1, int(sigma // 3))
    coarse = tuple(-(-n // step) + 1 for n in shape)
    field = gaussian_filter(rng.standard_normal(coarse).astype(np.float32), sigma / step, mode="wrap")
    if step > 1:
        field = zoom(field, step, order=1)
    field = field[:shape[0], :shape[1]]
    return field / max(float(field.std()), 1e-6)


class Canvas:
    """One camera's frame buffer (YUV 4:2:0, neutral chroma): background, sprites, illumination and noise."""

    def __init__(self, background: np.ndarray, rng: np.random.Generator):
        self.shape = background.shape
        height, width = self.shape
        self.background = background.astype(np.float32)
        self.buffer = np.full((height * 3 // 2, width), 128, np.uint8)
        self.luma = self.buffer[:height]
        self.noise = rng.binomial(2 * NOISE_MEAN, 0.5, size=(height + NOISE_PAD, width + NOISE_PAD)).astype(np.uint8)
        self.rng = rng
        self.gain = 1.0
        self._lit_gain = np.nan
        self._lit = np.empty(self.shape, np.uint8)
        self._scratch = np.empty(self.shape, np.float32)

    def start(self, gain: float) -> None:
        """Begin a frame under illumination ``gain``: copy in the lit background."""
        self.gain = gain
        if not abs(gain - self._lit_gain) < GAIN_STEP:
            # illumination drifts slowly: re-light the whole background only when it has changed visibly
            np.multiply(self.background, gain, out=self._scratch)
            np.clip(self._scratch - (NOISE_MEAN - 0.5), 0, CEILING, out=self._scratch)
            self._lit[...] = self._scratch
            self._lit_gain = gain
        np.copyto(self.luma, self._lit)

    def level(self, grey: float | np.ndarray) -> float | np.ndarray:
        """A scene grey level as stored before the noise is added, under the current illumination."""
        return grey * self.gain - NOISE_MEAN

    def paint(self, box: Box | None, alpha: float | np.ndarray, grey: float | np.ndarray) -> None:
        """Composite ``grey`` over the box with coverage ``alpha``, each a scalar or a patch."""
        if box is None:
            return
        y0, y1, x0, x1 = box
        region = self.luma[y0:y1, x0:x1]
        mixed = region + alpha * (self.level(grey) - region)
        np.clip(mixed + 0.5, 0, CEILING, out=mixed)
        region[...] = mixed

    def stamp(self, y0: int, x0: int, alpha: np.ndarray, grey: float) -> None:
        """Paint a precomputed coverage patch with its top-left corner at (x0, y0), clipped to the frame."""
        height, width = alpha.shape
        box = (max(y0, 0), min(y0 + height, self.shape[0]), max(x0, 0), min(x0 + width, self.shape[1]))
        if box[0] < box[1] and box[2] < box[3]:
            self.paint(box, alpha[box[0] - y0:box[1] - y0, box[2] - x0:box[3] - x0], grey)

    def finish(self) -> np.ndarray:
        """Add this frame's sensor noise and return the YUV buffer (reused: encode it before the next frame)."""
        height, width = self.shape
        dy, dx = self.rng.integers(0, NOISE_PAD, size=2)
        np.add(self.luma, self.noise[dy:dy + height, dx:dx + width], out=self.luma)
        return self.buffer
