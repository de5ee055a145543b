"""``iblvideo demo``: the whole pipeline on a freshly rendered synthetic session, compared with its truth."""
from __future__ import annotations

import logging
from pathlib import Path

from iblvideo.results.report import write_report
from iblvideo.sessions.session import run_session
from iblvideo.synth import synthesize_session
from iblvideo.synth.scoring import score_tracks

log = logging.getLogger(__name__)

DEMO_SEED = 2  # not among the seeds the demo weights were trained on


def run_demo(root: str | Path, seconds: float = 5.0, force: bool = False) -> Path:
    """Render, track, compute features and QC, write the report; print what a user would look at."""
    root = Path(root)
    session = synthesize_session(root, seconds=seconds, seed=DEMO_SEED, force=force)
    result = run_session(session, force=force, weights="demo")
    report = write_report(session)
    print(f"session   {session}")
    for name, camera in result.cameras.items():
        print(f"{name:<6}    {camera.status:<9} {camera.seconds:6.1f} s   " + ", ".join(str(p.name) for p in camera.outputs))
        if camera.status == "Complete":
            errors = score_tracks(session, name)["median_px"].dropna()
            print("          median error vs truth (px): " + ", ".join(f"{p} {e:.2f}" for p, e in errors.items()))
        else:
            print(f"          {camera.error}")
    print(f"report    {report}")
    return report
