"""Issue 15, hostile and careless inputs: wrong sizes, bad arguments, corrupt files, damaged video.

Each case is refused in one line naming the file and the problem (the API raises IblVideoError or
BadArgument, the command exits 2), before any work is done and without writing anything; video that
decodes to wrong pixels without an error is counted frame by frame and shows in the pose table and the QC.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import av
import av.logging
import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from conftest import coded_frame, write_video
from iblvideo.cli import main
from iblvideo.errors import BadArgument, IblVideoError, VideoError
from iblvideo.io.alf import QC_REPORT, TRIALS, SessionPaths, raw_video_path
from iblvideo.io.session_files import read_pose, read_trials, table_metadata, write_pose
from iblvideo.networks.model_dir import CONFIG, WEIGHTS, build_network, read_config
from iblvideo.networks.settings import TrainSettings
from iblvideo.sessions.stages import qc_stage
from iblvideo.synth import synthesize_session
from iblvideo.tracking.cascade import torch_device
from iblvideo.tracking.run import dlc
from iblvideo.training.predict import predict_video
from iblvideo.training.train import train
from iblvideo.video.reader import VideoReader
from session_data import copy_session


def _one_error(capsys) -> str:
    """The single stderr line of a refused command."""
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("iblvideo: error: "), lines
    return lines[0]


def _refused_by_argparse(capsys, *argv: str) -> str:
    """The error line argparse gives for a wrong option value (it exits 2 after the usage line)."""
    with pytest.raises(SystemExit) as exit_:
        main(["-q", *argv])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


def _never(placed: object) -> list:
    raise AssertionError("the tracking pass began")


def _write_yuv444(path: Path, n: int, width: int, height: int) -> Path:
    """A video of any size, odd ones included (4:2:0 needs even sides)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv444p"
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(coded_frame(i, width, height), format="gray").reformat(format="yuv444p")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


# 12 and 16. an IBL name on a video of another size: refused before the pass, saying both sizes

def test_an_ibl_name_on_a_video_of_another_size_is_refused_before_the_pass(tmp_path, capsys):
    video = _write_yuv444(tmp_path / "_iblrig_leftCamera.raw.mp4", 4, 1281, 1023)
    with pytest.raises(VideoError, match=r"_iblrig_leftCamera\.raw\.mp4: is 1281x1023, not the left camera's 1280x1024"):
        dlc(video, consumers_for=_never)
    assert main(["-q", "dlc", str(video)]) == 2
    assert str(video) in _one_error(capsys)
    assert not list(tmp_path.glob("*.pqt"))


def test_a_right_camera_video_named_left_is_told_its_size_not_that_no_pupil_was_found(tmp_path, capsys):
    video = write_video(tmp_path / "_iblrig_leftCamera.raw.mp4", 4, 640, 512, fps=150)
    assert main(["-q", "dlc", str(video)]) == 2
    error = _one_error(capsys)
    assert "is 640x512, not the left camera's 1280x1024" in error and "ROI network" not in error


# 15. arguments: devices, batch sizes, seeds, durations, input sizes, a folder as output

@pytest.mark.parametrize("device", ["foo", "mps", "cuda:x", "", "cpu:0"])
def test_unknown_devices_are_bad_arguments_everywhere(device, tmp_path, capsys):
    with pytest.raises(BadArgument, match="unknown device"):
        torch_device(device)
    with pytest.raises(BadArgument, match="unknown device"):
        dlc(tmp_path / "missing.mp4", device=device)  # the argument is checked before the video is opened
    for argv in (["dlc", str(tmp_path / "missing.mp4")], ["train", str(tmp_path / "labels.csv"), "--out", str(tmp_path / "model")],
                 ["evaluate", str(tmp_path / "model"), str(tmp_path / "labels.csv")], ["predict", str(tmp_path / "model"), str(tmp_path / "v.mp4")]):
        assert main(["-q", *argv, "--device", device]) == 2, argv
        assert "unknown device" in _one_error(capsys)
    assert not (tmp_path / "model").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is there")
