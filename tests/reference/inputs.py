"""Inputs shared by the tests and the ibllib reference script (numpy and pandas only, so both venvs import it).

- ``ensemble_median``: the real IBL ensembles in tests/data/ibl-ensembles, as one IBL pose table
  (``<point>_x/_y/_likelihood``) holding the per-frame median of the five networks.
- ``fake_session``: a small deterministic ALF session (pose tables, camera times, trials) with the
  awkward cases QC must survive; written once by the reference script and committed.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parents[1] / "data"
ENSEMBLES = DATA / "ibl-ensembles"
FAKE_SESSIONS = DATA / "fake-sessions"
REFERENCE = Path(__file__).resolve().parent / "ibllib"

PAW_SESSION = "3f859b5c-e73a-4044-b49e-34bb81e96715"
PUPIL_SESSION = "5285c561-80da-4563-8694-739da92e5dd0"
SIDE_POINTS = (
    "pupil_top_r", "pupil_right_r", "pupil_bottom_r", "pupil_left_r",
    "nose_tip", "tongue_end_r", "tongue_end_l", "paw_r", "paw_l",
)


def ensemble_median(kind: str, camera: str) -> pd.DataFrame:
    """Median over the five networks (rng=0..4) of ``ibl-<kind>/<session>.<camera>.rng=K.csv.gz``."""
    session = PAW_SESSION if kind == "paw" else PUPIL_SESSION
    tables = []
    for seed in range(5):
        table = pd.read_csv(ENSEMBLES / f"ibl-{kind}" / f"{session}.{camera}.rng={seed}.csv.gz", header=[0, 1, 2], index_col=0)
        table.columns = [f"{point}_{coord}" for _, point, coord in table.columns]
        tables.append(table.to_numpy(dtype=float))
    return pd.DataFrame(np.median(np.stack(tables), axis=0), columns=table.columns)


def ensemble_times(camera: str) -> np.ndarray:
    return np.load(ENSEMBLES / "ibl-paw" / f"{PAW_SESSION}.timestamps.{camera}.npy")


def stim_on_times(times: np.ndarray) -> np.ndarray:
    """Made-up stimulus onsets every 1.7 s over the recording (the ensembles ship no trials), one NaN."""
    onsets = np.arange(times[0] + 0.3, times[-1], 1.7)
    onsets[len(onsets) // 2] = np.nan  # IBL keeps NaN onsets; they land on the last frame
    return onsets


# ---- fake sessions ---------------------------------------------------------------------------

_FPS = {"left": 60.0, "right": 150.0, "body": 30.0}
# mean positions inside (good) or outside (bad) IBL's boxes, in each camera's pixels
_CENTRE = {"left": (480.0, 320.0), "right": (440.0, 190.0), "body": (330.0, 200.0)}
_POINT_OFFSET = {
    "pupil": (-60, -68), "nose_tip": (120, -30), "tongue_end_r": (100, 40), "tongue_end_l": (95, 45), "paw_r": (-40, 120), "paw_l": (-80, 110),
}


def _side_pose(rng: np.random.Generator, camera: str, n: int, seconds: float) -> tuple[pd.DataFrame, np.ndarray]:
    """Side-camera pose: a breathing pupil, a jittering nose, wandering paws, tongue seen only while licking."""
    scale = 2.0 if camera == "left" else 1.0  # the left camera films at twice the right's resolution
    t = np.arange(n) / _FPS[camera]
    columns: dict[str, np.ndarray] = {}
    radius = scale * (6 + 2 * np.sin(2 * np.pi * t / 3.1) + 0.8 * np.sin(2 * np.pi * t / 0.9))
    centre = np.array(_CENTRE[camera]) + np.array(_POINT_OFFSET["pupil"]) * scale / 2
    for name, (dx, dy) in {"top": (0, -1), "right": (1, 0), "bottom": (0, 1), "left": (-1, 0)}.items():
        columns[f"pupil_{name}_r_x"] = centre[0] + dx * radius + rng.normal(0, 0.3 * scale, n)
        columns[f"pupil_{name}_r_y"] = centre[1] + dy * radius + rng.normal(0, 0.3 * scale, n)
        columns[f"pupil_{name}_r_likelihood"] = np.where(rng.random(n) < 0.05, rng.random(n) * 0.9, 0.99)
    lick_frames = np.unique(rng.choice(np.arange(5, n - 5), size=max(2, int(seconds * 2)), replace=False))
    licking = np.zeros(n, bool)
    for frame in lick_frames:
        licking[frame:frame + 3] = True
    for point in ("nose_tip", "paw_r", "paw_l", "tongue_end_r", "tongue_end_l"):
        dx, dy = _POINT_OFFSET[point]
        walk = np.cumsum(rng.normal(0, 0.5 * scale, (2, n)), axis=1) if point.startswith("paw") else rng.normal(0, 0.4 * scale, (2, n))
        columns[f"{point}_x"] = _CENTRE[camera][0] + dx * scale / 2 + walk[0]
        columns[f"{point}_y"] = _CENTRE[camera][1] + dy * scale / 2 + walk[1]
        if point.startswith("tongue"):
            columns[f"{point}_likelihood"] = np.where(licking, 0.97, 0.02)
        else:
            columns[f"{point}_likelihood"] = np.where(rng.random(n) < 0.08, rng.random(n) * 0.9, 0.995)
    ordered = {f"{p}_{c}": columns[f"{p}_{c}"] for p in SIDE_POINTS for c in ("x", "y", "likelihood")}
    return pd.DataFrame(ordered), lick_frames


def _body_pose(rng: np.random.Generator, n: int) -> pd.DataFrame:
    x, y = _CENTRE["body"]
    return pd.DataFrame({
        "tail_start_x": x + rng.normal(0, 3, n), "tail_start_y": y + rng.normal(0, 3, n),
        "tail_start_likelihood": np.where(rng.random(n) < 0.1, 0.5, 0.99),
    })


def write_fake_session(root: Path, name: str, seed: int, seconds: float = 10.0) -> Path:
    """Write one fake ALF session; ``name`` picks the awkward case (good, short_times, blind)."""
    rng = np.random.default_rng(seed)
    alf = root / name / "2024-01-01" / "001" / "alf"
    alf.mkdir(parents=True, exist_ok=True)
    for camera in ("left", "right", "body"):
        n = int(seconds * _FPS[camera])
        pose = _body_pose(rng, n) if camera == "body" else _side_pose(rng, camera, n, seconds)[0]
        times = 100.0 + np.arange(n) / _FPS[camera] + rng.normal(0, 2e-4, n)
        if name == "short_times" and camera == "right":
            times = times[:-7]  # a camera that dropped frames from its times: length mismatch
        if name == "short_times" and camera == "body":
            times = None  # no times file at all
        if name == "blind" and camera == "left":
            pose["paw_l_likelihood"] = 0.1  # a trace that is NaN throughout
            pose.loc[: n // 3, [c for c in pose.columns if c.startswith("pupil") and c.endswith("likelihood")]] = 0.2
        if name == "blind" and camera == "right":
            pose["paw_r_likelihood"] = np.where(rng.random(n) < 0.15, 0.1, 0.99)  # paw NaN often: WARNING
            for column in [c for c in pose.columns if c.startswith("pupil") and not c.endswith("likelihood")]:
                pose[column] += rng.normal(0, 8, n)  # pupil points jumping about: an unstable diameter
        if name == "short_times" and camera == "left":
            pose[["tongue_end_l_likelihood", "tongue_end_r_likelihood"]] = 0.97  # tongue points stuck on the spout
        pose.to_parquet(alf / f"_ibl_{camera}Camera.dlc.pqt")
        if times is not None:
            np.save(alf / f"_ibl_{camera}Camera.times.npy", times)
    onsets = 100.0 + np.arange(1.0, seconds - 1.0, 2.3)
    pd.DataFrame({"stimOn_times": onsets, "feedback_times": onsets + 0.4}).to_parquet(alf / "_ibl_trials.table.pqt")
    return alf.parent


FAKE_CASES = {"good": 1, "short_times": 2, "blind": 3}
# `iblvideo synth DIR --seconds 10 --seed 0` (synth as of commit 7890adf) with its ground-truth tracks copied to alf/_ibl_<cam>Camera.dlc.pqt,
# its true pupil diameters and licks in truth/, and the right camera's video (for motion energy)
SYNTH_SESSION = DATA / "synth-session" / "synth_mouse_0" / "2026-01-01" / "001"


def reference_sessions() -> dict[str, Path]:
    """Every committed session ibllib's pipeline is run on, by name."""
    sessions = {name: FAKE_SESSIONS / name / "2024-01-01" / "001" for name in FAKE_CASES}
    return {**sessions, "synth": SYNTH_SESSION}


