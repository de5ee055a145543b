"""Where IBL's Lightning Pose pipeline cuts, and what its networks see: IBL's ROI sample, anchors and
crop windows, and the frames as DALI prepares them.

Everything is in the pixels of the frame the networks see: the camera's, flipped horizontally for
the right camera (whose view is the mirror image of the left's). Following IBL's pipeline (iblvideo
3.x with DALI):

- the ROI network sees 20–500 frames evenly spread over the video (one a second); each anchor is the
  mean of its confident detections, truncated to whole pixels, and a window's anchor the mean of its
  anchors (``anchor``);
- a window is the network's crop size and offset divided by the camera's scale (the right camera's
  frames are half the size); DALI moves a window that leaves the frame back inside it and rounds its
  origin to whole pixels (``Window.origin``);
- frames are decoded to RGB with limited-range luma stretched to 0–255 and clipped, divided by 255,
  brightened and clipped for the eye, flipped, cut, then resized as DALI resizes (``video.resampling``).
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from iblvideo.tracking.lp_networks import Network
from iblvideo.tracking.plan import CONFIDENT
from iblvideo.tracking.tracker import MissingAnchor
from iblvideo.video.resampling import dali_resize

log = logging.getLogger(__name__)

MIN_SAMPLES, MAX_SAMPLES = 20, 500


def sample_indices(n_frames: int, fps: float) -> np.ndarray:
    """IBL's ROI sample: one frame a second, 20 to 500 of them, evenly spaced from the first frame to the last."""
    n = min(max(MIN_SAMPLES, int(n_frames / fps)), MAX_SAMPLES)
    return np.round(np.linspace(0, n_frames - 1, n)).astype(np.int32)


def anchor_means(x: np.ndarray, y: np.ndarray, likelihood: np.ndarray) -> np.ndarray:
    """Each anchor's place (A, 2) from the ROI network's (N, A) detections: the mean of its confident
    detections, truncated to whole pixels (NaN for an anchor never found confidently). A window's
    anchor is the mean of its anchors' places: a half pixel, for two."""
    means = np.full((x.shape[1], 2), np.nan)
    for k, confident in enumerate((likelihood >= CONFIDENT).T):
        if confident.any():
            means[k] = int(np.mean(x[confident, k])), int(np.mean(y[confident, k]))
    return means


def anchor_at(names: Iterable[str], means: dict[str, np.ndarray]) -> tuple[float, float]:
    """A window's anchor: the mean of its anchors' places (``anchor_means``); MissingAnchor for one never found confidently."""
    names = list(names)
    missing = [name for name in names if name not in means or np.isnan(means[name]).any()]
    if missing:
        raise MissingAnchor(missing[0])
    x, y = np.mean([means[name] for name in names], axis=0)
    return float(x), float(y)


def place(networks: Iterable[Network], points: Sequence[str], x: np.ndarray, y: np.ndarray, likelihood: np.ndarray,
          scale: int, frame: tuple[int, int]) -> dict[str, Window]:
    """Every network's window from the ROI network's (N, P) detections of its ``points`` (whole frames for networks that cut none)."""
    means = dict(zip(points, anchor_means(x, y, likelihood), strict=True))
    return {network.label: Window.of(network, anchor_at(network.crop.anchors, means) if network.crop else (0.0, 0.0), scale, frame)
            for network in networks}


@dataclass(frozen=True)
class Window:
    """A network's crop window in the pixels of the network's frame, as IBL computes it (w, h, x, y:
    x and y may be half pixels, or leave the frame), and the frame it is cut from."""

    w: float
    h: float
    x: float
    y: float
    frame: tuple[int, int]  # (width, height)

    @classmethod
    def whole(cls, frame: tuple[int, int]) -> Window:
        return cls(float(frame[0]), float(frame[1]), 0.0, 0.0, frame)

    @classmethod
    def of(cls, network: Network, at: tuple[float, float], scale: int, frame: tuple[int, int]) -> Window:
        """``network``'s window for an anchor ``at``, on a camera whose frames are 1/``scale`` of the left camera's."""
        if network.crop is None:
            return cls.whole(frame)
        (w, h), (dx, dy) = network.crop.size, network.crop.offset
        return cls(w / scale, h / scale, at[0] - dx / scale, at[1] - dy / scale, frame)

    @property
    def size(self) -> tuple[int, int]:
        return round(self.w), round(self.h)

    @property
    def clamped(self) -> bool:
        """Whether the window leaves the frame, so that DALI cuts it elsewhere."""
        return (self.x, self.y) != self._inside()

    def _inside(self) -> tuple[float, float]:
        """The corner moved so that the window lies in the frame, as IBL does before handing it to DALI."""
        (width, height), (w, h) = self.frame, self.size
        return min(max(self.x, 0.0), width - w), min(max(self.y, 0.0), height - h)

    @property
    def origin(self) -> tuple[int, int]:
        """The whole pixel where DALI cuts: IBL hands it the corner as a fraction of the room the frame
        leaves (x / (W − w)), which DALI multiplies back and rounds, halves away from zero."""
        (width, height), (w, h) = self.frame, self.size
        # the product in double precision, of the fraction as DALI holds it: float32 (so a half pixel may go either way)
        return tuple(round(float(np.float32(c / room)) * room) if room else 0  # type: ignore[return-value]
                     for c, room in zip(self._inside(), (width - w, height - h), strict=True))

    def as_whxy(self) -> tuple[float, float, float, float]:
        return (self.w, self.h, self.x, self.y)


def warn_clamped(windows: dict[str, Window], video: str) -> None:
    for label, window in windows.items():
        if window.clamped:
            log.warning("%s: the %s window %s leaves the frame; it is cut at %s instead", video, label,
                        tuple(round(v, 1) for v in window.as_whxy()), window.origin)


def network_frames(frames: torch.Tensor, flip: bool) -> torch.Tensor:
    """Grey frames (N, H, W) uint8, limited-range luma, as DALI hands them on: float 0–255, stretched and clipped, flipped."""
    out = ((frames.float() - 16.0) * (255.0 / 219.0)).clamp_(0.0, 255.0)
    return out.flip(-1) if flip else out


def prepare(frames: torch.Tensor, window: Window, brightness: float, size: tuple[int, int]) -> torch.Tensor:
    """What a network of input ``size`` (w, h) sees of ``window`` in ``network_frames``: (N, 1, h, w) in [0, 1]."""
    (x0, y0), (w, h) = window.origin, window.size
    crops = frames[:, y0:y0 + h, x0:x0 + w] / 255.0
    if brightness != 1.0:
        crops = (crops * brightness).clamp_(max=1.0)
    return dali_resize(crops.unsqueeze(1), size)
