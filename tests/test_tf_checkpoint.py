"""The NumPy reader of TensorFlow checkpoints, on a checkpoint TensorFlow's own Saver wrote (benchmarks/dlc_reference.py)."""
from __future__ import annotations

import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from iblvideo.errors import IblVideoError
from iblvideo.networks import tf_checkpoint
from iblvideo.networks.tf_checkpoint import choose_snapshot, crc32c, read_checkpoint

TINY = Path(__file__).parent / "data" / "dlc-reference" / "tiny"
PREFIX = "snapshot-7"


@pytest.fixture()
def tiny(tmp_path: Path) -> Path:
    """A copy of the TensorFlow-written checkpoint, to damage."""
    for path in TINY.glob(f"{PREFIX}.*"):
        shutil.copy(path, tmp_path / path.name)
    return tmp_path / PREFIX


def saved(folder: Path = TINY) -> dict[str, np.ndarray]:
    """What TensorFlow saved, slots and global_step included."""
    with np.load(folder / "values.npz") as values:
        return {name.replace("|", "/"): values[name] for name in values.files}


def one_line(error: pytest.ExceptionInfo[IblVideoError], path: Path, words: str) -> None:
    message = str(error.value)
    assert "\n" not in message and message.startswith(str(path)) and words in message, message


def test_every_tensor_as_tensorflow_saved_it():
    values = saved()
    assert any("/Momentum" in name for name in values) and values["global_step"] == 7  # the fixture has what must be skipped
    tensors = read_checkpoint(TINY / PREFIX)
    network = {name for name in values if "/Momentum" not in name and name != "global_step"}
    assert set(tensors) == network
    assert {str(t.dtype) for t in tensors.values()} == {"float32", "float64", "int32", "int64"}
    for name in network:
        assert tensors[name].dtype == values[name].dtype and tensors[name].shape == values[name].shape, name
        assert np.array_equal(tensors[name], values[name]), name
    assert tensors["extra/empty"].shape == (0, 3) and tensors["extra/scalar"].shape == ()


def test_a_checkpoint_over_two_data_files():
    sharded = TINY.parent / "sharded"
    assert len(list(sharded.glob("snapshot-3.data-*-of-00002"))) == 2
    values, tensors = saved(sharded), read_checkpoint(sharded / "snapshot-3")
    assert set(tensors) == set(values) and all(np.array_equal(tensors[n], values[n]) and tensors[n].dtype == values[n].dtype for n in values)


def test_training_state_is_told_from_the_network():
    skipped = ("w/Momentum", "w/Adam", "w/Adam_1", "w/RMSProp", "w/RMSProp_1", "global_step", "beta1_power", "beta2_power")
    kept = ("resnet_v1_50/conv1/weights", "pose/Momentum_head/weights", "my_global_step", "w/Adamant")
    assert all(tf_checkpoint.SKIPPED.search(n) for n in skipped) and not any(tf_checkpoint.SKIPPED.search(n) for n in kept)


def bitwise_crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def test_crc32c_against_the_bitwise_definition():
    assert crc32c(b"123456789") == 0xE3069283  # the standard check value
    rng = np.random.default_rng(0)
    for n in (0, 1, 3, 4, 5, 63, 4097, 30011):  # one lane, several, an odd number to join
        data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        assert crc32c(data) == bitwise_crc32c(data), n
    array = rng.normal(size=(7, 13)).astype(np.float32)
    assert crc32c(array) == bitwise_crc32c(array.tobytes())


def test_a_truncated_index(tiny: Path):
    index = tiny.with_name(tiny.name + ".index")
    index.write_bytes(index.read_bytes()[:-20])
    with pytest.raises(IblVideoError) as error:
        read_checkpoint(tiny)
    one_line(error, index, "truncated or another format")


