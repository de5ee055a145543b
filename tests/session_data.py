"""One short synthetic session, rendered once per test run and copied under new subject names."""
from __future__ import annotations

import shutil
from pathlib import Path

from iblvideo.synth import synthesize_session
from iblvideo.synth.session import DATE, NUMBER

SECONDS = 1.0
CAMERAS = ("left", "body")  # a side camera (features, licks) and the body camera


def rendered_session(tmp_path_factory) -> Path:
    """The synthetic session, rendered on first use in this pytest run."""
    root = tmp_path_factory.getbasetemp() / "iblvideo-rendered"
    if not root.exists():
        synthesize_session(root, cameras=CAMERAS, seconds=SECONDS, seed=0)
    return next(root.glob(f"*/{DATE}/{NUMBER}"))


def copy_session(source: Path, root: Path, subject: str) -> Path:
    """A copy of ``source`` as ``root/<subject>/<date>/<number>``."""
    target = root / subject / DATE / NUMBER
    shutil.copytree(source, target)
    return target
