"""Lick events against the synthetic truth: precision, recall and timing error, per seed and tracker.

    python benchmarks/lick_events.py [--seeds 0 1 2 3] [--seconds 20] [--trackers truth demo]

Renders each seed's side cameras, runs the pipeline's stages on them (``run_session``) with the ground-truth
tracker (``truth``) and with the demo weights (``demo``: DeepLabCut networks of the synthetic rig), and
scores ``alf/_iblvideo_lickEvents.table.pqt`` against ``truth/_iblvideo_trueLicks.times.npy``: a lick is
found when an event lies within ``measures.licks.TOLERANCE`` of it, each event matching one lick, over the
span both cameras filmed (``recorded_span``: a lick cut by a video's start or end counts neither way). IBL's
``licks.times`` (lick frames) is counted beside, for scale.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from iblvideo.io.alf import LICK_EVENTS, LICKS, TRUTH_LICKS, SessionPaths
from iblvideo.measures.licks import TOLERANCE
from iblvideo.progress import configure
from iblvideo.sessions.session import run_session
from iblvideo.synth import synthesize_session
from iblvideo.synth.scoring import match_licks, recorded_span

TRACKERS = {"truth": ("truth", None), "demo": ("dlc", "demo")}


def score(session: Path) -> dict[str, float]:
    """Precision, recall, timing error and counts of one processed session's lick events."""
    paths = SessionPaths(session)
    events = pd.read_parquet(paths.session_file(LICK_EVENTS))
    true = np.load(paths.truth / TRUTH_LICKS)
    span = recorded_span([np.load(paths.times(camera)) for camera in ("left", "right")])
    precision, recall, errors = match_licks(events["times"].to_numpy(float), true, span=span)
    inside = events[(events["times"] >= span[0]) & (events["times"] <= span[1])]
    return {"true": int(np.sum((true >= span[0]) & (true <= span[1]))), "events": len(inside), "both": int((inside["side"] == "both").sum()),
            "precision": precision, "recall": recall,
            "median |error| ms": 1e3 * float(np.median(np.abs(errors))) if len(errors) else np.nan,
            "max |error| ms": 1e3 * float(np.max(np.abs(errors))) if len(errors) else np.nan,
            "IBL lick frames": len(np.load(paths.session_file(LICKS)))}


def run(seed: int, seconds: float, tracker: str, root: Path) -> dict[str, float]:
    name, weights = TRACKERS[tracker]
    session = synthesize_session(root / tracker, cameras=("left", "right"), seconds=seconds, seed=seed)
    start = time.perf_counter()
    result = run_session(session, tracker=name, weights=weights)
    if result.status != "Complete":
        raise SystemExit(f"seed {seed}, {tracker}: {result.status}: {result.error}")
    return {"seed": seed, "tracker": tracker, **score(session), "run s": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--trackers", nargs="+", choices=list(TRACKERS), default=list(TRACKERS))
    args = parser.parse_args()
    configure(quiet=True)
    rows = []
    for seed in args.seeds:
        for tracker in args.trackers:
            with tempfile.TemporaryDirectory() as tmp:
                rows.append(run(seed, args.seconds, tracker, Path(tmp)))
                print(pd.DataFrame(rows[-1:]).to_string(index=False, float_format=lambda v: f"{v:.3f}"), flush=True)
    table = pd.DataFrame(rows)
    print(f"\nlick events vs the synthetic truth ({args.seconds:g} s per seed, matched within {TOLERANCE * 1e3:.0f} ms)")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
