"""Write the inputs of benchmarks/ibl_lp_reference.py: synthetic videos and the Lightning Pose outputs IBL's
post-processing reads, under tests/data/ibl-lp-reference/<cam>/inputs/.

Run in iblvideo's own environment (it renders with ``iblvideo.synth``)::

    . /work/venv/bin/activate && python tests/reference/lp_inputs.py

Per camera: the video as IBL's rig names it; the ROI network's csv on IBL's ROI sample of frames (as
``pose_lp._subsample_video`` picks them); one csv per ensemble member and network, named as IBL's
``analyze_video`` names them; the ground truth (``truth.pqt``, camera pixels); ``meta.json``.

Every network sees the network frame: the right camera mirrored (``x_net = width - 1 - x_camera``,
pixel centres at integers) at its own resolution. The cropped networks (eye, nose_tip, tongue) answer in
pixels of the window actually cut: IBL's window, moved inside the frame, its origin normalised as IBL does and
rounded to a pixel as DALI does (``window_origin``, ``dali_cut``). Positions are the truth plus seeded noise, float32 as Lightning Pose writes them.

Arranged cases: on the left camera the eye is rendered near the top edge, so its window (anchored on
pupil_top_r) is clamped to y = 0; on the right camera the tongue window's anchor (the mean of two
truncated means, tube_top and tube_bottom) falls on half-integers in x and y; one eye member gives one
frame with pupil_top_r far off, at high likelihood.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import av
import numpy as np
import pandas as pd

from iblvideo.cameras import CAMERAS, Camera
from iblvideo.synth import side
from iblvideo.synth.session import synthesize_session

OUT = Path(__file__).resolve().parents[1] / "data" / "ibl-lp-reference"
SYNTH_SEED = 16
NOISE_SEED = 1616
SECONDS = {"left": 2.0, "right": 1.0, "body": 4.0}
LEFT_EYE_Y = 40.0  # canonical px: the eye's centre, so close to the top that its window is clamped
CONFIDENT = 0.9  # IBL's likelihood threshold for anchor detections
ROI_NOISE_PX, MEMBER_NOISE_PX, MEMBER_BIAS_PX = 1.0, 1.0, 0.5
SIDE_ROI_POINTS = ("pupil_top_r", "pupil_right_r", "pupil_bottom_r", "pupil_left_r", "nose_tip",
                   "tongue_end_r", "tongue_end_l", "paw_r", "paw_l", "tube_top", "tube_bottom")
STATIC_POINTS = ("tube_top", "tube_bottom")  # spout points: truth is the camera's anchors.json


@dataclasses.dataclass(frozen=True)
class Network:
    """One of IBL's networks: its points, ensemble size, model type, crop (w, h, dx, dy at scale 1) and input size."""

    points: tuple[str, ...]
    members: int
    model_type: str
    crop: tuple[float, float, float, float] | None  # window = [w/s, h/s, x - dx/s, y - dy/s]
    anchors: tuple[str, ...]
    resize_dims: tuple[int, int]  # network input (height, width)


SIDE_NETWORKS = {
    "nose_tip": Network(("nose_tip",), 1, "heatmap", (100, 100, 50, 50), ("nose_tip",), (128, 128)),
    "eye": Network(("pupil_top_r", "pupil_right_r", "pupil_bottom_r", "pupil_left_r"), 4, "heatmap",
                   (100, 100, 50, 50), ("pupil_top_r",), (128, 128)),
    "paws": Network(("paw_r", "paw_l"), 4, "heatmap_mhcrnn", None, ("nose_tip",), (128, 160)),
    "tongue": Network(("tongue_end_r", "tongue_end_l", "tube_top", "tube_bottom"), 1, "heatmap",
                      (160, 160, 60, 100), ("tube_top", "tube_bottom"), (128, 128)),
}
BODY_NETWORKS = {
    # IBL's body camera crop is defined but never cut: tail_start runs on the whole frame
    "tail_start": Network(("tail_start",), 1, "heatmap_mhcrnn", None, ("tail_start",), (128, 160)),
}
ROI_MODEL_TYPE, ROI_RESIZE_DIMS = "heatmap", (128, 160)
SCALE = {"left": 1, "right": 2, "body": 1}
FLIP = {"left": False, "right": True, "body": False}


