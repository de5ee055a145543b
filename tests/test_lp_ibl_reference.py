"""Our Lightning Pose post-processing against IBL's own pipeline, on every camera.

The reference (tests/data/ibl-lp-reference, written by benchmarks/ibl_lp_reference.py) is what
int-brain-lab/iblvideo v3.2.0's ``lightning_pose()`` made, with ensemble-kalman-smoother 3.0.0, of
ensemble-member predictions for synthetic left, right and body videos: its crop windows, the crops
DALI cut and what its networks were shown (DALI's own operators, on the CPU), and its table. Here
the same member predictions go through our windows and table assembly:

- ``ibl_exact``: IBL's table, column by column, within 1e-3 px;
- the default: the same, but for the two corrections, each pinned to its figure: eks 3.0.0's pupil
  labels (and posterior variances) put right, and windows DALI moved or rounded mapped back from
  where they were cut.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest
import torch

from iblvideo.tracking.lp_crops import Window, network_frames, place, prepare
from iblvideo.tracking.lp_networks import V2_2
from iblvideo.tracking.lp_table import NetworkOutput, pose_table
from iblvideo.video.reader import VideoReader

REFERENCE = Path(__file__).parent / "data" / "ibl-lp-reference"
CAMERAS = ("left", "right", "body")
PX = 1e-3  # px: the issue's bar; eks 3.0.0's single-view smoother is float32, about 1e-5 px here
IMAGENET_MEAN, IMAGENET_STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
# eks 3.0.0 fills its pupil blocks top, right, bottom, left but labels them top, bottom, right, left
PUBLISHED_AS = {"pupil_top_r": "pupil_top_r", "pupil_bottom_r": "pupil_right_r", "pupil_right_r": "pupil_bottom_r", "pupil_left_r": "pupil_left_r"}


def meta(camera: str) -> dict:
    return json.loads((REFERENCE / camera / "inputs" / "meta.json").read_text())


def read_lp_csv(path: Path) -> tuple[tuple[str, ...], np.ndarray, np.ndarray, np.ndarray]:
    """Keypoints and x, y, likelihood (T, K) of a Lightning Pose csv."""
    table = pd.read_csv(path, header=[0, 1, 2], index_col=0)
    points = tuple(dict.fromkeys(point for _, point, _ in table.columns))
    x, y, likelihood = (table.xs(coord, axis=1, level=2).to_numpy() for coord in ("x", "y", "likelihood"))
    return points, x, y, likelihood


def windows(camera: str) -> dict[str, Window]:
    """Our windows from the ROI network's predictions IBL was given."""
    info = meta(camera)
    frame = (info["frame_size"]["width"], info["frame_size"]["height"])
    networks = V2_2.networks(camera)[1:]
    if not any(n.crop for n in networks):
        return {n.label: Window.whole(frame) for n in networks}
    points, x, y, likelihood = read_lp_csv(REFERENCE / camera / "inputs" / info["roi"]["csv"])
    return place(networks, points, x, y, likelihood, info["scale"], frame)


def outputs(camera: str) -> list[NetworkOutput]:
    """The members' predictions, network by network in the set's order, in our windows."""
    info, placed, found = meta(camera), windows(camera), []
    for network in V2_2.networks(camera)[1:]:
        members = [read_lp_csv(REFERENCE / camera / "inputs" / name) for name in info["networks"][network.label]["csv"]]
        x, y, likelihood = (np.array([m[k] for m in members]) for k in (1, 2, 3))
        found.append(NetworkOutput(network, members[0][0], x, y, likelihood, placed[network.label]))
    return found


def ours(camera: str, ibl_exact: bool) -> pd.DataFrame:
    info = meta(camera)
    return pose_table(outputs(camera), V2_2, info["fps"], info["flip"], ibl_exact)


def ibl(camera: str) -> pd.DataFrame:
    return pd.read_parquet(REFERENCE / camera / "ibl_table.pqt")


def assert_columns_match(got: pd.DataFrame, expected: pd.DataFrame, columns: list[str]) -> None:
    for column in columns:
        if column.endswith("_var"):  # eks's float32 variances: relative
            np.testing.assert_allclose(got[column], expected[column], rtol=1e-3, atol=1e-6, err_msg=column)
        else:
            np.testing.assert_allclose(got[column], expected[column], rtol=0, atol=PX, err_msg=column)


@pytest.mark.parametrize("camera", CAMERAS)
def test_windows_are_ibls(camera: str) -> None:
    """IBL's ``get_crop_window`` for every network it cuts for, the pixel DALI cut at, and no cut where IBL's DALI cut none
    (the body camera's tail network: IBL computes a 220×220 window, then shows the network the whole frame)."""
    calls = json.loads((REFERENCE / camera / "ibl_calls.json").read_text())["networks"]
    placed, networks = windows(camera), {n.label: n for n in V2_2.networks(camera)[1:]}
    for call in (c for c in calls if c["network"] in networks):
        cuts = call["dali_pipeline"]["crop_params"] is not None
        assert cuts == (networks[call["network"]].crop is not None), call["network"]
        if cuts:
            assert list(placed[call["network"]].as_whxy()) == call["crop_window"], call["network"]
    for label, window in meta(camera)["windows"].items():
        assert list(placed[label].origin) == window["cut_origin"], label
        assert placed[label].clamped == any(window["clamped"]), label


def test_the_arranged_cases_are_there() -> None:
    """The reference exercises what it is for: a window clamped at the frame's edge, a half-pixel origin."""
    assert meta("left")["windows"]["eye"]["clamped"] == [False, True]
    assert meta("right")["windows"]["tongue"]["window"][2:] == [135.5, 245.5]


