"""IBL's DeepLabCut cascade (``tracking.dlc_cascade``) on a synthetic session with seeded networks.

The set is laid out as IBL's ``weights_v2.x``: one DeepLabCut project per network (config.yaml, then
dlc-models/iteration-0/<Task><date>-trainset95shuffle1/{test,train}), written with our test-only
TensorBundle writer. The networks are narrow ResNet-50s (``BASE_DEPTHS`` patched) whose backbone only
carries the grey level of the crop's top-left pixels (the maximum over its first 5×5 or 3×3, every other
pixel) to the location refinement: the score map is flat, so DeepLabCut's argmax is cell 0, and each
joint lands at ``4 + locref_stdev · (bias + gain · grey)`` — a place chosen per joint, moved frame by
frame by the video. The ROI networks have no gain: their anchors are where the test puts them.
"""
from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from scipy import signal

from iblvideo.cameras import CAMERAS
from iblvideo.errors import IblVideoError
from iblvideo.networks import dlc_resnet
from iblvideo.networks.dlc_resnet import ConvBN, DLCPoseNet, tf_tensors
from iblvideo.synth import synthesize_session
from iblvideo.tracking import cascade, dlc_cascade
from iblvideo.tracking.dlc_cascade import Window, median_filter
from iblvideo.tracking.pose_networks import build as build_tracker
from iblvideo.tracking.tracker import Placed
from iblvideo.video.reader import VideoReader
from tf_bundle import write_bundle

STDEV = 7.2801
NARROW = (4, 4, 4, 4)
GAIN = 0.02  # location refinement per grey level: 0.15 px, up to 37 px over the grey range
SCORE = 6.0  # sigmoid 0.9975: confident
# (x, y) of each ROI point, in the networks' frame; chosen off whole pixels, to see IBL's truncation (the
# nose window's corner lies where seed 91's left video moves in its first 0.1 s (a paw), the eye window's where its
# right video does (the eye), so that those networks' points move too)
SIDE_ROI = {"nose_tip": (633.3, 701.6), "pupil_top_r": (582.7, 232.2), "tube_top": (701.9, 500.4), "tube_bottom": (704.2, 541.8)}
BODY_ROI = {"tail_start": (301.5, 255.9)}
JOINTS = {
    "nose_tip": ("nose_tip",),
    "eye": ("pupil_top_r", "pupil_right_r", "pupil_bottom_r", "pupil_left_r"),
    "paws": ("paw_l", "paw_r"),
    "tongue": ("tongue_end_l", "tongue_end_r", "tube_top", "tube_bottom"),
}
FOLDERS = {"roi_detect": "roi_detect-mic-2019-04-24", "nose_tip": "nose_tip-mic-2019-04-24", "eye": "eye-mic-2019-04-16",
           "paws": "paw2-mic-2019-11-13", "tongue": "tongue-mic-2019-04-26", "tail_start": "tail-mic-2019-12-16"}


def narrow_network(joints: int, monkeypatch: pytest.MonkeyPatch) -> DLCPoseNet:
    monkeypatch.setattr(dlc_resnet, "BASE_DEPTHS", NARROW)
    return DLCPoseNet("resnet_50", joints)


@torch.no_grad()
def seeded(joints: int, places: list[tuple[float, float]], gain: float, monkeypatch: pytest.MonkeyPatch,
           score: float | list[float] = SCORE) -> dict[str, np.ndarray]:
    """TensorFlow tensors of a network putting joint j at ``places[j] + gain · stdev · grey`` (x only)."""
    net = narrow_network(joints, monkeypatch)
    for p in net.parameters():
        p.zero_()
    for m in net.modules():
        if isinstance(m, ConvBN):
            m.bn.weight.fill_(1.0)
            m.bn.running_mean.zero_()
            m.bn.running_var.fill_(1.0)
    net.conv1.conv.weight[0, 0, 3, 3] = 1.0  # channel 0 carries the grey level (mean_pixel 0)
    for m in net.modules():  # every depth-changing shortcut passes channel 0 on
        if isinstance(m, dlc_resnet.Bottleneck) and isinstance(m.shortcut, ConvBN):
            m.shortcut.conv.weight[0, 0, 0, 0] = 1.0
    net.part_pred.deconv.bias[:] = torch.tensor(score)
    for j, (x, y) in enumerate(places):
        net.locref_pred.deconv.bias[2 * j] = (x - 4.0) / STDEV
        net.locref_pred.deconv.bias[2 * j + 1] = (y - 4.0) / STDEV
        net.locref_pred.deconv.weight[0, 2 * j, 0, 0] = gain
    return {name: (t.permute(2, 3, 1, 0) if kernel else t).numpy().copy() for name, t, kernel in tf_tensors(net)}


