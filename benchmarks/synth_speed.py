"""Rendering speed of the synthetic rig, per camera: frames per second (drawing and H.264 encoding, files
written), the real-time factor (seconds of video per second of wall time; > 1 is faster than real time) and
the CPU time per frame, which does not depend on what else the machine is running. Drawing runs on the
main thread and x264 on a worker thread, so with two free cores the rate is bounded by the busier of the
two: "2-core fps" is that bound, computed from each thread's CPU time.

    python benchmarks/synth_speed.py [--seconds 10]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from iblvideo.cameras import CAMERAS
from iblvideo.progress import configure
from iblvideo.synth import synthesize_session


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="video length per camera (default: 10)")
    args = parser.parse_args()
    configure(quiet=True)
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} before the run")
    print(f"{'camera':<8}{'size':>11}{'Hz':>6}{'frames':>8}{'wall s':>9}{'frames/s':>10}{'x real time':>13}"
          f"{'CPU ms/frame':>14}{'draw ms':>9}{'encode ms':>11}{'2-core fps':>12}")
    for name, camera in CAMERAS.items():
        with tempfile.TemporaryDirectory() as tmp:
            wall, cpu, main = time.perf_counter(), time.process_time(), time.thread_time()
            synthesize_session(Path(tmp), cameras=(name,), seconds=args.seconds, seed=0)
            wall, cpu, main = time.perf_counter() - wall, time.process_time() - cpu, time.thread_time() - main
        frames = int(round(args.seconds * camera.fps))
        size = f"{camera.width}x{camera.height}"
        draw, encode = 1000 * main / frames, 1000 * (cpu - main) / frames  # ms per frame on each thread
        print(f"{name:<8}{size:>11}{camera.fps:>6g}{frames:>8}{wall:>9.2f}{frames / wall:>10.1f}{args.seconds / wall:>13.2f}"
              f"{1000 * cpu / frames:>14.2f}{draw:>9.2f}{encode:>11.2f}{1000 / max(draw, encode):>12.1f}")
    print(f"load average {os.getloadavg()[0]:.1f} after the run")


if __name__ == "__main__":
    main()
