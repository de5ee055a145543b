"""The synthetic rig: real files, decoded by the real codec, checked against their own ground truth."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from iblvideo.cameras import BODY_POINTS, CAMERAS, SIDE_POINTS, TRAINING_LEFT
from iblvideo.demo import DEMO_SEED
from iblvideo.errors import IblVideoError
from iblvideo.io.alf import (
    TRUTH_COLLECTION,
    TRUTH_LICKS,
    TRUTH_SPONTANEOUS_LICKS,
    truth_anchors_name,
    truth_paw_states_name,
    truth_pose_name,
    truth_pupil_name,
)
from iblvideo.measures.qc import BOUNDING_BOXES, TRIAL_WINDOW
from iblvideo.synth import synthesize_session
from iblvideo.synth.behaviour import PAW_STATES, STILL_SPEED, WHEEL_TURNING, simulate
from iblvideo.synth.body import BodyScene
from iblvideo.synth.session import frame_times
from iblvideo.synth.side import PAW_AXES, SideScene
from iblvideo.video.reader import VideoReader

SECONDS = 3.0
SEED = 322  # this seed's first 3 s hold rewarded licks, a blink and a far paw dipping behind the wheel on both sides
STRIDE = {"left": 2, "right": 3, "body": 1}  # keep every n-th decoded frame: enough for pixel checks, little memory


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize_session(tmp_path_factory.mktemp("synth"), seconds=SECONDS, seed=SEED)


@pytest.fixture(scope="module")
def frames(session: Path) -> dict[str, dict[int, np.ndarray]]:
    """Decoded luma of every STRIDE-th frame (plus every frame around licks on the side cameras)."""
    out = {}
    for name in CAMERAS:
        with VideoReader(session / "raw_video_data" / f"_iblrig_{name}Camera.raw.mp4") as reader:
            out[name] = {i: image.copy() for i, image in reader.frames() if i % STRIDE[name] == 0}
    return out


def truth(session: Path, name: str) -> pd.DataFrame:
    return pd.read_parquet(session / TRUTH_COLLECTION / truth_pose_name(name))


def anchors(session: Path, name: str) -> dict:
    return json.loads((session / TRUTH_COLLECTION / truth_anchors_name(name)).read_text())


def sha256s(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# ---- files, sizes, counts ------------------------------------------------------------------------------------

def test_layout_sizes_rates_and_counts(session: Path) -> None:
    assert session.parts[-3:] == (f"synth_mouse_{SEED}", "2026-01-01", "001")
    for name, camera in CAMERAS.items():
        with VideoReader(session / "raw_video_data" / f"_iblrig_{name}Camera.raw.mp4") as reader:
            info = reader.info
        n = int(round(SECONDS * camera.fps))
        assert (info.width, info.height, info.codec) == (camera.width, camera.height, "h264")
        assert info.fps == pytest.approx(camera.fps) and info.n_frames == info.declared_frames == n
        times = np.load(session / "alf" / f"_ibl_{name}Camera.times.npy")
        assert times.dtype == np.float64 and len(times) == n and np.all(np.diff(times) > 0)
        assert np.median(np.diff(times)) == pytest.approx(1 / camera.fps, rel=1e-3)
        table = truth(session, name)
        points = BODY_POINTS if name == "body" else SIDE_POINTS
        assert list(table.columns) == [f"{p}_{k}" for p in points for k in ("x", "y", "likelihood")]
        assert len(table) == n and all(dtype == np.float64 for dtype in table.dtypes)
        likelihood = table.filter(like="likelihood").to_numpy()
        assert set(np.unique(likelihood)) <= {0.0, 1.0}
        hidden = table.filter(like="_x").to_numpy()[likelihood == 0]
        assert np.isnan(hidden).all()
        if name != "body":
            diameter = np.load(session / TRUTH_COLLECTION / truth_pupil_name(name))
            assert len(diameter) == n and np.array_equal(np.isnan(diameter), table.pupil_top_r_likelihood.to_numpy() == 0)
            assert {"tube_top", "tube_bottom"} <= set(anchors(session, name))
    wheel_t = np.load(session / "alf" / "_ibl_wheel.timestamps.npy")
    assert len(wheel_t) == len(np.load(session / "alf" / "_ibl_wheel.position.npy"))


def test_training_rig_films_left_at_30_hz(tmp_path: Path) -> None:
    session = synthesize_session(tmp_path, cameras=("left", "right"), seconds=0.5, seed=1, rig="training")
    assert sorted(p.name for p in (session / "raw_video_data").iterdir()) == ["_iblrig_leftCamera.raw.mp4"]
    with VideoReader(session / "raw_video_data" / "_iblrig_leftCamera.raw.mp4") as reader:
        assert (reader.info.width, reader.info.fps, reader.info.n_frames) == (1280, TRAINING_LEFT.fps, 15)
    assert len(truth(session, "left")) == len(np.load(session / "alf" / "_ibl_leftCamera.times.npy")) == 15


def test_same_seed_same_bytes_other_seed_other_scene(tmp_path: Path) -> None:
    first = synthesize_session(tmp_path / "a", seconds=0.2, seed=5)
    again = synthesize_session(tmp_path / "b", seconds=0.2, seed=5)
    other = synthesize_session(tmp_path / "c", seconds=0.2, seed=7)
    assert sha256s(first) == sha256s(again)
    differ = {k for k, v in sha256s(other).items() if sha256s(first).get(k) != v}
    assert {f"raw_video_data/_iblrig_{n}Camera.raw.mp4" for n in CAMERAS} <= differ
    for name in ("left", "right"):
        a, b = anchors(first, name), anchors(other, name)
        assert np.hypot(*np.subtract(a["tube_top"], b["tube_top"])) > 2
        assert np.hypot(*np.subtract(a["eye_centre"], b["eye_centre"])) > 1


def test_too_short_or_unknown_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(IblVideoError, match="less than one frame"):
        synthesize_session(tmp_path, cameras=("body",), seconds=0.01)
    with pytest.raises(IblVideoError, match="unknown camera"):
        synthesize_session(tmp_path, cameras=("top",), seconds=1)
    with pytest.raises(IblVideoError, match="left camera only"):
        synthesize_session(tmp_path, cameras=("body",), seconds=1, rig="training")
    assert not any(tmp_path.iterdir())


def test_existing_session_is_refused_unless_forced(tmp_path: Path) -> None:
    synthesize_session(tmp_path, cameras=("body",), seconds=0.2, seed=2)
    with pytest.raises(FileExistsError):
        synthesize_session(tmp_path, cameras=("body",), seconds=0.2, seed=2)
    session = synthesize_session(tmp_path, cameras=("body",), seconds=0.4, seed=2, force=True)
    assert len(np.load(session / "alf" / "_ibl_bodyCamera.times.npy")) == 12
    assert [p.name for p in session.parent.iterdir()] == ["001"]  # no partial folders left


# ---- ground truth against pixels ----------------------------------------------------------------------------

def _crop(image: np.ndarray, x: float, y: float, r: int) -> tuple[np.ndarray, int, int]:
    x0, y0 = max(int(round(x)) - r, 0), max(int(round(y)) - r, 0)
    return image[y0:int(round(y)) + r + 1, x0:int(round(x)) + r + 1].astype(float), x0, y0


def _dark_blob(image: np.ndarray, x: float, y: float, r: int) -> tuple[float, float, int]:
    """Centroid and size of the darkest blob within ``r`` of (x, y)."""
    crop, x0, y0 = _crop(image, x, y, r)
    ys, xs = np.mgrid[:crop.shape[0], :crop.shape[1]]
    inside = (xs + x0 - x) ** 2 + (ys + y0 - y) ** 2 <= r * r
    low, mid = np.percentile(crop[inside], 1), np.median(crop[inside])
    dark = inside & (crop < low + 0.4 * (mid - low))
    return xs[dark].mean() + x0, ys[dark].mean() + y0, int(dark.sum())


def _bright_blob(image: np.ndarray, x: float, y: float, r: int) -> tuple[float, float]:
    crop, x0, y0 = _crop(image, x, y, r)
    ys, xs = np.mgrid[:crop.shape[0], :crop.shape[1]]
    bright = crop > (np.percentile(crop, 99.5) + np.median(crop)) / 2
    return xs[bright].mean() + x0, ys[bright].mean() + y0


@pytest.mark.parametrize("name", ["left", "right"])
def test_pupil_is_the_darkest_blob_in_the_eye(session: Path, frames: dict, name: str) -> None:
    table = truth(session, name)
    eye = anchors(session, name)
    radius = int(eye["eye_axes"][1])
    points = ["pupil_top_r", "pupil_right_r", "pupil_bottom_r", "pupil_left_r"]
    errors, checked = [], 0
    for i, image in frames[name].items():
        row = table.iloc[i]
        if row.pupil_top_r_likelihood == 0:
            continue
        cx, cy = np.mean([row[f"{p}_x"] for p in points]), np.mean([row[f"{p}_y"] for p in points])
        bx, by, area = _dark_blob(image, *eye["eye_centre"], radius)
        errors.append(np.hypot(bx - cx, by - cy))
        diameter = row.pupil_bottom_r_y - row.pupil_top_r_y
        assert area == pytest.approx(np.pi * diameter**2 / 4, rel=0.35)
        checked += 1
    assert checked > 20 and np.max(errors) < 1.0 and np.mean(errors) < 0.4


def test_pupil_is_hidden_while_blinking(session: Path) -> None:
    table = truth(session, "left")
    blink = np.flatnonzero(table.pupil_top_r_likelihood.to_numpy() == 0)
    assert 3 <= len(blink) <= 0.3 * CAMERAS["left"].fps and np.ptp(blink) == len(blink) - 1  # one blink
    # the lid is lowest about a third of the way into the blink: no pupil shows
    shut = blink[0] + int(0.35 * len(blink))
    with VideoReader(session / "raw_video_data" / "_iblrig_leftCamera.raw.mp4") as reader:
        image = reader[shut]
    eye = anchors(session, "left")
    crop, _, _ = _crop(image, *eye["eye_centre"], int(eye["eye_axes"][1] * 0.8))
    assert (crop < 50).sum() < 5
    assert np.isnan(np.load(session / TRUTH_COLLECTION / truth_pupil_name("left"))[shut])


def test_pupil_points_are_hidden_from_the_top_down(session: Path) -> None:
    table = truth(session, "left")
    hidden = {side: table[f"pupil_{side}_r_likelihood"].to_numpy() == 0 for side in ("top", "right", "bottom", "left")}
    # the lid reaches the top first and the bottom last, and lifts off in the reverse order
    assert np.array_equal(hidden["right"], hidden["left"])
    assert (hidden["top"] >= hidden["right"]).all() and (hidden["right"] >= hidden["bottom"]).all()
    partly = np.flatnonzero(hidden["top"] & ~hidden["bottom"])
    assert len(partly) >= 2  # as the lid falls and as it rises
    # where the truth calls the bottom visible under a half-closed lid, the pupil is there in the picture
    with VideoReader(session / "raw_video_data" / "_iblrig_leftCamera.raw.mp4") as reader:
        for i in partly:
            x, y = round(table.pupil_bottom_r_x[i]), round(table.pupil_bottom_r_y[i])
            assert (reader[i][y - 3:y, x] < 60).any(), f"frame {i}: no pupil above its bottom point"


def test_nose_tip_is_the_front_edge_of_the_snout(session: Path, frames: dict) -> None:
    table = truth(session, "left")
    errors = []
    for i, image in frames["left"].items():
        x, y = table.nose_tip_x[i], table.nose_tip_y[i]
        row = image[int(round(y)), int(x) - 10:int(x) + 4].astype(float)  # the snout points left
        background, fur = row[:4].mean(), row[-3:].mean()
        half = (background + fur) / 2
        k = np.flatnonzero((row[:-1] < half) & (row[1:] >= half))[-1]
        edge = int(x) - 10 + k + (half - row[k]) / (row[k + 1] - row[k])  # where coverage is one half
        errors.append(abs(edge - x))
    assert np.median(errors) < 0.4 and np.max(errors) < 1.2


@pytest.mark.parametrize("name", ["left", "right"])
def test_paws_are_bright_blobs_at_their_truth(session: Path, frames: dict, name: str) -> None:
    table = truth(session, name)
    scene = anchors(session, name)
    scale = CAMERAS[name].width / 1280
    size = PAW_AXES[0] * scale
    errors, hidden_checked = [], 0
    for i, image in frames[name].items():
        row = table.iloc[i]
        paws = {p: (row[f"{p}_x"], row[f"{p}_y"]) for p in ("paw_r", "paw_l")}
        if row.paw_l_likelihood and np.hypot(*np.subtract(paws["paw_r"], paws["paw_l"])) < 3 * size:
            continue  # paws overlapping: no single blob to measure
        for point, (x, y) in paws.items():
            if np.isnan(x):
                continue
            above_rim = np.hypot(x - scene["wheel_centre"][0], y - scene["wheel_centre"][1]) - scene["wheel_radius"]
            if point == "paw_l" and above_rim < PAW_AXES[1] * scale + 2:
                continue  # partly behind the wheel: its visible part is off-centre
            errors.append(np.hypot(*np.subtract(_bright_blob(image, x, y, int(1.6 * size)), (x, y))))
        if not row.paw_l_likelihood:
            hidden_checked += 1
    assert len(errors) > 40 and np.median(errors) < 0.5 and np.max(errors) < 1.5 * max(1, 1 / scale)
    assert hidden_checked > 0  # the far paw does disappear behind the wheel


@pytest.mark.parametrize("name", ["left", "right"])
def test_tongue_pixels_only_when_tongue_is_visible(session: Path, frames: dict, name: str) -> None:
    table = truth(session, name)
    scene = anchors(session, name)
    mouth, spout = np.array(scene["mouth"]), np.array(scene["spout_tip"])
    seen = {True: [], False: []}
    for i, image in frames[name].items():
        row = table.iloc[i]
        visible = bool(row.tongue_end_r_likelihood)
        if visible:
            tip = np.array([(row.tongue_end_r_x + row.tongue_end_l_x) / 2, (row.tongue_end_r_y + row.tongue_end_l_y) / 2])
            if np.hypot(*(tip - mouth)) < 0.5 * np.hypot(*(spout - mouth)):
                continue  # barely out
            probe = mouth + 0.7 * (tip - mouth)
        else:
            probe = mouth + 0.5 * (spout - mouth)
        seen[visible].append(image[int(round(probe[1])), int(round(probe[0]))])
    assert len(seen[True]) >= 3 and len(seen[False]) > 20
    assert min(seen[True]) > 120 > 70 > max(seen[False])


@pytest.mark.parametrize("name", ["left", "right"])
def test_spout_anchors_mark_the_tube_tip(session: Path, frames: dict, name: str) -> None:
    scene, table = anchors(session, name), truth(session, name)
    top, bottom, tip = (np.array(scene[k]) for k in ("tube_top", "tube_bottom", "spout_tip"))
    for point, xy in (("tube_top", top), ("tube_bottom", bottom)):  # the truth's spout points are the anchors
        assert (table[f"{point}_likelihood"] == 1).all()
        np.testing.assert_allclose(table[[f"{point}_x", f"{point}_y"]].to_numpy() - xy, 0, atol=1e-3)
    np.testing.assert_allclose((top + bottom) / 2, tip, atol=1e-2)
    assert top[1] < bottom[1]
    across = (top - bottom) / np.hypot(*(top - bottom))
    along = np.array([across[1], -across[0]])  # one of the two directions along the tube
    radius = np.hypot(*(top - bottom)) / 2
    i = next(i for i in frames[name] if table.tongue_end_r_likelihood[i] == 0)
    image = frames[name][i]

    def level(point: np.ndarray) -> float:
        return _crop(image, *point, 1)[0].mean()

    inside = max(level(tip + 2 * radius * along), level(tip - 2 * radius * along))
    beyond = min(level(tip + 2 * radius * along), level(tip - 2 * radius * along))
    assert inside > 110 and beyond < 60  # the tube runs one way from its tip, and nothing lies beyond it
    assert level(tip + 0.5 * radius * across) > 110 and level(top + 2 * across) < 60 and level(bottom - 2 * across) < 60


def test_right_camera_is_the_mirror_image(session: Path) -> None:
    left, right = truth(session, "left"), truth(session, "right")
    for table, name, sign in ((left, "left", -1), (right, "right", 1)):
        eye_x = anchors(session, name)["eye_centre"][0]
        assert (np.sign(table.nose_tip_x - eye_x) == sign).all()  # the nose points left on left, right on right
        seen = table.pupil_top_r_likelihood > 0
        assert (np.sign(table.pupil_right_r_x - table.pupil_left_r_x)[seen] == -sign).all()
    # one mouse: the same pupil (at half the pixel size) and the same licks at the same moments
    t_left = np.load(session / "alf" / "_ibl_leftCamera.times.npy")
    t_right = np.load(session / "alf" / "_ibl_rightCamera.times.npy")
    d_left = np.load(session / TRUTH_COLLECTION / truth_pupil_name("left"))
    d_right = np.interp(t_left, t_right, np.load(session / TRUTH_COLLECTION / truth_pupil_name("right")))
    ok = ~np.isnan(d_left) & ~np.isnan(d_right)
    np.testing.assert_allclose(d_right[ok], d_left[ok] / 2, rtol=0.02)
    nearest = np.clip(np.searchsorted(t_right, t_left), 0, len(t_right) - 1)
    agree = left.tongue_end_r_likelihood.to_numpy() == right.tongue_end_r_likelihood.to_numpy()[nearest]
    assert agree.mean() > 0.95 and left.tongue_end_r_likelihood.sum() > 0


def test_near_paw_on_one_side_is_the_far_paw_on_the_other(session: Path) -> None:
    """paw_r is the paw nearer the camera: the left camera's paw_r (mouse's left paw) is the right camera's paw_l."""
    def lift(name: str, point: str) -> np.ndarray:
        """Height of the paw's centre above the wheel rim, in canonical (left-camera) pixels, on the left clock."""
        table, scene = truth(session, name), anchors(session, name)
        scale = 1280 / CAMERAS[name].width
        height = scale * (np.hypot(table[f"{point}_x"] - scene["wheel_centre"][0], table[f"{point}_y"] - scene["wheel_centre"][1])
                          - scene["wheel_radius"])
        times = np.load(session / "alf" / f"_ibl_{name}Camera.times.npy")
        return np.interp(np.load(session / "alf" / "_ibl_leftCamera.times.npy"), times, height.to_numpy())

    for near_camera, far_camera in (("left", "right"), ("right", "left")):
        near, far = lift(near_camera, "paw_r"), lift(far_camera, "paw_l")
        both = ~np.isnan(near) & ~np.isnan(far)
        assert both.sum() > 10
        # the near paw stands on the rim (PAW_AXES[1] up) and lifts half as much as the far one, which hangs free
        np.testing.assert_allclose(near[both], PAW_AXES[1] + 0.5 * far[both], atol=0.3)
    assert np.nanmax(np.abs(lift("left", "paw_r") - lift("right", "paw_r"))) > 2  # two paws, not one


