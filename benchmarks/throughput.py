"""Decode-only speed versus tracking speed, and peak memory, for one video.

    python benchmarks/throughput.py VIDEO [--weights demo] [--device cpu] [--batch-size N] [--repeat 3]

Each phase runs in a fresh child process so its peak resident memory is its own. With ``--repeat N``
the two phases alternate N times, so that a slow spell of a shared machine falls on both; the table
shows each phase's median (and range) and the median of the N ratios. Prints one table.

How fast a video decodes depends on how it was encoded: IBL compresses its videos with x264's slow
preset (``benchmarks/reencode.py`` re-encodes a render the same way), while the synthetic rig encodes
with the ultrafast preset to render quickly, a stream far cheaper to decode. The table gives the
video's bits per pixel and frame, to say which kind of stream it was measured on.
"""
from __future__ import annotations

import argparse
import multiprocessing
import resource
import statistics
import tempfile
import time
from pathlib import Path

from reencode import bits_per_pixel  # benchmarks/reencode.py, beside this script

from iblvideo.video.batching import BATCH_SIZE


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _decode_only(video: str, batch_size: int, queue) -> None:
    from iblvideo.video.reader import VideoReader

    start = time.perf_counter()
    with VideoReader(video) as reader:
        frames = sum(len(batch) for _, batch in reader.batches(batch_size))
    queue.put((frames, time.perf_counter() - start, _peak_rss_mb()))


def _track(video: str, weights: str, device: str, batch_size: int, queue) -> None:
    import shutil

    import pandas as pd

    from iblvideo.progress import configure
    from iblvideo.tracking.run import dlc

    configure(quiet=True)
    with tempfile.TemporaryDirectory() as tmp:
        # a copy outside any session, so the output lands in the temporary folder
        copy = Path(tmp) / Path(video).name
        shutil.copyfile(video, copy)
        start = time.perf_counter()
        out = dlc(copy, weights=weights, device=device, batch_size=batch_size, force=True)
        seconds = time.perf_counter() - start
        frames = len(pd.read_parquet(out))
    queue.put((frames, seconds, _peak_rss_mb()))


def _in_child(target, *args) -> tuple[int, float, float]:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=target, args=(*args, queue))
    child.start()
    result = queue.get()
    child.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video")
    parser.add_argument("--weights", default="demo")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, help=f"frames per batch (default: {BATCH_SIZE})")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each phase, alternating (default: 3)")
    args = parser.parse_args()

    from iblvideo.video.reader import probe

    info = probe(args.video)
    decode, track = [], []  # (frames/s, peak RSS MB) per run
    for _ in range(args.repeat):
        frames, seconds, peak = _in_child(_decode_only, args.video, args.batch_size)
        decode.append((frames / seconds, peak))
        frames, seconds, peak = _in_child(_track, args.video, args.weights, args.device, args.batch_size)
        track.append((frames / seconds, peak))
    ratios = [t[0] / d[0] for d, t in zip(decode, track, strict=True)]
    print(f"video            {args.video} ({info.width}x{info.height}, {info.fps:g} Hz, {info.n_frames} frames, "
          f"{info.duration:.1f} s, {bits_per_pixel(args.video):.4f} bits per pixel and frame)")
    print(f"decode only      {_fps(decode)}   peak RSS {max(r[1] for r in decode):7.0f} MB")
    print(f"dlc ({args.device:>4})       {_fps(track)}   peak RSS {max(r[1] for r in track):7.0f} MB")
    spread = f" (runs: {', '.join(f'{r:.2f}' for r in ratios)})" if len(ratios) > 1 else ""
    print(f"ratio dlc/decode {statistics.median(ratios):8.2f}{spread}")


def _fps(runs: list[tuple[float, float]]) -> str:
    """Median frames/s of ``runs``, and their range when there are several."""
    fps = sorted(r[0] for r in runs)
    spread = f" ({fps[0]:.1f}-{fps[-1]:.1f})" if len(fps) > 1 else ""
    return f"{statistics.median(fps):8.1f} frames/s{spread}"


if __name__ == "__main__":
    main()
