"""Training on the mirror-mouse fixture (tiny input, few steps): loss, determinism, resume, predict, reload."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from iblvideo.errors import IblVideoError
from iblvideo.networks.model_dir import CHECKPOINT, WEIGHTS, load_model, read_config
from iblvideo.networks.settings import TrainSettings
from iblvideo.training import train as train_module
from iblvideo.training.evaluate import evaluate
from iblvideo.training.predict import predict_video
from iblvideo.training.train import split_frames, train
from pose_data import VIDEO, small_copy

SETTINGS = TrainSettings(input_size=(64, 64), epochs=4, batch_size=8, seed=3)


@pytest.fixture(scope="module")
def labels(tmp_path_factory) -> Path:
    return small_copy(tmp_path_factory.mktemp("labels"), rows=20)[0]


@pytest.fixture(scope="module")
def model_dir(labels, tmp_path_factory) -> Path:
    return train(labels, tmp_path_factory.mktemp("model") / "model", SETTINGS)


def test_training_lowers_the_loss(model_dir):
    config = read_config(model_dir)
    losses = [epoch["train_loss"] for epoch in config["history"]]
    assert len(losses) == SETTINGS.epochs and config["epochs_done"] == SETTINGS.epochs
    assert losses[-1] < losses[0]
    assert (model_dir / WEIGHTS).exists() and not (model_dir / CHECKPOINT).exists()


def test_model_dir_describes_itself(model_dir, labels):
    config = read_config(model_dir)
    assert config["keypoints"][0] == "paw1LH_top" and len(config["keypoints"]) == 17
    assert config["input_size"] == [64, 64] and config["image_size"] == [396, 406]
    assert config["backbone"] == "efficientnet_lite0" and config["seed"] == 3
    assert len(config["training_data"]["sha256"]) == 64 and config["training_data"]["frames"] == 20
    split = config["split"]
    everything = split["train"] + split["validation"] + split["test"]
    assert len(set(everything)) == len(everything) == 20
    assert len(split["test"]) == 2 and len(split["validation"]) == 2 and len(split["train"]) == 16
    assert "iblvideo_version" in config


def test_split_is_fixed_by_the_seed():
    names = tuple(f"img{i}.png" for i in range(30))
    assert split_frames(names, 1) == split_frames(names, 1) != split_frames(names, 2)


def test_resume_after_interruption_matches_an_uninterrupted_run(model_dir, labels, tmp_path, monkeypatch, caplog):
    checkpoint = train_module.Trainer._checkpoint

    def crash_after_second_epoch(self):
        checkpoint(self)
        if self.config["epochs_done"] == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(train_module.Trainer, "_checkpoint", crash_after_second_epoch)
    out = tmp_path / "model"
    with pytest.raises(KeyboardInterrupt):
        train(labels, out, SETTINGS)
    assert (out / CHECKPOINT).exists() and not (out / WEIGHTS).exists()
    assert read_config(out)["epochs_done"] == 2
    monkeypatch.setattr(train_module.Trainer, "_checkpoint", checkpoint)
    with caplog.at_level(logging.INFO, logger="iblvideo"):
        train(labels, out, SETTINGS)
    assert "resuming after epoch 2 of 4" in caplog.text
    assert [e["epoch"] for e in read_config(out)["history"]] == [1, 2, 3, 4]
    resumed, uninterrupted = load_file(out / WEIGHTS), load_file(model_dir / WEIGHTS)
    assert all(torch.equal(resumed[name], uninterrupted[name]) for name in uninterrupted)


def test_other_settings_into_the_same_folder_are_refused(model_dir, labels):
    with pytest.raises(IblVideoError, match=r"other settings.*epochs"):
        train(labels, model_dir, TrainSettings(input_size=(64, 64), epochs=5, seed=3))


def test_predict_reload_and_evaluate(model_dir, labels, tmp_path):
    first = predict_video(model_dir, VIDEO, tmp_path / "a.pqt", batch_size=48)
    second = predict_video(model_dir, VIDEO, tmp_path / "b.pqt", batch_size=64)  # a fresh load of the folder
    a, b = pd.read_parquet(first), pd.read_parquet(second)
    assert a.shape == (200, 17 * 3) and list(a.columns[:3]) == ["paw1LH_top_x", "paw1LH_top_y", "paw1LH_top_likelihood"]
    pd.testing.assert_frame_equal(a, b)
    likelihood = a.filter(like="_likelihood").to_numpy()
    assert ((likelihood >= 0) & (likelihood <= 1)).all()
    xy = a.filter(regex="_[xy]$").to_numpy()
    assert (xy > -1).all() and (a.filter(like="_x").to_numpy() < 396).all()

    table = evaluate(model_dir, labels)
    assert list(table.columns) == ["n", "mean_px", "median_px", "p95_px"] and table.index[-1] == "all"
    assert (model_dir / "evaluation.csv").exists()
    assert (table["median_px"].dropna() >= 0).all()


def test_existing_prediction_is_kept_unless_forced(model_dir, tmp_path):
    out = tmp_path / "poses.pqt"
    out.write_text("keep me")
    with pytest.raises(FileExistsError):
        predict_video(model_dir, VIDEO, out)
    assert out.read_text() == "keep me"
    predict_video(model_dir, VIDEO, out, force=True)
    assert len(pd.read_parquet(out)) == 200


def test_loaded_model_predicts_crops_of_any_size(model_dir):
    model = load_model(model_dir)
    frames = np.zeros((3, 100, 80), np.uint8)
    xy, likelihood = model.predict(frames)
    assert xy.shape == (3, 17, 2) and likelihood.shape == (3, 17)
    assert (xy[..., 0] < 80).all() and (xy[..., 1] < 100).all()