# ---- Lightning Pose sessions -----------------------------------------------------------------

# IBL's Lightning Pose table (alf/_ibl_<cam>Camera.lightningPose.pqt): each network's keypoints in its
# own order; an ensemble's points carry the ensemble's median and variance and the smoother's variance
LP_NETWORKS = {
    "left": (("nose_tip",), ("pupil_top_r", "pupil_right_r", "pupil_bottom_r", "pupil_left_r"), ("paw_r", "paw_l"),
             ("tongue_end_r", "tongue_end_l", "tube_top", "tube_bottom")),
    "body": (("tail_start",),),
}
LP_NETWORKS["right"] = LP_NETWORKS["left"]
LP_ENSEMBLE_POINTS = ("pupil_top_r", "pupil_right_r", "pupil_bottom_r", "pupil_left_r", "paw_r", "paw_l")
LP_ENSEMBLE_FIELDS = ("x", "y", "likelihood", "x_ens_median", "y_ens_median", "x_ens_var", "y_ens_var", "x_posterior_var", "y_posterior_var")
_TUBE = {"tube_top": (110, 10), "tube_bottom": (112, 30)}  # the spout, near the tongue


def _smoothed(values: np.ndarray, frames: int = 5) -> np.ndarray:
    """A centred running mean: stands in for the Kalman smoother's output beside the ensemble median."""
    return pd.Series(values).rolling(frames, center=True, min_periods=1).mean().to_numpy()