def test_a_foreign_index(tiny: Path):
    index = tiny.with_name(tiny.name + ".index")
    index.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    with pytest.raises(IblVideoError) as error:
        read_checkpoint(tiny)
    one_line(error, index, "not a TensorFlow checkpoint index")


def test_a_flipped_byte_in_the_index(tiny: Path):
    index = tiny.with_name(tiny.name + ".index")
    raw = bytearray(index.read_bytes())
    raw[10] ^= 0x20
    index.write_bytes(bytes(raw))
    with pytest.raises(IblVideoError) as error:
        read_checkpoint(tiny)
    one_line(error, index, "checksum mismatch in the block at 0")


def test_a_flipped_byte_in_the_data(tiny: Path):
    data = tiny.with_name(tiny.name + ".data-00000-of-00001")
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    data.write_bytes(bytes(raw))
    with pytest.raises(IblVideoError) as error:
        read_checkpoint(tiny)
    one_line(error, data, "checksum mismatch in tensor")


def test_truncated_or_missing_data(tiny: Path):
    data = tiny.with_name(tiny.name + ".data-00000-of-00001")
    data.write_bytes(data.read_bytes()[:-100])
    with pytest.raises(IblVideoError) as error:
        read_checkpoint(tiny)
    one_line(error, data, "truncated TensorFlow checkpoint data")
    data.unlink()
    with pytest.raises(IblVideoError) as error:
        read_checkpoint(tiny)
    one_line(error, data, "cannot read the checkpoint data")


def test_an_unsupported_dtype(tiny: Path):
    """extra/int32 relabelled as a string tensor, its block's checksum made right again."""
    index = tiny.with_name(tiny.name + ".index")
    raw = bytearray(index.read_bytes())
    at = raw.index(b"int32\x08\x03") + 6
    raw[at] = 7  # TensorFlow's DT_STRING
    footer = tf_checkpoint._Bytes(bytes(raw[-48:-8]), index, "footer")
    footer.varint(), footer.varint()
    offset, size = footer.varint(), footer.varint()
    handle = tf_checkpoint._block_entries(bytes(raw[offset:offset + size]), index)[0][1]
    cursor = tf_checkpoint._Bytes(handle, index, "handle")
    start, length = cursor.varint(), cursor.varint()
    assert start <= at < start + length
    crc = crc32c(bytes(raw[start:start + length + 1]))
    rotated = ((crc >> 15) | (crc << 17)) & 0xFFFFFFFF
    raw[start + length + 1:start + length + 5] = struct.pack("<I", (rotated + 0xA282EAD8) & 0xFFFFFFFF)
    index.write_bytes(bytes(raw))
    with pytest.raises(IblVideoError) as error:
        read_checkpoint(tiny)
    one_line(error, tiny.with_name(tiny.name + ".data-00000-of-00001"), "'extra/int32' is string")


def test_choose_snapshot(tmp_path: Path):
    assert choose_snapshot(TINY) == TINY / PREFIX
    for iteration in (5000, 100000, 20000):
        (tmp_path / f"snapshot-{iteration}.index").touch()
        (tmp_path / f"snapshot-{iteration}.data-00000-of-00001").touch()
    (tmp_path / "snapshot-100000.meta").touch()
    assert choose_snapshot(tmp_path) == tmp_path / "snapshot-100000"  # by iteration, not by name
    assert [choose_snapshot(tmp_path, i).name for i in (0, 1, -3)] == ["snapshot-5000", "snapshot-20000", "snapshot-5000"]
    with pytest.raises(IblVideoError) as error:
        choose_snapshot(tmp_path, 3)
    one_line(error, tmp_path, "snapshotindex 3 but 3 snapshots")
    with pytest.raises(IblVideoError) as error:
        choose_snapshot(tmp_path / "train")
    one_line(error, tmp_path / "train", "cannot list the model folder")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(IblVideoError) as error:
        choose_snapshot(empty)
    one_line(error, empty, "no DeepLabCut snapshot")
