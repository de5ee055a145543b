"""A stand-in for a Lightning Action network, for tests and for the paw-states reference.

``StandInNetwork`` (NumPy only, which the reference's own environment imports): member ``network-<k>``
gives, frame by frame, the softmax of a fixed affine map (seeded by ``k``) of its six transformed
inputs over IBL's five states. It has no temporal context, so how a pipeline cuts a video into
sequences changes nothing but which frames get a prediction.

``StandInModel`` keeps the API of ``iblvideo.networks.lightning_action.ActionModel`` around it: the raw
inputs go through that module's transforms (IBL's configs': ``VelocityConcat``, ``ZScore``), and the
frames after the last whole sequence get NaN.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

STATES = ("background", "still", "move", "wheel_turn", "groom")
TRANSFORMS = ("VelocityConcat", "ZScore")  # lightning-action's configs/ibl.yaml
N_INPUTS = 3  # x, y, wheel velocity; six once their changes are appended


class StandInNetwork:
    """(T, 6) transformed inputs → (T, 5) probabilities, frame by frame."""

    def __init__(self, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.weights = rng.normal(0.0, 1.5, (2 * N_INPUTS, len(STATES)))
        self.bias = rng.normal(0.0, 0.5, len(STATES))

    def __call__(self, inputs: np.ndarray) -> np.ndarray:
        logits = np.asarray(inputs, float) @ self.weights + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        odds = np.exp(logits)
        return odds / odds.sum(axis=1, keepdims=True)


class StandInModel:
    """``ActionModel``'s API: ``predict`` (T, 3) raw inputs → (T, 5) probabilities, NaN after the last whole sequence."""

    n_features = N_INPUTS
    n_classes = len(STATES)
    class_names = STATES

    def __init__(self, seed: int) -> None:
        self.network = StandInNetwork(seed)

    def predict(self, features: np.ndarray, sequence_length: int | None = None) -> np.ndarray:
        from iblvideo.networks.lightning_action import TRANSFORMS as OURS  # torch: not in the reference's environment

        x = np.asarray(features).astype(np.float32)
        for name in TRANSFORMS:
            x = OURS[name](x)
        length = sequence_length or 500  # a real model's default is its config's
        probs = self.network(x)
        probs[len(x) // length * length:] = np.nan
        return probs


def load(member: Path) -> StandInModel:
    """The stand-in of a member folder ``network-<k>``."""
    return StandInModel(seed(member))


def seed(member: Path) -> int:
    return int(Path(member).name.rsplit("-", 1)[1])


def write_set(root: Path, members: int = 3, name: str = "networks_v1.2") -> Path:
    """A network set folder in IBL's layout whose members are stand-ins (a config naming the transforms and states, no checkpoint)."""
    folder = Path(root) / name
    for paw in ("paw_r", "paw_l"):
        for k in range(members):
            member = folder / f"{paw}_networks" / f"network-{k}"
            member.mkdir(parents=True)
            (member / "config.yaml").write_text(f"data:\n  transforms: [{', '.join(TRANSFORMS)}]\n  label_names: [{', '.join(STATES)}]\n")
    return folder