@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_cuda_without_a_gpu_is_one_line(command, tmp_path, capsys):
    assert main(["-q", command, str(tmp_path / "model"), str(tmp_path / "x"), "--device", "cuda"]) == 2
    assert "torch sees no CUDA GPU" in _one_error(capsys)


@pytest.mark.parametrize("size", ["0", "-3", "two"])
def test_batch_sizes_below_one_are_refused(size, tmp_path, capsys):
    for argv in (["dlc", "v.mp4"], ["predict", "m", "v.mp4"], ["train", "l.csv", "--out", "m"]):
        assert "must be a whole number, at least 1" in _refused_by_argparse(capsys, *argv, f"--batch-size={size}")
    video = write_video(tmp_path / "_iblrig_bodyCamera.raw.mp4", 4, 640, 512)
    for call in (lambda: dlc(video, batch_size=int(size) if size != "two" else size),  # type: ignore[arg-type]
                 lambda: predict_video(tmp_path / "model", video, batch_size=int(size) if size != "two" else size)):  # type: ignore[arg-type]
        with pytest.raises(BadArgument, match="batch size"):
            call()
    assert not list(tmp_path.glob("*.pqt"))


def test_negative_seeds_are_refused(tmp_path, capsys):
    assert "seed must be a whole number from 0" in _refused_by_argparse(capsys, "synth", str(tmp_path / "s"), "--seed", "-1")
    assert "seed must be a whole number from 0" in _refused_by_argparse(capsys, "train", "l.csv", "--out", "m", "--seed", "-1")
    with pytest.raises(BadArgument, match="seed"):
        train(tmp_path / "labels.csv", tmp_path / "model", TrainSettings(seed=-1))
    assert not (tmp_path / "s").exists() and not (tmp_path / "model").exists()


@pytest.mark.parametrize("seconds", ["nan", "inf", "-inf", "0", "-1", "ten"])
def test_durations_must_be_finite_and_positive(seconds, tmp_path, capsys):
    for command in ("synth", "demo"):
        assert "seconds must be a finite number above 0" in _refused_by_argparse(capsys, command, str(tmp_path / command), f"--seconds={seconds}")
    assert not list(tmp_path.iterdir())


def test_a_huge_input_size_is_refused_before_anything_is_allocated(tmp_path, capsys):
    assert main(["-q", "train", str(tmp_path / "labels.csv"), "--out", str(tmp_path / "model"), "--input-size", "32768x32768"]) == 2
    assert "at most 2048" in _one_error(capsys)
    assert not (tmp_path / "model").exists()


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """A model folder as training leaves it (untrained weights: these tests never look at predictions)."""
    folder = tmp_path_factory.mktemp("model")
    config = {"backbone": "efficientnet_lite0", "keypoints": ["nose", "paw"], "input_size": [64, 64], "image_size": [320, 256]}
    (folder / CONFIG).write_text(json.dumps(config))
    save_file({k: v.contiguous() for k, v in build_network(config).state_dict().items()}, str(folder / WEIGHTS))
    return folder


def test_predict_refuses_a_folder_or_the_video_itself_as_output(model, tmp_path, capsys):
    video = write_video(tmp_path / "clip.mp4", 4)
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "mine.txt").write_text("kept")
    assert main(["-q", "predict", str(model), str(video), "--out", str(folder), "--force"]) == 2
    assert "is a folder" in _one_error(capsys) and (folder / "mine.txt").read_text() == "kept"
    before = video.read_bytes()
    assert main(["-q", "predict", str(model), str(video), "--out", str(video), "--force"]) == 2
    assert "is the input video" in _one_error(capsys) and video.read_bytes() == before


# 14. corrupt model folders