def lp_table(rng: np.random.Generator, pose: pd.DataFrame, camera: str) -> pd.DataFrame:
    """An IBL-layout Lightning Pose table from a pose table's tracks: ``pose``'s x and y are each ensemble's
    median (jumping away on the frames the ensemble doubts), the smoothed x and y a running mean of them."""
    n, scale = len(pose), 2.0 if camera == "left" else 1.0
    columns: dict[str, np.ndarray] = {}
    for point in (p for network in LP_NETWORKS[camera] for p in network):
        if point in _TUBE:
            dx, dy = _TUBE[point]
            columns[f"{point}_x"] = _CENTRE[camera][0] + dx * scale / 2 + rng.normal(0, 0.3, n)
            columns[f"{point}_y"] = _CENTRE[camera][1] + dy * scale / 2 + rng.normal(0, 0.3, n)
            columns[f"{point}_likelihood"] = np.where(rng.random(n) < 0.03, 0.4, 0.98)
            continue
        x, y, likelihood = (pose[f"{point}_{c}"].to_numpy(float) for c in ("x", "y", "likelihood"))
        if point not in LP_ENSEMBLE_POINTS:
            columns.update({f"{point}_x": x, f"{point}_y": y, f"{point}_likelihood": likelihood})
            continue
        doubted = likelihood < 0.9
        median_x, median_y = x + doubted * rng.normal(0, 15 * scale, n), y + doubted * rng.normal(0, 15 * scale, n)
        ens_var = rng.gamma(2.0, 0.5, (2, n)) * (1 + 40 * doubted)
        columns.update({
            f"{point}_x": _smoothed(median_x) + rng.normal(0, 0.05, n), f"{point}_y": _smoothed(median_y) + rng.normal(0, 0.05, n),
            f"{point}_likelihood": likelihood,
            f"{point}_x_ens_median": median_x, f"{point}_y_ens_median": median_y,
            f"{point}_x_ens_var": ens_var[0], f"{point}_y_ens_var": ens_var[1],
            f"{point}_x_posterior_var": ens_var[0] / 4, f"{point}_y_posterior_var": ens_var[1] / 4,
        })
    return pd.DataFrame(columns)


