"""What the parity tests against ibllib share: its tolerance, the comparison, and a writable copy of a reference session."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

TOL = 1e-9  # ibllib sums in another order: differences stay near 1e-13


def assert_same(ours, theirs) -> None:
    ours, theirs = np.asarray(ours, float), np.asarray(theirs, float)
    assert ours.shape == theirs.shape
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=TOL)


def copy_session(tmp_path: Path, source: Path, name: str) -> Path:
    """A copy of the reference session ``source`` as ``<tmp_path>/<name>/2024-01-01/001``, for stages to write into."""
    session = tmp_path / name / "2024-01-01" / "001"
    shutil.copytree(source, session)
    return session
