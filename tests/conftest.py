"""Shared fixtures: small real videos written by the real H.264/HEVC/MPEG-4 encoders."""
from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest

# the processed sessions' fixtures, one definition for every module that asks for them
pytest_plugins = ["results_session", "queue_db"]

# the tests track with the shipped demo weights unless they ask for others: IBL's default set is a
# download (tests/test_dlc_cascade.py serves one on loopback)
os.environ.setdefault("IBLVIDEO_DLC_WEIGHTS", "demo")


@pytest.fixture(autouse=True)
def _cli_logging_undone() -> Iterator[None]:
    """Each test starts with the iblvideo logger as it was: the command line's handler writes to the
    stderr of the test that ran it, which pytest closes after it (a later log record there is an error)."""
    logger = logging.getLogger("iblvideo")
    handlers, level = list(logger.handlers), logger.level
    yield
    logger.handlers[:] = handlers
    logger.setLevel(level)


BLOCK = 16  # each bit of the frame index is a 16×16 block: survives compression unambiguously


def coded_frame(index: int, width: int, height: int) -> np.ndarray:
    """A grey frame whose top-left row of blocks spells ``index`` in binary."""
    image = np.full((height, width), 40, np.uint8)
    image[BLOCK * 2:, :] = (np.arange(width) * 150 // width + 60).astype(np.uint8)[None]
    for bit in range(12):
        if index >> bit & 1:
            image[:BLOCK, bit * BLOCK:(bit + 1) * BLOCK] = 230
    return image


def read_code(image: np.ndarray) -> int:
    """The index spelled by :func:`coded_frame`."""
    return sum(1 << bit for bit in range(12) if image[4:12, bit * BLOCK + 4:bit * BLOCK + 12].mean() > 135)


def write_video(path: Path, n: int, width: int = 320, height: int = 256, fps: float = 30.0,
                codec: str = "libx264", faststart: bool = False, gop: int = 12) -> Path:
    """Encode ``n`` coded frames; a short GOP so seeks land between keyframes."""
    options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as container:
        stream = container.add_stream(codec, rate=int(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.gop_size = gop
        if codec == "libx265":
            stream.options = {"x265-params": "log-level=error"}
        for i in range(n):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(coded_frame(i, width, height), format="gray")))
        container.mux(stream.encode(None))
    return path


@pytest.fixture(scope="session")
def videos(tmp_path_factory) -> dict[str, Path]:
    """One small video per codec/container, plus damaged ones."""
    root = tmp_path_factory.mktemp("videos")
    made = {
        "h264": write_video(root / "h264.mp4", 90),
        "hevc": write_video(root / "hevc.mp4", 60, codec="libx265"),
        "mpeg4": write_video(root / "mpeg4.avi", 60, codec="mpeg4"),
        "faststart": write_video(root / "faststart.mp4", 90, faststart=True),
    }
    data = made["h264"].read_bytes()
    (root / "truncated_tail.mp4").write_bytes(data[: len(data) * 2 // 3])  # moov at the end: lost
    made["truncated_tail"] = root / "truncated_tail.mp4"
    data = made["faststart"].read_bytes()
    (root / "truncated.mp4").write_bytes(data[: len(data) * 2 // 3])  # moov first: frames cut short
    made["truncated"] = root / "truncated.mp4"
    corrupt = bytearray(data)
    for k in range(len(corrupt) // 2, len(corrupt) // 2 + 3000, 7):
        corrupt[k] = (corrupt[k] * 31 + 7) % 256
    (root / "corrupt.mp4").write_bytes(bytes(corrupt))
    made["corrupt"] = root / "corrupt.mp4"
    (root / "notes.mp4").write_text("these are my notes, not a video\n")
    made["text"] = root / "notes.mp4"
    with av.open(str(root / "zero.mp4"), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        container.start_encoding()
    made["zero"] = root / "zero.mp4"
    (root / "empty.mp4").write_bytes(b"")
    made["empty"] = root / "empty.mp4"
    made["unknown_size"] = write_video(root / "odd_size.mp4", 10, width=400, height=300)
    return made
