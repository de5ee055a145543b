"""Heatmap pose network: backbone, upsampling head, sub-pixel read-out and likelihood.

Each keypoint's heatmap is a probability distribution over its cells (a spatial softmax): the
position is the mean of that distribution near its mode, the likelihood the mass found there.

Coordinates follow the pixel-centre convention: pixel ``i`` covers [i - 0.5, i + 0.5], so resizing an
image of width W to width w maps x to (x + 0.5) * w / W - 0.5, and heatmap cell j of a stride-s head
sits at input pixel (j + 0.5) * s - 0.5.
"""
from __future__ import annotations

import itertools
from typing import TypeVar

import numpy as np
import torch
from torch import fx, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from iblvideo.networks.backbones import BACKBONES, IMAGENET_MEAN, IMAGENET_STD, Backbone, freeze_early_layers
from iblvideo.networks.settings import HEAD_CHANNELS, HEATMAP_STRIDE, Size

READOUT_RADIUS = 3  # heatmap cells either side of the peak that the soft-argmax averages


# points come back as they went in: an array as an array, a tensor as a tensor
Points = TypeVar("Points", np.ndarray, torch.Tensor)


def rescale_points(xy: Points, src: Size, dst: Size) -> Points:
    """Map (..., 2) pixel coordinates from an image of size ``src`` to the same image resized to ``dst``."""
    if isinstance(xy, torch.Tensor):
        return (xy + 0.5) * (xy.new_tensor(dst) / xy.new_tensor(src)) - 0.5
    return (xy + 0.5) * np.divide(dst, src, dtype=np.float32) - 0.5


def resize_frames(frames: np.ndarray | torch.Tensor, size: Size) -> torch.Tensor:
    """Grey frames (N, H, W), uint8 or float in [0, 1], as float (N, 1, h, w) of ``size`` (w, h)."""
    frames = torch.as_tensor(frames)
    x = frames.float().div_(255.0) if frames.dtype == torch.uint8 else frames.float()
    x = x.unsqueeze(1)
    if (x.shape[-1], x.shape[-2]) != tuple(size):
        x = nn.functional.interpolate(x, size=(size[1], size[0]), mode="bilinear", align_corners=False, antialias=True)
    return x


