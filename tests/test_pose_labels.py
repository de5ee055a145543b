"""Reading labeled frames in the DeepLabCut / Lightning Pose layout, and its one-line errors."""
from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from iblvideo.errors import IblVideoError
from iblvideo.training.labels import read_labels
from pose_data import LABELS, small_copy


def one_line_error(path: Path, *words: str) -> str:
    with pytest.raises(IblVideoError) as info:
        read_labels(path)
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message
    return message


def test_reads_fixture():
    frames = read_labels(LABELS)
    assert len(frames.keypoints) == 17 and frames.keypoints[0] == "paw1LH_top"
    assert frames.images.shape == (90, 406, 396) and frames.images.dtype == np.uint8
    assert frames.image_size == (396, 406)
    assert frames.points.shape == (90, 17, 2)
    assert frames.points[0, 0].tolist() == [77.25, 36.25]
    assert np.isnan(frames.points[0, 4]).all()  # empty cells are unlabeled


def test_h5_matches_csv(tmp_path):
    csv, table = small_copy(tmp_path)
    table.to_hdf(tmp_path / "CollectedData.h5", key="df_with_missing", mode="w")
    from_csv, from_h5 = read_labels(csv), read_labels(tmp_path / "CollectedData.h5")
    assert from_h5.keypoints == from_csv.keypoints and from_h5.image_paths == from_csv.image_paths
    np.testing.assert_array_equal(from_h5.points, from_csv.points)


def test_subset_keeps_order():
    frames = read_labels(LABELS)
    subset = frames.subset(["labeled-data/img05.png", "labeled-data/img02.png"])
    np.testing.assert_array_equal(subset.points[1], frames.points[frames.image_paths.index("labeled-data/img02.png")])


def test_missing_image(tmp_path):
    csv, table = small_copy(tmp_path)
    (tmp_path / table.index[2]).unlink()
    one_line_error(csv, "img03.png", "not found")


def test_missing_labels_file(tmp_path):
    one_line_error(tmp_path / "CollectedData.csv", "no such labels file")


def test_wrong_header(tmp_path):
    csv, _ = small_copy(tmp_path)
    lines = csv.read_text().splitlines()
    csv.write_text("\n".join(lines[1:]) + "\n")  # the scorer row is gone
    one_line_error(csv, "CollectedData.csv", "scorer")


def test_all_nan_keypoint(tmp_path):
    csv, table = small_copy(tmp_path)
    table.loc[:, (slice(None), "nose_top")] = np.nan
    table.to_csv(csv)
    one_line_error(csv, "'nose_top'", "never labeled")


def test_mismatched_image_sizes(tmp_path):
    csv, table = small_copy(tmp_path)
    with av.open(str(tmp_path / table.index[1]), "w") as out:  # overwrite one image with a smaller PNG
        stream = out.add_stream("png")
        stream.width, stream.height, stream.pix_fmt = 64, 48, "gray"
        frame = av.VideoFrame.from_ndarray(np.zeros((48, 64), np.uint8), format="gray")
        for packet in [*stream.encode(frame), *stream.encode()]:
            out.mux(packet)
    one_line_error(csv, "img02.png", "64x48", "one size")


def test_unreadable_image(tmp_path):
    csv, table = small_copy(tmp_path)
    (tmp_path / table.index[0]).write_bytes(b"not a png")
    one_line_error(csv, "img01.png", "not a readable image")
