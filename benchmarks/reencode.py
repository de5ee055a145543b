"""Re-encode a video as IBL compresses its raw videos, optionally with camera-like sensor noise.

    python benchmarks/reencode.py IN.mp4 OUT.mp4 [--crf 17] [--preset slow] [--sigma 0] [--seed 0]

IBL compresses every raw video with ``ffmpeg -codec:v libx264 -preset slow`` (ibllib's video
compression tasks): ``-crf 17`` on the recording rigs, whose left camera films 1280×1024 at 60 Hz (the
default here), ``-crf 29`` on the training rigs. The synthetic rig encodes with ``-preset ultrafast`` to
render quickly, a stream far cheaper to decode than IBL's: a benchmark of tracking speed against
decoding speed wants the video as IBL would have it. Gaussian noise of ``--sigma`` grey levels on
every pixel of every frame imitates a camera's sensor. Prints the bits per pixel and frame of both files.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from iblvideo.video.reader import VideoReader, probe
from iblvideo.video.writer import VideoWriter


def bits_per_pixel(path: str | Path) -> float:
    """Bits of the file per pixel per frame."""
    info = probe(path)
    return Path(path).stat().st_size * 8 / (info.width * info.height * info.n_frames)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source")
    parser.add_argument("target")
    parser.add_argument("--crf", type=int, default=17, help="default: 17, as IBL's recording rigs")
    parser.add_argument("--preset", default="slow", help="x264 preset (default: slow, as IBL's rigs)")
    parser.add_argument("--sigma", type=float, default=0.0, help="sensor noise, in grey levels (default: none)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    info = probe(args.source)
    with VideoReader(args.source) as reader, VideoWriter(args.target, info.width, info.height, info.fps, crf=args.crf, preset=args.preset) as writer:
        for _, image in reader.frames():
            if args.sigma:
                image = np.clip(np.rint(image + rng.normal(0.0, args.sigma, image.shape)), 0, 255).astype(np.uint8)
            writer.write(image)
    real = Path(__file__).resolve().parents[1] / "tests" / "data" / "mirror-mouse" / "videos" / "test_vid.mp4"
    print(f"{args.source}: {bits_per_pixel(args.source):.4f} bits per pixel and frame")
    print(f"{args.target}: {bits_per_pixel(args.target):.4f} (crf {args.crf}, preset {args.preset}, noise sigma {args.sigma:g})")
    if real.exists():
        print(f"{real.name} (a real head-fixed mouse, {probe(real).width}x{probe(real).height}, crf 20): {bits_per_pixel(real):.4f}")


if __name__ == "__main__":
    main()