def test_tail_start_is_where_the_tail_leaves_the_trunk(session: Path, frames: dict) -> None:
    table = truth(session, "body")
    assert table.tail_start_likelihood.eq(1).all() and table.tail_start_x.std() > 0.5
    for i, image in frames["body"].items():
        x, y = table.tail_start_x[i], table.tail_start_y[i]
        def at(dx: float, dy: float) -> float:
            return _crop(image, x + dx, y + dy, 1)[0].mean()  # noqa: B023 (used within the iteration)

        assert at(10, 0) > 120  # pale tail behind the point
        assert 55 < at(-14, 0) < 150  # furry trunk in front of it
        assert at(10, 16) < 50 and at(10, -16) < 50  # dark floor on either side of the tail


# ---- behaviour is consistent with itself and with the video ---------------------------------------------------

def test_licks_follow_rewards_and_show_the_tongue(session: Path) -> None:
    trials = pd.read_parquet(session / "alf" / "_ibl_trials.table.pqt")
    licks = np.load(session / TRUTH_COLLECTION / TRUTH_LICKS)
    spontaneous = np.load(session / TRUTH_COLLECTION / TRUTH_SPONTANEOUS_LICKS)
    rewarded = trials.loc[trials.feedbackType == 1, "feedback_times"].to_numpy()
    assert len(licks) >= 3 and set(trials.choice) <= {-1, 0, 1}
    assert ((trials.rewardVolume > 0) == (trials.feedbackType == 1)).all()
    assert (trials.contrastLeft.isna() ^ trials.contrastRight.isna()).all()
    for t in licks[~spontaneous]:
        since = t - rewarded[rewarded < t].max()
        assert 0.09 < since < 0.5 + 8 / 6 + 0.05
    for name in ("left", "right"):
        times = np.load(session / "alf" / f"_ibl_{name}Camera.times.npy")
        visible = truth(session, name).tongue_end_r_likelihood.to_numpy()
        for t in licks[(licks > times[0]) & (licks < times[-1])]:
            assert visible[np.argmin(np.abs(times - t))] == 1


