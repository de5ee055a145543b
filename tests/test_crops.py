"""Crop geometry: right-camera flips and scaling, padding at the borders, and the way back to pixels."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from iblvideo.cameras import CAMERAS
from iblvideo.tracking.crops import View, Window, cut, cut_each, from_window


def dot_frames(view: View, points: list[tuple[int, int]]) -> torch.Tensor:
    frames = torch.zeros(len(points), view.height, view.width, dtype=torch.uint8)
    for k, (x, y) in enumerate(points):
        frames[k, y, x] = 255
    return frames


def brightest(image: torch.Tensor) -> tuple[float, float]:
    """Intensity-weighted centre of an image (h, w), in its pixels."""
    weights = image.double()
    ys, xs = torch.meshgrid(torch.arange(image.shape[0]), torch.arange(image.shape[1]), indexing="ij")
    return float((weights * xs).sum() / weights.sum()), float((weights * ys).sum() / weights.sum())


@pytest.mark.parametrize("camera", ["left", "right", "body"])
def test_canonical_round_trip(camera):
    view = View.of(CAMERAS[camera])
    x, y = np.array([0.0, 17.25, 639.0]), np.array([0.0, 3.5, 511.0])
    np.testing.assert_allclose(view.to_camera(*view.to_canonical(x, y)), (x, y))


def test_right_camera_is_the_mirror_at_twice_the_scale():
    view = View.of(CAMERAS["right"])
    assert view.canonical_size == (1280, 1024)
    # the right camera's left column is the canonical right edge, and pixel centres scale about edges
    np.testing.assert_allclose(view.to_canonical(np.array([0.0, 639.0]), np.array([0.0, 511.0])), ([1278.5, 0.5], [0.5, 1022.5]))


@pytest.mark.parametrize("camera, point, window", [
    ("left", (300, 200), Window(100, 100, 250, 150)),
    ("right", (300, 200), Window(100, 100, 620, 350)),
    ("body", (500, 400), Window(220, 220, 390, 290)),
])
def test_a_point_cut_and_mapped_back_lands_where_it_was(camera, point, window):
    view = View.of(CAMERAS[camera])
    crop = cut(dot_frames(view, [point]), view, window, (window.w, window.h))[0, 0]
    cx, cy = from_window(*brightest(crop), window, (window.w, window.h))
    np.testing.assert_allclose(view.to_camera(cx, cy), point, atol=1e-6)


def test_windows_outside_the_frame_are_padded_not_shifted():
    view = View.of(CAMERAS["left"])
    frames = torch.full((1, 1024, 1280), 100, dtype=torch.uint8)
    crop = cut(frames, view, Window(100, 100, -30, 980), (100, 100))[0, 0]
    assert crop.shape == (100, 100)
    assert (crop[:, :30] == 0).all() and (crop[44:, :] == 0).all() and (crop[:44, 30:] == 100).all()


def test_downsampled_whole_frame_keeps_coordinates():
    view = View.of(CAMERAS["right"])
    window, size = view.full_window(), (128, 102)
    frames = torch.zeros(1, 512, 640, dtype=torch.uint8)
    frames[0, 200:210, 100:110] = 255  # a 10×10 blob centred at (104.5, 204.5)
    crop = cut(frames, view, window, size)[0, 0]
    cx, cy = from_window(*brightest(crop), window, size)
    np.testing.assert_allclose(view.to_camera(cx, cy), (104.5, 204.5), atol=0.3)


def test_off_grid_windows_are_refused_and_snap_fixes_them():
    view = View.of(CAMERAS["right"])
    with pytest.raises(ValueError, match="pixel grid"):
        cut(torch.zeros(1, 512, 640, dtype=torch.uint8), view, Window(100, 100, 251, 150), (100, 100))
    assert view.snap(Window(99, 100, 251, 151)) == Window(100, 100, 250, 150)


@pytest.mark.parametrize("camera", ["left", "right"])
def test_a_window_per_frame_cuts_what_cut_cuts(camera):
    view = View.of(CAMERAS[camera])
    frames = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (4, view.height, view.width), dtype=np.uint8))
    # inside, across the left and top edges, across the right and bottom edges, and off the frame
    corners = [(600, 400), (-40, -30), (1220, 980), (-300, 500)]
    windows = [view.snap(Window(160, 160, x, y)) for x, y in corners]
    each = cut_each(frames, view, windows, (80, 80))
    one_by_one = torch.cat([cut(frames[i:i + 1], view, window, (80, 80)) for i, window in enumerate(windows)])
    assert torch.equal(each, one_by_one)
    # two windows a frame, in rounds: the second round is cut from the same frames again
    twice = cut_each(frames[:2], view, windows, (80, 80))
    assert torch.equal(twice, torch.cat([cut(frames[i % 2:i % 2 + 1], view, window, (80, 80)) for i, window in enumerate(windows)]))
    with pytest.raises(ValueError, match="one size"):
        cut_each(frames[:2], view, [windows[0], view.snap(Window(100, 100, 0, 0))], (80, 80))
    with pytest.raises(ValueError, match="whole number"):
        cut_each(frames[:3], view, windows, (80, 80))


def test_block_means_of_padded_patches_equal_average_pooling():
    """Whole-factor shrinks never copy the padding; the result is average pooling of the padded patch."""
    from iblvideo.tracking.crops import _resize

    rng = np.random.default_rng(1)
    checked = 0
    for _ in range(300):
        factor, out_h, out_w = (int(v) for v in rng.integers((2, 1, 1), (14, 8, 8)))  # over 11: float sums
        top, left = int(rng.integers(0, out_h * factor)), int(rng.integers(0, out_w * factor))
        bottom, right = int(rng.integers(0, out_h * factor - top)), int(rng.integers(0, out_w * factor - left))
        h, w = out_h * factor - top - bottom, out_w * factor - left - right
        if h == 0 or w == 0:
            continue
        patch = torch.from_numpy(rng.integers(0, 256, (2, h, w), dtype=np.uint8))
        pad = (left, right, top, bottom)
        expected = torch.nn.functional.avg_pool2d(torch.nn.functional.pad(patch.float(), pad).unsqueeze(1), factor)
        assert torch.allclose(_resize(patch, (out_w, out_h), pad), expected, atol=1e-4)
        assert torch.allclose(_resize(patch.float(), (out_w, out_h), pad), expected, atol=1e-3)
        checked += 1
    assert checked > 200