def write_lp_session(root: Path, name: str, seed: int, seconds: float = 5.0) -> Path:
    """Write one fake ALF session of Lightning Pose tables; ``name`` picks the case (lp_good, lp_awkward)."""
    rng = np.random.default_rng(seed)
    alf = root / name / "2024-01-01" / "001" / "alf"
    alf.mkdir(parents=True, exist_ok=True)
    for camera in ("left", "right", "body"):
        n = int(seconds * _FPS[camera])
        pose = lp_table(rng, _body_pose(rng, n) if camera == "body" else _side_pose(rng, camera, n, seconds)[0], camera)
        times = 100.0 + np.arange(n) / _FPS[camera] + rng.normal(0, 2e-4, n)
        if name == "lp_awkward" and camera == "left":
            pose[["tongue_end_l_likelihood", "tongue_end_r_likelihood"]] = 0.97  # tongue points stuck on the spout
            pose["paw_l_likelihood"] = 0.1  # a trace that is NaN throughout
            pose[["tube_top_likelihood", "tube_bottom_likelihood"]] = 0.1  # the spout's traces may be NaN throughout
        if name == "lp_awkward" and camera == "right":
            times = times[:-7]  # times shorter than the tracks: IBL's QC runs, its features skip licks
            pose[[c for c in pose.columns if c.endswith(("_x", "_x_ens_median"))]] += 200.0  # every point off IBL's box
        if name == "lp_awkward" and camera == "body":
            times = None  # no times: IBL skips the camera's QC
        pose.to_parquet(alf / f"_ibl_{camera}Camera.lightningPose.pqt")
        if times is not None:
            np.save(alf / f"_ibl_{camera}Camera.times.npy", times)
    onsets = 100.0 + np.arange(1.0, seconds - 1.0, 2.3)
    pd.DataFrame({"stimOn_times": onsets, "feedback_times": onsets + 0.4}).to_parquet(alf / "_ibl_trials.table.pqt")
    return alf.parent


LP_CASES = {"lp_good": 11, "lp_awkward": 12}


# the tables iblvideo's lightning-pose tracker wrote, run_session on test_trackers_end_to_end's session
# (its seeded network set, 0.2 s of the left and body cameras), with that session's videos, times and trials
LP_TRACKED_SESSION = DATA / "lp-tracked" / "mouse_lp" / "2026-01-01" / "001"
LP_TRACKED_FILES = ("raw_video_data/_iblrig_leftCamera.raw.mp4", "raw_video_data/_iblrig_bodyCamera.raw.mp4", "alf/_ibl_trials.table.pqt",
                    *(f"alf/_ibl_{c}Camera.{what}" for c in ("left", "body") for what in ("lightningPose.pqt", "times.npy")))


def lp_sessions() -> dict[str, Path]:
    """Every committed Lightning Pose session ibllib's PostLP is run on, by name."""
    return {**{name: FAKE_SESSIONS / name / "2024-01-01" / "001" for name in LP_CASES}, "lp_tracked": LP_TRACKED_SESSION}


