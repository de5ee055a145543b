"""Seeded weights for Lightning Pose test models: the same numbers in any environment (NumPy only).

Both benchmarks/lp_reference.py (in an environment with the lightning-pose package) and our tests fill
a model with these weights, so a reference made there can be checked here without committing a
100 MB checkpoint.
"""
from __future__ import annotations

import zlib

import numpy as np

# image-like variation through the ResNet, and heatmap logits spread widely enough that their
# softmax has a clear, content-dependent peak; a gain of 3 makes networks near-certain everywhere
CONV_GAIN = 1.2
HEAD_GAIN = 0.15


def seeded_weights(shapes: dict[str, tuple[int, ...]], seed: int = 0, head_gain: float = HEAD_GAIN) -> dict[str, np.ndarray]:
    """Float32 weights (int64 counters) for a state dict's Lightning Pose names and shapes; each name draws its own stream."""
    weights = {}
    for name, shape in shapes.items():
        rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
        leaf = name.rsplit(".", 1)[-1]
        if leaf == "num_batches_tracked":
            weights[name] = np.zeros(shape, np.int64)
        elif leaf == "running_mean":
            weights[name] = rng.normal(0.0, 0.1, shape).astype(np.float32)
        elif leaf == "running_var":
            weights[name] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
        elif len(shape) == 1:  # batch-norm scales and offsets, convolution biases
            weights[name] = (rng.uniform(0.8, 1.2, shape) if leaf == "weight" else rng.normal(0.0, 0.05, shape)).astype(np.float32)
        else:
            gain = CONV_GAIN if name.startswith("backbone.") else head_gain
            weights[name] = (rng.normal(0.0, 1.0, shape) * gain / np.sqrt(np.prod(shape[1:]))).astype(np.float32)
    return weights
