"""Predictions of the lightning-pose package itself: the reference for tests/test_lp_model.py.

lightning-pose needs torchvision, which cannot be installed beside the CPU torch iblvideo is tested
with, so this runs once in a separate environment and its small outputs are committed::

    python3 -m venv /tmp/lpv && /tmp/lpv/bin/pip install torch==2.14.1 torchvision==0.29.1
    /tmp/lpv/bin/pip install --no-deps lightning-pose==2.4.3   # its nvidia-dali-cuda110 needs NVIDIA's index
    /tmp/lpv/bin/pip install aniposelib h5py hydra-core imgaug kornia "lightning~=2.5.0" "pytorch-lightning~=2.5.0" \\
        matplotlib "moviepy>=2" opencv-python-headless pandas pillow safetensors scikit-learn "tensorboard<3" jaxtyping "transformers>=4.57.5" typeguard
    /tmp/lpv/bin/python benchmarks/lp_reference.py

For each model type (``heatmap``, ``heatmap_mhcrnn``) it builds a ResNet-50 Lightning Pose model for the
17 mirror-mouse keypoints at 128×128, fills it with the seeded weights of tests/lp_seeded.py, saves it
as a Lightning checkpoint, and lets lightning-pose predict the mirror-mouse fixture video on the CPU
(its OpenCV reader). Writes ``tests/data/lp-reference/<type>/config.yaml`` and ``<type>.csv.gz``.
"""
from __future__ import annotations

import importlib.metadata
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml
from lightning_pose.api import Model
from lightning_pose.models import HeatmapTracker, HeatmapTrackerMHCRNN

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from lp_seeded import seeded_weights  # noqa: E402

FIXTURE = ROOT / "tests" / "data" / "mirror-mouse"
OUT = ROOT / "tests" / "data" / "lp-reference"
SIZE = 128
CLASSES = {"heatmap": HeatmapTracker, "heatmap_mhcrnn": HeatmapTrackerMHCRNN}


def keypoints() -> list[str]:
    header = pd.read_csv(FIXTURE / "CollectedData.csv", header=[0, 1, 2], index_col=0, nrows=1)
    return list(dict.fromkeys(point for _, point, _ in header.columns))


def config(model_type: str, names: list[str]) -> dict:
    """A Lightning Pose config for a supervised ResNet-50 model on the fixture, without pretrained weights."""
    return {
        "data": {"image_resize_dims": {"height": SIZE, "width": SIZE}, "data_dir": str(FIXTURE), "video_dir": str(FIXTURE / "videos"),
                 "csv_file": "CollectedData.csv", "downsample_factor": 2, "num_keypoints": len(names), "keypoint_names": names},
        "training": {"imgaug": "default", "train_batch_size": 8, "val_batch_size": 8, "test_batch_size": 8, "train_prob": 0.8,
                     "val_prob": 0.1, "train_frames": 1, "num_gpus": 0, "num_workers": 0, "rng_seed_data_pt": 0, "rng_seed_model_pt": 0,
                     "optimizer": "Adam", "optimizer_params": {"learning_rate": 1e-3}, "lr_scheduler": "multisteplr",
                     "lr_scheduler_params": {"multisteplr": {"milestones": [150], "gamma": 0.5}}},
        "model": {"losses_to_use": [], "backbone": "resnet50", "backbone_pretrained": False, "model_type": model_type,
                  "heatmap_loss_type": "mse", "model_name": f"reference_{model_type}"},
        "dali": {"base": {"train": {"sequence_length": 16}, "predict": {"sequence_length": 16}},
                 "context": {"train": {"batch_size": 4}, "predict": {"sequence_length": 16}}},
        "losses": {},
        "eval": {"predict_vids_after_training": False, "save_vids_after_training": False, "confidence_thresh_for_vid": 0.9},
        "callbacks": {},
    }


def build(model_type: str, names: list[str], model_dir: Path) -> None:
    """A model folder: config.yaml and a Lightning checkpoint holding the seeded weights."""
    model = CLASSES[model_type](num_keypoints=len(names), backbone="resnet50", pretrained=False, downsample_factor=2, torch_seed=0)
    state = model.state_dict()
    # the RNN head's ModuleList repeats its layers under a second name; they share the tensors
    own = {k: tuple(v.shape) for k, v in state.items() if ".head_mf.layers." not in k}
    seeded = {k: torch.from_numpy(v) for k, v in seeded_weights(own).items()}
    missing, unexpected = model.load_state_dict(seeded, strict=False)
    assert not unexpected and all(".head_mf.layers." in k for k in missing), (missing, unexpected)
    cfg = config(model_type, names)
    # where lightning-pose looks: tb_logs/<model_name>/version_*/checkpoints/
    checkpoint = model_dir / "tb_logs" / cfg["model"]["model_name"] / "version_0" / "checkpoints" / "epoch=0-step=0.ckpt"
    checkpoint.parent.mkdir(parents=True)
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams),
                "pytorch-lightning_version": importlib.metadata.version("lightning")}, checkpoint)
    (model_dir / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))


def main() -> None:
    names = keypoints()
    video = FIXTURE / "videos" / "test_vid.mp4"
    info = {"lightning-pose": importlib.metadata.version("lightning-pose"), "torch": torch.__version__, "video": video.name}
    for model_type in CLASSES:
        with tempfile.TemporaryDirectory() as tmp:
            model_dir = Path(tmp) / model_type
            build(model_type, names, model_dir)
            result = Model.from_dir(model_dir).predict_on_video_file(video, output_dir=Path(tmp) / "preds", compute_metrics=False, reader="opencv")
            target = OUT / model_type
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy(model_dir / "config.yaml", target / "config.yaml")
            table = result.predictions
            table.to_csv(OUT / f"{model_type}.csv.gz", float_format="%.7g")
            xy = table.loc[:, (slice(None), slice(None), ["x", "y"])].to_numpy()
            info[model_type] = {"frames": len(table), "x_spread_px": float(np.std(xy[:, 0::2])),
                                "mean_likelihood": float(table.loc[:, (slice(None), slice(None), "likelihood")].to_numpy().mean())}
    (OUT / "info.json").write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(info, indent=2))


if __name__ == "__main__":
    main()
