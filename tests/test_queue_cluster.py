"""Tasks on a real Dask cluster on loopback: two threaded workers, each offering one GPU."""
from __future__ import annotations

from pathlib import Path

import pytest
from distributed import LocalCluster

from iblvideo.cli import main
from iblvideo.sessions.queue import Queue
from session_data import copy_session, rendered_session


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    return rendered_session(tmp_path_factory)


def test_queue_runs_on_a_dask_cluster_one_session_per_gpu(rendered, tmp_path, capsys):
    sessions = [copy_session(rendered, tmp_path / "data", f"mouse_{k}") for k in range(3)]
    db = str(tmp_path / "queue.sqlite")
    Queue(db).add(str(s) for s in sessions)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol="tcp", host="127.0.0.1",
                      dashboard_address=None, resources={"GPU": 1}) as cluster:
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        code = main(["-q", "queue", "run", "--db", db, "--scheduler", cluster.scheduler_address, "--tracker", "truth", "--cameras", "body"])
    assert code == 0, capsys.readouterr().err
    tasks = Queue(db).tasks()
    assert [t.status for t in tasks] == ["Complete"] * 3
    assert all(t.worker.endswith("/dask") and t.attempts == 1 and "body" in t.log for t in tasks)
    for session in sessions:
        assert (session / "alf" / "bodyCamera.ROIMotionEnergy.npy").exists()


def test_a_cluster_without_gpus_is_refused(tmp_path, capsys):
    db = str(tmp_path / "queue.sqlite")
    Queue(db).add(["s1"])
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp", host="127.0.0.1", dashboard_address=None) as cluster:
        assert main(["-q", "queue", "run", "--db", db, "--scheduler", cluster.scheduler_address]) == 2
    assert "--resources GPU=1" in capsys.readouterr().err