def _upsample(in_channels: int, out_channels: int, last: bool) -> nn.Sequential:
    """Double the resolution; the last step outputs heatmaps, so no normalisation or activation."""
    deconv = nn.ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1, bias=last)
    return nn.Sequential(deconv) if last else nn.Sequential(deconv, nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


def as_subpixel(deconv: nn.Module) -> tuple[nn.Conv2d, nn.PixelShuffle]:
    """The same layer as a 3×3 convolution to four output phases and the pixel shuffle that interleaves
    them: the same output, and far faster on a CPU when there are few output channels (the heatmaps).

    Output row 2m takes input rows m - 1 and m through kernel rows 3 and 1; row 2m + 1 takes rows m and
    m + 1 through kernel rows 2 and 0 (and likewise for columns).
    """
    if not (isinstance(deconv, nn.ConvTranspose2d) and (deconv.kernel_size, deconv.stride, deconv.padding) == ((4, 4), (2, 2), (1, 1))):
        raise ValueError(f"{deconv} is not a 4×4, stride-2, padding-1 transposed convolution")
    taps = ({0: 3, 1: 1}, {1: 2, 2: 0})  # per output phase: 3×3 tap -> transposed-kernel index
    weight = deconv.weight  # (in, out, 4, 4)
    conv = nn.Conv2d(deconv.in_channels, 4 * deconv.out_channels, 3, padding=1, bias=deconv.bias is not None)
    phased = torch.zeros(deconv.out_channels, 2, 2, deconv.in_channels, 3, 3, dtype=weight.dtype)
    for row_phase, rows in enumerate(taps):
        for col_phase, cols in enumerate(taps):
            for dy, ky in rows.items():
                for dx, kx in cols.items():
                    phased[:, row_phase, col_phase, :, dy, dx] = weight[:, :, ky, kx].T
    with torch.no_grad():
        conv.weight.copy_(phased.reshape(conv.weight.shape))
        if deconv.bias is not None and conv.bias is not None:  # conv has a bias exactly where deconv has one
            conv.bias.copy_(deconv.bias.repeat_interleave(4))
    return conv, nn.PixelShuffle(2)


class HeatmapHead(nn.Sequential):
    """Transposed convolutions from backbone features to one heatmap per keypoint; then, with
    ``interpolate`` > 1, the heatmap logits enlarged bilinearly by that factor."""

    def __init__(self, in_channels: int, n_keypoints: int, upsamplings: int, width: int = HEAD_CHANNELS, interpolate: int = 1):
        if upsamplings < 1:
            raise ValueError("a heatmap head needs at least one learnt upsampling")
        channels = [in_channels] + [width] * (upsamplings - 1) + [n_keypoints]
        layers: list[nn.Module] = [_upsample(a, b, last=i == upsamplings - 1) for i, (a, b) in enumerate(itertools.pairwise(channels))]
        if interpolate > 1:
            layers.append(nn.Upsample(scale_factor=interpolate, mode="bilinear", align_corners=False))
        super().__init__(*layers)
        self.interpolate = interpolate


def soft_argmax(probabilities: torch.Tensor, radius: int = READOUT_RADIUS, phases: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Sub-pixel peak (N, K, 2) in heatmap cells, as the probability-weighted mean within ``radius`` of
    the most likely cell; and, as its likelihood in [0, 1], the probability mass within twice that
    radius — wide enough that a confident Gaussian peak (σ = 2 cells) holds over 0.99 of its mass,
    narrow enough that a flat map (a point that is not there) holds little. Cells off the map count as empty.

    ``probabilities`` are (N, K, H, W); or, with ``phases`` r > 1, (N, K·r², H / r, W / r) as a sub-pixel
    layer leaves them before its pixel shuffle: channel k·r² + i·r + j holds cells (i + r·y, j + r·x) of
    keypoint k. Reading them in place spares the shuffle, a slow copy on a CPU.
    """
    n, channels, h, w = probabilities.shape
    k, rows_h, cols_w = channels // phases**2, h * phases, w * phases
    flat = probabilities.reshape(n, k, phases * phases * h * w)
    index = flat.argmax(dim=-1)
    phase, cell = index // (h * w), index % (h * w)
    offsets = torch.arange(-2 * radius, 2 * radius + 1, device=flat.device)
    rows = ((cell // w) * phases + phase // phases)[..., None, None] + offsets[:, None]  # (N, K, S, 1)
    cols = ((cell % w) * phases + phase % phases)[..., None, None] + offsets  # (N, K, 1, S)
    inside = (rows >= 0) & (rows < rows_h) & (cols >= 0) & (cols < cols_w)
    r, c = rows.clamp(0, rows_h - 1), cols.clamp(0, cols_w - 1)
    cells = ((r % phases * phases + c % phases) * (h * w) + r // phases * w + c // phases).flatten(-2)
    mass = flat.gather(-1, cells).view(inside.shape) * inside  # (N, K, S, S), one gather for both radii
    near = slice(radius, 3 * radius + 1)
    centre = mass[..., near, near]
    total = centre.sum((-2, -1)).clamp(min=1e-12)
    x = (centre.sum(-2) * cols[..., 0, near]).sum(-1) / total
    y = (centre.sum(-1) * rows[..., near, 0]).sum(-1) / total
    return torch.stack([x, y], dim=-1), mass.sum((-2, -1)).clamp(0.0, 1.0)


def spatial_log_softmax(heatmaps: torch.Tensor) -> torch.Tensor:
    """Each keypoint's heatmap logits (N, K, h, w) as log-probabilities over its cells."""
    n, k, h, w = heatmaps.shape
    return heatmaps.reshape(n, k, h * w).log_softmax(-1).reshape(n, k, h, w)


def fold_batch_norms(module: nn.Module) -> fx.GraphModule:
    """``module`` (in eval mode) traced, with each batch norm that follows a convolution or transposed
    convolution folded into that convolution's weights: the same output, one pass over memory less a layer."""
    traced = fx.symbolic_trace(module)
    layers = dict(traced.named_modules())
    for node in list(traced.graph.nodes):
        source = node.args[0] if node.op == "call_module" and isinstance(layers[node.target], nn.BatchNorm2d) else None
        # a call_module node targets its module by dotted name
        if not (isinstance(source, fx.Node) and source.op == "call_module" and isinstance(source.target, str) and len(source.users) == 1
                and isinstance(layers[source.target], (nn.Conv2d, nn.ConvTranspose2d))):
            continue
        conv = layers[source.target]
        parent, _, name = source.target.rpartition(".")
        setattr(traced.get_submodule(parent), name,
                fuse_conv_bn_eval(conv, layers[node.target], transpose=isinstance(conv, nn.ConvTranspose2d)))
        node.replace_all_uses_with(source)
        traced.graph.erase_node(node)
    traced.delete_all_unused_submodules()
    traced.recompile()
    return traced


class PoseNetwork(nn.Module):
    """Backbone + heatmap head for grey frames of a fixed input size (width, height)."""

    # as built; for_inference swaps each for a traced graph that computes the same
    backbone: Backbone | fx.GraphModule
    head: HeatmapHead | fx.GraphModule
    # ImageNet statistics, registered as buffers so that they follow the network to its device
    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, backbone: str, n_keypoints: int, input_size: Size, head_channels: int = HEAD_CHANNELS,
                 heatmap_stride: int = HEATMAP_STRIDE, head_stride: int = 0):
        """``head_stride``: the stride at which the head's own layers stop, bilinear upsampling taking
        the heatmaps on to ``heatmap_stride`` (0: no upsampling). A coarser head costs a fraction of a
        full one, and the heatmaps, their read-out and their likelihoods stay as they were."""
        super().__init__()
        built = BACKBONES[backbone]()
        self.backbone = built
        head_stride = head_stride or heatmap_stride
        if head_stride % heatmap_stride or built.stride % head_stride:
            raise ValueError(f"head stride {head_stride} must lie between the heatmap stride {heatmap_stride} and the "
                             f"backbone's {built.stride}, a power of two from each")
        upsamplings = (built.stride // head_stride).bit_length() - 1
        self.head = HeatmapHead(built.out_channels, n_keypoints, upsamplings, head_channels, head_stride // heatmap_stride)
        self.input_size: Size = (int(input_size[0]), int(input_size[1]))
        self.stride = heatmap_stride
        self.phases = 1  # the head's heatmaps come whole (see for_inference)
        # ImageNet statistics per colour channel; their means for a backbone that takes the grey image
        channels = built.in_channels
        mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
        if channels == 1:
            mean, std = mean.mean(dim=0, keepdim=True), std.mean(dim=0, keepdim=True)
        self.register_buffer("mean", mean.view(1, channels, 1, 1), persistent=False)
        self.register_buffer("std", std.view(1, channels, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Heatmap logits (N, K, H / stride, W / stride) for frames (N, 1, H, W) in [0, 1]."""
        logits = self.heatmap_phases(x)
        return nn.functional.pixel_shuffle(logits, self.phases) if self.phases > 1 else logits

    def heatmap_phases(self, x: torch.Tensor) -> torch.Tensor:
        """Heatmap logits as the head computes them: the heatmaps themselves, or once ready for
        inference, their ``phases``² interleaved parts (see :func:`soft_argmax`)."""
        # grey to as many identical channels as the backbone takes
        x = (x.expand(-1, self.mean.shape[1], -1, -1) - self.mean) / self.std
        return self.head(self.backbone(x))

    def start_from_imagenet(self) -> None:
        """Where training starts: the backbone's ImageNet weights where it has them, its early layers frozen."""
        if not isinstance(self.backbone, Backbone):
            raise RuntimeError("a network made ready for inference is no longer trainable")
        self.backbone.load_imagenet()
        freeze_early_layers(self.backbone)

    def for_inference(self) -> PoseNetwork:
        """In eval mode for good, batch norms folded into the convolutions before them and the heatmap
        layer as a sub-pixel convolution whose phases are read in place (together, half the time on a
        CPU); no longer trainable."""
        self.eval().requires_grad_(False)
        head = self.head
        if not isinstance(head, HeatmapHead):
            return self  # traced by an earlier call
        last = len(head) - (2 if head.interpolate > 1 else 1)  # the last learnt upsampling, its transposed convolution alone
        conv, shuffle = as_subpixel(head.get_submodule(f"{last}.0"))
        if head.interpolate > 1:  # the upsampling needs whole heatmaps
            head[last] = nn.Sequential(conv, shuffle)
        else:
            head[last], self.phases = nn.Sequential(conv), shuffle.upscale_factor
        self.backbone, self.head = fold_batch_norms(self.backbone), fold_batch_norms(head)
        return self

    def heatmap_to_input(self, xy: torch.Tensor) -> torch.Tensor:
        """Heatmap cells to input pixels."""
        return (xy + 0.5) * self.stride - 0.5

    def input_to_heatmap(self, xy: torch.Tensor) -> torch.Tensor:
        """Input pixels to heatmap cells."""
        return (xy + 0.5) / self.stride - 0.5

    def locate(self, heatmaps: torch.Tensor, phases: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """Keypoints (N, K, 2) in input pixels and likelihood (N, K) in [0, 1] from heatmap logits
        (as ``phases``² interleaved parts when ``phases`` > 1)."""
        n, channels = heatmaps.shape[:2]
        probabilities = heatmaps.reshape(n, channels // phases**2, -1).softmax(-1).view_as(heatmaps)
        xy, likelihood = soft_argmax(probabilities, phases=phases)
        return self.heatmap_to_input(xy), likelihood

    @torch.inference_mode()
    def predict(self, frames: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Keypoints (N, K, 2) in input pixels and likelihood (N, K) for grey frames (N, H, W) of the input size.

        Frames are uint8 or float in [0, 1], already cropped and resized by the caller
        (``resize_frames`` and ``rescale_points`` map to and from the original pixels).
        """
        frames = torch.as_tensor(frames)
        if (frames.shape[-1], frames.shape[-2]) != self.input_size:
            raise ValueError(f"frames are {frames.shape[-1]}x{frames.shape[-2]}, the network takes {self.input_size[0]}x{self.input_size[1]}")
        if self.training:  # a network mid-training predicts as it will once trained, then trains on
            self.eval()
            try:
                return self.predict(frames)
            finally:
                self.train()
        device = next(self.parameters()).device
        xy, likelihood = self.locate(self.heatmap_phases(resize_frames(frames, self.input_size).to(device)), self.phases)
        return xy.cpu().numpy(), likelihood.cpu().numpy()
