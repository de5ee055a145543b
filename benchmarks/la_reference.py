"""Predictions of the lightning-action package itself: the reference for tests/test_la_model.py.

Run once per version, each in an environment of its own; the small outputs are committed:

- 0.2.4, the version IBL pins (iblvideo 3.x's ``action`` extra) and whose ``configs/ibl.yaml`` IBL's
  paw-state networks follow: the IBL model (``ibl-dtcn-0.2.4``). It calls the head ``backbone``, in the
  config and in the checkpoint's names.
- 1.1.0, the newest: the other heads and a second TCN (``dtcn-small``, ``temporalmlp``, ``lstm``,
  ``gru``), in 1.x's layout (``head``). It has no IBL model: its ``Model.from_dir`` cannot load a model
  trained with ``VelocityConcat`` (the saved config already holds the doubled input size and
  ``from_dir`` doubles it again).

lightning-action pulls torchvision (1.1.0 also NVIDIA DALI), neither of which installs beside the CPU
torch here, and its segmentation models need neither::

    python3.11 -m venv /tmp/la-ref-024
    /tmp/la-ref-024/bin/pip install torch==2.13.0 lightning jaxtyping pandas pyyaml scikit-learn tensorboard "typeguard<3"
    /tmp/la-ref-024/bin/pip install --no-deps lightning_action-0.2.4-py3-none-any.whl   # pip download --no-deps lightning-action==0.2.4
    /tmp/la-ref-024/bin/python benchmarks/la_reference.py

    python3.11 -m venv /tmp/la-ref
    /tmp/la-ref/bin/pip install torch==2.13.0 lightning jaxtyping transformers opencv-python-headless pandas pyyaml scikit-learn tensorboard
    /tmp/la-ref/bin/pip install --no-deps lightning_action-1.1.0-py3-none-any.whl
    /tmp/la-ref/bin/python benchmarks/la_reference.py

PyPI's torchvision is a CUDA build that does not load beside a CPU torch; 1.1.0 imports it only for its
video backbones (``VideoModel``), so a stand-in module is put in its place after torchmetrics has looked
for the real one (0.2.4 does not import it).

For each model it trains the package's own ``Model`` for one epoch on seeded features and labels (so that
the folder is the package's: ``config.yaml``, ``tb_logs/checkpoints/*-best.ckpt``, ``final_model.ckpt``),
then overwrites the checkpoints' weights with seeded random ones (the trained weights are hardly off
their initialisation, whose probabilities are uniform to 1e-3), loads the folder with ``Model.from_dir``
and predicts seeded features with ``Model.predict`` after setting ``training.sequence_length``, as IBL's
``segmentation_la_utils.analyze_video`` does: the package's transforms, windows, padding, batching and
NaN tail. Writes ``tests/data/la-reference/<name>/`` (the model folder, ``features-<T>.npy``,
``probs-<T>-<L>.npy``) and this version's entries of ``tests/data/la-reference/info.json``, each with
the versions it was made with.
"""
from __future__ import annotations

import importlib.metadata
import json
import platform
import shutil
import sys
import tempfile
import types
from pathlib import Path

import lightning  # noqa: F401 - imported before the torchvision stand-in, so that it finds none
import numpy as np
import pandas as pd
import torch
import torchmetrics  # noqa: F401 - as above


class _Absent:
    """Any torchvision attribute lightning-action's video backbones name at import time; never called here."""

    def __getattr__(self, name: str) -> _Absent:
        return _absent(name)

    def __call__(self, *args: object, **kwargs: object) -> None:
        raise RuntimeError("torchvision is not installed in this environment")


def _absent(name: str) -> _Absent:
    if name.startswith("__"):  # what inspect and pickle ask of any object: it has none
        raise AttributeError(name)
    return _Absent()


_models = types.ModuleType("torchvision.models")
_models.__getattr__ = _absent  # type: ignore[method-assign]
_torchvision = types.ModuleType("torchvision")
_torchvision.models = _models  # type: ignore[attr-defined]
sys.modules.update({"torchvision": _torchvision, "torchvision.models": _models})

from lightning_action.api import Model  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "data" / "la-reference"
LABELS = ["background", "still", "move", "wheel_turn", "groom"]  # IBL's states (brainbox.behavior.pawstates)
FEATURES = ["paw_r_x", "paw_r_y", "wheel_vel"]  # IBL's inputs for one paw
TRAIN_SEED, WEIGHT_SEED, FEATURE_SEED = 0, 1, 2

