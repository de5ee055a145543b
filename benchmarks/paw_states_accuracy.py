"""How well the demo paw-state networks segment the synthetic rig's paws: per-state precision and recall.

    python benchmarks/paw_states_accuracy.py [--seeds 8 9 10 11] [--seconds 60] [--networks src/iblvideo/weights_demo/lightning_action]

On sessions the networks never saw, simulated as ``synthesize_session`` would (no video: the networks read
pose tables), each side camera's paws are run as IBL's pipeline runs them (``measures.paw_states``:
inputs from the pose, each member's prediction on the camera's frames, the ensemble's mean), from the
true pose with the training script's tracking-like noise (another noise seed). A frame's state is the
most probable one; precision and recall are counted per state against the true states, frames without
a prediction (after the last whole 500-frame sequence at 60 Hz) left out and counted apart.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from iblvideo.measures import paw_states
from iblvideo.networks.lightning_action import ActionModel, load_action_model
from iblvideo.tracking.la_networks import V1_2

ROOT = Path(__file__).parents[1]
_spec = importlib.util.spec_from_file_location("train_demo_action_networks", ROOT / "scripts" / "train_demo_action_networks.py")
assert _spec is not None and _spec.loader is not None
training = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = training  # dataclasses look their module up there
_spec.loader.exec_module(training)

NOISE_SEED = 1  # the training used 0
SEEDS, SECONDS = (8, 9, 10, 11), 60.0  # 8 and 9: no grooming in their first minute; 10 and 11: some


@dataclass(frozen=True)
class Count:
    """Frames of one state: truly in it, predicted in it, both."""

    true: int
    predicted: int
    hits: int

    def __add__(self, other: Count) -> Count:
        return Count(self.true + other.true, self.predicted + other.predicted, self.hits + other.hits)

    @property
    def precision(self) -> float:
        return self.hits / self.predicted if self.predicted else np.nan

    @property
    def recall(self) -> float:
        return self.hits / self.true if self.true else np.nan


@dataclass(frozen=True)
class Scores:
    """One camera's paw: the count of each state, and the frames without a prediction."""

    per_state: dict[str, Count]
    unpredicted: int
    frames: int


def load_networks(root: Path) -> dict[str, list[ActionModel]]:
    """Each paw's ensemble in the set folder ``root`` (IBL's layout)."""
    return {paw: [load_action_model(member) for member in V1_2.members(root, paw)] for paw in V1_2.paws}


def predicted_states(models: list[ActionModel], truth, wheel, camera: str, paw: str, rng: np.random.Generator) -> np.ndarray:
    """The ensemble's mean probabilities (frames, states) for one paw of one camera, from the noisy true pose."""
    pose = training.tracked_pose(truth.pose, camera, rng)
    inputs, clock = paw_states.paw_inputs(pose, truth.times, wheel, camera, paw)
    members = [paw_states.on_frames(model.predict(inputs, V1_2.sequence_length), clock, truth.times) for model in models]
    return paw_states.combine(members)[0]


def scores(probabilities: np.ndarray, true_states: np.ndarray) -> Scores:
    """The count of each state over the predicted frames, the frames without a prediction apart."""
    predicted = ~np.isnan(probabilities).any(axis=1)
    guess = np.asarray(training.STATES)[np.argmax(np.nan_to_num(probabilities[predicted], nan=-1), axis=1)]
    true = np.asarray(true_states)[predicted]
    per_state = {state: Count(int(np.sum(true == state)), int(np.sum(guess == state)), int(np.sum((guess == state) & (true == state))))
                 for state in training.STATES}
    return Scores(per_state, int(np.sum(~predicted)), len(predicted))


def measure(networks: Path, seeds: tuple[int, ...] = SEEDS, seconds: float = SECONDS) -> dict[tuple[int, str, str], Scores]:
    """Scores per (seed, camera, paw)."""
    models = load_networks(networks)
    out = {}
    for seed in seeds:
        cameras, (wheel_times, position) = training.simulate_truth(seed, seconds)
        wheel = paw_states.wheel_velocity(wheel_times, position)
        rng = np.random.default_rng([NOISE_SEED, seed])
        for camera, truth in cameras.items():
            for paw in paw_states.PAWS:
                probabilities = predicted_states(models[paw], truth, wheel, camera, paw, rng)
                out[seed, camera, paw] = scores(probabilities, truth.states[paw].to_numpy())
    return out


def table(results: dict[tuple[int, str, str], Scores]) -> str:
    """A markdown table: one row per seed, camera, paw and state that is true or predicted somewhere."""
    rows = ["| seed | camera | paw | state | true frames | predicted | precision | recall |", "|---|---|---|---|---|---|---|---|"]
    for (seed, camera, paw), result in results.items():
        for state, c in result.per_state.items():
            if c.true or c.predicted:
                rows.append(f"| {seed} | {camera} | {paw} | {state} | {c.true} | {c.predicted} | {c.precision:.3f} | {c.recall:.3f} |")
        rows.append(f"| {seed} | {camera} | {paw} | (no prediction) | {result.unpredicted} of {result.frames} frames | | | |")
    return "\n".join(rows)


def pooled(results: dict[tuple[int, str, str], Scores]) -> str:
    """A markdown table of precision / recall per camera, paw and state, the frames of all seeds counted together."""
    counts: dict[tuple[str, str, str], Count] = {}
    for (_, camera, paw), result in results.items():
        for state, count in result.per_state.items():
            counts[camera, paw, state] = counts.get((camera, paw, state), Count(0, 0, 0)) + count
    states = [state for state in training.STATES if any(c.true or c.predicted for k, c in counts.items() if k[2] == state)]
    rows = ["| camera | paw | " + " | ".join(states) + " |", "|---|---|" + "---|" * len(states)]
    for camera, paw in dict.fromkeys(k[:2] for k in counts):
        cells = [f"{counts[camera, paw, state].precision:.3f} / {counts[camera, paw, state].recall:.3f}" for state in states]
        rows.append(f"| {camera} | {paw} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", type=Path, default=training.OUT)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--seconds", type=float, default=SECONDS)
    args = parser.parse_args()
    results = measure(args.networks, tuple(args.seeds), args.seconds)
    print(table(results))
    print(f"\nprecision / recall, seeds {', '.join(map(str, args.seeds))} together ({args.seconds:g} s each):\n")
    print(pooled(results))


if __name__ == "__main__":
    main()
