"""Predictions of the lightning-pose package itself, at IBL's pin 2.2.0: the reference for tests/test_lp_model.py.

lightning-pose needs torchvision, which cannot be installed beside the CPU torch iblvideo is tested
with, so this runs once in a separate environment and its small outputs are committed::

    python3.11 -m venv /tmp/lpv && /tmp/lpv/bin/pip install torch==2.14.1 torchvision==0.29.1
    /tmp/lpv/bin/pip install --no-deps lightning-pose==2.2.0 nvidia-dali-cuda120   # its nvidia-dali-cuda110 needs NVIDIA's index
    /tmp/lpv/bin/pip install aniposelib h5py hydra-core imgaug "kornia<0.9" "lightning~=2.5.0" "pytorch-lightning~=2.5.0" \\
        matplotlib "moviepy>=2" opencv-python-headless pandas pillow safetensors scikit-learn "tensorboard<3" jaxtyping "transformers>=4.57.5" typeguard
    /tmp/lpv/bin/python benchmarks/lp_reference.py

kornia must be older than 0.9: lightning-pose 2.2.0 passes its soft-argmax temperature (1000) to
kornia's ``spatial_softmax2d``, which multiplies by it before 0.9 and divides by it from 0.9 on, which
flattens every heatmap and puts each keypoint near the middle of the frame (2.4 applies it itself).

For each model type (``heatmap``, ``heatmap_mhcrnn``) it builds a ResNet-50 Lightning Pose model for the
17 mirror-mouse keypoints at 128×128, fills it with the seeded weights of tests/lp_seeded.py, saves it
as a Lightning checkpoint, loads it back with lightning-pose, and predicts the mirror-mouse fixture video.
lightning-pose 2.2.0 predicts a video only on a GPU (a GPU Lightning trainer fed by DALI's GPU video
reader), so on the CPU its loader is stood in for: the frames are decoded by OpenCV (RGB), cut into
the sequences lightning-pose's ``PrepareDALI`` asks for (its sequence length, step and count; zero
frames padding the last), and put through the operations of its DALI pipeline (``fn.resize``,
antialiased, then ImageNet normalisation) on DALI's CPU backend; lightning-pose's own model,
``predict_step`` and ``PredictionHandler`` do the rest. What this does not reproduce is the GPU
decoder's colour conversion. Writes ``tests/data/lp-reference/<type>/config.yaml``, ``<type>.csv.gz``
and ``info.json``.
"""
from __future__ import annotations

import importlib.metadata
import json
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import cv2
import kornia
import lightning.pytorch as pl
import numpy as np
import nvidia.dali.fn as fn
import nvidia.dali.types as types
import pandas as pd
import torch
import yaml
from lightning_pose.api import Model
from lightning_pose.data import _IMAGENET_MEAN, _IMAGENET_STD
from lightning_pose.data.dali import PrepareDALI
from lightning_pose.data.datatypes import UnlabeledBatchDict
from lightning_pose.models import HeatmapTracker, HeatmapTrackerMHCRNN
from lightning_pose.utils.predictions import PredictionHandler
from nvidia.dali import pipeline_def
from torch.utils.data import DataLoader

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


def seeded_state(model_type: str, names: list[str]) -> tuple[torch.nn.Module, dict[str, torch.Tensor]]:
    """A lightning-pose model filled with the seeded weights, and those weights."""
    model = CLASSES[model_type](num_keypoints=len(names), backbone="resnet50", pretrained=False, downsample_factor=2, torch_seed=0)
    # the RNN head's ModuleList repeats its layers under a second name; they share the tensors
    own = {k: tuple(v.shape) for k, v in model.state_dict().items() if ".head_mf.layers." not in k}
    seeded = {k: torch.from_numpy(v) for k, v in seeded_weights(own).items()}
    missing, unexpected = model.load_state_dict(seeded, strict=False)
    assert not unexpected and all(".head_mf.layers." in k for k in missing), (missing, unexpected)
    return model, seeded