VERSION = importlib.metadata.version("lightning-action")

# version → name → model section (1.x's names), transforms, and the (frames, sequence length) predicted
MODELS: dict[str, dict[str, dict]] = {
    "0.2.4": {
        # IBL's networks: configs/ibl.yaml's model (a dilated TCN over x, y and wheel speed and their
        # velocities, z-scored); IBL predicts with sequences of 500. Frames: under two windows, a tail and a
        # last window whose future is cut, an exact multiple, and more windows than we classify in one pass.
        "ibl-dtcn-0.2.4": {"model": {"head": "dtcn", "num_hid_units": 32, "num_layers": 2, "num_lags": 4},
                           "transforms": ["VelocityConcat", "ZScore"], "runs": [(700, 500), (1010, 500), (2000, 500), (8600, 500)]},
    },
    "1.1.0": {
        # another TCN size, and the package's default transform (ZScore alone)
        "dtcn-small": {"model": {"head": "dtcn", "num_hid_units": 16, "num_layers": 3, "num_lags": 2, "activation": "relu"},
                       "transforms": None, "runs": [(600, 100), (737, 64)]},
        "temporalmlp": {"model": {"head": "temporalmlp", "num_hid_units": 24, "num_layers": 2, "num_lags": 3},
                        "transforms": ["ZScore"], "runs": [(600, 100), (737, 64)]},
        "lstm": {"model": {"head": "rnn", "rnn_type": "lstm", "bidirectional": True, "num_hid_units": 16, "num_layers": 2},
                 "transforms": ["ZScore"], "runs": [(600, 100), (737, 64)]},
        "gru": {"model": {"head": "rnn", "rnn_type": "gru", "bidirectional": False, "num_hid_units": 16, "num_layers": 1},
                "transforms": ["ZScore"], "runs": [(737, 64)]},
    },
}
HEAD_KEY = "backbone" if VERSION.startswith("0.") else "head"  # 0.2 calls the head backbone


def seeded_features(n: int, seed: int) -> np.ndarray:
    """Paw x, y (pixels, a random walk) and wheel velocity (rad/s, bursts): float32 values in float64."""
    rng = np.random.default_rng(seed)
    xy = np.array([320.0, 240.0]) + np.cumsum(rng.normal(0, 3, (n, 2)), axis=0)
    wheel = np.convolve(rng.normal(0, 1, n) * (rng.random(n) < 0.05), np.hanning(15), mode="same") * 4
    # exactly representable in float32, so that the CSV the package reads gives back the same float32
    return np.column_stack([xy, wheel]).astype(np.float32).astype(np.float64)


