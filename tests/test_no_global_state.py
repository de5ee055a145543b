"""Library calls leave the process as they found it, so sessions tracked side by side in one process
(as Dask worker threads track them) come out as they do one after the other."""
from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from iblvideo import dlc, run_session
from iblvideo.io.alf import raw_video_path
from iblvideo.synth import synthesize_session
from session_data import copy_session

SEEDS = (11, 12)  # the demo weights were trained on seeds 101-106


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> list[Path]:
    """Two one-second sessions of the left camera, different mice."""
    root = tmp_path_factory.mktemp("rendered")
    return [synthesize_session(root, cameras=("left",), seconds=1, seed=seed) for seed in SEEDS]


def _process_state() -> dict[str, object]:
    """What a library call could leave changed for the rest of the process."""
    logger = logging.getLogger("iblvideo")
    return {
        "switch interval": sys.getswitchinterval(),
        "torch seed": torch.initial_seed(),
        "torch rng": torch.random.get_rng_state().tolist(),
        "torch threads": torch.get_num_threads(),
        "logger level": logger.level,
        "handler levels": [handler.level for handler in logger.handlers],
    }


@pytest.fixture
def unusual_state():
    """Values no library would pick by chance, so a call that sets its own is seen; the old ones afterwards."""
    interval, seed, rng = sys.getswitchinterval(), torch.initial_seed(), torch.random.get_rng_state()
    sys.setswitchinterval(0.0025)  # whole microseconds, as CPython keeps it: set back as read, it reads the same
    torch.manual_seed(20260101)
    torch.rand(3)  # the state moved on from the seed: a reseed with the same seed would show too
    yield
    sys.setswitchinterval(interval)
    torch.manual_seed(seed)
    torch.random.set_rng_state(rng)


def test_dlc_leaves_the_process_as_it_found_it(rendered, tmp_path, unusual_state):
    video = raw_video_path(copy_session(rendered[0], tmp_path, "mouse"), "left")
    before = _process_state()
    dlc(video, weights="demo")
    assert _process_state() == before


def _outputs(session: Path) -> dict[str, object]:
    """Every table and array that a run wrote into the session's ``alf/``, by name."""
    alf = session / "alf"
    tables = {path.name: pd.read_parquet(path) for path in alf.glob("*.pqt")}
    return {**tables, **{path.name: np.load(path) for path in alf.glob("*.npy")}}


def _assert_same(got: dict[str, object], expected: dict[str, object]) -> None:
    assert sorted(got) == sorted(expected)
    for name, value in expected.items():
        if isinstance(value, pd.DataFrame):
            pd.testing.assert_frame_equal(got[name], value, check_exact=True, obj=name)
        else:
            np.testing.assert_array_equal(got[name], value, err_msg=name)


def test_two_sessions_tracked_at_once_match_them_tracked_one_after_the_other(rendered, tmp_path):
    alone = [copy_session(source, tmp_path / "alone", f"mouse_{k}") for k, source in enumerate(rendered)]
    for session in alone:
        assert run_session(session, tracker="dlc", weights="demo").status == "Complete"

    together = [copy_session(source, tmp_path / "together", f"mouse_{k}") for k, source in enumerate(rendered)]
    results: dict[int, object] = {}
    start = threading.Barrier(len(together))

    def track(k: int) -> None:
        start.wait()
        results[k] = run_session(together[k], tracker="dlc", weights="demo")

    threads = [threading.Thread(target=track, args=(k,)) for k in range(len(together))]
    before = _process_state()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    after = _process_state()

    assert sorted(results) == [0, 1]  # a thread that raised leaves no result
    for k, session in enumerate(together):
        result = results[k]
        assert result.status == "Complete", result.error
        written = [*result.outputs, *(path for camera in result.cameras.values() for path in camera.outputs)]
        assert written and all(session in path.parents for path in written), written
        _assert_same(_outputs(session), _outputs(alone[k]))
    # the two mice differ: had the runs swapped or mixed their outputs, the comparison above would fail
    assert not _outputs(alone[0])["_ibl_leftCamera.dlc.pqt"].equals(_outputs(alone[1])["_ibl_leftCamera.dlc.pqt"])
    assert after == before  # what one run sets and restores, two overlapping runs must leave as it was too