def test_wheel_turns_between_first_movement_and_response(session: Path) -> None:
    trials = pd.read_parquet(session / "alf" / "_ibl_trials.table.pqt")
    t = np.load(session / "alf" / "_ibl_wheel.timestamps.npy")
    pos = np.load(session / "alf" / "_ibl_wheel.position.npy")
    moving = np.zeros(len(t), bool)
    for trial in trials[trials.choice != 0].itertuples():
        window = (t >= trial.firstMovement_times) & (t <= trial.response_times)
        moving |= window
        turn = pos[window][-1] - pos[window][0]
        assert abs(turn) > 0.15 and np.sign(turn) == -trial.choice  # counter-clockwise (positive) is choice -1
    assert np.ptp(pos[~moving]) == 0 or np.abs(np.diff(pos))[~moving[1:]].max() == 0
    # the paws are carried by the wheel: they travel more while it turns than while it rests
    left, times = truth(session, "left"), np.load(session / "alf" / "_ibl_leftCamera.times.npy")
    speed = np.abs(np.gradient(left.paw_r_x.to_numpy(), times))
    during = np.interp(times, t, moving.astype(float)) > 0.5
    assert speed[during].mean() > 3 * speed[~during].mean()


# ---- IBL's QC on the truth of longer sessions (no video rendered) ----------------------------------------------

