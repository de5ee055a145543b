"""Predictions of DeepLabCut 2.3.11 itself on seeded ResNet-50 networks: the reference for issue 17.

DeepLabCut 2.3 runs on TensorFlow 1-style graphs, which never enter the project's environment, so this
runs once in its own and its small outputs are committed to ``tests/data/dlc-reference/``::

    python3.11 -m venv /tmp/dlc-ref/venv
    /tmp/dlc-ref/venv/bin/pip install "tensorflow-cpu==2.12.*" tf-slim "deeplabcut==2.3.11" "torch==2.13.0" "numpy<1.24"
    /tmp/dlc-ref/venv/bin/pip install "tensorpack>=0.11"
    /tmp/dlc-ref/venv/bin/python benchmarks/dlc_reference.py [folder for the full-size checkpoints]

(deeplabcut 2.3.11 requires torch, whose default wheel is a CUDA build of several GB; the CPU one is
pinned. TensorFlow 2.12 is the last DeepLabCut 2.3 accepts and the first for Python 3.11; it needs
NumPy older than 1.24; deeplabcut imports tensorpack, which only its ``[tf]`` extra asks for.)

For 1, 2 and 4 joints it writes the training and test ``pose_cfg.yaml`` with DeepLabCut's own
``MakeTrain_pose_yaml`` and ``MakeTest_pose_yaml`` from its default ``pose_cfg.yaml``; builds the
training graph as DeepLabCut's training does (its ``PoseNetFactory`` network for ``resnet_50``, its
``get_optimizer``: a Momentum optimizer, its slots and ``global_step``); fills the network's variables
with the seeded weights of ``seeded_weights()`` below; saves ``snapshot-<ITERATION>`` with a
``tf.compat.v1.train.Saver`` as its training does; then predicts every frame in ``frames/`` the way
``analyze_videos`` does with a batch of one: ``load_config`` of the test ``pose_cfg.yaml``,
``init_weights`` set to the snapshot, ``predict.setup_pose_prediction`` and ``predict.getpose``.
Each full-size checkpoint is also read back with ``iblvideo.networks.tf_checkpoint`` and compared
with TensorFlow's own checkpoint reader.

The seeded weights need NumPy only, so a test can rebuild the same network without the 100 MB
checkpoints: every variable draws its own stream,
``np.random.default_rng([SEED, zlib.crc32(name.encode())])``, ``name`` being TensorFlow's variable
name, and its values by the rules in ``seeded_weights()`` (float64 draws cast to float32). Batch-norm
statistics are drawn too, so that inference-mode batch norm is not the identity.

It also writes ``tiny/``, a small checkpoint TensorFlow's Saver writes (every dtype the checkpoint
reader supports, Momentum slots, ``global_step``), and ``sharded/``, one over two data files, each
with the values saved, for tests of ``iblvideo.networks.tf_checkpoint`` on TensorFlow's own bytes.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import platform
import shutil
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "data" / "dlc-reference"
SEED = 17
JOINTS = (1, 2, 4)
SIZES = ((100, 100), (160, 160), (220, 220), (128, 102), (131, 97), (1280, 1024))  # width, height
ITERATION = 1030000  # DeepLabCut's last multi_step
FRAME_SEED = 2017
# input pixels are centred but not scaled (about ±128): the first convolution brings them to about 1
INPUT_GAIN = 1 / 64
CONV_GAIN = 1.0  # activations grow from std 0.3 to 0.9 through the 16 units, never saturating
HEAD_GAIN = 2.0  # logits of std about 1.2: likelihoods from about 0.05 to 0.99, peaks clear of their neighbours
PACKAGES = ("tensorflow-cpu", "tf-slim", "deeplabcut", "tensorpack", "numpy", "torch", "PyYAML", "ruamel.yaml", "scikit-image", "opencv-python")


def seeded_weights(shapes: dict[str, tuple[int, ...]], seed: int = SEED) -> dict[str, np.ndarray]:
    """Float32 values for TensorFlow variable names and shapes, each name drawing its own stream (NumPy only)."""
    weights = {}
    for name, shape in shapes.items():
        rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
        leaf = name.rsplit("/", 1)[-1]
        if leaf == "moving_mean":
            values = rng.normal(0.0, 0.1, shape)
        elif leaf == "moving_variance":
            values = rng.uniform(0.5, 1.5, shape)
        elif leaf == "gamma":
            values = rng.uniform(0.8, 1.2, shape)
        elif leaf in ("beta", "biases"):
            values = rng.normal(0.0, 0.05, shape)
        elif leaf == "weights":  # [kh, kw, in, out]; transposed convolutions [kh, kw, out, in]
            fan = shape[0] * shape[1] * (shape[3] if name.startswith("pose/") else shape[2])
            gain = HEAD_GAIN if name.startswith("pose/") else INPUT_GAIN if name == "resnet_v1_50/conv1/weights" else CONV_GAIN
            values = rng.normal(0.0, 1.0, shape) * gain / np.sqrt(fan)
        else:
            raise ValueError(f"no rule for variable {name}")
        weights[name] = values.astype(np.float32)
    return weights


def frame(width: int, height: int, seed: int = FRAME_SEED) -> np.ndarray:
    """A grey uint8 frame (height, width): smooth blobs on a gradient, different for every size."""
    rng = np.random.default_rng([seed, width, height])
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    image = 60 + 60 * (x / width) + 30 * (y / height)
    for _ in range(6):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        radius = rng.uniform(0.04, 0.2) * min(width, height)
        image += rng.uniform(-90, 120) * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * radius**2))
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def digest(array: np.ndarray) -> dict:
    """What identifies an array without storing it."""
    return {
        "shape": list(array.shape),
        "dtype": str(array.dtype),
        "sum": float(array.astype(np.float64).sum()),
        "sha256": hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest(),
    }


def write_pose_cfgs(joints: int, folder: Path) -> tuple[Path, Path]:
    """train/ and test/ pose_cfg.yaml written by DeepLabCut's own functions from its default file."""
    import deeplabcut
    from deeplabcut.generate_training_dataset.trainingsetmanipulation import MakeTest_pose_yaml, MakeTrain_pose_yaml

    names = [f"bodypart{i + 1}" for i in range(joints)]
    items = {
        "dataset": "training-datasets/iteration-0/UnaugmentedDataSet_ibl17/ibl17_reference95shuffle1.pickle",
        "metadataset": "training-datasets/iteration-0/UnaugmentedDataSet_ibl17/Documentation_data-ibl17_95shuffle1.pickle",
        "num_joints": joints,
        "all_joints": [[i] for i in range(joints)],
        "all_joints_names": names,
        "init_weights": "resnet_v1_50.ckpt",
        "project_path": "ibl17-reference",
        "net_type": "resnet_50",
        "dataset_type": "imgaug",
    }
    default = Path(deeplabcut.__file__).parent / "pose_cfg.yaml"
    train, test = folder / "train" / "pose_cfg.yaml", folder / "test" / "pose_cfg.yaml"
    train.parent.mkdir(parents=True, exist_ok=True)
    test.parent.mkdir(parents=True, exist_ok=True)
    data = MakeTrain_pose_yaml(items, str(train), str(default))
    keys = ["dataset", "num_joints", "all_joints", "all_joints_names", "net_type", "init_weights", "global_scale", "location_refinement", "locref_stdev"]
    MakeTest_pose_yaml(data, keys, str(test))
    return train, test


