"""Smooth the real IBL ensembles with the ``ensemble-kalman-smoother`` package: the references for tests/test_eks.py.

Run in a separate environment holding that package (it brings JAX, which iblvideo does not need),
at either release the tests pin::

    python3.11 -m venv /tmp/eks3 && /tmp/eks3/bin/pip install ensemble-kalman-smoother==3.0.0
    /tmp/eks3/bin/python benchmarks/eks_reference.py      # -> eks-reference-3.0.0/
    python3 -m venv /tmp/eks4 && /tmp/eks4/bin/pip install ensemble-kalman-smoother==4.6.2
    /tmp/eks4/bin/python benchmarks/eks_reference.py      # -> eks-reference/

eks 3.0.0 is called the way IBL's pipeline calls it (iblvideo v3.2.0, pose_lp_utils.run_eks): each
member's Lightning Pose csv through ``eks.utils.convert_lp_dlc``, the eye ensemble through
``ensemble_kalman_smoother_ibl_pupil`` with smooth_params [0.9999, 0.999], the paws through
``ensemble_kalman_smoother_singlecam`` at s = 10 and s = 100 (IBL's two frame-rate cases), median and
``conf_weighted_var``. Its tables are written as eks labels them: the pupil columns keep eks 3.0.0's
mislabelling (see PUPIL_LABELS) and its posterior variances read off the wrong diagonal entries, and
the paws' posterior variances are before IBL's ×100. ``pupil_posterior_var`` holds each pupil point's
own posterior variances, from a second eks run on the transposed pupil (see TRANSPOSED_POINT).

eks 3.0.0 pins no JAX; pip gave 0.10.2 (see info.json). Under JAX 0.4.36 its paws move by under 1e-5 px
and 1e-4 px² (float32 rounding); its pupil smoother is NumPy and does not move.

eks 4.6.2 is called on the same members through its MarkerArray API; its pupil x, y are relabelled to
the points they belong to and its pupil posterior variances left out.

Writes ``<name>.csv.gz`` per ensemble and ``info.json`` (versions, eks's run times).
"""
from __future__ import annotations

import importlib.metadata
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "ibl-ensembles"
PAW_STEM = "3f859b5c-e73a-4044-b49e-34bb81e96715"
PUPIL_STEM = "5285c561-80da-4563-8694-739da92e5dd0"
PUPIL_ORDER = ["pupil_top_r", "pupil_bottom_r", "pupil_right_r", "pupil_left_r"]
# eks (3.0.0 and 4.6.2) labels its pupil output with PUPIL_ORDER but fills it top, right, bottom, left:
# the columns it calls pupil_bottom_r hold the right point and those it calls pupil_right_r the bottom one
PUPIL_LABELS = {"pupil_top_r": "pupil_top_r", "pupil_bottom_r": "pupil_right_r", "pupil_right_r": "pupil_bottom_r", "pupil_left_r": "pupil_left_r"}
ALL_FIELDS = ("x", "y", "likelihood", "x_ens_median", "y_ens_median", "x_ens_var", "y_ens_var", "x_posterior_var", "y_posterior_var")
PAW_S = {"3.0.0": (10.0, 100.0), "4.6.2": (10.0,)}  # IBL: 100 for 25-35 Hz videos, else its eks_params s = 10


def reference_folder(version: str) -> Path:
    """Where the references of eks ``version`` live (4.6.2's came first and kept the plain name)."""
    return DATA / ("eks-reference" if version == "4.6.2" else f"eks-reference-{version}")


def paw_reference_name(camera: str, s: float, version: str) -> str:
    """File stem of a paw reference; eks 3.0.0's are made at both of IBL's step variances."""
    return f"paw_{camera}" if version == "4.6.2" else f"paw_{camera}_s{s:g}"


def member_files(folder: str, pattern: str) -> list[Path]:
    return sorted((DATA / folder).glob(pattern))