QC_SECONDS = 20.0
QC_SEEDS = sorted({*range(8), DEMO_SEED})


def _truth_and_times(seed: int, name: str, seconds: float = QC_SECONDS) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    """A session's true pose and frame times for one camera, and its trials, without rendering the video."""
    camera, behaviour = CAMERAS[name], simulate(seconds, seed)
    times = frame_times(camera, seconds, seed)
    scene = BodyScene(camera, seed) if name == "body" else SideScene(camera, seed)
    return scene.truth(scene.geometry(behaviour.sample(times))), times, behaviour.trials


@pytest.mark.parametrize("seed", QC_SEEDS)
def test_mean_point_sits_well_inside_ibl_qc_box_and_trials_inside_the_video(seed: int) -> None:
    """IBL's DlcQC box around the mean of all confident points (spout included), 40 px of margin on each camera;
    every trial event within every camera's frames; the far paw seen in over 93 % of IBL's trial windows (it
    does hide behind the wheel: test_paws_are_bright_blobs_at_their_truth)."""
    for name in CAMERAS:
        table, times, trials = _truth_and_times(seed, name)
        points = [c.removesuffix("_x") for c in table.columns if c.endswith("_x")]
        confident = {p: table[f"{p}_likelihood"].to_numpy() >= 0.9 for p in points}
        mean = [np.mean([table[f"{p}_{axis}"][confident[p]].mean() for p in points]) for axis in "xy"]
        for value, allowed in zip(mean, BOUNDING_BOXES[name], strict=True):
            assert allowed.start + 40 < value < allowed.stop - 40, (name, mean)
        events = trials.filter(regex="_times$|^intervals").to_numpy()
        assert len(trials) >= 5 and times[0] < np.nanmin(events) and np.nanmax(events) < times[-1]
        if name == "body":
            continue
        start = trials.stimOn_times.to_numpy()[:, None] + TRIAL_WINDOW[0]
        window = ((times >= start) & (times < start + TRIAL_WINDOW[1])).any(axis=0)
        far_seen = confident["paw_l"]
        assert far_seen[window].mean() > 0.93, name
        assert all(confident["tube_top"]) and all(confident["tube_bottom"])


