"""What each stage of the cascade costs per frame, on one CPU thread: cutting its input, and its network.

    python benchmarks/stage_costs.py VIDEO [--weights demo] [--batch-size N] [--batches 10] [--repeat 5]

Decodes ``--batches`` batches from the middle of the video once, then times each stage over them
``--repeat`` times and keeps the fastest (the least disturbed by other work on the machine). A
refining stage (``paws_fine``) is timed whole: its windows follow the stage it refines, frame by frame.
"""
from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

from iblvideo.video.batching import BATCH_SIZE


def _fastest(work: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video")
    parser.add_argument("--weights", default="demo")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, help=f"frames per batch (default: {BATCH_SIZE})")
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    from iblvideo.tracking.cascade import place_windows, sample
    from iblvideo.tracking.crops import cut
    from iblvideo.tracking.pose_networks import PoseNetworkTracker
    from iblvideo.tracking.weights import load_weights
    from iblvideo.video.reader import VideoReader

    torch.set_num_threads(1)
    size = args.batch_size
    with VideoReader(args.video, threads=1) as reader:
        cascade = PoseNetworkTracker(load_weights(args.weights), reader.info.camera())
        windows = place_windows(cascade, sample(reader), reader)
        middle = max(0, reader.info.n_frames // 2 - size * args.batches // 2)
        batches = [torch.from_numpy(batch.copy()) for _, batch in reader.batches(size, middle, middle + size * args.batches)]
    frames = sum(len(batch) for batch in batches)
    print(f"{args.video}: {cascade.camera.name} camera, {frames} frames in batches of {size}, one thread; ms a frame")
    print(f"{'stage':<12} {'input':>9} {'crop':>7} {'network':>8}")
    total = 0.0
    for stage in cascade.stages:
        network = cascade.models[stage.role].network
        shape = "x".join(map(str, network.input_size))
        if stage.refines:
            coarse = next(s for s in cascade.stages if s.role == stage.refines)
            found = [cascade.track(coarse.role, b, windows[coarse.role], coarse.points)[0] for b in batches]
            seconds = _fastest(lambda: [cascade.refine(stage, b, coarse, xy) for b, xy in zip(batches, found, strict=True)], args.repeat)  # noqa: B023 - called within the iteration
            print(f"{stage.role:<12} {shape:>9} {'':>7} {seconds / frames * 1e3:8.3f}  (crops and network, every point)")
            total += seconds
            continue
        crops = [cut(b, cascade.view, windows[stage.role], network.input_size)[:, 0] / 255.0 for b in batches]
        crop_s = _fastest(lambda: [cut(b, cascade.view, windows[stage.role], network.input_size) for b in batches], args.repeat)  # noqa: B023 - called within the iteration
        network_s = _fastest(lambda: [network.predict(c) for c in crops], args.repeat)  # noqa: B023 - called within the iteration
        print(f"{stage.role:<12} {shape:>9} {crop_s / frames * 1e3:7.3f} {network_s / frames * 1e3:8.3f}")
        total += crop_s + network_s
    print(f"{'all stages':<12} {'':>9} {total / frames * 1e3:16.3f}")


if __name__ == "__main__":
    main()