def networks_of(camera: str) -> dict[str, Network]:
    return BODY_NETWORKS if camera == "body" else SIDE_NETWORKS


def video_name(camera: str) -> str:
    return f"_iblrig_{camera}Camera.raw.mp4"


def roi_csv_name(camera: str) -> str:
    """The ROI network's csv, as IBL's analyze_video names it for the subsampled video."""
    return f"_iblrig_{camera}Camera.subsampled.roi_detect0.csv"


def member_csv_name(camera: str, network: str, member: int) -> str:
    return f"_iblrig_{camera}Camera.raw.{network}{member}.csv"


@contextmanager
def eye_near_top() -> Iterator[None]:
    """Render side scenes with the eye's centre at LEFT_EYE_Y (synth's own layout otherwise)."""
    original = side.random_layout

    def moved(rng: np.random.Generator) -> side.Layout:
        layout = original(rng)
        return dataclasses.replace(layout, eye=np.array([layout.eye[0], LEFT_EYE_Y]))

    side.random_layout = moved
    try:
        yield
    finally:
        side.random_layout = original


def render(camera: Camera, root: Path) -> Path:
    """One camera's synthetic session folder."""
    if camera.name == "left":
        with eye_near_top():
            return synthesize_session(root, cameras=(camera.name,), seconds=SECONDS[camera.name], seed=SYNTH_SEED)
    return synthesize_session(root, cameras=(camera.name,), seconds=SECONDS[camera.name], seed=SYNTH_SEED)


def frame_count(video: Path) -> int:
    with av.open(str(video)) as container:
        return sum(1 for _ in container.decode(video=0))


def roi_samples(n_frames: int, fps: float) -> np.ndarray:
    """The frames IBL's ROI network sees (pose_lp._subsample_video's choice)."""
    nsamples = min(max(20, int(n_frames / fps)), 500)
    return np.int32(np.round(np.linspace(0, n_frames - 1, nsamples)))


def truth_in_network_frame(camera: Camera, truth: pd.DataFrame, anchors: dict) -> dict[str, np.ndarray]:
    """Each point's true (n, 2) position in the network frame (NaN where hidden)."""
    points = {}
    for name in [*camera.points, *(STATIC_POINTS if camera.name != "body" else ())]:
        if name in STATIC_POINTS:
            xy = np.tile(np.asarray(anchors[name], dtype=float), (len(truth), 1))
        else:
            xy = truth[[f"{name}_x", f"{name}_y"]].to_numpy(dtype=float, copy=True)
        if FLIP[camera.name]:
            xy[:, 0] = camera.width - 1 - xy[:, 0]
        points[name] = xy
    return points