@pytest.mark.parametrize("damage, problem", [
    ("weights cut", "unreadable weights"),
    ("weights empty", "unreadable weights"),
    ("config without keypoints", "has no keypoints"),
    ("config a list", "is a JSON list"),
    ("config not UTF-8", "unreadable model config"),
    ("keypoints not names", "keypoints must be a non-empty list of names"),
    ("unknown backbone", "does not describe a network"),
])
def test_corrupt_model_folders_are_one_line(model, tmp_path, capsys, damage, problem):
    broken = shutil.copytree(model, tmp_path / "model")
    config = json.loads((broken / CONFIG).read_text())
    if damage == "weights cut":
        (broken / WEIGHTS).write_bytes((broken / WEIGHTS).read_bytes()[:-100])
    elif damage == "weights empty":
        (broken / WEIGHTS).write_bytes(b"")
    elif damage == "config not UTF-8":
        (broken / CONFIG).write_bytes(b'{"backbone": "\xe9"}')
    else:
        changed = {"config without keypoints": {k: v for k, v in config.items() if k != "keypoints"}, "config a list": [config],
                   "keypoints not names": {**config, "keypoints": [1, 2]}, "unknown backbone": {**config, "backbone": "nope"}}[damage]
        (broken / CONFIG).write_text(json.dumps(changed))
    video = write_video(tmp_path / "clip.mp4", 4)
    assert main(["-q", "predict", str(broken), str(video)]) == 2
    error = _one_error(capsys)
    assert problem in error and str(broken) in error
    assert not list(tmp_path.glob("clip.*.pqt"))


def test_read_config_names_every_missing_key(tmp_path):
    (tmp_path / CONFIG).write_text("{}")
    with pytest.raises(IblVideoError, match="has no backbone, keypoints, input_size"):
        read_config(tmp_path)


# 14. a corrupt trials table, in every command that reads one

@pytest.mark.parametrize("damage, problem", [
    (b"not a parquet file", "cannot read table"),
    (b"", "cannot read table"),
    ("text columns", "hold something other than numbers"),
])
def test_a_corrupt_trials_table_is_one_line_in_every_command(session_with_truth_as_pose, tmp_path, capsys, damage, problem):
    session = tmp_path / "mouse" / "2026-01-01" / "001"
    shutil.copytree(session_with_truth_as_pose, session)
    trials = SessionPaths(session).session_file(TRIALS)
    if isinstance(damage, bytes):
        trials.write_bytes(damage)
    else:
        import pandas as pd

        pd.read_parquet(trials).astype(str).to_parquet(trials)
    for argv in (["qc", str(session)], ["plot", str(session)], ["report", str(session)], ["export", str(session)],
                 ["label-video", str(raw_video_path(session, "left")), "--trials", "0"]):
        assert main(["-q", *argv, "--force"]) == 2, argv
        error = _one_error(capsys)
        assert str(trials) in error and problem in error and error.count(str(trials)) == 1, error


# 16. mislabelled: a symlink loop, an empty weights name

def test_a_symlink_loop_is_called_one(tmp_path, capsys):
    (tmp_path / "a.mp4").symlink_to(tmp_path / "b.mp4")
    (tmp_path / "b.mp4").symlink_to(tmp_path / "a.mp4")
    (tmp_path / "dangling.mp4").symlink_to(tmp_path / "gone.mp4")
    with pytest.raises(VideoError, match=r"a\.mp4: symlink loop"):
        VideoReader(tmp_path / "a.mp4")
    assert main(["-q", "info", str(tmp_path / "a.mp4")]) == 2
    assert "symlink loop" in _one_error(capsys)
    with pytest.raises(VideoError, match=r"dangling\.mp4: broken symlink"):
        VideoReader(tmp_path / "dangling.mp4")


def test_an_empty_weights_name_is_an_error_not_the_demo_weights(tmp_path, capsys):
    video = write_video(tmp_path / "_iblrig_bodyCamera.raw.mp4", 4, 640, 512)
    with pytest.raises(BadArgument, match="weights are an empty name"):
        dlc(video, weights="")
    assert main(["-q", "dlc", str(video), "--weights", ""]) == 2
    assert "empty name" in _one_error(capsys)
    assert not list(tmp_path.glob("*.pqt"))


# the last point: bit flips in H.264 slices decode to wrong pixels without an error; they are counted