# ---- each paw's true state over a minute (no video rendered) ----------------------------------------------------

STATES_SECONDS, STATES_SEED = 60.0, 0  # this seed grooms three times in its first minute


@pytest.fixture(scope="module")
def paw_states() -> dict[str, tuple[pd.DataFrame, pd.DataFrame, np.ndarray, dict]]:
    """Per side camera: the true pose and paw states at its frame times, the times, and the scene's anchors."""
    behaviour, out = simulate(STATES_SECONDS, STATES_SEED), {}
    for name in ("left", "right"):
        camera, scene = CAMERAS[name], SideScene(CAMERAS[name], STATES_SEED)
        times = frame_times(camera, STATES_SECONDS, STATES_SEED)
        out[name] = scene.truth(scene.geometry(behaviour.sample(times))), scene.paw_states(behaviour, times), times, scene.anchors()
    return out


def test_paw_states_come_in_sensible_proportions(paw_states: dict) -> None:
    """Mostly still, often moving, turning the wheel on every trial, grooming a few times a minute at most."""
    bouts = simulate(STATES_SECONDS, STATES_SEED).groom_bouts
    assert 1 <= len(bouts) <= 4
    for name, (_, states, _, _) in paw_states.items():
        for paw in ("paw_r", "paw_l"):
            share = states[paw].value_counts(normalize=True)
            print(name, paw, ", ".join(f"{state} {share.get(state, 0):.1%}" for state in PAW_STATES))
            assert set(share.index) == set(PAW_STATES)
            assert 0.45 < share["still"] < 0.8 and 0.1 < share["move"] < 0.35
            assert 0.03 < share["wheel_turn"] < 0.15 and 0.01 < share["groom"] < 0.15


