"""Tracking accuracy of a weights set on a synthetic session it was not trained on.

    python benchmarks/tracking_accuracy.py [--seed 8] [--seconds 20] [--weights demo]

Renders the session, tracks every camera, and prints per point the median error in camera pixels over
frames where the point is visible, the fraction of those frames tracked with likelihood >= 0.9, and the
fraction of frames where it is absent that get likelihood < 0.5.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from iblvideo.io.alf import raw_video_path
from iblvideo.progress import configure
from iblvideo.synth import synthesize_session
from iblvideo.synth.scoring import score_tracks
from iblvideo.tracking.run import dlc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--weights", default="demo")
    args = parser.parse_args()
    configure(quiet=True)
    with tempfile.TemporaryDirectory() as tmp:
        session = synthesize_session(Path(tmp), seconds=args.seconds, seed=args.seed)
        for camera in ("left", "right", "body"):
            dlc(raw_video_path(session, camera), weights=args.weights)
            table = score_tracks(session, camera)
            print(f"\n{camera} camera, seed {args.seed}, {args.seconds:g} s")
            print(table.to_string(float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
