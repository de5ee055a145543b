"""Train the demo weights that ship inside iblvideo, on renders of the synthetic IBL rig.

    python scripts/train_demo_weights.py [--work /tmp/iblvideo-demo-training] [--out src/iblvideo/weights_demo]
                                         [--networks ROLE ...]

1. Renders training sessions with ``iblvideo synth`` (seeds 101…; the tests use other seeds).
2. Cuts, for every network of the cascade, the window that network sees — placed from the true
   anchors with random jitter, as an imperfect ROI network would place it; for the fine paws network,
   around each paw where it was last seen, jittered as the whole-frame paws network errs — and maps
   the true points into it (the tongue network's include the spout's, tube_top and tube_bottom). A point that is not visible (blink, tongue in the mouth, paw behind the
   wheel) is NaN: the network learns an empty heatmap there, so its likelihood stays low.
3. Trains each network (or those named by ``--networks``, keeping the others in ``--out`` as they are)
   with ``iblvideo.pose`` and writes the weights set with its manifest.

These are demo weights for the synthetic rig, not for real mice.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from iblvideo.cameras import CAMERAS, Camera
from iblvideo.io.alf import TRUTH_COLLECTION, SessionPaths, raw_video_path, truth_anchors_name
from iblvideo.networks.model_dir import WEIGHTS
from iblvideo.progress import configure
from iblvideo.synth import synthesize_session
from iblvideo.tracking.crops import View, Window, cut
from iblvideo.tracking.plan import Plan, plan_for
from iblvideo.tracking.weights import MANIFEST, write_manifest
from iblvideo.training.labels import LabeledFrames
from iblvideo.training.train import Trainer, TrainSettings
from iblvideo.video.reader import VideoReader

log = logging.getLogger("iblvideo.demo_weights")

NAME = "weights_v1.3"
DESCRIPTION = ("Demo weights for iblvideo's synthetic IBL rig (iblvideo synth), trained by "
               "scripts/train_demo_weights.py. They track synthetic renders, not real mice.")
CHANGES = ("v1.3: the synthetic scene moved (head higher, wheel lower, as IBL frames the mouse, so the mean point "
           "sits inside IBL's QC box; the far paw mostly above the rim); the tongue network also tracks the spout, "
           "tube_top and tube_bottom, as IBL's does; every network retrained")
SEEDS = (101, 102, 103, 104, 105, 106)
STATIC = ("tube_top", "tube_bottom")  # the spout: its truth is the camera's anchors, the same in every frame
JITTER = 12  # canonical pixels of ROI placement error the specialised networks must tolerate
PAW_JITTER = 24  # canonical pixels the whole-frame paws network may miss a paw by
# network input size (w, h) per role: small inputs keep CPU tracking fast; whole fractions of the window
# (tongue: 160 -> 80, paws_fine: 128 -> 64) are cut as block means, cheaper than a bilinear resize
NETWORKS = {
    "roi": (160, 128),
    "eye": (80, 80),
    "nose_tip": (64, 64),
    "tongue": (80, 80),
    "paws": (128, 104),  # IBL's 128×102, padded to the network's multiple of 8
    "paws_fine": (64, 64),
    "body_roi": (160, 128),
    "tail_start": (96, 96),
}
# the networks that run on every frame are the cheapest; the ROI networks see one frame a second
BACKBONE = {"roi": "small", "body_roi": "small"}
# (heatmap stride, head stride) where not (2, 2): the side camera's per-frame networks learn heatmaps at
# stride 4, enlarged to 2 for the read-out, for a third less work; the whole-frame paws network only
# places paws_fine's windows, so its heatmaps stay at stride 4
STRIDES = {"eye": (2, 4), "nose_tip": (2, 4), "tongue": (2, 4), "paws_fine": (2, 4), "paws": (4, 4)}
# networks that learn their points as a whole: the eye doubts every pupil point once the lid touches the
# pupil, where a partly covered pupil is most easily misplaced (the truth hides each point only once the
# lid reaches it)
WHOLE = {"eye"}
ROI_POINTS = {"roi": ("pupil_top_r", "nose_tip", "tube_top", "tube_bottom"), "body_roi": ("tail_start",)}


def to_input(x: np.ndarray, y: np.ndarray, window: Window, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Canonical pixels → pixels of a window cut at ``size`` (the inverse of ``crops.from_window``)."""
    sx, sy = window.w / size[0], window.h / size[1]
    return (x - window.x0 + 0.5) / sx - 0.5, (y - window.y0 + 0.5) / sy - 0.5