def write_lp_tracked_session() -> Path:
    """Track test_trackers_end_to_end's session with Lightning Pose and keep LP_TRACKED_FILES (iblvideo's venv only)."""
    import shutil
    import sys
    import tempfile

    sys.path.insert(0, str(DATA.parent))
    from iblvideo.sessions.session import run_session
    from iblvideo.synth import synthesize_session
    from lp_network_set import write_network_set
    from test_trackers_end_to_end import CAMERAS_TRACKED, MEMBERS, SECONDS, SIZE

    with tempfile.TemporaryDirectory() as tmp:
        session = synthesize_session(Path(tmp) / "rendered", cameras=CAMERAS_TRACKED, seconds=SECONDS, seed=3)
        result = run_session(session, tracker="lightning-pose", weights=write_network_set(Path(tmp) / "networks_v2.2", MEMBERS, SIZE))
        assert result.status == "Complete", result.error
        shutil.rmtree(LP_TRACKED_SESSION.parents[2], ignore_errors=True)
        for name in LP_TRACKED_FILES:
            (LP_TRACKED_SESSION / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(session / name, LP_TRACKED_SESSION / name)
    return LP_TRACKED_SESSION


# ---- motion-energy videos --------------------------------------------------------------------

ME_SESSION = DATA / "motion-energy" / "mouse" / "2024-01-01" / "001"
LP_ME_SESSION = DATA / "motion-energy" / "lp_mouse" / "2024-01-01" / "001"  # only Lightning Pose tables; ME_SESSION's videos
ME_SIZE = {"left": (256, 208), "body": (224, 192)}  # (width, height): small stand-ins for the rig cameras


def write_motion_video(camera: str, n: int = 48, seed: int = 7) -> Path:
    """A small H.264 video (yuv420p, limited range like the rigs') of textured blobs moving over noise."""
    import av  # only the fixture writer needs PyAV

    rng = np.random.default_rng(seed)
    width, height = ME_SIZE[camera]
    path = ME_SESSION / "raw_video_data" / f"_iblrig_{camera}Camera.raw.mp4"
    path.parent.mkdir(parents=True, exist_ok=True)
    background = rng.integers(30, 200, (height, width)).astype(float)
    rows, cols = np.mgrid[:height, :width]
    with av.open(str(path), "w", format="mp4", options={"fflags": "+bitexact"}) as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "18", "threads": "1", "flags": "+bitexact"}
        for i in range(n):
            image = background + 15 * np.sin(i / 5)
            for k in range(3):
                cx, cy = width * (0.3 + 0.2 * k) + 20 * np.sin(i / (4 + k)), height * 0.5 + 25 * np.cos(i / (3 + k))
                image[(cols - cx) ** 2 + (rows - cy) ** 2 < (12 + 4 * k) ** 2] = 240 - 60 * k
            frame = av.VideoFrame.from_ndarray(np.clip(image, 0, 255).astype(np.uint8), format="gray")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def write_motion_lp_pose(camera: str, seed: int = 9) -> Path:
    """A Lightning Pose table for the motion video (in its own session: one tracker's tables only), whose
    ensemble medians would place the ROI elsewhere than its smoothed points do, and whose doubted frames
    pull the mean away unless thresholded. Made from the DLC table ``write_motion_pose`` wrote."""
    rng = np.random.default_rng(seed)
    pose = pd.read_parquet(ME_SESSION / "alf" / f"_ibl_{camera}Camera.dlc.pqt")
    n = len(pose)
    for point in [c[: -len("_likelihood")] for c in pose.columns if c.endswith("_likelihood")]:
        doubted = pose[f"{point}_likelihood"].to_numpy() < 0.9
        for axis in "xy":
            pose[f"{point}_{axis}"] += doubted * rng.normal(25, 5, n)  # what a threshold must drop
            pose[f"{point}_{axis}_ens_median"] = pose[f"{point}_{axis}"] + 6.0
    path = LP_ME_SESSION / "alf" / f"_ibl_{camera}Camera.lightningPose.pqt"
    path.parent.mkdir(parents=True, exist_ok=True)
    pose.to_parquet(path)
    return path


def write_motion_pose(camera: str, n: int = 48, seed: int = 8) -> Path:
    """Pose table placing the ROI inside the motion video (a few frames below likelihood 0.9)."""
    rng = np.random.default_rng(seed)
    if camera == "body":
        anchors = {"tail_start": (150.0, 140.0)}
    else:
        anchors = {"nose_tip": (190.0, 60.0), "pupil_top_r": (70.0, 40.0), "pupil_left_r": (60.0, 50.0)}
    columns = {}
    for point, (x, y) in anchors.items():
        columns[f"{point}_x"] = x + rng.normal(0, 2, n)
        columns[f"{point}_y"] = y + rng.normal(0, 2, n)
        columns[f"{point}_likelihood"] = np.where(rng.random(n) < 0.2, 0.3, 0.99)
    path = ME_SESSION / "alf" / f"_ibl_{camera}Camera.dlc.pqt"
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(columns).to_parquet(path)
    return path
