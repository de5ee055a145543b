"""Video in: real files through the real decoders — counts, rates, frame-exact seeks, bad input."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import read_code
from iblvideo.cameras import identify_camera
from iblvideo.errors import IblVideoError, VideoError
from iblvideo.video.reader import FramePool, VideoReader, prefetched, probe
from iblvideo.video.writer import VideoWriter


@pytest.mark.parametrize("name, n", [("h264", 90), ("hevc", 60), ("mpeg4", 60), ("faststart", 90)])
def test_streams_every_frame_in_order_with_exact_count(videos, name, n):
    with VideoReader(videos[name]) as reader:
        assert len(reader) == n and reader.info.fps == 30.0
        codes = [read_code(image) for _, image in reader.frames()]
    assert codes == list(range(n))


@pytest.mark.parametrize("name", ["h264", "hevc", "mpeg4"])
def test_seek_returns_exactly_that_frame(videos, name):
    with VideoReader(videos[name]) as reader:
        n = len(reader)
        for index in [n - 1, 0, 13, 12, 11, 37, 5, n // 2, -1, -n]:
            assert read_code(reader[index]) == index % n, index
        with pytest.raises(IndexError):
            reader[n]


def test_seek_matches_sequential_decode_pixel_for_pixel(videos):
    with VideoReader(videos["hevc"]) as reader:
        sequential = [image.copy() for _, image in reader.frames()]
        for index in (0, 7, 25, 59, 31):
            np.testing.assert_array_equal(reader[index], sequential[index])


def test_batches_cover_a_range_and_keep_shape(videos):
    with VideoReader(videos["h264"]) as reader:
        got = list(reader.batches(batch_size=16, start=10, stop=60))
    assert [first for first, _ in got] == [10, 26, 42, 58]
    assert got[0][1].shape == (16, 256, 320)
    assert [read_code(image) for _, batch in got for image in batch] == list(range(10, 60))


def test_batches_without_a_pool_are_the_callers_to_keep(videos):
    with VideoReader(videos["h264"]) as reader:
        # held as tensors, as the tracker holds them: every batch keeps its own frames
        held = [(first, torch.from_numpy(batch)) for first, batch in reader.batches(batch_size=8)]
    assert [read_code(image.numpy()) for _, batch in held for image in batch] == list(range(90))
    assert len({batch.data_ptr() for _, batch in held}) == len(held)


def test_pooled_batches_are_reused_once_given_back_and_never_while_held(videos):
    pool = FramePool()
    kept = []
    with VideoReader(videos["h264"]) as reader:
        for k, (first, batch) in enumerate(reader.batches(batch_size=8, pool=pool)):
            if k % 2:
                pool.give_back(batch)  # the last, partial batch (a view) among them
            else:
                kept.append((first, torch.from_numpy(batch)))
    assert len(kept) == 6 and all(read_code(image.numpy()) == first + i for first, batch in kept for i, image in enumerate(batch))
    assert pool.arrays == len(kept) + 1  # one given back was filled again each time
    with pytest.raises(ValueError, match="already given back"):
        pool.give_back(batch)
    with pytest.raises(ValueError, match="not taken from the pool"):
        pool.give_back(kept[0][1].numpy()[1:])
    with pytest.raises(ValueError, match="not taken from the pool"):
        pool.give_back(np.zeros((8, 256, 320), np.uint8))


def test_a_long_pass_handing_batches_back_uses_a_few_arrays(videos):
    pool = FramePool()
    with VideoReader(videos["h264"]) as reader:
        codes = []
        for _, batch in reader.batches(batch_size=4, pool=pool):
            codes += [read_code(image) for image in batch]
            pool.give_back(batch)
        assert codes == list(range(90)) and pool.arrays == 1
        # decoded ahead on another thread, handed back from this one: the batch read, two queued, one filling
        codes = []
        for _, batch in prefetched(reader.batches(batch_size=4, pool=pool), depth=2):
            codes += [read_code(image) for image in batch]
            pool.give_back(batch)
    assert codes == list(range(90)) and pool.arrays <= 4


def test_a_batch_cut_short_by_bad_data_goes_back_to_the_pool(videos):
    pool = FramePool()
    with VideoReader(videos["corrupt"]) as reader, pytest.raises(VideoError, match="corrupt video data"):
        for _, batch in reader.batches(batch_size=4, pool=pool):
            pool.give_back(batch)
    made = pool.arrays
    pool.take((4, 256, 320), np.uint8)
    assert pool.arrays == made


def test_colour_frames(videos):
    with VideoReader(videos["h264"], grey=False) as reader:
        image = reader[3]
    assert image.shape == (256, 320, 3) and image.dtype == np.uint8


def test_truncated_file_counts_only_complete_frames(videos):
    info = probe(videos["truncated"])
    assert info.truncated and info.declared_frames == 90 and 0 < info.n_frames < 90
    with VideoReader(videos["truncated"], strict=False) as reader:
        codes = [read_code(image) for _, image in reader.frames()]
        assert read_code(reader[info.n_frames - 1]) == info.n_frames - 1
    assert codes == list(range(info.n_frames))


@pytest.mark.parametrize("name, problem", [
    ("truncated", "truncated: header declares 90 frames, only"),
    ("truncated_tail", "not a readable video"),
    ("text", "not a readable video"),
    ("zero", "no video frames"),
    ("empty", "empty file"),
])
def test_bad_files_get_one_line_errors_naming_the_file(videos, name, problem):
    with pytest.raises(VideoError) as caught:
        VideoReader(videos[name])
    message = str(caught.value)
    assert message.startswith(str(videos[name])) and problem in message and "\n" not in message


def test_missing_file(tmp_path):
    with pytest.raises(VideoError, match="no such file"):
        VideoReader(tmp_path / "nope.mp4")


def test_corrupt_frames_in_the_middle_are_an_error_not_a_smear(videos):
    with VideoReader(videos["corrupt"]) as reader, pytest.raises(VideoError, match="corrupt video data after frame"):
        for _ in reader.frames():
            pass


def test_writer_is_deterministic(tmp_path):
    digests = []
    for k in range(2):
        path = tmp_path / f"w{k}.mp4"
        with VideoWriter(path, 128, 96, 150) as writer:
            for i in range(20):
                writer.write(np.full((96, 128), i * 10, np.uint8))
        digests.append(path.read_bytes())
    assert digests[0] == digests[1]
    info = probe(tmp_path / "w0.mp4")
    assert (info.width, info.height, info.fps, info.n_frames) == (128, 96, 150.0, 20)


@pytest.mark.parametrize("name, size, fps, camera", [
    ("_iblrig_leftCamera.raw.mp4", (640, 512), 150, "left"),  # the name wins over the size
    ("clip.mp4", (1280, 1024), 60, "left"),
    ("clip.mp4", (1280, 1024), 30, "left"),
    ("clip.mp4", (640, 512), 150, "right"),
    ("clip.mp4", (640, 512), 30, "body"),
])
def test_camera_from_name_or_size(name, size, fps, camera):
    assert identify_camera(name, *size, fps).name == camera


def test_camera_override_and_unknown_size():
    assert identify_camera("clip.mp4", 400, 300, 30, override="body").name == "body"
    with pytest.raises(IblVideoError, match=r"clip\.mp4: cannot tell which camera filmed a 400x300 video; pass --camera"):
        identify_camera("clip.mp4", 400, 300, 30)


def test_sample_returns_exactly_the_frames_asked_for(videos):
    with VideoReader(videos["hevc"]) as reader:
        got = list(reader.sample([45, 0, 20, 46, 59, 20]))
    assert [index for index, _ in got] == [0, 20, 45, 46, 59]
    assert all(read_code(image) == index for index, image in got)


def test_prefetched_batches_match_and_errors_reach_the_caller(videos):
    with VideoReader(videos["h264"]) as reader:
        direct = [(first, batch.copy()) for first, batch in reader.batches(16)]
        ahead = list(prefetched(reader.batches(16)))
    assert [f for f, _ in direct] == [f for f, _ in ahead]
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(direct, ahead, strict=True))
    with VideoReader(videos["corrupt"]) as reader, pytest.raises(VideoError, match="corrupt video data"):
        for _ in prefetched(reader.batches(16)):
            pass
    with VideoReader(videos["h264"]) as reader:  # a consumer that stops early does not hang
        for _ in prefetched(reader.batches(4)):
            break