def _damaged_copy(video: Path, out: Path) -> tuple[Path, int]:
    """A copy of ``video`` with a few bits flipped in one P-frame slice, where the decoder conceals the
    damage rather than failing; and the index of that frame (found by decoding on one thread)."""
    with av.open(str(video)) as container:
        packets = [(p.pos, p.size) for p in container.demux(video=0) if p.size and not p.is_keyframe]
    data = video.read_bytes()
    for pos, size in packets:
        damaged = bytearray(data)
        for k in range(pos + size // 2, pos + size // 2 + 3):
            damaged[k] ^= 0x10
        out.write_bytes(bytes(damaged))
        try:
            with VideoReader(out, threads=1) as reader:
                for _ in reader.batches(16):
                    pass
                concealed = reader.concealed_frames()
        except VideoError:
            continue  # this damage is caught as an error: not the case looked for
        if concealed:
            return out, concealed[0]
    raise AssertionError(f"no slice of {video} conceals a bit flip")


@pytest.fixture(scope="module")
def damaged_session(tmp_path_factory) -> tuple[Path, int]:
    """A left-camera session whose video has concealed damage in one frame."""
    session = synthesize_session(tmp_path_factory.mktemp("damaged"), cameras=("left",), seconds=0.5, seed=1)
    video = raw_video_path(session, "left")
    clean = video.with_name("clean.mp4")
    shutil.move(video, clean)
    _, frame = _damaged_copy(clean, video)
    clean.unlink()
    return session, frame


def test_concealed_errors_are_found_frame_by_frame_whatever_the_threads(damaged_session):
    session, frame = damaged_session
    video = raw_video_path(session, "left")
    for threads in (1, 2, 8):
        with VideoReader(video, threads=threads) as reader:
            frames = np.concatenate([batch[:, 0, 0] for _, batch in reader.batches(8)])
            assert len(frames) == reader.info.n_frames
            assert reader.concealed_frames() == [frame], threads
    # PyAV's process-wide logging is as it was: heard only while readers decode
    assert av.logging.get_level() is None and av.logging.get_skip_repeated()


def test_concealed_errors_reach_the_pose_table_and_the_qc(damaged_session, tmp_path):
    session = copy_session(damaged_session[0], tmp_path, "mouse")
    out = dlc(raw_video_path(session, "left"))
    assert table_metadata(out)["decode_errors"] == {"frames": 1, "first": [damaged_session[1]]}
    check = qc_stage(session)["cameras"]["left"]["checks"]["decode_errors"]
    assert check["outcome"] == "WARNING" and check["value"] == 1 and "concealed errors in 1 frame" in check["note"]


def test_a_clean_video_has_no_decode_errors(session_with_dlc):
    assert table_metadata(SessionPaths(session_with_dlc).pose("body", "dlc"))["decode_errors"] == {"frames": 0, "first": []}
    assert json.loads((session_with_dlc / "alf" / QC_REPORT).read_text())["cameras"]["body"]["checks"]["decode_errors"] == {
        "outcome": "PASS", "value": 0.0}


def test_train_refuses_a_file_as_model_folder_and_a_folder_as_labels(tmp_path, capsys):
    labels = tmp_path / "CollectedData.csv"
    labels.write_text("my labels\n")
    assert main(["-q", "train", str(labels), "--out", str(labels)]) == 2
    assert "is a file; --out names the model folder" in _one_error(capsys) and labels.read_text() == "my labels\n"
    assert main(["-q", "train", str(tmp_path), "--out", str(tmp_path / "model")]) == 2
    assert "is a folder, not a labels file" in _one_error(capsys)


def test_a_damaged_page_of_a_pose_table_is_an_error_not_wrong_numbers(session_with_truth_as_pose, tmp_path, capsys):
    session = copy_session(session_with_truth_as_pose, tmp_path, "mouse")
    table = SessionPaths(session).pose("left", "dlc")
    write_pose(read_pose(table), table)  # as iblvideo writes its tables
    data = bytearray(table.read_bytes())
    middle = len(data) // 3  # inside the first column's values, far from the footer
    data[middle : middle + 8] = bytes(b ^ 0xFF for b in data[middle : middle + 8])
    table.write_bytes(bytes(data))
    with pytest.raises(IblVideoError, match="CRC checksum verification failed"):
        read_pose(table)
    assert main(["-q", "features", str(session), "--force"]) == 2
    assert str(table) in _one_error(capsys)


def test_read_trials_names_the_columns_it_lacks(session_with_truth_as_pose, tmp_path):
    session = copy_session(session_with_truth_as_pose, tmp_path, "mouse")
    trials = SessionPaths(session).session_file(TRIALS)
    read_trials(session).drop(columns=["intervals_1"]).to_parquet(trials)
    with pytest.raises(IblVideoError, match="trials table has no intervals_1 column"):
        read_trials(session, needs=("intervals_0", "intervals_1"))


def test_a_trials_table_without_the_columns_a_command_reads(session_with_truth_as_pose, tmp_path, capsys, caplog):
    """label-video --trials needs the intervals: one line; the figures need the events: they show no trials."""
    session = copy_session(session_with_truth_as_pose, tmp_path, "mouse")
    trials = SessionPaths(session).session_file(TRIALS)
    read_trials(session).drop(columns=["intervals_1", "stimOn_times"]).to_parquet(trials)
    assert main(["-q", "label-video", str(raw_video_path(session, "left")), "--trials", "0"]) == 2
    assert "trials table has no intervals_1 column" in _one_error(capsys)
    assert main(["-q", "plot", str(session)]) == 0
    assert "the trials table has no stimOn_times" in caplog.text


@pytest.mark.parametrize("argv, problem", [
    (["--device", "foo"], "foo"),
    (["--weights", ""], "empty name"),
])
def test_session_and_queue_refuse_a_device_or_weights_that_cannot_be_before_any_camera(session_with_truth_as_pose, tmp_path, capsys, argv, problem):
    """One line for the whole command, not every camera Errored."""
    from iblvideo import run_queue, run_session

    session = copy_session(session_with_truth_as_pose, tmp_path, "mouse")
    before = sorted(p.name for p in SessionPaths(session).alf.iterdir())
    assert main(["-q", "session", str(session), *argv]) == 2
    assert problem in _one_error(capsys)
    assert main(["-q", "queue", "run", "--db", str(tmp_path / "q.sqlite"), *argv]) == 2
    assert problem in _one_error(capsys)
    option, value = argv
    given = {option.removeprefix("--"): value}
    with pytest.raises(BadArgument):
        run_session(session, **given)
    with pytest.raises(BadArgument):
        run_queue(db=tmp_path / "q.sqlite", **given)
    assert sorted(p.name for p in SessionPaths(session).alf.iterdir()) == before  # nothing written


@pytest.mark.parametrize("seconds, seed", [(float("nan"), 0), (float("inf"), 0), (-1.0, 0), (1.0, -1)])
def test_synthesize_session_from_python_refuses_what_the_command_refuses(tmp_path, seconds, seed):
    with pytest.raises(BadArgument):
        synthesize_session(tmp_path, cameras=("body",), seconds=seconds, seed=seed)
    assert not any(tmp_path.iterdir())


def test_features_of_a_body_camera_alone_say_why_there_are_none(session_with_truth_as_pose, tmp_path, capsys, caplog):
    session = copy_session(session_with_truth_as_pose, tmp_path, "mouse")
    for camera in ("left", "right"):
        SessionPaths(session).pose(camera, "dlc").unlink()
    assert main(["-q", "features", str(session)]) == 0
    assert capsys.readouterr().out == ""  # no blank line for no files
    assert "IBL computes features for the left and right cameras only" in caplog.text


def test_a_batch_too_large_for_memory_is_refused_before_decoding(tmp_path, capsys):
    video = write_video(tmp_path / "_iblrig_bodyCamera.raw.mp4", 4, 640, 512)
    with pytest.raises(BadArgument, match="from 1 to 1024"):
        dlc(video, batch_size=100_000)
    assert main(["-q", "dlc", str(video), "--batch-size", "100000"]) == 2
    assert "from 1 to 1024" in _one_error(capsys)
    assert not list(tmp_path.glob("*.pqt"))
