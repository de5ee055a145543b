"""Backbones, heatmap read-out, coordinate mappings and augmentation geometry."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from iblvideo.networks.backbones import EfficientNetLite0, ResNet50
from iblvideo.networks.pose import PoseNetwork, rescale_points, resize_frames, soft_argmax
from iblvideo.training.augment import Augmentation


def test_efficientnet_loads_imagenet_weights():
    backbone = EfficientNetLite0()
    before = backbone._conv_stem.weight.clone()
    backbone.load_imagenet()
    assert not torch.equal(before, backbone._conv_stem.weight)
    assert backbone(torch.zeros(1, 3, 64, 96)).shape == (1, 1280, 2, 3)


def test_resnet50_uses_torchvision_names():
    names = set(ResNet50().state_dict())
    for name in ("conv1.weight", "bn1.running_mean", "layer1.0.downsample.0.weight", "layer1.0.downsample.1.weight",
                 "layer4.2.conv3.weight", "layer4.2.bn3.bias", "layer3.5.bn2.running_var"):
        assert name in names
    assert sum(p.numel() for p in ResNet50().parameters()) == 23_508_032  # torchvision's resnet50 less its fc


def test_soft_argmax_is_sub_pixel_and_likelihood_is_the_mass_near_the_mode():
    probabilities = torch.zeros(1, 1, 12, 12)
    probabilities[0, 0, 4, 6], probabilities[0, 0, 4, 7], probabilities[0, 0, 5, 6] = 0.4, 0.3, 0.1
    probabilities[0, 0, 11, 0] = 0.2  # far from the mode: not part of the estimate
    xy, likelihood = soft_argmax(probabilities)
    assert xy[0, 0].tolist() == pytest.approx([6.375, 4.125])
    assert likelihood.item() == pytest.approx(0.8)


@pytest.mark.parametrize("phases", [2, 4])
def test_soft_argmax_reads_sub_pixel_phases_in_place(phases):
    """Heatmaps as a sub-pixel layer leaves them, before the pixel shuffle: the same peaks and masses,
    near the edges too."""
    generator = torch.Generator().manual_seed(phases)
    logits = torch.randn(3, 2 * phases**2, 5, 6, generator=generator) * 4
    whole = torch.nn.functional.pixel_shuffle(logits, phases)
    probabilities = whole.flatten(2).softmax(-1).view_as(whole)
    phased = logits.reshape(3, 2, -1).softmax(-1).view_as(logits)
    xy, likelihood = soft_argmax(probabilities)
    xy_phased, likelihood_phased = soft_argmax(phased, phases=phases)
    torch.testing.assert_close(xy_phased, xy)
    torch.testing.assert_close(likelihood_phased, likelihood)


@pytest.mark.parametrize("backbone", ["tiny", "efficientnet_lite0_s8", "resnet50"])
def test_a_network_ready_for_inference_gives_the_heatmaps_it_was_trained_to(backbone):
    torch.manual_seed(3)
    network = PoseNetwork(backbone, 3, (96, 64), head_channels=8)
    for layer in network.modules():  # statistics far from the defaults, so that folding them matters
        if isinstance(layer, torch.nn.BatchNorm2d):
            layer.running_mean.normal_(0, 0.5)
            layer.running_var.uniform_(0.2, 3.0)
            torch.nn.init.normal_(layer.weight, 1.0, 0.3)
            torch.nn.init.normal_(layer.bias, 0.0, 0.3)
    frames = torch.rand(5, 1, 64, 96)
    with torch.no_grad():
        expected = network.eval()(frames)
        ready = network.for_inference()
        got = ready(frames)
    assert not any(isinstance(layer, torch.nn.BatchNorm2d) for layer in ready.modules())
    assert ready.phases == 2 and ready.heatmap_phases(frames).shape == (5, 3 * 4, 16, 24)  # the heatmap layer, sub-pixel
    assert got.shape == expected.shape == (5, 3, 32, 48)
    assert torch.allclose(got, expected, atol=1e-4 * expected.abs().max().item())
    # read in place, the phases give what the shuffled heatmaps give
    xy, likelihood = ready.locate(ready.heatmap_phases(frames), phases=2)
    xy_whole, likelihood_whole = ready.locate(got)
    torch.testing.assert_close(xy, xy_whole)
    torch.testing.assert_close(likelihood, likelihood_whole)


def test_rescale_points_round_trip():
    xy = np.array([[0.0, 0.0], [395.0, 405.0], [12.3, 200.7]], np.float32)
    there = rescale_points(xy, (396, 406), (128, 96))
    np.testing.assert_allclose(rescale_points(there, (128, 96), (396, 406)), xy, atol=1e-4)
    # pixel centres: the image's outer edges map onto each other
    np.testing.assert_allclose(rescale_points(np.array([[-0.5, -0.5]]), (396, 406), (128, 96)), [[-0.5, -0.5]])


def test_predict_takes_uint8_or_float_and_checks_size():
    torch.manual_seed(0)
    network = PoseNetwork("efficientnet_lite0", 3, (64, 32))
    frames = np.random.default_rng(0).integers(0, 256, (2, 32, 64), dtype=np.uint8)
    xy, likelihood = network.predict(frames)
    xy_float, _ = network.predict(torch.as_tensor(frames).float() / 255)
    assert xy.shape == (2, 3, 2) and likelihood.shape == (2, 3)
    assert ((likelihood >= 0) & (likelihood <= 1)).all()
    np.testing.assert_allclose(xy, xy_float, atol=1e-4)
    assert network.training  # predict leaves the mode as it found it
    with pytest.raises(ValueError, match="64x32"):
        network.predict(frames[:, :, :32])
    assert resize_frames(frames, (32, 16)).shape == (2, 1, 16, 32)


def test_augmentation_moves_points_with_the_image():
    ys, xs = torch.meshgrid(torch.arange(40.0), torch.arange(60.0), indexing="ij")
    frames = torch.exp(-((xs - 27.3) ** 2 + (ys - 18.6) ** 2) / 8).expand(6, 1, 40, 60).clone()  # one blob
    points = torch.tensor([[[27.3, 18.6]]]).repeat(6, 1, 1)
    geometric_only = Augmentation(brightness=0.0, contrast=(1.0, 1.0), probability=0.0)
    moved_frames, moved = geometric_only(frames, points, torch.Generator().manual_seed(1))
    weights = moved_frames[:, 0]
    centroid = torch.stack([(weights * xs).sum((1, 2)), (weights * ys).sum((1, 2))], -1) / weights.sum((1, 2))[:, None]
    torch.testing.assert_close(moved[:, 0], centroid, atol=0.05, rtol=0)
    assert not torch.allclose(moved, points)


def test_augmentation_is_seeded():
    frames, points = torch.rand(3, 1, 32, 32), torch.rand(3, 2, 2) * 31
    a = Augmentation()(frames.clone(), points.clone(), torch.Generator().manual_seed(5))
    b = Augmentation()(frames.clone(), points.clone(), torch.Generator().manual_seed(5))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1].nan_to_num(-1), b[1].nan_to_num(-1))


def test_a_coarse_head_upsampled_gives_heatmaps_at_the_heatmap_stride():
    """A head that stops at stride 4 and enlarges bilinearly: heatmaps, read-out and inference as before."""
    torch.manual_seed(5)
    network = PoseNetwork("tiny", 2, (64, 48), head_channels=8, heatmap_stride=2, head_stride=4)
    assert sum(isinstance(layer, torch.nn.ConvTranspose2d) for layer in network.head.modules()) == 1
    frames = torch.rand(3, 1, 48, 64)
    with torch.no_grad():
        expected = network.eval()(frames)
        ready = network.for_inference()
        got = ready(frames)
    assert got.shape == expected.shape == (3, 2, 24, 32)
    assert torch.allclose(got, expected, atol=1e-4 * expected.abs().max().item())
    xy, likelihood = ready.predict(frames[:, 0])
    assert xy.shape == (3, 2, 2) and ((likelihood >= 0) & (likelihood <= 1)).all()
    with pytest.raises(ValueError, match="head stride"):
        PoseNetwork("tiny", 2, (64, 48), heatmap_stride=2, head_stride=16)