def flat(table: pd.DataFrame, keep: tuple[str, ...], rename: dict[str, str] | None = None) -> pd.DataFrame:
    """eks's (scorer, bodyparts, coords) table as ``<point>_<field>`` columns, fields ``keep`` only."""
    rename = rename or {}
    return pd.DataFrame({f"{rename.get(point, point)}_{field}": table[column].to_numpy()
                         for column in table.columns for _, point, field in [column] if field in keep})


Tables = dict[str, pd.DataFrame]


def timed(seconds: dict[str, float], name: str, smoother: Callable[..., tuple], *args: object, **kwargs: object) -> pd.DataFrame:
    """eks's smoothed table, its run time under ``seconds[name]``."""
    start = time.perf_counter()
    table = smoother(*args, **kwargs)[0]
    seconds[name] = round(time.perf_counter() - start, 3)
    return table


def eks3_tables(seconds: dict[str, float]) -> Tables:
    """eks 3.0.0's tables, called as IBL's run_eks calls it."""
    from eks.ibl_pupil_smoother import ensemble_kalman_smoother_ibl_pupil
    from eks.singlecam_smoother import ensemble_kalman_smoother_singlecam
    from eks.utils import convert_lp_dlc

    def load(paths: list[Path]) -> tuple[list[pd.DataFrame], list[str]]:
        markers_list = []
        for path in paths:
            markers = pd.read_csv(path, header=[0, 1, 2], index_col=0)
            keypoint_names = [c[1] for c in markers.columns[::3]]
            markers_list.append(convert_lp_dlc(markers, keypoint_names, model_name=markers.columns[0][0]))
        return markers_list, keypoint_names

    out = {}
    for camera in ("left", "right"):
        markers_list, keypoint_names = load(member_files("ibl-paw", f"{PAW_STEM}.{camera}.rng=*.csv.gz"))
        for s in PAW_S["3.0.0"]:
            name = paw_reference_name(camera, s, "3.0.0")
            out[name] = flat(timed(seconds, name, ensemble_kalman_smoother_singlecam, markers_list=markers_list, keypoint_names=keypoint_names,
                                   smooth_param=s, avg_mode="median", var_mode="conf_weighted_var"), ALL_FIELDS)
    markers_list, _ = load(member_files("ibl-pupil", f"{PUPIL_STEM}.left.rng=*.csv.gz"))
    pupil_arguments = {"smooth_params": [0.9999, 0.999], "avg_mode": "median", "var_mode": "conf_weighted_var"}
    # labels as published, see PUPIL_LABELS
    out["pupil"] = flat(timed(seconds, "pupil", ensemble_kalman_smoother_ibl_pupil, markers_list=markers_list, **pupil_arguments), ALL_FIELDS)
    transposed = ensemble_kalman_smoother_ibl_pupil(markers_list=[markers.rename(columns=transposed_name) for markers in markers_list],
                                                    **pupil_arguments)[0]
    out["pupil_posterior_var"] = pupil_posterior_variances(out["pupil"], flat(transposed, ALL_FIELDS))
    return out


# The pupil model is the same with x and y swapped and the points renamed to where the swap takes
# them (top <-> left, bottom <-> right): eks 3.0.0 run that way shows the diagonal entries its
# published table skips. Rows of the 8 x 8 posterior covariance: PUPIL_ORDER's x, y in turn.
TRANSPOSED_POINT = {"pupil_top_r": "pupil_left_r", "pupil_left_r": "pupil_top_r", "pupil_bottom_r": "pupil_right_r", "pupil_right_r": "pupil_bottom_r"}
SWAPPED_COORD = {"x": "y", "y": "x", "likelihood": "likelihood"}
SHOWN_ENTRIES = 5  # eks 3.0.0 reads block k's posterior variances off entries k and k + 1: 0..4 appear


def transposed_name(column: str) -> str:
    point, coord = column.rsplit("_", 1)
    return f"{TRANSPOSED_POINT[point]}_{SWAPPED_COORD[coord]}"


