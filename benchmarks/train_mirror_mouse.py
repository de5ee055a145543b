"""Train a pose network on the mirror-mouse labeled frames with the default settings, then evaluate.

Prints the median and mean test-split pixel error per keypoint (in the 396x406 image) and the
training time. Usage: python benchmarks/train_mirror_mouse.py [MODEL_DIR] [--labels CSV]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from iblvideo.progress import configure
from iblvideo.training.evaluate import evaluate
from iblvideo.training.train import TrainSettings, train

LABELS = Path(__file__).resolve().parents[1] / "tests" / "data" / "mirror-mouse" / "CollectedData.csv"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path, nargs="?", help="where to train (default: a fresh temporary folder)")
    parser.add_argument("--labels", type=Path, default=LABELS)
    args = parser.parse_args()
    configure(verbose=True)  # one log line per epoch with the loss and validation error
    model_dir = args.model_dir or Path(tempfile.mkdtemp(prefix="mirror-mouse-")) / "model"
    settings = TrainSettings()
    print(f"settings: {settings}; torch threads: {torch.get_num_threads()}; model: {model_dir}", flush=True)
    start = time.perf_counter()
    train(args.labels, model_dir, settings)
    minutes = (time.perf_counter() - start) / 60
    table = evaluate(model_dir, args.labels)
    print(table[["n", "median_px", "mean_px", "p95_px"]].to_string(float_format=lambda v: f"{v:.2f}"))
    print(f"training time: {minutes:.1f} min ({settings.epochs} epochs)")


if __name__ == "__main__":
    main()