def save_snapshot(train_cfg: Path, folder: Path) -> tuple[Path, dict[str, tuple[int, ...]]]:
    """The seeded network saved as DeepLabCut's training saves it; its prefix and the network's variable shapes."""
    import tensorflow as tf
    from deeplabcut.pose_estimation_tensorflow.config import load_config
    from deeplabcut.pose_estimation_tensorflow.core.train import get_optimizer
    from deeplabcut.pose_estimation_tensorflow.nnets.factory import PoseNetFactory

    cfg = load_config(str(train_cfg))
    tf.compat.v1.reset_default_graph()
    inputs = tf.compat.v1.placeholder(tf.float32, shape=[1, None, None, 3])
    heads = PoseNetFactory.create(cfg).get_net(inputs)
    network = tf.compat.v1.global_variables()
    # any loss through both heads gives every trainable variable its Momentum slot
    loss = tf.reduce_sum(tf.sigmoid(heads["part_pred"])) + tf.reduce_sum(tf.square(heads["locref"]))
    get_optimizer(loss, cfg)
    shapes = {v.op.name: tuple(v.shape.as_list()) for v in network}
    weights = seeded_weights(shapes)
    saver = tf.compat.v1.train.Saver(max_to_keep=5)
    with tf.compat.v1.Session() as sess:
        sess.run(tf.compat.v1.global_variables_initializer())
        for variable in network:
            variable.load(weights[variable.op.name], sess)
        tf.compat.v1.train.get_global_step().load(ITERATION, sess)
        prefix = saver.save(sess, str(folder / "snapshot"), global_step=ITERATION)
    return Path(prefix), shapes