def test_wheel_turn_only_while_the_wheel_turns_under_the_paw(paw_states: dict) -> None:
    behaviour = simulate(STATES_SECONDS, STATES_SEED)
    for name, (pose, states, times, anchors) in paw_states.items():
        scale = CAMERAS[name].width / 1280
        period = 1 / CAMERAS[name].fps
        # the encoder's own record: over two frame periods, the wheel turns a good part of WHEEL_TURNING
        turned = np.abs(np.interp(times + period, behaviour.wheel_times, behaviour.wheel_position)
                        - np.interp(times - period, behaviour.wheel_times, behaviour.wheel_position))
        for paw in ("paw_r", "paw_l"):
            turning = states[paw].to_numpy() == "wheel_turn"
            assert turning.sum() > 100 and turned[turning].min() > WHEEL_TURNING * period
            # on the rim: the paw's centre at most three paw widths above it (a hidden far paw dips behind it)
            rim = np.hypot(pose[f"{paw}_x"] - anchors["wheel_centre"][0], pose[f"{paw}_y"] - anchors["wheel_centre"][1])
            on_rim = np.abs(rim - anchors["wheel_radius"]) < 3 * PAW_AXES[1] * scale
            assert on_rim[turning & pose[f"{paw}_x"].notna().to_numpy()].all()
            # and the wheel turning under a resting paw is a turn: no other state shows a fast wheel
            assert turned[~turning & on_rim.to_numpy()].max() < turned[turning].max()


