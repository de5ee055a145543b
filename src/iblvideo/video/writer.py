"""Video out: H.264 mp4, deterministic bytes for the same frames."""
from __future__ import annotations

from pathlib import Path

import av
import numpy as np


class VideoWriter:
    """H.264 (yuv420p) mp4 writer for grey or RGB uint8 frames; the same frames give the same bytes."""

    def __init__(self, path: str | Path, width: int, height: int, fps: float, crf: int = 20, preset: str = "veryfast", faststart: bool = False):
        options = {"fflags": "+bitexact"}
        if faststart:
            options["movflags"] = "+faststart"
        self._container = av.open(str(path), "w", format="mp4", options=options)
        self._stream = self._container.add_stream("libx264", rate=_rate(fps))
        self._stream.width, self._stream.height, self._stream.pix_fmt = width, height, "yuv420p"
        # a fixed thread count keeps the bitstream identical on machines with different core counts
        self._stream.options = {"crf": str(crf), "preset": preset, "threads": "2", "flags": "+bitexact"}

    def write(self, image: np.ndarray) -> None:
        fmt = "gray" if image.ndim == 2 else "rgb24"
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format=fmt)
        self._container.mux(self._stream.encode(frame))

    def close(self) -> None:
        self._container.mux(self._stream.encode(None))
        self._container.close()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _rate(fps: float):
    """Frame rate as an exact fraction (150 → 150/1, 29.97 → 2997/100)."""
    from fractions import Fraction

    return Fraction(fps).limit_denominator(1001)
