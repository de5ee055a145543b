"""Re-encode a video with camera-like sensor noise: a benchmark input with a real camera's bitrate.

    python benchmarks/add_sensor_noise.py IN.mp4 OUT.mp4 [--sigma 3] [--crf 23] [--preset veryfast] [--seed 0]

The synthetic rig's renders are noiseless, so H.264 squeezes them to a tiny bitrate and they decode far
faster than a real camera's video. Gaussian noise of ``--sigma`` grey levels on every pixel of every
frame brings the bits per pixel up to a real recording's; the script prints the result, with the
bits per pixel of the real head-fixed-mouse video in this repository's test data for comparison.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from iblvideo.video import VideoReader, VideoWriter, probe


def bits_per_pixel(path: str | Path) -> float:
    """Bits of the file per pixel per frame."""
    info = probe(path)
    return Path(path).stat().st_size * 8 / (info.width * info.height * info.n_frames)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source")
    parser.add_argument("target")
    parser.add_argument("--sigma", type=float, default=3.0, help="noise, in grey levels (default: 3)")
    parser.add_argument("--crf", type=int, default=23)
    parser.add_argument("--preset", default="veryfast", help="x264 preset (IBL compresses with -preset slow -crf 29)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    info = probe(args.source)
    with VideoReader(args.source) as reader, VideoWriter(args.target, info.width, info.height, info.fps, crf=args.crf, preset=args.preset) as writer:
        for _, image in reader.frames():
            noisy = image + rng.normal(0.0, args.sigma, image.shape).astype(np.float32)
            writer.write(np.clip(np.rint(noisy), 0, 255).astype(np.uint8))
    real = Path(__file__).resolve().parents[1] / "tests" / "data" / "mirror-mouse" / "videos" / "test_vid.mp4"
    print(f"{args.source}: {bits_per_pixel(args.source):.4f} bits per pixel and frame")
    print(f"{args.target}: {bits_per_pixel(args.target):.4f} (noise sigma {args.sigma:g}, crf {args.crf}, preset {args.preset})")
    if real.exists():
        print(f"{real.name} (a real head-fixed mouse, {probe(real).width}x{probe(real).height}): {bits_per_pixel(real):.4f}")


if __name__ == "__main__":
    main()
