"""Smooth the real IBL ensembles with the ``ensemble-kalman-smoother`` package: the reference for tests/test_eks.py.

Run in a separate environment holding that package (it brings JAX and dynamax, which iblvideo does not need)::

    python3 -m venv /tmp/eks-venv && /tmp/eks-venv/bin/pip install ensemble-kalman-smoother==4.6.2
    /tmp/eks-venv/bin/python benchmarks/eks_reference.py

Writes ``tests/data/ibl-ensembles/eks-reference/<name>.csv.gz`` (the smoothed x, y and posterior
variances eks returns, relabelled to the points they belong to; see PUPIL_LABELS; the pupil's posterior
variances are left out: eks 4.6.2 reads them off the wrong diagonal entries) and prints eks's run times.
"""
from __future__ import annotations

import importlib.metadata
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from eks.core import ensemble
from eks.ibl_pupil_smoother import ensemble_kalman_smoother_ibl_pupil
from eks.marker_array import input_dfs_to_markerArray
from eks.singlecam_smoother import ensemble_kalman_smoother_singlecam

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "ibl-ensembles"
OUT = DATA / "eks-reference"
PAW_STEM = "3f859b5c-e73a-4044-b49e-34bb81e96715"
PUPIL_STEM = "5285c561-80da-4563-8694-739da92e5dd0"
PUPIL_ORDER = ["pupil_top_r", "pupil_bottom_r", "pupil_right_r", "pupil_left_r"]
# eks 4.6.2 labels its pupil output with PUPIL_ORDER but fills it top, right, bottom, left: the
# columns it calls pupil_bottom_r hold the right point and those it calls pupil_right_r the bottom one
PUPIL_LABELS = {"pupil_top_r": "pupil_top_r", "pupil_bottom_r": "pupil_right_r", "pupil_right_r": "pupil_bottom_r", "pupil_left_r": "pupil_left_r"}


def members(folder: str, pattern: str) -> list[pd.DataFrame]:
    """The five ensemble members' tables, flattened to ``<point>_<coord>`` columns."""
    tables = []
    for path in sorted((DATA / folder).glob(pattern)):
        table = pd.read_csv(path, header=[0, 1, 2], index_col=0)
        table.columns = [f"{point}_{coord}" for _, point, coord in table.columns]
        tables.append(table)
    return tables


def flat(table: pd.DataFrame, keep: tuple[str, ...], rename: dict[str, str] | None = None) -> pd.DataFrame:
    """eks's (scorer, bodyparts, coords) table as ``<point>_<field>`` columns, fields ``keep`` only."""
    rename = rename or {}
    return pd.DataFrame({f"{rename.get(point, point)}_{field}": table[column].to_numpy()
                         for column in table.columns for _, point, field in [column] if field in keep})


def main() -> None:
    OUT.mkdir(exist_ok=True)
    times = {}
    for camera, s in (("left", 10.0), ("right", 10.0)):
        tables = members("ibl-paw", f"{PAW_STEM}.{camera}.rng=*.csv.gz")
        points = ["paw_l", "paw_r"]
        array = input_dfs_to_markerArray([tables], points, [""])
        ensemble(array)  # JIT warm-up, so the timing below is the smoothing itself
        start = time.perf_counter()
        smoothed, _ = ensemble_kalman_smoother_singlecam(array, points, smooth_param=s, avg_mode="median", var_mode="confidence_weighted_var")
        times[f"paw_{camera}"] = time.perf_counter() - start
        flat(smoothed, ("x", "y", "x_posterior_var", "y_posterior_var")).to_csv(OUT / f"paw_{camera}.csv.gz", index=False, float_format="%.9g")
    tables = members("ibl-pupil", f"{PUPIL_STEM}.left.rng=*.csv.gz")
    array = input_dfs_to_markerArray([tables], PUPIL_ORDER, [""])
    start = time.perf_counter()
    smoothed, _ = ensemble_kalman_smoother_ibl_pupil(array, PUPIL_ORDER, smooth_params=[0.9999, 0.999], avg_mode="median", var_mode="confidence_weighted_var")
    times["pupil"] = time.perf_counter() - start
    flat(smoothed, ("x", "y"), PUPIL_LABELS).to_csv(OUT / "pupil.csv.gz", index=False, float_format="%.9g")
    info = {"eks": importlib.metadata.version("ensemble-kalman-smoother"), "jax": importlib.metadata.version("jax"),
            "seconds": {k: round(v, 3) for k, v in times.items()}}
    (OUT / "info.json").write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(info, indent=2), np.__version__)


if __name__ == "__main__":
    main()