def filled(xy: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Hidden frames' positions: where a network would still put the point (its mean, else ``fallback``)."""
    hidden = np.isnan(xy[:, 0])
    out = xy.copy()
    centre = np.nanmean(xy, axis=0) if (~hidden).any() else fallback
    out[hidden] = centre
    return out


def lp_table(points: dict[str, np.ndarray], likelihoods: dict[str, np.ndarray], model_type: str) -> pd.DataFrame:
    """A Lightning Pose csv table: scorer/bodyparts/coords header rows, float32 values, frame index."""
    columns = pd.MultiIndex.from_tuples(
        [(f"{model_type}_tracker", p, c) for p in points for c in ("x", "y", "likelihood")],
        names=["scorer", "bodyparts", "coords"])
    data = np.column_stack([col for p in points for col in (points[p][:, 0], points[p][:, 1], likelihoods[p])])
    return pd.DataFrame(as_written(data), columns=columns)


def as_written(values: np.ndarray) -> np.ndarray:
    """Values at the float32 precision Lightning Pose writes."""
    return values.astype(np.float32).astype(np.float64)


def roi_detections(truth: dict[str, np.ndarray], names: tuple[str, ...], samples: np.ndarray,
                   rng: np.random.Generator, fallback: np.ndarray) -> tuple[dict, dict]:
    """ROI network answers on the sampled frames: truth + noise, three doubtful (and wrong) samples per point."""
    xy, lik = {}, {}
    for name in names:
        true = truth[name][samples]
        hidden = np.isnan(true[:, 0])
        pos = filled(true, fallback) + rng.normal(0, ROI_NOISE_PX, true.shape)
        like = rng.uniform(0.92, 1.0, len(samples))
        doubtful = rng.choice(len(samples), 3, replace=False)
        pos[doubtful] += rng.normal(0, 40, (3, 2))
        like[doubtful] = rng.uniform(0.3, 0.85, 3)
        like[hidden] = rng.uniform(0.0, 0.3, hidden.sum())
        xy[name], lik[name] = as_written(pos), as_written(like)
    return xy, lik


def truncated_mean(xy: np.ndarray, likelihood: np.ndarray) -> np.ndarray:
    """An anchor's position as IBL reads it: the mean of confident detections, truncated to integers."""
    return np.trunc(np.nanmean(xy[likelihood >= CONFIDENT], axis=0))


def make_half_integer(xy: dict, lik: dict) -> None:
    """Shift tube_bottom's detections by a pixel where needed so the two anchors' mean is a half-integer."""
    parity = (truncated_mean(xy["tube_top"], lik["tube_top"]) - truncated_mean(xy["tube_bottom"], lik["tube_bottom"])) % 2
    xy["tube_bottom"] += np.where(parity == 0, 1.0, 0.0)


def window_origin(network: Network, anchor: np.ndarray, scale: int, width: int, height: int) -> dict:
    """IBL's window for ``anchor`` and where it is cut: inside the frame (left/top edges first, then right/bottom)."""
    w, h, dx, dy = network.crop  # type: ignore[misc]
    window = [w / scale, h / scale, anchor[0] - dx / scale, anchor[1] - dy / scale]
    x, y = max(window[2], 0.0), max(window[3], 0.0)
    x, y = (width - window[0] if x + window[0] > width else x), (height - window[1] if y + window[1] > height else y)
    return {"window": [float(v) for v in window], "clamped_origin": [float(x), float(y)],
            "clamped": [bool(x != window[2]), bool(y != window[3])],
            "cut_origin": [dali_cut(x, width - window[0]), dali_cut(y, height - window[1])]}


def dali_cut(origin: float, span: float) -> float:
    """The pixel DALI's crop starts at for IBL's normalised crop_pos = origin / span: DALI keeps crop_pos as float32
    and rounds crop_pos × span to the nearest pixel (measured on DALI's CPU operator by benchmarks/ibl_lp_reference.py)."""
    return float(np.floor(float(np.float32(origin / span)) * span + 0.5))


def member_predictions(truth: dict[str, np.ndarray], network: Network, origin: list[float], size: tuple[float, float],
                       rng: np.random.Generator, fallback: np.ndarray) -> tuple[dict, dict]:
    """One member's answers on every frame, in its input's pixels (the cut window, or the whole frame)."""
    xy, lik = {}, {}
    n = len(next(iter(truth.values())))
    for name in network.points:
        true = truth[name]
        hidden = np.isnan(true[:, 0])
        pos = filled(true, fallback) - np.asarray(origin) + rng.normal(0, MEMBER_BIAS_PX, 2)
        pos += rng.normal(0, MEMBER_NOISE_PX, (n, 2))
        like = rng.uniform(0.85, 1.0, n)
        low = rng.random(n) < 0.05
        like[low] = rng.uniform(0.1, 0.9, low.sum())
        like[hidden] = rng.uniform(0.0, 0.2, hidden.sum())
        xy[name], lik[name] = np.clip(pos, 0, np.asarray(size) - 1), like
    return xy, lik


def write_camera(camera: Camera, root: Path) -> dict:
    """Render one camera and write its inputs; return its meta."""
    folder = OUT / camera.name / "inputs"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    session = render(camera, root)
    video = folder / video_name(camera.name)
    shutil.copyfile(session / "raw_video_data" / video_name(camera.name), video)
    truth = pd.read_parquet(session / "truth" / f"_ibl_{camera.label}.dlc.pqt")
    truth.to_parquet(folder / "truth.pqt")
    anchors = json.loads((session / "truth" / f"_ibl_{camera.label}.anchors.json").read_text())
    n = frame_count(video)
    if n != len(truth):
        raise RuntimeError(f"{video}: {n} frames decoded for {len(truth)} truth rows")
    points = truth_in_network_frame(camera, truth, anchors)
    fallback = np.asarray(anchors.get("mouth", anchors.get("trunk_rest")), dtype=float)
    if FLIP[camera.name]:
        fallback[0] = camera.width - 1 - fallback[0]
    cam_index = list(CAMERAS).index(camera.name)
    rng = np.random.default_rng([NOISE_SEED, cam_index, 0])
    samples = roi_samples(n, camera.fps)
    roi_names = ("tail_start",) if camera.name == "body" else SIDE_ROI_POINTS
    roi_xy, roi_lik = roi_detections(points, roi_names, samples, rng, fallback)
    if camera.name == "right":
        make_half_integer(roi_xy, roi_lik)
    roi_model = "heatmap_mhcrnn" if camera.name == "body" else ROI_MODEL_TYPE
    roi = lp_table(roi_xy, roi_lik, roi_model)
    roi.to_csv(folder / roi_csv_name(camera.name))
    networks, windows = {}, {}
    for k, (name, network) in enumerate(networks_of(camera.name).items(), start=1):
        scale = SCALE[camera.name]
        if network.crop is None:
            origin, size = [0.0, 0.0], (camera.width, camera.height)
        else:
            anchor = np.mean([truncated_mean(roi_xy[a], roi_lik[a])
                              for a in network.anchors], axis=0)
            windows[name] = window_origin(network, anchor, scale, camera.width, camera.height) | {"anchor": anchor.tolist()}
            origin, size = windows[name]["cut_origin"], windows[name]["window"][:2]
        for m in range(network.members):
            member_rng = np.random.default_rng([NOISE_SEED, cam_index, k, m])
            xy, lik = member_predictions(points, network, origin, size, member_rng, fallback)
            if name == "eye" and m == 1:
                xy["pupil_top_r"][n // 3] = np.clip(xy["pupil_top_r"][n // 3] + [30.0, -20.0], 0, np.asarray(size) - 1)
                lik["pupil_top_r"][n // 3] = 0.95
            lp_table(xy, lik, network.model_type).to_csv(folder / member_csv_name(camera.name, name, m))
        networks[name] = {"points": list(network.points), "members": network.members, "model_type": network.model_type,
                          "resize_dims": list(network.resize_dims), "anchors": list(network.anchors),
                          "csv": [member_csv_name(camera.name, name, m) for m in range(network.members)]}
    meta = {
        "camera": camera.name, "label": camera.label, "fps": camera.fps, "frame_count": n,
        "frame_size": {"width": camera.width, "height": camera.height},
        "scale": SCALE[camera.name], "flip": FLIP[camera.name],
        "network_frame": "x_net = width - 1 - x_camera (mirrored), y_net = y_camera" if FLIP[camera.name] else "camera frame",
        "seeds": {"synth": SYNTH_SEED, "noise": [NOISE_SEED, cam_index], "member": "[noise, camera, network number, member]"},
        "seconds": SECONDS[camera.name],
        "video": video.name, "truth": "truth.pqt",
        "roi": {"csv": roi_csv_name(camera.name), "points": list(roi_names), "model_type": roi_model,
                "resize_dims": list(ROI_RESIZE_DIMS), "samples": samples.tolist()},
        "anchors_truth_camera": anchors,
        "anchors_truth_network_frame": {a: np.nanmean(points[a], axis=0).round(3).tolist()
                                        for a in dict.fromkeys(x for nw in networks_of(camera.name).values() for x in nw.anchors)},
        "networks": networks,
        "windows": windows,
        "forced": {
            "left": f"eye rendered at canonical y = {LEFT_EYE_Y}: the eye window is clamped to y = 0",
            "right": "tube_bottom detections shifted so the tongue anchor is a half-integer in x and y",
            "body": "nothing",
        }[camera.name],
        "outlier": "eye member 1, frame frame_count // 3: pupil_top_r moved by (+30, -20) px at likelihood 0.95"
                   if camera.name != "body" else None,
    }
    (folder / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    return meta


def main() -> None:
    cameras = sys.argv[1:] or list(SECONDS)
    with tempfile.TemporaryDirectory() as tmp:
        for name in cameras:
            meta = write_camera(CAMERAS[name], Path(tmp) / name)
            print(name, meta["frame_count"], "frames;", json.dumps(meta["windows"]))


if __name__ == "__main__":
    main()
