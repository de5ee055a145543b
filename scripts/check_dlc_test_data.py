"""Track IBL's ``dlc_test_data`` videos with our DeepLabCut cascade and measure how far our points are from IBL's.

    python scripts/check_dlc_test_data.py [--version 2.2] [--test-data URL|DIR] [--weights URL|DIR] [--device cpu]
                                          [--ibl-exact] [--max-median-px PX]

Downloads once, into iblvideo's cache, IBL's ``dlc_test_data_v<version>.zip`` and ``weights_v<version>.zip``
(from IBL's public bucket unless given; a folder is taken as it is), tracks a scratch copy of each camera's
``input/_iblrig_<cam>Camera.raw.mp4`` with ``iblvideo.dlc`` and compares with IBL's
``output/_ibl_<cam>Camera.dlc.pqt`` on the frames where both likelihoods are at least 0.9, as IBL's own
test (``tests/test_pose_dlc.py``) masks them. Prints, per camera and point, the frames compared and the
median, 95th percentile and largest |Δ| of x and y (px) and of the likelihood. Exits 0 when it ran: a
measurement; with ``--max-median-px`` a check, exiting 1 when a point's median |Δx| or |Δy| is larger.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

import iblvideo
from iblvideo.errors import IblVideoError
from iblvideo.io.session_files import read_parquet
from iblvideo.tracking.dlc_cascade import DEFAULT_URL, weights_dir
from iblvideo.tracking.download import fetch_zip

BUCKET = DEFAULT_URL.rsplit("/", 1)[0]  # IBL's resources/dlc
CONFIDENT = 0.9  # IBL's test compares only where both tables are at least this sure
Pairs = dict[str, tuple[Path, Path]]  # camera -> (IBL's input video, IBL's output table)


def test_data_members(bundle: zipfile.ZipFile) -> list[str]:
    """Every file of the test data's zip but what macOS adds."""
    return [name for name in bundle.namelist() if not name.endswith("/")
            and "__MACOSX" not in PurePosixPath(name).parts and not PurePosixPath(name).name.startswith("._")]


def pairs(root: Path) -> Pairs:
    """Each camera's input video and IBL's table of it, wherever in ``root`` the ``input`` folder lies."""
    found = {}
    for video in sorted(root.rglob("input/_iblrig_*Camera.raw.mp4")):
        camera = video.name.removeprefix("_iblrig_").removesuffix("Camera.raw.mp4")
        table = video.parent.parent / "output" / f"_ibl_{camera}Camera.dlc.pqt"
        if table.is_file():
            found[camera] = (video, table)
    if not found:
        raise IblVideoError(root / "input", "not IBL's dlc_test_data: no _iblrig_<cam>Camera.raw.mp4 here with its ../output/_ibl_<cam>Camera.dlc.pqt")
    return found


def test_data_dir(spec: str) -> Path:
    """The test data's folder: ``spec`` itself, or the zip at the URL ``spec`` fetched once into the cache."""
    return Path(spec) if Path(spec).is_dir() else fetch_zip(spec, test_data_members, verify=pairs)


def ibl_table(path: Path) -> pd.DataFrame:
    """IBL's table of a camera, refused in one line unless every column holds numbers."""
    table = read_parquet(path)
    if table is None or not all(pd.api.types.is_numeric_dtype(dtype) for dtype in table.dtypes):
        raise IblVideoError(path, "not a pose table: missing, or a column of something other than numbers")
    return table


def track(video: Path, camera: str, weights: Path, device: str, ibl_exact: bool) -> pd.DataFrame:
    """Our table of ``video``, tracked from a scratch copy so that nothing is written beside the cached one."""
    with tempfile.TemporaryDirectory(prefix="iblvideo-check-") as scratch:
        copy = Path(scratch) / video.name
        shutil.copyfile(video, copy)
        out = iblvideo.dlc(copy, weights=weights, device=device, force=True, camera=camera, ibl_exact=ibl_exact)
        return read_parquet(out)


