"""Train the demo paw-state networks that ship inside iblvideo, on the synthetic IBL rig's ground truth.

    python scripts/train_demo_action_networks.py [--out src/iblvideo/weights_demo/lightning_action] [--steps N]

1. Simulates training sessions (seeds 201…; the benchmark and tests use other seeds) as
   ``iblvideo.synth.synthesize_session`` would, without drawing or encoding any video: the networks read
   pose tables, not frames, so only the behaviour, the frame times and the side cameras' truth are made
   (the same numbers as a rendered session's truth/ and alf/, from the same functions and seeds).
2. Builds IBL's inputs per side camera and paw (``measures.paw_states``: the paw's x, y, the wheel
   velocity, the right camera mirrored back and resampled to 60 Hz) from the true pose with tracking-like
   noise, hidden stretches (the far paw behind the wheel) bridged as a tracker's smoothed track would be,
   and the labels from the true paw states, in IBL's class order (background is never true here).
3. Trains one IBL-type Lightning Action model per paw (dilated TCN head, VelocityConcat + ZScore) with
   class-weighted cross-entropy on windows z-scored over random stretches of 30 s or more (the network
   must not learn one session length's statistics: trained on whole 2-minute sessions only, it called
   most still frames of a 1-minute session without grooming "move"), seeded and on one thread so a
   rerun gives the same bytes (about 100 s of one core), and writes
   each as a model folder (``config.yaml`` in lightning-action's form, a checkpoint of its state dict) in
   IBL's set layout: ``paw_r_networks/network-0``, ``paw_l_networks/network-0``, with a manifest.

These are demo networks for the synthetic rig, not for real mice.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml
from torch import nn

from iblvideo.cameras import CAMERAS
from iblvideo.measures import paw_states
from iblvideo.networks.lightning_action import TRANSFORMS, ActionNetwork, LAConfig
from iblvideo.synth.behaviour import PAW_STATES, simulate
from iblvideo.synth.session import frame_times
from iblvideo.synth.side import SideScene
from iblvideo.tracking.la_networks import V1_2, ActionSet

log = logging.getLogger("iblvideo.demo_action_networks")

OUT = Path(__file__).parents[1] / "src" / "iblvideo" / "weights_demo" / "lightning_action"
STATES = ("background", *PAW_STATES)  # IBL's class order: background, still, move, wheel_turn, groom
# seconds per training session by seed: mixed lengths, because each input is z-scored over its session and the
# spread of a paw's speed over a short session is not that over a long one
SESSIONS = {seed: (60.0, 120.0, 240.0)[k % 3] for k, seed in enumerate(range(201, 213))}
NOISE_PX = 0.5  # left-camera pixels of tracking error (the right camera's half that, at half the size)
CONFIG = LAConfig(head="dtcn", output_size=len(STATES), num_hid_units=32, num_layers=2, num_lags=4,
                  transforms=("VelocityConcat", "ZScore"), sequence_length=V1_2.sequence_length, class_names=STATES)
TRAIN_LENGTH = 200  # frames a training window is scored on (its context on either side comes on top)
STEPS, BATCH, LEARNING_RATE = 1500, 32, 3e-3
MIN_STRETCH = 1800  # frames (30 s at 60 Hz): the shortest stretch of a session a training window is scaled over
SEED = 0
CHECKPOINT = "final_model.ckpt"
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class SideTruth:
    """One side camera of a simulated session: frame times, true pose, true paw states (names)."""

    times: np.ndarray
    pose: pd.DataFrame
    states: pd.DataFrame


def simulate_truth(seed: int, seconds: float) -> tuple[dict[str, SideTruth], tuple[np.ndarray, np.ndarray]]:
    """Each side camera's truth and the wheel (times, position) of synthetic session ``seed``, as
    ``synthesize_session`` writes them, without rendering the video."""
    behaviour = simulate(seconds, seed)
    cameras = {}
    for name in paw_states.SIDE_CAMERAS:
        camera = CAMERAS[name]
        scene, times = SideScene(camera, seed), frame_times(camera, seconds, seed)
        pose = scene.truth(scene.geometry(behaviour.sample(times)))
        cameras[name] = SideTruth(times, pose, scene.paw_states(behaviour, times))
    return cameras, (behaviour.wheel_times, behaviour.wheel_position)


def tracked_pose(pose: pd.DataFrame, camera: str, rng: np.random.Generator) -> pd.DataFrame:
    """The true paws as a smoothed tracker would give them: hidden stretches bridged linearly, Gaussian error added."""
    sigma = NOISE_PX * CAMERAS[camera].width / CAMERAS["left"].width
    columns = [column for paw in paw_states.PAWS for column in paw_states.feature_columns(paw)]
    tracked = pose[columns].interpolate(limit_direction="both")
    return tracked + rng.normal(0.0, sigma, tracked.shape)


def labels_on(states: pd.Series, times: np.ndarray, clock: np.ndarray | None) -> np.ndarray:
    """Class indices (IBL's order) of a paw's true states, read at the networks' clock (the nearest frame)."""
    index = pd.Series(states).map({state: k for k, state in enumerate(STATES)}).to_numpy(int)
    if clock is None:
        return index
    nearest = np.clip(np.searchsorted(times, clock), 1, len(times) - 1)
    nearest -= (clock - times[nearest - 1]) < (times[nearest] - clock)
    return index[nearest]


def session_sequences(seed: int, seconds: float, noise_seed: int) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """Per paw, (unscaled inputs, labels) of each side camera of session ``seed``, on the networks' clock."""
    cameras, (wheel_times, position) = simulate_truth(seed, seconds)
    wheel = paw_states.wheel_velocity(wheel_times, position)
    rng = np.random.default_rng([noise_seed, seed])
    out: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {paw: [] for paw in paw_states.PAWS}
    for camera, truth in cameras.items():
        pose = tracked_pose(truth.pose, camera, rng)
        for paw in paw_states.PAWS:
            inputs, clock = paw_states.paw_inputs(pose, truth.times, wheel, camera, paw)
            out[paw].append((inputs, labels_on(truth.states[paw], truth.times, clock)))
    return out


def scaled(inputs: np.ndarray, config: LAConfig) -> np.ndarray:
    """The inputs as the network sees them: the config's transforms, over the whole sequence, in float32."""
    x = inputs.astype(np.float32)
    for name in config.transforms:
        x = TRANSFORMS[name](x)
    return x


def class_weights(labels: np.ndarray) -> np.ndarray:
    """Inverse class frequencies scaled to a mean of 1 over the classes present; 0 for classes never seen (background)."""
    counts = np.bincount(labels, minlength=len(STATES)).astype(float)
    weights = np.where(counts > 0, 1.0 / np.maximum(counts, 1), 0.0)
    return weights / weights[counts > 0].mean()


def random_window(sequences: list[tuple[np.ndarray, np.ndarray]], config: LAConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A training window (inputs with context, labels of its middle ``TRAIN_LENGTH`` frames) from a random stretch of a
    random sequence, scaled over that stretch: each stretch's statistics differ (a short one may hold no grooming and
    so spread the paw's position less), as real sessions' do."""
    pad = config.sequence_pad
    span = TRAIN_LENGTH + 2 * pad
    inputs, labels = sequences[int(rng.integers(len(sequences)))]
    length = int(rng.integers(max(span, MIN_STRETCH), len(inputs) + 1))
    first = int(rng.integers(len(inputs) - length + 1))
    start = first + int(rng.integers(length - span + 1))
    x = scaled(inputs[first:first + length], config)[start - first:start - first + span]
    return x, labels[start + pad:start + pad + TRAIN_LENGTH]


def train(sequences: list[tuple[np.ndarray, np.ndarray]], config: LAConfig, steps: int, seed: int) -> tuple[ActionNetwork, np.ndarray]:
    """A network trained on random windows of the sequences (:func:`random_window`), with class-weighted cross-entropy."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    pad = config.sequence_pad
    weights = class_weights(np.concatenate([y for _, y in sequences]))
    network = ActionNetwork(sequences[0][0].shape[1] * config.widening, config)
    optimiser = torch.optim.Adam(network.parameters(), lr=LEARNING_RATE)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, LEARNING_RATE, total_steps=steps)
    loss_of = nn.CrossEntropyLoss(weight=torch.tensor(weights, dtype=torch.float32))
    network.train()
    for step in range(steps):
        xs, ys = zip(*(random_window(sequences, config, rng) for _ in range(BATCH)), strict=True)
        x, y = torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))
        logits = network.classifier(network.head(x))[:, pad:pad + TRAIN_LENGTH]
        loss = loss_of(logits.reshape(-1, config.output_size), y.reshape(-1))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        if step % 250 == 0 or step == steps - 1:
            log.info("step %d: loss %.4f", step, loss.item())
    return network.eval(), weights


