"""Where IBL's Lightning Pose pipeline cuts, what its networks see, and how their answers become the
table: IBL's ROI sample and anchors, DALI's windows and frames, and the table's assembly, on the
right camera too. Parity with IBL's own code on whole tables is test_lp_ibl_reference.py's."""
from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from iblvideo.measures.features import pupil_diameter
from iblvideo.tracking.eks import PUPIL_ORDER, smooth_pupil
from iblvideo.tracking.lp_crops import Window, anchor_means, network_frames, prepare, sample_indices, warn_clamped
from iblvideo.tracking.lp_networks import V2_2
from iblvideo.tracking.lp_table import NetworkOutput, pose_table
from iblvideo.tracks import PoseTracks
from test_eks import members

NOSE, EYE, PAWS, TONGUE = V2_2.side[1:]


def test_roi_sample_is_ibls() -> None:
    """One frame a second, 20 to 500, from the first frame to the last, evenly."""
    assert len(sample_indices(600, 60.0)) == 20  # 10 s
    hour = sample_indices(60 * 3600, 60.0)
    assert len(hour) == 500 and hour[0] == 0 and hour[-1] == 60 * 3600 - 1
    assert list(sample_indices(3000, 60.0)[:3]) == [0, 61, 122]  # 50 frames, 2999 / 49 = 61.2 frames apart, rounded
    assert len(sample_indices(12, 60.0)) == 20  # a short video: frames repeat, as in IBL's subsampled one


def test_anchor_is_the_truncated_mean_of_confident_detections() -> None:
    x = np.array([[10.9, 100.0], [11.9, 200.0], [500.0, 300.0]])
    y = np.array([[20.2, 5.0], [21.2, 5.0], [500.0, 6.0]])
    likelihood = np.array([[0.95, 0.9], [0.9, 0.95], [0.5, 0.2]])  # the third frame is not confident
    np.testing.assert_array_equal(anchor_means(x, y, likelihood), [[11, 20], [150, 5]])
    assert np.isnan(anchor_means(x, y, np.zeros_like(x))).all()


def test_windows_on_the_right_camera_are_half_size() -> None:
    """The tongue's anchor is a mean of two whole pixels: on the right camera its window starts on a half pixel, which DALI rounds."""
    at = (np.mean([301, 302]), 200.0)
    window = Window.of(TONGUE, at, 2, (640, 512))
    assert window.as_whxy() == (80.0, 80.0, 301.5 - 30, 150.0) and window.size == (80, 80)
    assert window.origin == (272, 150) and not window.clamped  # 271.5, halves away from zero
    eye = Window.of(EYE, (100.0, 80.0), 1, (1280, 1024))
    assert eye.as_whxy() == (100.0, 100.0, 50.0, 30.0) and eye.origin == (50, 30)


def test_a_window_leaving_the_frame_is_cut_inside_it_and_said(caplog: pytest.LogCaptureFixture) -> None:
    window = Window.of(NOSE, (1270.0, 10.0), 1, (1280, 1024))  # corner at (1220, −40)
    assert window.clamped and window.origin == (1180, 0)
    with caplog.at_level(logging.WARNING):
        warn_clamped({"nose_tip": window, "eye": Window.of(EYE, (600.0, 400.0), 1, (1280, 1024))}, "v.mp4")
    assert [r.getMessage() for r in caplog.records] == ["v.mp4: the nose_tip window (100.0, 100.0, 1220.0, -40.0) leaves the frame; it is cut at (1180, 0) instead"]


def test_frames_as_dali_prepares_them() -> None:
    """Limited-range luma stretched and clipped, flipped on the right camera, brightened ×4 and clipped at camera resolution."""
    frames = torch.tensor([[[10, 16, 60, 235, 250, 126]]], dtype=torch.uint8).expand(1, 2, 6)
    out = network_frames(frames, flip=True)
    np.testing.assert_allclose(out[0, 0], [110 * 255 / 219, 255, 255, 44 * 255 / 219, 0, 0], rtol=1e-6)
    window = Window(4.0, 2.0, 1.0, 0.0, (6, 2))
    eye = prepare(network_frames(frames, flip=False), window, 4.0, (4, 2))
    # columns 1-4 (0, 44, 219, 234 stretched): ×4/255 clipped at 1, before any resizing (the filter is pinned by the DALI fixture)
    stretched = np.array([0.0, 44.0, 219.0, 234.0]) * 255 / 219
    np.testing.assert_allclose(eye[0, 0, 0], np.minimum(stretched / 255 * 4, 1.0), rtol=1e-6)
    assert eye.shape == (1, 1, 2, 4)