def test_still_paws_do_not_move(paw_states: dict) -> None:
    for name, (pose, states, times, _) in paw_states.items():
        scale = CAMERAS[name].width / 1280
        for paw in ("paw_r", "paw_l"):
            speed = np.hypot(np.gradient(pose[f"{paw}_x"], times), np.gradient(pose[f"{paw}_y"], times))
            still = (states[paw].to_numpy() == "still") & np.isfinite(speed)
            moving = np.isin(states[paw].to_numpy(), ["move", "wheel_turn"]) & np.isfinite(speed)
            # np.gradient reaches one frame to each side, so a still frame next to a moving one shows some speed
            assert np.median(speed[still]) < 1e-6 and np.percentile(speed[still], 95) < STILL_SPEED * scale
            assert np.median(speed[moving]) > 10 * STILL_SPEED * scale


def test_grooming_paws_are_at_the_face_outside_trials(paw_states: dict) -> None:
    behaviour = simulate(STATES_SECONDS, STATES_SEED)
    trials = behaviour.trials
    for name, (pose, states, times, anchors) in paw_states.items():
        scale = CAMERAS[name].width / 1280
        grooming = (states.paw_r == "groom").to_numpy()
        assert (grooming == (states.paw_l == "groom").to_numpy()).all()  # both paws groom together
        in_trial = ((times >= trials.intervals_0.to_numpy()[:, None]) & (times <= trials.intervals_1.to_numpy()[:, None])).any(axis=0)
        assert grooming.sum() > 60 and not (grooming & in_trial).any()
        for paw in ("paw_r", "paw_l"):
            assert (pose[f"{paw}_likelihood"][grooming] == 1).all()  # both paws in view
            nose = np.hypot(pose[f"{paw}_x"] - pose.nose_tip_x, pose[f"{paw}_y"] - pose.nose_tip_y).to_numpy()
            rim = np.hypot(pose[f"{paw}_x"] - anchors["wheel_centre"][0], pose[f"{paw}_y"] - anchors["wheel_centre"][1])
            assert nose[grooming].max() < 140 * scale and (rim[grooming] - anchors["wheel_radius"]).min() > 250 * scale
            assert np.nanmin(nose[np.isin(states[paw], ["still", "wheel_turn"])]) > 300 * scale