def config_yaml(config: LAConfig, weights: np.ndarray, steps: int) -> dict:
    """The model folder's config, in lightning-action's form (what ``networks.lightning_action.read_config`` reads)."""
    return {
        "data": {"feature_names": ["paw_x", "paw_y", "wheel_vel"], "label_names": list(STATES), "ignore_index": 0,
                 "transforms": list(config.transforms), "weight_classes": True, "seed": SEED},
        "model": {"head": config.head, "input_size": paw_states.N_INPUTS * config.widening, "num_hid_units": config.num_hid_units,
                  "num_lags": config.num_lags, "num_layers": config.num_layers, "activation": config.activation,
                  "output_size": config.output_size, "sequence_pad": config.sequence_pad,
                  "class_weights": [round(float(w), 6) for w in weights], "seed": SEED},
        "optimizer": {"type": "Adam", "lr": LEARNING_RATE, "scheduler": "OneCycleLR", "total_steps": steps},
        "training": {"batch_size": BATCH, "sequence_length": config.sequence_length, "train_length": TRAIN_LENGTH, "seed": SEED},
    }


def write_member(folder: Path, network: ActionNetwork, config: dict) -> str:
    """A model folder: ``config.yaml`` and a checkpoint holding the state dict; returns the checkpoint's sha256."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    state = {key: value.detach().clone().contiguous() for key, value in network.state_dict().items()}
    torch.save({"state_dict": state}, folder / CHECKPOINT)
    return hashlib.sha256((folder / CHECKPOINT).read_bytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--steps", type=int, default=STEPS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(1)  # one thread: the same sums in the same order on every run
    torch.use_deterministic_algorithms(True)
    started = time.perf_counter()
    data: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {paw: [] for paw in paw_states.PAWS}
    for seed, seconds in SESSIONS.items():
        for paw, sequences in session_sequences(seed, seconds, noise_seed=SEED).items():
            data[paw].extend(sequences)
    simulated = time.perf_counter() - started
    members = {}
    for k, paw in enumerate(paw_states.PAWS):
        network, weights = train(data[paw], CONFIG, args.steps, SEED + k)
        member = Path(ActionSet.folder(paw)) / "network-0"
        members[str(member)] = write_member(args.out / member, network, config_yaml(CONFIG, weights, args.steps))
    manifest = {
        "description": "Demo Lightning Action paw-state networks for iblvideo's synthetic IBL rig (iblvideo synth), "
                       "trained by scripts/train_demo_action_networks.py. They segment synthetic paws, not real mice.",
        "layout": f"IBL's {V1_2.name} layout: one ensemble member per paw",
        "states": list(STATES),
        "training": {"sessions": {str(seed): seconds for seed, seconds in SESSIONS.items()}, "cameras": list(paw_states.SIDE_CAMERAS),
                     "pose": f"true paws, hidden stretches bridged linearly, Gaussian noise of {NOISE_PX} left-camera px",
                     "steps": args.steps, "batch": BATCH, "window": TRAIN_LENGTH, "seed": SEED,
                     "torch": torch.__version__, "seconds_simulating": round(simulated, 1),
                     "seconds_total": round(time.perf_counter() - started, 1)},
        "checkpoints_sha256": members,
    }
    (args.out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    log.info("wrote %s in %.0f s", args.out, time.perf_counter() - started)


if __name__ == "__main__":
    main()
