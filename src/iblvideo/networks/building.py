"""Building a network whose weights are then loaded, without touching torch's global random state.

Layers draw their initial weights from torch's global generator when they are made; those weights
are overwritten by the loaded ones at once, so loading a model must leave the generator as it was
(a caller's seeded experiment, another session's thread). The lock keeps two loads in one process
from restoring each other's state.
"""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import torch

_GENERATOR = threading.Lock()


@contextlib.contextmanager
def global_generator_kept() -> Iterator[None]:
    """Whatever the block draws from torch's CPU generator, the generator is as it was afterwards."""
    with _GENERATOR, torch.random.fork_rng(devices=[]):
        yield