def frames_to_use(truth: pd.DataFrame, camera: Camera, per_session: int, rng: np.random.Generator) -> np.ndarray:
    """Frames spread over the session, with the rare ones over-represented: a point hidden (blink, paw
    behind the wheel) or the tongue out, and every frame within two of a point appearing or vanishing,
    where telling seen from hidden is hardest."""
    n = len(truth)
    rare, edges = np.zeros(n, bool), np.zeros(n, bool)
    for point in camera.points:
        seen = truth[f"{point}_likelihood"].to_numpy() > 0
        rare |= seen if point.startswith("tongue") else ~seen
        for change in np.flatnonzero(np.diff(seen.astype(int))):
            edges[max(0, change - 1):change + 3] = True
    rare = np.flatnonzero(rare)
    common = rng.choice(n, size=min(n, per_session), replace=False)
    rare = rng.choice(rare, size=min(len(rare), per_session // 2), replace=False) if len(rare) else rare
    return np.unique(np.concatenate([common, rare, np.flatnonzero(edges)]))


def session_examples(session: Path, camera: Camera, per_session: int, rng: np.random.Generator) -> dict[str, tuple[list, list]]:
    """(images, points) per network role from one camera of one rendered session."""
    view, plan = View.of(camera), plan_for(camera)
    truth = pd.read_parquet(SessionPaths(session).truth_pose(camera.name))
    static = json.loads((session / TRUTH_COLLECTION / truth_anchors_name(camera.name)).read_text())
    # canonical positions of every point, per frame (NaN where not visible)
    canonical = {}
    for point in camera.points:
        if point not in STATIC:
            canonical[point] = np.stack(view.to_canonical(truth[f"{point}_x"].to_numpy(), truth[f"{point}_y"].to_numpy()), -1)
    for name in STATIC:
        if name in static:
            xy = np.asarray(view.to_canonical(*static[name]))
            canonical[name] = np.broadcast_to(xy, (len(truth), 2))
    # the ROI would place each window at the median of the anchor over the session
    anchors = {name: tuple(np.nanmedian(canonical[name], axis=0)) for name in plan.anchors}
    # the fine paws network's windows centre on where each paw was last seen
    last_seen = {p: pd.DataFrame(canonical[p]).ffill().bfill().to_numpy() for p in camera.points}
    chosen = frames_to_use(truth, camera, per_session, rng)
    examples: dict[str, tuple[list, list]] = {role: ([], []) for role in (plan.roi, *(s.role for s in plan.stages))}
    wanted = set(chosen.tolist())
    with VideoReader(raw_video_path(session, camera.name)) as reader:
        for index, image in reader.frames():
            if index not in wanted:
                continue
            frame = torch.from_numpy(image.copy())[None]
            seen = {p: xy[index] for p, xy in last_seen.items()}
            for role, points, window in _windows(plan, anchors, seen, view, rng):
                size = NETWORKS[role]
                image = cut(frame, view, window, size)[0, 0].round().clamp(0, 255).to(torch.uint8).numpy()
                xy = np.stack([to_input(*canonical[p][index], window, size) for p in points])
                _check_static_inside(role, points, xy, size)
                if role in WHOLE and np.isnan(xy).any():
                    xy[:] = np.nan
                examples[role][0].append(image)
                examples[role][1].append(xy)
    return examples


def _check_static_inside(role: str, points: tuple[str, ...], xy: np.ndarray, size: tuple[int, int]) -> None:
    """The spout must lie inside every window that learns it, or the network learns a point it cannot see."""
    for point, (x, y) in zip(points, xy, strict=True):
        if point in STATIC and not (0 <= x < size[0] and 0 <= y < size[1]):
            raise ValueError(f"{role}: {point} at ({x:.1f}, {y:.1f}) lies outside its {size[0]}x{size[1]} window")


def _windows(plan: Plan, anchors: dict[str, tuple[float, float]], seen: dict[str, np.ndarray], view: View, rng: np.random.Generator):
    """(role, points, window) of the ROI network and of every stage, each window's placement jittered."""
    yield plan.roi, ROI_POINTS[plan.roi], view.full_window(NETWORKS[plan.roi])
    for stage in plan.stages:
        if stage.refines:
            for point in stage.points:
                x, y = seen[point] + rng.uniform(-PAW_JITTER, PAW_JITTER, 2)
                yield stage.role, stage.points, stage.window_at(x, y, view)
            continue
        shifted = {name: (x + rng.uniform(-JITTER, JITTER), y + rng.uniform(-JITTER, JITTER)) for name, (x, y) in anchors.items()}
        yield stage.role, stage.points, stage.window(shifted, view, NETWORKS[stage.role])


def labeled_frames(role: str, points: tuple[str, ...], images: list, xy: list, work: Path) -> LabeledFrames:
    images, xy = np.stack(images), np.stack(xy).astype(np.float32)
    digest = hashlib.sha256(images.tobytes() + xy.tobytes()).hexdigest()
    names = tuple(f"{role}/{i:05d}.png" for i in range(len(images)))
    return LabeledFrames(work / "labels" / role, points, names, images, xy, digest)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/iblvideo-demo-training"))
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "src" / "iblvideo" / "weights_demo")
    parser.add_argument("--seconds", type=float, default=12.0, help="length of each training session")
    parser.add_argument("--frames", type=int, default=160, help="frames per camera and session")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--networks", nargs="+", choices=list(NETWORKS), default=list(NETWORKS),
                        help="train only these (default: all); the others are kept from --out")
    args = parser.parse_args()
    configure()
    rng = np.random.default_rng(0)
    torch.manual_seed(0)

    examples: dict[str, tuple[list, list]] = {}
    for seed in SEEDS:
        session = args.work / "sessions" / f"synth_mouse_{seed}" / "2026-01-01" / "001"
        if not session.exists():
            session = synthesize_session(args.work / "sessions", seconds=args.seconds, seed=seed)
        for name in ("left", "right", "body"):
            for role, (images, xy) in session_examples(session, CAMERAS[name], args.frames, rng).items():
                examples.setdefault(role, ([], []))
                examples[role][0].extend(images)
                examples[role][1].extend(xy)

    kept = {} if set(args.networks) == set(NETWORKS) else {"kept_from": json.loads((args.out / MANIFEST).read_text())["name"],
                                                            "trained_now": args.networks}
    networks = {}
    seconds = 0.0  # spent training, as each model's history records it (a model already trained counts too)
    for role, size in NETWORKS.items():
        plan = next(p for p in (plan_for(CAMERAS["left"]), plan_for(CAMERAS["body"])) if role == p.roi or role in [s.role for s in p.stages])
        points = ROI_POINTS.get(role) or next(s.points for s in plan.stages if s.role == role)
        networks[role] = {"path": role, "keypoints": list(points), "input_size": list(size)}
        if role not in args.networks:
            continue
        frames = labeled_frames(role, points, *examples[role], args.work)
        log.info("%s: %d examples of %s", role, len(frames.images), ", ".join(points))
        backbone = BACKBONE.get(role, "tiny")
        heatmap_stride, head_stride = STRIDES.get(role, (2, 2))
        settings = TrainSettings(backbone=backbone, input_size=size, epochs=args.epochs, batch_size=32, learning_rate=2e-3,
                                 head_channels=32 if backbone == "small" else 16, heatmap_stride=heatmap_stride,
                                 head_stride=head_stride, empty_means_absent=True, seed=0)
        model_dir = args.work / "models" / role
        Trainer(frames, model_dir, settings, args.device).run()
        seconds += sum(epoch.get("seconds", 0.0) for epoch in json.loads((model_dir / "config.json").read_text())["history"])
        _export(model_dir, args.out / role)
    write_manifest(args.out, NAME, networks, description=DESCRIPTION, changes=CHANGES, trained_on=f"iblvideo synth seeds {list(SEEDS)}, {args.seconds:g} s each",
                   training_seconds=round(seconds), **kept)
    log.info("weights set written to %s", args.out)


def _export(model_dir: Path, target: Path) -> None:
    """Copy a trained model's config and its weights in half precision (they load back into float32)."""
    from safetensors.torch import load_file, save_file

    target.mkdir(parents=True, exist_ok=True)
    (target / "config.json").write_text((model_dir / "config.json").read_text())
    state = load_file(str(model_dir / WEIGHTS))
    save_file({k: v.half() if v.is_floating_point() else v for k, v in state.items()}, str(target / WEIGHTS))


if __name__ == "__main__":
    main()
