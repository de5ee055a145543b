"""Lightning Pose network sets for the tests: real model folders (``config.yaml`` and a Lightning
checkpoint, as Lightning Pose writes them) holding seeded weights (``lp_seeded``)."""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch

from iblvideo.networks.lightning_pose import LPConfig, LPNetwork, save_lp_model, to_lp_key
from lp_seeded import seeded_weights

# folder name (IBL's: <role>-<k>, see tracking.lp_networks.ROLES), model type, keypoints, head gain
Member = tuple[str, str, tuple[str, ...], float]


def write_network_set(root: Path, members: Iterable[Member], size: tuple[int, int]) -> Path:
    """One ResNet-50 model folder per member in ``root``, at input ``size``; member i's weights drawn with seed i."""
    for seed, (name, model_type, keypoints, gain) in enumerate(members):
        # built without weights of its own (meta tensors), then handed the seeded ones without a copy:
        # initialising and copying 25 M parameters a member took half the set's build time
        with torch.device("meta"):
            network = LPNetwork(LPConfig(model_type, "resnet50", keypoints, size))
        state = network.state_dict()
        weights = seeded_weights({to_lp_key(k): tuple(v.shape) for k, v in state.items()}, seed=seed, head_gain=gain)
        network.load_state_dict({k: torch.from_numpy(weights[to_lp_key(k)]) for k in state}, assign=True)
        save_lp_model(network, root / name)
    return root
