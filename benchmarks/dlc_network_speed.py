"""CPU cost per frame of DeepLabCut's ResNet-50 pose network in PyTorch at IBL's crop sizes.

    python benchmarks/dlc_network_speed.py [--threads 2] [--repeats 3]

The network is built unloaded (its weights do not change the cost); IBL's crops are 100×100 (eye,
nose tip), 160×160 (tongue), 220×220 (tail start), the paws' 1280×1024 frame downsampled 10× to
128×102, and the whole 1280×1024 frame (ROI detection on the left camera, and on the right camera
upsampled 2×). Prints milliseconds per frame, the median of the repeats, for each size, and the
load average before and after (the figures are only as quiet as the machine).
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from iblvideo.networks.dlc_resnet import DLCConfig, DLCModel, build_network

SIZES = {"eye, nose tip": (100, 100), "tongue": (160, 160), "tail start": (220, 220), "paws": (128, 102),
         "ROI detection (left; right doubled)": (1280, 1024)}


def frame_cost(model: DLCModel, width: int, height: int, batch: int, repeats: int) -> float:
    """Median seconds per frame of ``predict`` on batches of ``batch`` random grey frames."""
    frames = np.random.default_rng(0).integers(0, 256, (batch, height, width), dtype=np.uint8)
    model.predict(frames[:1])  # warm-up: the first call allocates
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.predict(frames)
        times.append((time.perf_counter() - start) / batch)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--joints", type=int, default=4)
    parser.add_argument("--batch", type=int, default=16, help="frames per batch for the crops (the whole frame goes one at a time)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = DLCConfig("resnet_50", tuple(f"j{i}" for i in range(args.joints)), 8.0, 7.2801, (123.68, 116.779, 103.939))
    model = DLCModel(Path("unloaded"), config, build_network(config))
    print(f"resnet_50, {args.joints} joints, {args.threads} threads, torch {torch.__version__}, load average {os.getloadavg()[0]:.1f}")
    for what, (width, height) in SIZES.items():
        batch = 1 if width * height > 300_000 else args.batch
        cost = frame_cost(model, width, height, batch, args.repeats)
        print(f"{width}×{height} ({what}), batch {batch}: {1000 * cost:.1f} ms per frame, {1 / cost:.1f} frames/s")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
