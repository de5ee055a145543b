"""The mirror-mouse labeled frames, and small copies of them for fast pose tests."""
from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

FIXTURE = Path(__file__).parent / "data" / "mirror-mouse"
LABELS = FIXTURE / "CollectedData.csv"
VIDEO = FIXTURE / "videos" / "test_vid.mp4"


def small_copy(folder: Path, rows: int = 4) -> tuple[Path, pd.DataFrame]:
    """The first ``rows`` labeled frames copied to ``folder``: the labels file and its table."""
    table = pd.read_csv(LABELS, header=[0, 1, 2], index_col=0).iloc[:rows]
    for name in table.index:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(FIXTURE / name, folder / name)
    table.to_csv(folder / "CollectedData.csv")
    return folder / "CollectedData.csv", table