def write_project(folder: Path, joints: tuple[str, ...], tensors: dict[str, np.ndarray], decoy: dict[str, np.ndarray]) -> None:
    """A DeepLabCut project as IBL's sets hold them: the newest snapshot (by iteration) is the real one."""
    task, date = folder.name.rsplit("-", 3)[0], "-".join(folder.name.rsplit("-", 3)[1:])
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump({"Task": task, "date": date, "iteration": 0, "TrainingFraction": [0.95],
                                                        "snapshotindex": -1, "project_path": "/elsewhere"}))
    model = folder / "dlc-models" / "iteration-0" / f"{task}{date}-trainset95shuffle1"
    for sub in ("test", "train"):
        (model / sub).mkdir(parents=True)
    (model / "test" / "pose_cfg.yaml").write_text(yaml.safe_dump({
        "net_type": "resnet_50", "all_joints_names": list(joints), "num_joints": len(joints), "stride": 8.0,
        "locref_stdev": STDEV, "mean_pixel": [0.0, 0.0, 0.0], "location_refinement": True}))
    write_bundle(model / "train" / "snapshot-1000", tensors)
    write_bundle(model / "train" / "snapshot-200", decoy)  # after 1000 by name, before it by iteration


def crop_places(label: str) -> list[tuple[float, float]]:
    """Each crop network's joints, spread over its crop (network pixels)."""
    return [(10.3 + 7 * j + 3 * len(label), 20.6 + 5 * j) for j in range(len(JOINTS.get(label, ("tail_start",))))]


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dlc") / "weights_v2.1"
    with pytest.MonkeyPatch.context() as mp:
        decoy = {4: seeded(4, [(5.0, 5.0)] * 4, 0.0, mp), 1: seeded(1, [(5.0, 5.0)], 0.0, mp)}
        roi = ("nose_tip", "pupil_top_r", "tube_top", "tube_bottom")
        write_project(root / FOLDERS["roi_detect"], roi, seeded(4, [SIDE_ROI[p] for p in roi], 0.0, mp), decoy[4])
        for label, joints in JOINTS.items():
            tensors = seeded(len(joints), crop_places(label), GAIN, mp)
            write_project(root / FOLDERS[label], joints, tensors, seeded(len(joints), [(5.0, 5.0)] * len(joints), 0.0, mp))
        # the body camera's ROI network is its tail network: the anchor and the tracked point are one joint
        write_project(root / FOLDERS["tail_start"], ("tail_start",), seeded(1, [BODY_ROI["tail_start"]], 0.0, mp), decoy[1])
    return root


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize_session(tmp_path_factory.mktemp("session"), cameras=("left", "right", "body"), seconds=0.1, seed=91)


def video(session: Path, camera: str) -> Path:
    return session / "raw_video_data" / f"_iblrig_{camera}Camera.raw.mp4"


@pytest.fixture(scope="module")
def tracked(weights: Path, session: Path) -> dict[str, tuple[dlc_cascade.DLCTracker, dict[str, Window], pd.DataFrame]]:
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(dlc_resnet, "BASE_DEPTHS", NARROW)
        for camera, exact in (("left", True), ("right", False), ("body", False)):
            with VideoReader(video(session, camera)) as reader:
                tracker = build_tracker(CAMERAS[camera], reader, weights, "cpu", ibl_exact=exact)
                placed = tracker.place(reader)
                out[camera] = (tracker, placed.windows, cascade.run_pass(reader, placed).to_frame())
    return out