def build(model_type: str, names: list[str], model_dir: Path) -> dict[str, torch.Tensor]:
    """A model folder, config.yaml and a Lightning checkpoint holding the seeded weights; returns the weights."""
    model, seeded = seeded_state(model_type, names)
    cfg = config(model_type, names)
    # where lightning-pose looks: tb_logs/<model_name>/version_*/checkpoints/
    checkpoint = model_dir / "tb_logs" / cfg["model"]["model_name"] / "version_0" / "checkpoints" / "epoch=0-step=0.ckpt"
    checkpoint.parent.mkdir(parents=True)
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams),
                "pytorch-lightning_version": importlib.metadata.version("lightning")}, checkpoint)
    (model_dir / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return seeded


def rgb_frames(video: Path) -> np.ndarray:
    """Every frame, RGB, as float32 0–255 (DALI's reader with ``dtype=FLOAT, normalized=False``)."""
    capture, frames = cv2.VideoCapture(str(video)), []
    while (got := capture.read())[0]:
        frames.append(cv2.cvtColor(got[1], cv2.COLOR_BGR2RGB))
    capture.release()
    return np.stack(frames).astype(np.float32)


@pipeline_def(batch_size=1, num_threads=1, device_id=None)
def prepare_pipe(source: Iterator[list[np.ndarray]], resize_dims: list[int]):  # type: ignore[no-untyped-def]
    """lightning-pose 2.2.0's ``video_pipe`` after its reader, for ``imgaug: default``, on the CPU."""
    video = fn.external_source(source=source, layout="FHWC", dtype=types.FLOAT)
    video = fn.resize(video, size=resize_dims)
    return fn.crop_mirror_normalize(video / 255.0, output_layout="FCHW", mean=_IMAGENET_MEAN, std=_IMAGENET_STD)


def batches(video: Path, model: Model) -> list[UnlabeledBatchDict]:
    """The batches lightning-pose's DALI loader gives ``predict_step``: one sequence each, the last padded with zero frames."""
    cfg = model.cfg
    resize_dims = [cfg.data.image_resize_dims.height, cfg.data.image_resize_dims.width]
    model_type = "context" if cfg.model.model_type == "heatmap_mhcrnn" else "base"
    loader = PrepareDALI(train_stage="predict", model_type=model_type, filenames=[str(video)], resize_dims=resize_dims, dali_config=cfg.dali)
    args = loader._pipe_dict["predict"][model_type]
    assert args["pad_sequences"] and args["imgaug"] == "default"
    frames = rgb_frames(video)
    assert len(frames) == loader.frame_count
    length = args["sequence_length"]
    padded = np.concatenate([frames, np.zeros((length, *frames.shape[1:]), np.float32)])
    sequences = [padded[i * args["step"]:i * args["step"] + length] for i in range(loader.num_iters)]
    pipe = prepare_pipe(source=iter([[s] for s in sequences]), resize_dims=resize_dims)
    pipe.build()
    height, width = frames.shape[1:3]
    out = []
    for _ in sequences:
        prepared = torch.from_numpy(np.array(pipe.run()[0][0]))
        bbox = torch.tensor([0, 0, height, width]).repeat((len(prepared), 1))
        out.append(UnlabeledBatchDict(frames=prepared, transforms=torch.tensor([-1]), bbox=bbox, is_multiview=False))
    return out


def predict(model_dir: Path, video: Path, seeded: dict[str, torch.Tensor]) -> pd.DataFrame:
    """lightning-pose's predictions for the video, its model loaded from the folder as lightning-pose loads it."""
    model = Model.from_dir(model_dir)
    model._load()
    assert model.model is not None
    loaded = model.model.state_dict()
    # lightning-pose loads checkpoints leniently (strict=False): make sure every weight arrived
    assert all(torch.equal(loaded[k], v) for k, v in seeded.items())
    trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False)
    preds = trainer.predict(model=model.model, dataloaders=DataLoader(batches(video, model), batch_size=None), return_predictions=True)
    return PredictionHandler(cfg=model.cfg, video_file=str(video))(preds=preds)


def main() -> None:
    names = keypoints()
    video = FIXTURE / "videos" / "test_vid.mp4"
    info = {"lightning-pose": importlib.metadata.version("lightning-pose"), "torch": torch.__version__, "kornia": kornia.__version__,
            "nvidia-dali": importlib.metadata.version("nvidia-dali-cuda120"), "opencv": cv2.__version__, "video": video.name,
            "decoder": "OpenCV (lightning-pose 2.2.0 decodes on the GPU with DALI)",
            "resize": "DALI fn.resize on the CPU, as lightning-pose 2.2.0's pipeline"}
    assert kornia.__version__ < "0.9", "lightning-pose 2.2.0's read-out needs kornia < 0.9 (see the docstring)"
    for model_type in CLASSES:
        with tempfile.TemporaryDirectory() as tmp:
            model_dir = Path(tmp) / model_type
            table = predict(model_dir, video, build(model_type, names, model_dir))
            target = OUT / model_type
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy(model_dir / "config.yaml", target / "config.yaml")
            table.to_csv(OUT / f"{model_type}.csv.gz", float_format="%.7g")
            xy = table.loc[:, (slice(None), slice(None), ["x", "y"])].to_numpy()
            info[model_type] = {"frames": len(table), "x_spread_px": float(np.std(xy[:, 0::2])),
                                "mean_likelihood": float(table.loc[:, (slice(None), slice(None), "likelihood")].to_numpy().mean())}
    (OUT / "info.json").write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(info, indent=2))


if __name__ == "__main__":
    main()
