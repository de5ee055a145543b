"""Motion energy in the tracking pass against IBL's, from the final tracks, on a synthetic session.

    python benchmarks/one_pass_motion_energy.py [--seed 2] [--seconds 60] [--weights demo]

Renders a session the demo weights never saw (all three cameras), runs ``run_session`` (one decode per
video: the motion-energy ROI comes from the specialised networks on the ROI network's sampled frames),
then places IBL's ROI from the means of the final tracks and computes that motion energy too. Prints
per camera both ROIs (w, h, x, y), their largest difference in pixels, the correlation of the two
motion-energy traces and their median relative difference, the time each camera took, and how far
each ROI point's confident mean over the sampled frames lies from its mean over all frames (before
the ROI truncates to whole pixels; the sampled rows of the final tracks stand in for the tracks on
the sample, the same networks on the same frames).
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from iblvideo.io.alf import SessionPaths, raw_video_path
from iblvideo.io.session_files import read_pose
from iblvideo.measures import motion_energy as M
from iblvideo.progress import configure
from iblvideo.sessions.session import run_session
from iblvideo.synth import synthesize_session
from iblvideo.tracking.cascade import sample_indices
from iblvideo.tracks import PoseTracks
from iblvideo.video.reader import VideoReader


def mean_position(pose: PoseTracks, point: str, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
    """Mean confident position of ``point`` over ``rows``."""
    return np.nanmean(pose.confident_xy(point)[rows], axis=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--weights", default="demo")
    args = parser.parse_args()
    configure(quiet=True)
    with tempfile.TemporaryDirectory() as tmp:
        session = synthesize_session(Path(tmp), seconds=args.seconds, seed=args.seed)
        start = time.perf_counter()
        result = run_session(session, weights=args.weights)
        print(f"seed {args.seed}, {args.seconds:g} s: run_session {result.status} in {time.perf_counter() - start:.1f} s")
        for camera, outcome in result.cameras.items():
            energy_path, roi_path = SessionPaths(session).motion_energy(camera)
            sampled = M.Roi(*(int(v) for v in np.load(roi_path)))
            pose = read_pose(SessionPaths(session).pose(camera, "dlc"))
            ibl = M.roi_from_pose(pose, camera)
            with VideoReader(raw_video_path(session, camera)) as reader:
                rows = sample_indices(len(pose), reader.info.fps, reader.keyframes)
            means = {p: np.hypot(*(mean_position(pose, p, rows) - mean_position(pose, p))) for p in M.roi_points(camera)}
            start = time.perf_counter()
            exact = M.compute_motion_energy(raw_video_path(session, camera), ibl)
            decode = time.perf_counter() - start
            one_pass = np.load(energy_path)
            difference = np.abs(sampled.to_array() - ibl.to_array()).max()
            relative = np.median(np.abs(one_pass - exact) / np.maximum(exact, 1e-9))
            print(f"{camera:<5}  {outcome.seconds:6.1f} s (a second pass for motion energy would add {decode:.1f} s); "
                  f"{len(rows)} of {len(pose)} frames sampled\n"
                  f"       ROI (w, h, x, y) from the sample {sampled.to_array().tolist()}, from the final tracks "
                  f"{ibl.to_array().tolist()}: largest difference {difference} px\n"
                  f"       motion energy: correlation {np.corrcoef(one_pass, exact)[0, 1]:.6f}, median relative difference {relative:.3%}\n"
                  f"       sample mean - mean over all frames (px): " + ", ".join(f"{p} {d:.2f}" for p, d in means.items()))


if __name__ == "__main__":
    main()