def differences(ours: pd.DataFrame, ibl: pd.DataFrame) -> pd.DataFrame:
    """Per point of IBL's table: frames compared, and the median, 95th percentile and max |Δ| of x, y, likelihood."""
    rows = {}
    frames = min(len(ours), len(ibl))
    for point in dict.fromkeys(c.rsplit("_", 1)[0] for c in ibl.columns if c.endswith("_likelihood")):
        columns = [f"{point}_{c}" for c in ("x", "y", "likelihood")]
        if not set(columns) <= set(ours.columns):
            rows[point] = {"frames": 0}
            continue
        a, b = ours[columns].to_numpy(float)[:frames], ibl[columns].to_numpy(float)[:frames]
        both = (a[:, 2] >= CONFIDENT) & (b[:, 2] >= CONFIDENT) & np.isfinite(a).all(1) & np.isfinite(b).all(1)
        row: dict[str, float] = {"frames": int(both.sum())}
        delta = np.abs(a[both] - b[both])
        for k, c in enumerate(("x", "y", "l")):
            for name, stat in (("med", np.median), ("p95", lambda v: np.percentile(v, 95)), ("max", np.max)):
                row[f"{c} {name}"] = float(stat(delta[:, k])) if len(delta) else np.nan
        rows[point] = row
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("point")


def report(camera: str, ours: pd.DataFrame, ibl: pd.DataFrame, table: pd.DataFrame) -> None:
    """Print one camera's comparison: its columns, then a row per point."""
    same = list(ours.columns) == list(ibl.columns)
    print(f"{camera}: columns {'equal' if same else 'differ'} ({len(ours.columns)} ours, {len(ibl.columns)} IBL's); "
          f"{len(ours)} frames ours, {len(ibl)} IBL's; frames compared: both likelihoods >= {CONFIDENT}")
    if not same:
        print(f"  ours only: {sorted(set(ours.columns) - set(ibl.columns))}; IBL's only: {sorted(set(ibl.columns) - set(ours.columns))}")
    shown = table.copy()
    shown["frames"] = shown["frames"].astype(int).astype(str) + f"/{min(len(ours), len(ibl))}"
    print(shown.to_string(float_format=lambda v: f"{v:.4f}", na_rep="-"))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--version", default="2.2", help="the version of IBL's test data and weights (default 2.2)")
    p.add_argument("--test-data", metavar="URL|DIR", help="the test data's zip or folder (default IBL's dlc_test_data_v<version>.zip)")
    p.add_argument("--weights", metavar="URL|DIR", help="the weights' zip or folder (default IBL's weights_v<version>.zip)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--ibl-exact", action="store_true", help="map points back as IBL's pipeline did (see iblvideo.dlc)")
    p.add_argument("--max-median-px", type=float, metavar="PX", help="exit 1 when a point's median |Δx| or |Δy| is over PX")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    test_url = args.test_data or f"{BUCKET}/dlc_test_data_v{args.version}.zip"
    weights_url = args.weights or f"{BUCKET}/weights_v{args.version}.zip"
    worst: list[tuple[float, str]] = []
    try:
        found = pairs(test_data_dir(test_url))
        weights = weights_dir(weights_url)
        for camera, (video, table) in found.items():
            ibl = ibl_table(table)  # before the tracking, which takes a while
            ours = track(video, camera, weights, args.device, args.ibl_exact)
            figures = differences(ours, ibl)
            report(camera, ours, ibl, figures)
            worst += [(v, f"{camera} {p} {c}") for c in ("x med", "y med") for p, v in figures.get(c, pd.Series()).items() if np.isfinite(v)]
    except IblVideoError as err:
        print(f"check_dlc_test_data: error: {err}", file=sys.stderr)
        return 2
    if not worst:
        print("no frame where both tables are confident: nothing compared")
        return 1 if args.max_median_px is not None else 0
    value, where = max(worst)
    print(f"largest median |Δ|: {value:.4f} px ({where})")
    if args.max_median_px is not None and value > args.max_median_px:
        print(f"FAILED: over --max-median-px {args.max_median_px}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
