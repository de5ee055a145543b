"""Labeled videos on a synthetic session whose ground truth stands in for the pose outputs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from iblvideo.cli import main
from iblvideo.errors import IblVideoError
from iblvideo.io.alf import SessionPaths
from iblvideo.measures.motion_energy import Roi
from iblvideo.results import label_video as L
from iblvideo.results.load import CameraResults, load_camera, point_colour
from iblvideo.tracks import LIKELIHOOD_THRESHOLD, PoseTracks
from iblvideo.video.reader import VideoReader


def _video(session, camera):
    return session / "raw_video_data" / f"_iblrig_{camera}Camera.raw.mp4"


def _isolated_points(xy: np.ndarray, names: list[str], spacing: float) -> list[str]:
    """Points seen in this frame whose marker no other marker covers."""
    seen = [i for i in range(len(names)) if np.isfinite(xy[i]).all()]
    return [names[i] for i in seen if all(np.hypot(*(xy[i] - xy[j])) > spacing for j in seen if j != i)]


def test_frame_range_draws_every_point_where_the_pose_says(session_with_truth_as_pose, tmp_path):
    session = session_with_truth_as_pose
    out = L.label_video(_video(session, "right"), frames=(200, 240), out=tmp_path / "right.mp4")
    truth = pd.read_parquet(SessionPaths(session).truth_pose("right"))
    camera = load_camera(session, "right")
    with VideoReader(out, grey=False) as labeled, VideoReader(_video(session, "right"), grey=False) as raw:
        assert len(labeled) == 40 and labeled.info.fps == raw.info.fps
        checked = 0
        for offset in (0, 17, 39):
            index = 200 + offset
            drawn, original = labeled[offset].astype(int), raw[index].astype(int)
            xy = np.array([[truth.at[index, f"{p}_x"], truth.at[index, f"{p}_y"]] for p in camera.points])
            for point in _isolated_points(xy, camera.points, spacing=6):
                x, y = (int(round(v)) for v in xy[camera.points.index(point)])
                assert truth.at[index, f"{point}_likelihood"] >= LIKELIHOOD_THRESHOLD
                assert np.abs(drawn[y, x] - point_colour(point)).max() < 45, (index, point, drawn[y, x])
                assert np.ptp(original[y, x]) < 20  # the raw video is grey there: the colour was drawn
                checked += 1
        assert checked >= 9
        # the label spells this frame's number and time
        coverage = L.render_text(f"frame 217  {camera.times[217]:.3f} s", L.Labeler(camera, 640).text_pixels)
        wrong = L.render_text(f"frame 218  {camera.times[218]:.3f} s", L.Labeler(camera, 640).text_pixels)
        pad = max(2, L.Labeler(camera, 640).text_pixels // 4)
        corner = labeled[17].mean(axis=2)[pad:pad + coverage.shape[0], pad:pad + coverage.shape[1]]
        match = np.corrcoef(corner.ravel(), coverage.ravel())[0, 1]
        assert match > 0.9 and match > np.corrcoef(corner.ravel(), wrong[:, : coverage.shape[1]].ravel())[0, 1] + 0.05


def test_labeler_fades_unsure_points_and_outlines_the_roi():
    pose = pd.DataFrame({"nose_tip_x": [30.0], "nose_tip_y": [20.0], "nose_tip_likelihood": [0.99],
                         "paw_r_x": [50.0], "paw_r_y": [30.0], "paw_r_likelihood": [0.5],
                         "paw_l_x": [np.nan], "paw_l_y": [np.nan], "paw_l_likelihood": [0.0]})
    camera = CameraResults("right", PoseTracks.from_frame(pose), Path("pose.pqt"), times=np.array([1.25]), video=None, roi=Roi(w=20, h=10, x=5, y=25),
                           motion_energy=None, features=None)
    grey = np.full((40, 64), 100, np.uint8)
    image = L.Labeler(camera, width=64).draw(0, grey).astype(int)
    assert tuple(image[20, 30]) == point_colour("nose_tip")
    assert tuple(image[30, 50]) == tuple(int(100 + L.FADE * (c - 100)) for c in point_colour("paw_r"))
    assert (image[25, 5:25] == 255).all() and (image[25:35, 5] == 255).all()  # ROI outline
    assert (image[28:33, 8:22] == 100).all()  # its inside untouched
    assert image[:14, :].max() == 255 and image[1, 1].max() < 100  # white text on a darkened box


def test_discs_clip_at_the_border():
    image = np.full((10, 10, 3), 100, np.uint8)
    L.draw_disc(image, 9, 9, 3, (0, 0, 0))
    assert tuple(image[9, 9]) == (0, 0, 0) and tuple(image[0, 0]) == (100, 100, 100)


def test_trials_decode_only_their_frames(session_with_truth_as_pose, tmp_path, monkeypatch):
    session = session_with_truth_as_pose
    trials = pd.read_parquet(session / "alf" / "_ibl_trials.table.pqt")
    times = np.load(session / "alf" / "_ibl_bodyCamera.times.npy")
    inside = np.flatnonzero((times >= trials.at[0, "intervals_0"]) & (times <= trials.at[0, "intervals_1"]))
    decoded = []
    frames = VideoReader.frames

    def spy(self, start=0, stop=None):
        decoded.append((start, stop))
        return frames(self, start, stop)

    monkeypatch.setattr(VideoReader, "frames", spy)
    out = L.label_video(_video(session, "body"), trials=[0], out=tmp_path / "trial0.mp4")
    assert decoded[-1] == (inside[0], inside[-1] + 1)
    monkeypatch.undo()
    with VideoReader(out) as labeled:
        assert len(labeled) == len(inside)


def test_trial_segments_merge_and_errors(tmp_path):
    trials = pd.DataFrame({"intervals_0": [0.0, 1.0, 5.0], "intervals_1": [1.0, 2.0, 6.0]})
    times = np.arange(0, 3, 0.5)
    assert L.trial_segments(trials, times, [1, 0, 0], tmp_path) == [(0, 5)]
    with pytest.raises(IblVideoError, match="no trial 7"):
        L.trial_segments(trials, times, [7], tmp_path)
    with pytest.raises(IblVideoError, match="outside the video"):
        L.trial_segments(trials, times, [2], tmp_path)


def test_cli(session_with_truth_as_pose, tmp_path, capsys):
    video = _video(session_with_truth_as_pose, "body")
    assert main(["-q", "label-video", str(video), "--frames", "3:8", "--out", str(tmp_path / "b.mp4")]) == 0
    with VideoReader(tmp_path / "b.mp4") as labeled:
        assert len(labeled) == 5
    assert main(["-q", "label-video", str(video), "--trials", "99", "--out", str(tmp_path / "x.mp4")]) == 2
    assert "no trial 99" in capsys.readouterr().err
    loose = tmp_path / "loose.mp4"
    loose.write_bytes(video.read_bytes())
    assert main(["-q", "label-video", str(loose)]) == 2
    assert "not inside an ALF session" in capsys.readouterr().err
    assert not (tmp_path / "x.mp4").exists()