def ensemble_on(window: Window, network, keypoints: tuple[str, ...], x: np.ndarray, y: np.ndarray, likelihood: np.ndarray) -> NetworkOutput:
    """The members' answers as the networks give them: in the pixels of the crop DALI cut at ``window.origin``."""
    return NetworkOutput(network, keypoints, x - window.origin[0], y - window.origin[1], likelihood, window)


def test_the_right_camera_pupil_is_smoothed_where_the_network_saw_it() -> None:
    """The pupil smoother is not mirror-symmetric (its right point is centre + d/2): IBL smooths in the
    network's flipped frame, then mirrors x back. The real ensemble, seen by the right camera's network,
    keeps its diameter; mirroring first would have made it a few pixels."""
    x, y, likelihood = members("ibl-pupil", "*.left.rng=*.csv.gz", PUPIL_ORDER)
    x, y = x / 2, y / 2  # the right camera's frames are half the left's
    window = Window.of(EYE, (float(np.median(x[..., 0])), float(np.median(y[..., 0]))), 2, (640, 512))
    tables = {flip: PoseTracks.from_frame(pose_table([ensemble_on(window, EYE, PUPIL_ORDER, x, y, likelihood)], V2_2, 150.0, flip, False))
              for flip in (False, True)}
    right, unflipped = tables[True], tables[False]
    diameter = np.nanmedian(pupil_diameter(right))
    assert 6.0 < diameter < 9.0  # 15.7 px on the left camera, halved
    np.testing.assert_allclose(pupil_diameter(right), pupil_diameter(unflipped), atol=1e-9)
    np.testing.assert_allclose(right.xy[..., 0], 640 - unflipped.xy[..., 0], atol=1e-9)
    mirrored_first = PoseTracks.from_frame(smooth_pupil(640 - x, y, likelihood))  # the members mirrored, then smoothed
    assert np.nanmedian(pupil_diameter(mirrored_first)) < diameter / 3


def test_table_in_ibls_order_with_every_keypoint_and_likelihoods_at_most_one() -> None:
    rng = np.random.default_rng(0)
    frame = (1280, 1024)
    tongue_points = ("tongue_end_r", "tongue_end_l", "tube_top", "tube_bottom")
    window = Window.of(TONGUE, (700.5, 600.0), 1, frame)
    x, y = rng.uniform(650, 800, (1, 30, 4)), rng.uniform(500, 640, (1, 30, 4))
    likelihood = np.full((1, 30, 4), np.float32(1.0000001), dtype=np.float64)
    nose = Window.of(NOSE, (900.0, 500.0), 1, frame)
    outputs = [ensemble_on(nose, NOSE, ("nose_tip",), x[..., :1] + 200, y[..., :1], likelihood[..., :1] * 0.5),
               ensemble_on(window, TONGUE, tongue_points, x, y, likelihood)]
    table = pose_table(outputs, V2_2, 60.0, False, False)
    assert list(table.columns) == [f"{p}_{c}" for p in ("nose_tip", *tongue_points) for c in ("x", "y", "likelihood")]
    assert table.filter(like="likelihood").to_numpy().max() == 1.0
    np.testing.assert_allclose(table["tube_top_x"], x[0, :, 2], atol=1e-9)  # back in the camera's pixels


def test_ibl_exact_maps_a_moved_window_back_from_where_ibl_asked() -> None:
    """IBL adds the corner it asked for, not the one DALI cut at: its points are off by the difference."""
    window = Window.of(NOSE, (1270.0, 10.0), 1, (1280, 1024))
    x, y = np.full((1, 5, 1), 1250.0), np.full((1, 5, 1), 30.0)
    output = ensemble_on(window, NOSE, ("nose_tip",), x, y, np.ones((1, 5, 1)))
    ours, ibl = (pose_table([output], V2_2, 60.0, False, exact) for exact in (False, True))
    np.testing.assert_allclose(ours[["nose_tip_x", "nose_tip_y"]].to_numpy(), [[1250.0, 30.0]] * 5)
    np.testing.assert_allclose(ibl[["nose_tip_x", "nose_tip_y"]].to_numpy(), [[1250.0 + 40, 30.0 - 40]] * 5)