def write_csv(values: np.ndarray, columns: list[str], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(values, columns=columns).to_csv(path)  # as IBL writes its features (index column first)


def training_data(root: Path) -> None:
    """Two seeded sessions of features and one-hot labels, in the package's folder layout."""
    rng = np.random.default_rng(TRAIN_SEED)
    for i in range(2):
        n = 400
        write_csv(seeded_features(n, 100 + i), FEATURES, root / "features" / f"train{i}.csv")
        labels = np.eye(len(LABELS), dtype=int)[np.repeat(rng.integers(0, len(LABELS), n // 20), 20)]
        write_csv(labels, LABELS, root / "labels" / f"train{i}.csv")


def config(spec: dict, data: Path) -> dict:
    """A training config in the package's format (one epoch; its data loaders refuse 0 workers)."""
    return {
        "data": {"data_path": str(data), "input_dir": "features", "transforms": spec["transforms"], "expt_ids": None,
                 "ignore_index": 0, "weight_classes": True, "seed": 42},
        "model": {"input_size": len(FEATURES), "output_size": len(LABELS), "seed": 42,
                  **{HEAD_KEY if key == "head" else key: value for key, value in spec["model"].items()}},
        "optimizer": {"type": "Adam", "lr": 1e-4, "wd": 0, "scheduler": None},
        "training": {"device": "cpu", "num_epochs": 1, "sequence_length": 100, "batch_size": 4, "num_workers": 1,
                     "train_probability": 0.75, "val_probability": 0.25, "seed": 0, "progress_bar": False, "model_summary": False},
    }


def seeded_state(state: dict[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
    """Random weights of the scale a trained network has: weights ~ N(0, 1/fan-in), biases ~ N(0, 0.1²),
    weight-norm gains ~ 1 ± 0.3; tensors that share storage (the TCN lists its convolutions twice) stay shared."""
    gen = torch.Generator().manual_seed(seed)
    new: dict[int, torch.Tensor] = {}
    out = {}
    for key in sorted(state):
        value = state[key]
        ptr = value.untyped_storage().data_ptr()
        if ptr not in new:
            if key.endswith("original0"):  # weight-norm gain g, (out, 1, 1)
                fresh = 1 + 0.3 * torch.randn(value.shape, generator=gen)
            elif value.ndim >= 2:
                fresh = torch.randn(value.shape, generator=gen) / np.sqrt(value[0].numel())
            else:
                fresh = 0.1 * torch.randn(value.shape, generator=gen)
            new[ptr] = fresh.to(value.dtype)
        out[key] = new[ptr]
    return out


def build(name: str, spec: dict, work: Path) -> Path:
    """Train the package's model for one epoch into ``OUT/name``, then give its checkpoints seeded weights."""
    data = work / "data"
    if not data.exists():
        training_data(data)
    folder = OUT / name
    shutil.rmtree(folder, ignore_errors=True)
    model = Model.from_config(config(spec, data))
    model.train(output_dir=folder, post_inference=False)
    shutil.rmtree(folder / "tb_logs" / "events", ignore_errors=True)
    for event in folder.rglob("events.out.tfevents.*"):  # TensorBoard's logs: not part of the model
        event.unlink()
    state = None
    for ckpt in sorted(folder.rglob("*.ckpt")):
        saved = torch.load(ckpt, map_location="cpu", weights_only=False)
        state = state or seeded_state(saved["state_dict"], WEIGHT_SEED)
        saved["state_dict"] = {k: state[k] for k in saved["state_dict"]}
        saved["optimizer_states"] = []  # Adam's moments of the discarded weights: size, not model
        torch.save(saved, ckpt)
    return folder


def predict(model: Model, features: np.ndarray, sequence_length: int, work: Path) -> np.ndarray:
    """The package's ``Model.predict`` on features written as IBL writes them."""
    run = work / f"run-{sequence_length}-{len(features)}"
    write_csv(features, FEATURES, run / "features" / "session.csv")
    model.config["training"]["sequence_length"] = sequence_length  # as IBL sets it
    out = run / "probs.csv"
    model.predict(data_path=run, input_dir="features", output_dir=run, output_file=out, expt_ids=["session"])
    table = pd.read_csv(out, index_col=0)
    assert list(table.columns) == LABELS
    return table.to_numpy(np.float64)


def main() -> None:
    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    versions = {"lightning-action": VERSION, "torch": torch.__version__, "lightning": importlib.metadata.version("lightning"),
                "numpy": np.__version__, "pandas": pd.__version__, "python": platform.python_version()}
    info_path = OUT / "info.json"
    info: dict = json.loads(info_path.read_text()) if info_path.exists() else {}
    info.update({"seeds": {"training": TRAIN_SEED, "weights": WEIGHT_SEED, "features": FEATURE_SEED},
                 "labels": LABELS, "features": FEATURES})
    models = {name: entry for name, entry in info.get("models", {}).items() if entry["versions"]["lightning-action"] != VERSION}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name, spec in MODELS[VERSION].items():
            model = Model.from_dir(build(name, spec, work))
            runs = {}
            for n, length in spec["runs"]:
                features = seeded_features(n, FEATURE_SEED + n)
                run: dict = {"frames": n, "sequence_length": length, "feature_seed": FEATURE_SEED + n}
                try:
                    probs = predict(model, features, length, work)
                except ValueError as err:  # the package refuses a session of one window: recorded, as a fact about it
                    run["package_error"] = f"{type(err).__name__}: {err}"
                else:
                    np.save(OUT / name / f"features-{n}.npy", features)
                    np.save(OUT / name / f"probs-{n}-{length}.npy", probs.astype(np.float32))
                    run["nan_rows"] = int(np.isnan(probs[:, 0]).sum())
                runs[f"{n}-{length}"] = run
            models[name] = {"versions": versions, "config": {"model": spec["model"], "transforms": spec["transforms"]},
                            "loaded_by": "Model.from_dir", "runs": runs}
            print(name, runs)
    info["models"] = dict(sorted(models.items()))
    info_path.write_text(json.dumps(info, indent=1) + "\n")


if __name__ == "__main__":
    main()