@pytest.mark.parametrize("name", ["left", "right"])
def test_grooming_paws_are_bright_blobs_at_their_truth(paw_states: dict, name: str) -> None:
    """Drawn (no video: the scene's own frames) where the truth puts them, so a tracker can follow them."""
    pose, states, times, _ = paw_states[name]
    scene, behaviour = SideScene(CAMERAS[name], STATES_SEED), simulate(STATES_SECONDS, STATES_SEED)
    frames = np.flatnonzero((states.paw_r == "groom").to_numpy())[::25]
    geometry = scene.geometry(behaviour.sample(times[frames]))
    size = PAW_AXES[0] * CAMERAS[name].width / 1280
    errors = []
    for i, frame in enumerate(frames):
        image = scene.draw(geometry, geometry, geometry, i)[:CAMERAS[name].height]
        for paw in ("paw_r", "paw_l"):
            x, y = pose[f"{paw}_x"][frame], pose[f"{paw}_y"][frame]
            errors.append(np.hypot(*np.subtract(_bright_blob(image, x, y, int(1.2 * size)), (x, y))))
    assert len(errors) >= 10 and np.max(errors) < 1.0, np.round(errors, 2)


def test_paw_state_tables_have_a_row_per_frame(session: Path) -> None:
    for name in ("left", "right"):
        with VideoReader(session / "raw_video_data" / f"_iblrig_{name}Camera.raw.mp4") as reader:
            n_frames = reader.info.n_frames
        states = pd.read_parquet(session / TRUTH_COLLECTION / truth_paw_states_name(name))
        assert list(states.columns) == ["paw_r", "paw_l"] and len(states) == n_frames
        assert set(np.unique(states.to_numpy())) <= set(PAW_STATES)
    assert not (session / TRUTH_COLLECTION / truth_paw_states_name("body")).exists()


# ---- command line --------------------------------------------------------------------------------------------

def test_cli_renders_refuses_and_forces(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "iblvideo", "synth", str(tmp_path), "--quiet",
               "--seconds", "1", "--cameras", "right", "--seed", "3"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    session = Path(done.stdout.strip())
    assert session == tmp_path / "synth_mouse_3" / "2026-01-01" / "001"
    assert sorted(p.name for p in (session / "raw_video_data").iterdir()) == ["_iblrig_rightCamera.raw.mp4"]
    refused = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0 and len(refused.stderr.strip().splitlines()) == 1
    assert "already exists" in refused.stderr and "--force" in refused.stderr
    forced = subprocess.run(command + ["--force"], capture_output=True, text=True, timeout=120)
    assert forced.returncode == 0, forced.stderr
    with VideoReader(session / "raw_video_data" / "_iblrig_rightCamera.raw.mp4") as reader:
        assert reader.info.n_frames == 150