def ibl_window(anchors: list[tuple[float, float]], crop: tuple[int, int, int, int]) -> tuple[float, float, float, float]:
    """IBL's _get_crop_window by hand: each anchor truncated, their mean, then the network's lambda."""
    x, y = np.mean([[int(a), int(b)] for a, b in anchors], axis=0)
    w, h, dx, dy = crop
    return (w, h, x - dx, y - dy)


def network_view(session: Path, camera: str) -> np.ndarray:
    """The camera's frames in the networks' frame, by hand: the right camera's flipped, then doubled by ffmpeg's scaler."""
    with VideoReader(video(session, camera)) as reader:
        frames = np.stack([f for _, f in reader.frames()])
    if camera != "right":
        return frames
    return np.stack([dlc_cascade.scaled(f[:, ::-1], (1280, 1024)) for f in frames])


def expected_raw(crops: np.ndarray, places: list[tuple[float, float]], brightened: bool = False) -> np.ndarray:
    """DeepLabCut's read-out (N, J, 2) of the seeded network on luma ``crops``: cell 0 refined by the
    biases, x moved by the grey its backbone carries (the max of every other pixel of the first 5×5 or 3×3)."""
    # TensorFlow's SAME max pool after the stride-2 first conv pads its map once at the end where the map's
    # size is even (the pool then takes pixels 0, 2 and 4) and once at each end where it is odd (0 and 2)
    rows, cols = (slice(0, 5 if (n + 1) // 2 % 2 == 0 else 3, 2) for n in crops.shape[1:3])
    grey = dlc_cascade.rgb_of_luma(brightened)[crops[:, rows, cols]].reshape(len(crops), -1).max(axis=1).astype(np.float64)
    xy = np.array(places, np.float64)[None].repeat(len(crops), axis=0)
    xy[..., 0] += np.float32(STDEV) * GAIN * grey[:, None]
    return xy


def ffmpeg_origin(x: float, y: float, w: int, h: int, frame: tuple[int, int]) -> tuple[int, int]:
    """Where ffmpeg's crop filter (yuv420p, no exact) cuts: lrint, inside the frame, down to even."""
    return tuple(min(max(int(np.rint(c)), 0), room - size) & ~1 for c, size, room in zip((x, y), (w, h), frame, strict=True))  # type: ignore[return-value]


SIDE_CROPS = {"nose_tip": ((100, 100, 50, 50), ("nose_tip",)), "eye": ((100, 100, 50, 50), ("pupil_top_r",)),
              "tongue": ((160, 160, 60, 100), ("tube_top", "tube_bottom"))}


@pytest.mark.parametrize("camera", ["left", "right"])
def test_windows_are_ibls(tracked, camera):
    _, windows, _ = tracked[camera]
    for label, (crop, anchors) in SIDE_CROPS.items():
        assert windows[label].as_whxy() == pytest.approx(ibl_window([SIDE_ROI[a] for a in anchors], crop)), label
    # the arranged anchors: nose_tip (633, 701) gives an odd corner, tongue's (702.5, 520.5) a half pixel
    assert windows["nose_tip"].as_whxy()[2:] == (583.0, 651.0) and windows["nose_tip"].origin == (582, 650)
    assert windows["tongue"].as_whxy()[2:] == (642.5, 420.5) and windows["tongue"].origin == (642, 420)
    assert windows["eye"].origin == (532, 182)
    assert windows["paws"].as_whxy() == (1280.0, 1024.0, 0.0, 0.0)


def test_ffmpeg_crop_corner():
    frame = (1280, 1024)
    for x, expected in ((10.5, 10), (11.5, 12), (12.5, 12), (13.4, 12), (13.6, 14), (-3.0, 0), (1200.5, 1180), (77.0, 76)):
        assert Window(100, 100, x, 5.0, frame).origin == (expected, 4) == ffmpeg_origin(x, 5.0, 100, 100, frame)


def test_body_window(tracked):
    _, windows, _ = tracked["body"]
    assert windows["tail_start"].as_whxy() == ibl_window([BODY_ROI["tail_start"]], (220, 220, 110, 110)) == (220, 220, 191.0, 145.0)
    assert windows["tail_start"].origin == (190, 144)


def side_expected(frames: np.ndarray, camera: str, windows: dict[str, Window], exact: bool, window: int = 5) -> dict[str, np.ndarray]:
    """Each side network's (N, J, 2) points in the camera's pixels, by IBL's formula from hand-cut crops
    of ``frames`` (the networks' frame)."""
    out = {}
    for label, joints in JOINTS.items():
        places = crop_places(label)
        if label == "paws":
            raw = expected_raw(np.stack([dlc_cascade.scaled(f, (128, 102)) for f in frames]), places)
            scale, offset = ((10.0, 10.0) if exact else (1280 / 128, 1024 / 102)), (0.0, 0.0)
        else:
            cut = windows[label]
            x0, y0 = ffmpeg_origin(cut.x, cut.y, cut.w, cut.h, (1280, 1024))
            raw = expected_raw(frames[:, y0:y0 + cut.h, x0:x0 + cut.w], places, brightened=label == "eye")
            scale, offset = (1.0, 1.0), ((cut.x, cut.y) if exact else (x0, y0))
        filtered = np.stack([signal.medfilt(raw[:, j, c], window) for j in range(len(joints)) for c in (0, 1)], axis=1)
        x = (filtered[:, 0::2] * scale[0] + offset[0]) / (2 if camera == "right" else 1)
        y = (filtered[:, 1::2] * scale[1] + offset[1]) / (2 if camera == "right" else 1)
        out[label] = np.stack([640 - x if camera == "right" else x, y], axis=2)
    return out


@pytest.mark.parametrize("camera", ["left", "right"])
def test_points_are_ibls(tracked, session, camera):
    """Cut where ffmpeg cuts, filtered as DeepLabCut filters, mapped as IBL maps: on the right camera a point
    at x in the flipped, doubled frame is written at 640 − x / 2."""
    _, windows, table = tracked[camera]
    expected = side_expected(network_view(session, camera), camera, windows, exact=camera == "left")
    for label, joints in JOINTS.items():
        for j, joint in enumerate(joints):
            assert table[f"{joint}_x"].to_numpy() == pytest.approx(expected[label][:, j, 0], abs=2e-3), (label, joint)
            assert table[f"{joint}_y"].to_numpy() == pytest.approx(expected[label][:, j, 1], abs=2e-3), (label, joint)
            assert table[f"{joint}_likelihood"].to_numpy() == pytest.approx(1 / (1 + np.exp(-SCORE)), abs=1e-6)
    # the video moves the points: the filter had something to do
    moved = [np.ptp(table[f"{joints[0]}_x"].to_numpy()) for joints in JOINTS.values()]
    assert max(moved) > 0.1, moved


def test_a_glitch_is_filtered_away(tracked, session):
    """A one-frame jump is DeepLabCut's median filter's to remove; batches may come in any order."""
    tracker, windows, _ = tracked["left"]
    frames = network_view(session, "left").copy()
    frames[2] = 16  # black: every network's point jumps on frame 2 alone
    with VideoReader(video(session, "left")) as reader, tracker.start(Placed(tracker, reader, windows, 0), len(frames), 60.0) as tracking:
        tracking.push(3, frames[3:].copy(), lambda: None)
        tracking.push(0, frames[:3].copy(), lambda: None)
        table = tracking.finish().to_frame()
    filtered = side_expected(frames, "left", windows, exact=True)["nose_tip"][:, 0, 0]
    raw = side_expected(frames, "left", windows, exact=True, window=1)["nose_tip"][:, 0, 0]
    assert table["nose_tip_x"].to_numpy() == pytest.approx(filtered, abs=2e-3)
    assert np.median(raw) - raw[2] > 10 and abs(filtered[2] - np.median(raw)) < 1


def test_paws_scaling(tracked):
    """The paws network sees the whole frame at 128×102: ×10 as IBL maps it (left, ibl_exact), the true
    1280/128 and 1024/102 otherwise (right), halved and flipped on the right camera."""
    (x, y), (left, right) = crop_places("paws")[0], (tracked["left"][2], tracked["right"][2])
    assert left["paw_l_y"].to_numpy() == pytest.approx(10 * y, abs=1e-3)
    assert right["paw_l_y"].to_numpy() == pytest.approx(y * 1024 / 102 / 2, abs=1e-3)
    grey_shift = np.float32(STDEV) * GAIN * np.arange(256)  # the x the video can add
    assert (left["paw_l_x"].to_numpy() / 10 - x).min() >= grey_shift[0] - 1e-3
    assert ((640 - right["paw_l_x"].to_numpy()) * 2 / 10 - x).max() <= grey_shift[-1] + 1e-3


def test_columns_in_ibls_order(tracked):
    order = [f"{joint}_{c}" for label in ("nose_tip", "eye", "paws", "tongue") for joint in JOINTS[label]
             for c in ("x", "y", "likelihood")]
    for camera in ("left", "right"):
        assert list(tracked[camera][2].columns) == order
    assert list(tracked["body"][2].columns) == ["tail_start_x", "tail_start_y", "tail_start_likelihood"]


def test_body_points(tracked, session):
    _, windows, table = tracked["body"]
    frames = network_view(session, "body")
    (x0, y0) = windows["tail_start"].origin
    # the body's tail network is its ROI network: no gain, so where its biases put it, from the cut corner
    assert table["tail_start_x"].to_numpy() == pytest.approx(BODY_ROI["tail_start"][0] + x0, abs=1e-3)
    assert table["tail_start_y"].to_numpy() == pytest.approx(BODY_ROI["tail_start"][1] + y0, abs=1e-3)
    assert len(table) == len(frames)


def test_median_filter_is_deeplabcuts():
    """filterpredictions: scipy's medfilt over each x and y column, window 5, zero-padded; likelihoods untouched."""
    rng = np.random.default_rng(0)
    xy = rng.normal(100, 3, (23, 3, 2))
    xy[7, 1, 0] = 400.0
    columns = pd.MultiIndex.from_product([["net"], ["a", "b", "c"], ["x", "y", "likelihood"]], names=["scorer", "bodyparts", "coords"])
    df = pd.DataFrame(np.concatenate([xy, rng.uniform(size=(23, 3, 1))], axis=2).reshape(23, 9), columns=columns)
    mask = df.columns.get_level_values("coords") != "likelihood"
    data = df.copy()
    data.loc[:, mask] = df.loc[:, mask].apply(signal.medfilt, args=(5,), axis=0)
    ours = median_filter(xy)
    assert np.array_equal(ours.reshape(23, 6), data.loc[:, mask].to_numpy())
    assert ours[0, 0, 0] == xy[:3, 0, 0].min() and ours[7, 1, 0] < 110  # zeros beyond the ends; the outlier is gone


def test_snapshot_chosen_as_deeplabcut_does(weights):
    chosen = dlc_cascade.choose_model(weights / FOLDERS["eye"])
    assert chosen.prefix.name == "snapshot-1000"
    assert chosen.pose_cfg.parts[-4:] == ("iteration-0", "eye-mic2019-04-16-trainset95shuffle1", "test", "pose_cfg.yaml")


def test_a_wrong_layout_is_one_line(weights, tmp_path, monkeypatch):
    monkeypatch.setattr(dlc_resnet, "BASE_DEPTHS", NARROW)
    camera = CAMERAS["left"]
    with pytest.raises(IblVideoError, match=re.escape("not an IBL DeepLabCut weights set: no nose_tip-* folder with a config.yaml")) as err:
        dlc_cascade.DLCTracker(tmp_path, camera)
    assert "\n" not in str(err.value)
    project = tmp_path / "p"
    (project).mkdir()
    (project / "config.yaml").write_text(yaml.safe_dump({"Task": "x", "date": "d", "iteration": 3, "TrainingFraction": [0.8]}))
    with pytest.raises(IblVideoError, match=re.escape("no DeepLabCut model dlc-models/iteration-3/xd-trainset80shuffle1/test/pose_cfg.yaml")):
        dlc_cascade.choose_model(project)
    (project / "config.yaml").write_text("Task: [")
    with pytest.raises(IblVideoError, match="unreadable DeepLabCut project config"):
        dlc_cascade.choose_model(project)
    with pytest.raises(IblVideoError, match="track the left, right, body cameras"):
        dlc_cascade.networks_for("top")


def test_an_anchor_never_confident_is_one_line(weights, session, tmp_path, monkeypatch):
    shutil.copytree(weights, tmp_path / "w")
    roi = tmp_path / "w" / FOLDERS["roi_detect"]
    shutil.rmtree(roi)
    points = ("nose_tip", "pupil_top_r", "tube_top", "tube_bottom")
    write_project(roi, points, seeded(4, [SIDE_ROI[p] for p in points], 0.0, monkeypatch, score=[6.0, 6.0, 6.0, 1.0]),
                  seeded(4, [(5.0, 5.0)] * 4, 0.0, monkeypatch))
    with VideoReader(video(session, "left")) as reader:
        tracker = build_tracker(CAMERAS["left"], reader, tmp_path / "w", "cpu")
        with pytest.raises(IblVideoError, match="the ROI network found no tube_bottom in 20 frames"):
            tracker.place(reader)


@pytest.mark.parametrize(("index", "fraction", "folder", "snapshot"), [
    ("all", 0.57, "trainset56", "snapshot-1000"),  # DeepLabCut's int(0.57 · 100) is 56; "all" analyses with the last
    (0, 0.95, "trainset95", "snapshot-200"),
])
def test_model_folder_and_snapshot_index(tmp_path, index, fraction, folder, snapshot):
    project = tmp_path / "p"
    model = project / "dlc-models" / "iteration-2" / f"tasknov-{folder}shuffle1"
    (model / "test").mkdir(parents=True)
    (model / "train").mkdir()
    (model / "test" / "pose_cfg.yaml").write_text("{}")
    for name in ("snapshot-1000", "snapshot-200"):
        (model / "train" / f"{name}.index").write_bytes(b"")
    (project / "config.yaml").write_text(yaml.safe_dump({"Task": "task", "date": "nov", "iteration": 2, "TrainingFraction": [fraction],
                                                         "snapshotindex": index}))
    assert dlc_cascade.choose_model(project).prefix == model / "train" / snapshot


def test_the_default_weights_are_ibls_fetched_once(weights: Path, session: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``dlc(video)`` with no weights runs IBL's DeepLabCut set from where the setting points (here a zip on
    loopback), downloaded once; the table names the set and the zip's sha256. Never the demo weights unasked."""
    from http_server import FileServer, zip_folder
    from iblvideo import dlc
    from iblvideo.io.session_files import table_metadata

    monkeypatch.setattr(dlc_resnet, "BASE_DEPTHS", NARROW)
    monkeypatch.setenv("IBLVIDEO_CACHE", str(tmp_path / "cache"))
    data = zip_folder(weights, "weights_v2.2")
    with FileServer({"weights_v2.2.zip": data}) as server:
        monkeypatch.setenv("IBLVIDEO_DLC_WEIGHTS", server.url("weights_v2.2.zip"))
        copy = tmp_path / "_iblrig_leftCamera.raw.mp4"
        shutil.copyfile(video(session, "left"), copy)
        out = dlc(copy)
        dlc(copy, force=True)
        assert len(server.requests) == 1
    metadata = table_metadata(out)
    assert (metadata["weights"], metadata["weights_version"]) == ("weights_v2.2", "2.2")
    assert metadata["weights_sha256"] == hashlib.sha256(data).hexdigest()
    assert metadata["snapshots"]["eye"].startswith(FOLDERS["eye"])
    assert dlc(copy, weights="demo", force=True) == out and "snapshots" not in table_metadata(out)  # our own networks, asked for


def test_offline_the_first_run_says_how_to_go_on(session: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture) -> None:
    """IBL's set cannot be fetched: one line naming the URL, and how to pass a local copy or the demo weights."""
    from http_server import FileServer
    from iblvideo.cli import main

    monkeypatch.setenv("IBLVIDEO_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("IBLVIDEO_DLC_WEIGHTS")
    with FileServer({}) as server:
        url = server.url("weights_v2.2.zip")
        monkeypatch.setattr(dlc_cascade, "DEFAULT_URL", url)
        assert main(["dlc", str(video(session, "left"))]) == 2
    message = capsys.readouterr().err.strip()
    assert message.startswith(f"iblvideo: error: {url}: ") and "\n" not in message
    assert "--weights DIR" in message and "--weights demo" in message