@pytest.mark.parametrize("camera", CAMERAS)
def test_ibl_exact_is_ibls_table(camera: str) -> None:
    got, expected = ours(camera, ibl_exact=True), ibl(camera)
    assert list(got.columns) == list(expected.columns) and len(got) == len(expected)
    assert_columns_match(got, expected, list(expected.columns))


def shifts(camera: str) -> dict[str, tuple[float, float]]:
    """Per keypoint, what mapping back from where DALI cut, not where IBL asked, adds (camera pixels)."""
    flip, placed = meta(camera)["flip"], windows(camera)
    moved = {}
    for output in outputs(camera):
        window = placed[output.network.label]
        dx, dy = np.subtract(window.origin, (window.x, window.y))
        moved.update((point, (-dx if flip else dx, dy)) for point in output.keypoints)
    return moved


@pytest.mark.parametrize("camera", CAMERAS)
def test_default_differs_from_ibl_by_the_corrections_only(camera: str) -> None:
    got, published = ours(camera, ibl_exact=False), ibl(camera)
    expected, moved = published.copy(), shifts(camera)
    for point, holder in PUBLISHED_AS.items():  # the block eks named after another point, under its owner's name
        for column in (c for c in published.columns if c.startswith(holder + "_")):
            expected[point + column[len(holder):]] = published[column]
    for column in expected.columns:
        dx, dy = moved[next(p for p in moved if column.startswith(p + "_"))]
        expected[column] += dx if column.endswith(("_x", "_x_ens_median")) else dy if column.endswith(("_y", "_y_ens_median")) else 0.0
    # the pupil's posterior variances: the right diagonal entries, pinned against eks in test_eks.py
    compared = [c for c in expected.columns if not (c.startswith("pupil_") and c.endswith("posterior_var"))]
    assert list(got.columns) == list(published.columns)
    assert_columns_match(got, expected, compared)
    # the corrections' figures: the left eye's window moved 22 px down into the frame; the right
    # tongue's half-pixel corner cut half a pixel up and to the left (mirrored: +0.5 px in camera x);
    # nothing on the body camera, whose tail network sees the whole frame
    point, shift = {"left": ("pupil_top_r", (0.0, 22.0)), "right": ("tube_top", (0.5, -0.5)), "body": ("tail_start", (0.0, 0.0))}[camera]
    assert moved[point] == shift


def dali_inputs(camera: str) -> Iterator[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """Per network: what IBL's DALI pipeline showed it (0-1, three channels), the frames' PyAV RGB decode
    DALI was fed, and our grey decode of them."""
    dali, info = json.loads((REFERENCE / camera / "dali" / "dali.json").read_text()), meta(camera)
    with av.open(str(REFERENCE / camera / "inputs" / info["video"])) as container:
        rgb = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    with VideoReader(REFERENCE / camera / "inputs" / info["video"]) as reader:
        for label, entry in dali["networks"].items():
            shown = np.load(REFERENCE / camera / "dali" / entry["npy"]) * IMAGENET_STD[:, None, None] + IMAGENET_MEAN[:, None, None]
            grey = np.stack([image for _, image in reader.sample(entry["frames"])])
            yield label, shown, np.stack([rgb[i] for i in entry["frames"]]), grey


def shown_by_us(camera: str, label: str, frames: torch.Tensor) -> np.ndarray:
    """What our pipeline shows ``label``'s network of frames already as DALI hands them on (0–255, flipped)."""
    info, network = meta(camera), next(n for n in V2_2.networks(camera) if n.label == label)
    h, w = info["networks"][label]["resize_dims"]
    return prepare(frames, windows(camera)[label], network.brightness, (w, h))[:, 0].numpy()


@pytest.mark.parametrize("camera", CAMERAS)
def test_crops_brightening_and_resizing_are_dalis(camera: str) -> None:
    """From the frames DALI was fed: the same crop, brightening, clipping, flip and resize filter, to float precision."""
    flip = meta(camera)["flip"]
    for label, shown, rgb, _ in dali_inputs(camera):
        for channel in range(3):
            frames = torch.from_numpy(rgb[..., channel].astype(np.float32))
            got = shown_by_us(camera, label, frames.flip(-1) if flip else frames)
            np.testing.assert_allclose(got, shown[:, channel], atol=2e-6, err_msg=f"{label} channel {channel}")


@pytest.mark.parametrize("camera", CAMERAS)
def test_network_inputs_from_our_decode(camera: str) -> None:
    """From our grey luma, stretched in float where swscale's RGB rounds to whole levels (nvdec's, on IBL's GPUs, is a third
    conversion, not checked here): within a grey level of what DALI showed, 0.6 of one on average (the eye's ×4 brightening ×4)."""
    flip, brightness = meta(camera)["flip"], {n.label: n.brightness for n in V2_2.networks(camera)}
    for label, shown, _, grey in dali_inputs(camera):
        got = shown_by_us(camera, label, network_frames(torch.from_numpy(grey), flip))
        difference = np.abs(shown - got[:, None]) * 255 / brightness[label]
        assert difference.max() < 1.1 and difference.mean() < 0.6, (label, difference.max(), difference.mean())


def test_crop_origins_round_as_dali() -> None:
    """Half-pixel corners, as IBL hands DALI a fraction of the room the frame leaves: DALI's own answers."""
    cases = json.loads((REFERENCE / "left" / "dali" / "dali.json").read_text())["crop_origins"]
    assert len(cases) >= 20
    for case in cases:
        crop = case["crop"]
        window = Window(crop, crop, case["origin"], case["origin"], tuple(case["frame"]))
        assert window.origin == (case["dali_x0"], case["dali_y0"]), case