def predict(test_cfg: Path, prefix: Path, frames: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """DeepLabCut's single-frame prediction of every frame, as analyze_videos runs it with a batch of one."""
    from deeplabcut.pose_estimation_tensorflow.config import load_config
    from deeplabcut.pose_estimation_tensorflow.core import predict as dlc_predict

    cfg = load_config(str(test_cfg))
    cfg["init_weights"] = str(prefix)
    cfg["num_outputs"] = cfg.get("num_outputs", 1)
    cfg["batch_size"] = 1
    sess, inputs, outputs = dlc_predict.setup_pose_prediction(cfg)
    out: dict[str, np.ndarray] = {}
    for size, grey in frames.items():
        rgb = np.repeat(grey[..., None], 3, axis=2)
        scmap, locref, pose = dlc_predict.getpose(rgb, cfg, sess, inputs, outputs, outall=True)
        out[f"{size}_pose"] = pose
        out[f"{size}_cell"] = np.array([np.unravel_index(np.argmax(scmap[:, :, j]), scmap.shape[:2]) for j in range(scmap.shape[2])], np.int64)
        out[f"{size}_scmap"] = scmap.astype(np.float32)
        out[f"{size}_locref"] = locref.astype(np.float32)
    sess.close()
    return out


def tiny_checkpoint(folder: Path) -> None:
    """A small checkpoint of every supported dtype with Momentum slots and global_step, and the values saved."""
    import tensorflow as tf

    rng = np.random.default_rng(SEED)
    tf.compat.v1.reset_default_graph()
    trainable = {
        "resnet_v1_50/conv1/weights": rng.normal(0, 1, (3, 3, 32, 64)).astype(np.float32),
        "resnet_v1_50/conv1/BatchNorm/gamma": rng.uniform(0.5, 1.5, 64).astype(np.float32),
        "resnet_v1_50/conv1/BatchNorm/beta": rng.normal(0, 1, 64).astype(np.float32),
        "pose/part_pred/block4/weights": rng.normal(0, 1, (3, 3, 3, 5)).astype(np.float32),
        "pose/part_pred/block4/biases": rng.normal(0, 1, 3).astype(np.float32),
        "extra/float64": rng.normal(0, 1, (2, 3, 7)),
        "extra/scalar": np.float32(rng.normal()),
        "extra/empty": np.zeros((0, 3), np.float32),
    }
    fixed = {
        "resnet_v1_50/conv1/BatchNorm/moving_mean": rng.normal(0, 1, 64).astype(np.float32),
        "resnet_v1_50/conv1/BatchNorm/moving_variance": rng.uniform(0.5, 1.5, 64).astype(np.float32),
        "extra/int32": rng.integers(-(2**31), 2**31, 11).astype(np.int32),
        "extra/int64": rng.integers(-(2**62), 2**62, (2, 2)).astype(np.int64),
    }
    variables = [tf.compat.v1.get_variable(n, initializer=tf.constant(v), trainable=True) for n, v in trainable.items()]
    variables += [tf.compat.v1.get_variable(n, initializer=tf.constant(v), trainable=False) for n, v in fixed.items()]
    step = tf.compat.v1.train.get_or_create_global_step()
    loss = tf.add_n([tf.reduce_sum(tf.cast(v, tf.float32) ** 2) for v in variables[: len(trainable)]])
    train = tf.compat.v1.train.MomentumOptimizer(0.01, momentum=0.9).minimize(loss, global_step=step)
    saver = tf.compat.v1.train.Saver()
    with tf.compat.v1.Session() as sess:
        sess.run(tf.compat.v1.global_variables_initializer())
        for _ in range(7):  # non-zero slots, global_step 7
            sess.run(train)
        saver.save(sess, str(folder / "snapshot"), global_step=step)
        write_values(sess, folder)


def sharded_checkpoint(folder: Path) -> None:
    """A checkpoint over two data files, one per device, as a sharded Saver writes it."""
    import tensorflow as tf

    tf.compat.v1.reset_default_graph()
    rng = np.random.default_rng(SEED + 1)
    with tf.device("/cpu:0"):
        tf.compat.v1.get_variable("pose/part_pred/block4/weights", initializer=tf.constant(rng.normal(0, 1, (3, 3, 2, 8)).astype(np.float32)))
    with tf.device("/cpu:1"):
        tf.compat.v1.get_variable("resnet_v1_50/conv1/weights", initializer=tf.constant(rng.normal(0, 1, (3, 3, 3, 8))))
        tf.compat.v1.get_variable("extra/int64", initializer=tf.constant(rng.integers(0, 2**40, 5)), trainable=False)
    saver = tf.compat.v1.train.Saver(sharded=True)
    with tf.compat.v1.Session(config=tf.compat.v1.ConfigProto(device_count={"CPU": 2})) as sess:
        sess.run(tf.compat.v1.global_variables_initializer())
        saver.save(sess, str(folder / "snapshot"), global_step=3)
        write_values(sess, folder)


def write_values(sess, folder: Path) -> None:
    """values.npz of every variable as the session holds it ('/' written '|'); the Saver's bookkeeping and graph removed."""
    import tensorflow as tf

    variables = tf.compat.v1.global_variables()
    values = sess.run(variables)
    np.savez(folder / "values.npz", **{v.op.name.replace("/", "|"): np.asarray(value) for v, value in zip(variables, values, strict=True)})
    for path in folder.iterdir():
        if path.name == "checkpoint" or path.suffix == ".meta":
            path.unlink()


def check_reader(prefix: Path) -> str:
    """iblvideo's NumPy reader against TensorFlow's own on a full-size checkpoint: the same tensors, bit for bit."""
    import time
    import types

    import tensorflow as tf

    # iblvideo's package __init__ imports PyAV, absent here; the reader itself needs NumPy only
    for name in ("iblvideo", "iblvideo.networks"):
        if name not in sys.modules:
            sys.modules[name] = package = types.ModuleType(name)
            package.__path__ = [str(ROOT / "src" / name.replace(".", "/"))]
    from iblvideo.networks.tf_checkpoint import read_checkpoint

    start = time.perf_counter()
    ours = read_checkpoint(prefix)
    seconds = time.perf_counter() - start
    reader = tf.train.load_checkpoint(str(prefix))
    network = {n for n in reader.get_variable_to_shape_map() if "/Momentum" not in n and n != "global_step"}
    assert set(ours) == network
    for name in network:
        theirs = reader.get_tensor(name)
        assert theirs.dtype == ours[name].dtype and np.array_equal(theirs, ours[name]), name
    size = sum(a.nbytes for a in ours.values()) / 1e6
    return f"{len(reader.get_variable_to_shape_map())} tensors saved, {len(ours)} read ({size:.1f} MB) in {seconds:.2f} s, equal to TensorFlow's"


def write_variables(variables: dict[str, dict]) -> None:
    """variables.json: the seed and one line per variable."""
    lines = ",\n".join(f"  {json.dumps(name)}: {json.dumps(entry)}" for name, entry in variables.items())
    (OUT / "variables.json").write_text(f'{{\n "seed": {SEED},\n "variables": {{\n{lines}\n }}\n}}\n')


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in PACKAGES:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found[package] = importlib.metadata.version(package)
    return found


def main() -> None:
    work = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="dlc-ref-"))
    (OUT / "frames").mkdir(parents=True, exist_ok=True)
    import cv2

    frames = {}
    for width, height in SIZES:
        frames[f"{width}x{height}"] = grey = frame(width, height)
        cv2.imwrite(str(OUT / "frames" / f"{width}x{height}.png"), grey)
        assert np.array_equal(cv2.imread(str(OUT / "frames" / f"{width}x{height}.png"), cv2.IMREAD_UNCHANGED), grey)
    predictions: dict[str, np.ndarray] = {}
    variables: dict[str, dict] = {}
    for joints in JOINTS:
        folder = work / f"joints{joints}"
        train_cfg, test_cfg = write_pose_cfgs(joints, folder)
        prefix, shapes = save_snapshot(train_cfg, folder / "train")
        for name, values in seeded_weights(shapes).items():
            variables.setdefault(name if not name.startswith("pose/") else f"j{joints}:{name}", digest(values))
        for key, value in predict(test_cfg, prefix, frames).items():
            predictions[f"j{joints}_{key}"] = value
        for part in ("train", "test"):
            (OUT / f"joints{joints}" / part).mkdir(parents=True, exist_ok=True)
            shutil.copy(folder / part / "pose_cfg.yaml", OUT / f"joints{joints}" / part / "pose_cfg.yaml")
        print(f"{joints} joints: {prefix}: {check_reader(prefix)}", flush=True)
    np.savez_compressed(OUT / "predictions.npz", **predictions)
    write_variables(variables)
    for name, write in (("tiny", tiny_checkpoint), ("sharded", sharded_checkpoint)):
        shutil.rmtree(OUT / name, ignore_errors=True)
        (OUT / name).mkdir()
        write(OUT / name)
    (OUT / "versions.json").write_text(json.dumps(versions(), indent=1) + "\n")
    print(f"full-size checkpoints in {work}")


if __name__ == "__main__":
    main()
