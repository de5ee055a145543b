"""How far IBL's re-encoding of every crop moves DeepLabCut's points (what ``dlc_cascade`` leaves out).

    python benchmarks/dlc_reencoding.py [--seconds 2] [--seed 0] [--out FIGURES.json]

IBL's pipeline (iblvideo 2.x) cut each network's crop with ffmpeg into a new libx264 video before
DeepLabCut read it: crf 11 for the nose, eye and tongue crops; the eye's then brightened by colorlevels
into another video at libx264's default crf 23; the paws' frame scaled to 128×102 at crf 23.
``dlc_cascade`` cuts its crops from the decoded frames instead. This script renders a synthetic left
camera video, cuts IBL's windows around the synthetic mouse's true anchors, encodes the crops as IBL
did (libx264, preset medium as ffmpeg defaults, yuv420p) and runs full-width seeded ResNet-50
DeepLabCut networks (``benchmarks/dlc_reference.py``'s seeded weights; not trained networks: their
score maps are smooth random fields, so this is a proxy for how a network's argmax answers small
changes of its input) on both, before and after DeepLabCut's median filter. Prints the figures: the
grey-level change of the inputs, and the displacement of every joint in left-camera pixels.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

from iblvideo.networks.dlc_resnet import DLCConfig, DLCModel, build_network, load_tf_tensors, tf_shape, tf_tensors
from iblvideo.synth import synthesize_session
from iblvideo.tracking import dlc_cascade
from iblvideo.tracking.dlc_cascade import SIDE, Window, median_filter, predict, scaled
from iblvideo.video.reader import VideoReader

ROOT = Path(__file__).resolve().parents[1]
JOINTS = {"nose_tip": 1, "eye": 4, "paws": 2, "tongue": 4}
CRF = {"nose_tip": (11,), "eye": (11, 23), "paws": (23,), "tongue": (11,)}  # each encode IBL ran, in order


def reference_script():
    spec = importlib.util.spec_from_file_location("dlc_reference", ROOT / "benchmarks" / "dlc_reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def seeded_model(joints: int, seed: int) -> DLCModel:
    config = DLCConfig("resnet_50", tuple(f"j{i}" for i in range(joints)), 8.0, 7.2801, (123.68, 116.779, 103.939))
    network = build_network(config)
    shapes = {name: tf_shape(t, kernel) for name, t, kernel in tf_tensors(network)}
    load_tf_tensors(network, reference_script().seeded_weights(shapes, seed), Path("seeded"))
    return DLCModel(Path("seeded"), config, network)


def luma(frame: av.VideoFrame) -> np.ndarray:
    plane = frame.planes[0]
    return np.frombuffer(plane, np.uint8).reshape(frame.height, plane.line_size)[:, :frame.width].copy()


def encoded(frames: np.ndarray, crf: int, folder: Path) -> np.ndarray:
    """Luma frames through libx264 at ``crf`` (yuv420p, neutral chroma) and back."""
    path = folder / f"crop{crf}.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(60))
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.options = {"crf": str(crf), "preset": "medium"}
        for image in frames:
            out.mux(stream.encode(dlc_cascade.grey_yuv(image)))
        out.mux(stream.encode(None))
    with av.open(str(path)) as container:
        return np.stack([luma(f) for f in container.decode(video=0)])


def brightened_luma(frames: np.ndarray) -> np.ndarray:
    """The luma IBL's colorlevels pass wrote (before its encode): the brightened grey, back to limited range."""
    ramp = dlc_cascade.grey_yuv(np.tile(np.arange(256, dtype=np.uint8), (2, 1))).reformat(format="rgb24")
    table = luma(dlc_cascade.ffmpeg_filter(ramp, [("colorlevels", dlc_cascade.EYE_LEVELS), ("format", "yuv420p")]))[0]
    return table[frames]


def summary(values: np.ndarray) -> dict[str, float]:
    return {"median": float(np.median(values)), "p95": float(np.percentile(values, 95)), "max": float(values.max()),
            "over_1px": float((values > 1).mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="also write the figures here, as JSON")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    folder = Path(tempfile.mkdtemp())
    session = synthesize_session(folder, cameras=("left",), seconds=args.seconds, seed=args.seed)
    with VideoReader(session / "raw_video_data" / "_iblrig_leftCamera.raw.mp4") as reader:
        frames = np.stack([f for _, f in reader.frames()])
    truth = json.loads((session / "truth" / "_ibl_leftCamera.anchors.json").read_text())
    anchors = {"nose_tip": truth["nose_rest"], "eye": truth["eye_centre"],
               "tongue": np.mean([truth["tube_top"], truth["tube_bottom"]], axis=0)}
    results: dict[str, dict] = {"frames": len(frames), "seed": args.seed, "av": av.__version__,
                                "libavcodec": ".".join(map(str, av.library_versions["libavcodec"])), "networks": {}}
    for network in SIDE:
        label = network.label
        if network.crop is None:
            crops = np.stack([scaled(f, network.scaled_to) for f in frames])
        else:
            (w, h, dx, dy), (x, y) = network.crop, anchors[label]
            x0, y0 = Window(w, h, int(x) - dx, int(y) - dy, (1280, 1024)).origin
            crops = frames[:, y0:y0 + h, x0:x0 + w]
        ours = dlc_cascade.DLCTracker.inputs(crops, network.brightened)
        ibl = encoded(crops, CRF[label][0], folder)
        if network.brightened:  # colorlevels, then libx264 again at its default crf; DeepLabCut reads it as is
            ibl = dlc_cascade.rgb_of_luma()[encoded(brightened_luma(ibl), CRF[label][1], folder)]
        else:
            ibl = dlc_cascade.rgb_of_luma()[ibl]
        model = seeded_model(JOINTS[label], args.seed)
        (xy_a, p_a), (xy_b, p_b) = predict(model, ours), predict(model, ibl)
        moved = np.linalg.norm(xy_a - xy_b, axis=-1) * network.downsampling  # left-camera pixels
        moved_filtered = np.linalg.norm(median_filter(xy_a) - median_filter(xy_b), axis=-1) * network.downsampling
        grey = np.abs(ours.astype(int) - ibl.astype(int))
        results["networks"][label] = {
            "crf": CRF[label], "input_grey_change": {"mean": float(grey.mean()), "p99": float(np.percentile(grey, 99)), "max": int(grey.max())},
            "displacement_px": summary(moved), "displacement_filtered_px": summary(moved_filtered),
            "likelihood_change": {"median": float(np.median(np.abs(p_a - p_b))), "max": float(np.abs(p_a - p_b).max())},
        }
        print(label, json.dumps(results["networks"][label]))
    if args.out:
        args.out.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