def shown_entry(table: pd.DataFrame, j: int) -> np.ndarray:
    """Diagonal entry ``j`` (< SHOWN_ENTRIES) of the posterior covariance, where eks 3.0.0's pupil table shows it."""
    label, field = (PUPIL_ORDER[j], "x") if j < len(PUPIL_ORDER) else (PUPIL_ORDER[j - 1], "y")
    return table[f"{label}_{field}_posterior_var"].to_numpy()


def pupil_posterior_variances(table: pd.DataFrame, transposed: pd.DataFrame) -> pd.DataFrame:
    """The posterior variance of each pupil point's x and y under its own name, from eks 3.0.0's two runs."""
    columns, agreement = {}, 0.0
    for k, point in enumerate(PUPIL_ORDER):
        for c, coord in enumerate("xy"):
            j = 2 * k + c
            j_transposed = 2 * PUPIL_ORDER.index(TRANSPOSED_POINT[point]) + 1 - c
            if j < SHOWN_ENTRIES and j_transposed < SHOWN_ENTRIES:
                agreement = max(agreement, np.abs(shown_entry(table, j) - shown_entry(transposed, j_transposed)).max())
            columns[f"{point}_{coord}_posterior_var"] = shown_entry(table, j) if j < SHOWN_ENTRIES else shown_entry(transposed, j_transposed)
    print(f"pupil posterior variances shown by both runs agree within {agreement:.1e}")
    return pd.DataFrame(columns)


def eks4_tables(seconds: dict[str, float]) -> Tables:
    """eks 4.6.2's tables through its MarkerArray API."""
    from eks.core import ensemble
    from eks.ibl_pupil_smoother import ensemble_kalman_smoother_ibl_pupil
    from eks.marker_array import input_dfs_to_markerArray
    from eks.singlecam_smoother import ensemble_kalman_smoother_singlecam

    def members(paths: list[Path]) -> list[pd.DataFrame]:
        tables = []
        for path in paths:
            table = pd.read_csv(path, header=[0, 1, 2], index_col=0)
            table.columns = [f"{point}_{coord}" for _, point, coord in table.columns]
            tables.append(table)
        return tables

    out = {}
    points = ["paw_l", "paw_r"]
    for camera in ("left", "right"):
        array = input_dfs_to_markerArray([members(member_files("ibl-paw", f"{PAW_STEM}.{camera}.rng=*.csv.gz"))], points, [""])
        ensemble(array)  # JIT warm-up, so the timing below is the smoothing itself
        for s in PAW_S["4.6.2"]:
            name = paw_reference_name(camera, s, "4.6.2")
            table = timed(seconds, name, ensemble_kalman_smoother_singlecam, array, points, smooth_param=s, avg_mode="median",
                          var_mode="confidence_weighted_var")
            out[name] = flat(table, ("x", "y", "x_posterior_var", "y_posterior_var"))
    array = input_dfs_to_markerArray([members(member_files("ibl-pupil", f"{PUPIL_STEM}.left.rng=*.csv.gz"))], PUPIL_ORDER, [""])
    table = timed(seconds, "pupil", ensemble_kalman_smoother_ibl_pupil, array, PUPIL_ORDER, smooth_params=[0.9999, 0.999],
                  avg_mode="median", var_mode="confidence_weighted_var")
    out["pupil"] = flat(table, ("x", "y"), PUPIL_LABELS)
    return out


def main() -> None:
    version = importlib.metadata.version("ensemble-kalman-smoother")
    if version not in PAW_S:
        raise SystemExit(f"ensemble-kalman-smoother {version}: the references are made with {' or '.join(PAW_S)}")
    out = reference_folder(version)
    out.mkdir(exist_ok=True)
    seconds: dict[str, float] = {}
    tables = eks3_tables(seconds) if version == "3.0.0" else eks4_tables(seconds)
    for name, table in tables.items():
        table.to_csv(out / f"{name}.csv.gz", index=False, float_format="%.9g")
    info = {"eks": version, **{package: importlib.metadata.version(package) for package in ("jax", "jaxlib", "numpy", "pandas")},
            "seconds": seconds}
    (out / "info.json").write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(info, indent=2), np.__version__)


if __name__ == "__main__":
    main()
