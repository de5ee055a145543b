"""Rendering speed of the synthetic rig: frames per second per camera (drawing and H.264 encoding) and the
real-time factor (rendered seconds of video per second of wall time; > 1 is faster than real time).

    python benchmarks/synth_speed.py [--seconds 10]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from iblvideo.cameras import CAMERAS
from iblvideo.synth import synthesize_session


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="video length per camera (default: 10)")
    args = parser.parse_args()
    print(f"{'camera':<8}{'size':>11}{'Hz':>6}{'frames':>8}{'wall s':>9}{'frames/s':>10}{'x real time':>13}")
    for name, camera in CAMERAS.items():
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            synthesize_session(Path(tmp), cameras=(name,), seconds=args.seconds, seed=0)
            wall = time.perf_counter() - start
        frames = int(round(args.seconds * camera.fps))
        size = f"{camera.width}x{camera.height}"
        print(f"{name:<8}{size:>11}{camera.fps:>6g}{frames:>8}{wall:>9.2f}{frames / wall:>10.1f}{args.seconds / wall:>13.2f}")


if __name__ == "__main__":
    main()
