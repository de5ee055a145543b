"""``iblvideo train / evaluate / predict`` as a user runs them: subprocesses, exit codes, one-line errors."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pose_data import VIDEO, small_copy


def run(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "iblvideo", "--quiet", *map(str, args)], capture_output=True, text=True, timeout=300)


def assert_one_line_error(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("iblvideo: error:"), result.stderr
    for word in words:
        assert word in lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    """Labels and a model folder trained by the command line for one epoch."""
    labels, _ = small_copy(tmp_path_factory.mktemp("labels"), rows=12)
    model = tmp_path_factory.mktemp("cli") / "model"
    result = run("train", labels, "--out", model, "--epochs", 1, "--input-size", "64x64", "--batch-size", 4)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(model)
    return labels, model


def test_evaluate_prints_and_saves_the_table(trained):
    labels, model = trained
    result = run("evaluate", model, labels)
    assert result.returncode == 0, result.stderr
    assert "median_px" in result.stdout and "paw1LH_top" in result.stdout
    assert (model / "evaluation.csv").exists()


def test_predict_writes_and_keeps_existing_output(trained, tmp_path):
    _, model = trained
    video = tmp_path / VIDEO.name
    video.symlink_to(VIDEO)
    result = run("predict", model, video, "--format", "lp-csv", "--batch-size", 50)
    out = tmp_path / (VIDEO.stem + ".csv")  # Lightning Pose's name for a video's predictions
    assert result.returncode == 0 and result.stdout.strip() == str(out), result.stderr
    assert len(pd.read_csv(out, header=[0, 1, 2], index_col=0)) == 200
    assert_one_line_error(run("predict", model, video, "--format", "lp-csv"), out.name, "--force")
    assert run("predict", model, video, "--format", "lp-csv", "--force").returncode == 0


def test_predict_writes_deeplabcuts_name_and_dtype(trained, tmp_path):
    """<video stem><scorer>.h5, the scorer in DeepLabCut 3's pattern, float64: where and as DeepLabCut writes."""
    _, model = trained
    video = tmp_path / VIDEO.name
    video.symlink_to(VIDEO)
    result = run("predict", model, video, "--format", "dlc-h5", "--batch-size", 50)
    out = tmp_path / f"{VIDEO.stem}DLC_EfficientnetLite0_iblvideomodelshuffle1_snapshot_1.h5"  # default backbone, folder "model", 1 epoch
    assert result.returncode == 0 and result.stdout.strip() == str(out), result.stderr
    table = pd.read_hdf(out)
    assert len(table) == 200 and set(table.dtypes) == {np.dtype("float64")}


def test_train_bad_labels(tmp_path):
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    assert_one_line_error(run("train", tmp_path / "bad.csv", "--out", tmp_path / "m"), "bad.csv", "scorer")


def test_train_bad_input_size(tmp_path):
    result = run("train", tmp_path / "x.csv", "--out", tmp_path / "m", "--input-size", "100x64")
    assert result.returncode == 2 and "multiples of 32" in result.stderr


def test_predict_needs_a_model_folder(tmp_path):
    assert_one_line_error(run("predict", tmp_path, VIDEO), str(tmp_path), "not a model folder")


def test_predict_bad_video(trained, tmp_path):
    _, model = trained
    (tmp_path / "v.mp4").write_text("not a video")
    assert_one_line_error(run("predict", model, tmp_path / "v.mp4"), "v.mp4", "not a readable video")
