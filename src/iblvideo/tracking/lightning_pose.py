"""The ``lightning-pose`` tracker: IBL's Lightning Pose network sets in IBL's cascade roles, every member
of every role's ensemble, then Kalman smoothing.

Each stage holds an ensemble, prepares frames the way its networks were trained (full-range luma,
IBL's eye brightening), and maps Lightning Pose's model pixels back to the camera. Context networks
read each batch after the one before, so batches are tracked in order. Ensembles are smoothed as
IBL does: the pupil smoother for the eye, single-view EKS for the others.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch

from iblvideo.cameras import Camera
from iblvideo.errors import IblVideoError
from iblvideo.networks.lightning_pose import CONTEXT, LPModel, load_lp_model
from iblvideo.tracking.cascade import torch_device
from iblvideo.tracking.crops import View, Window, cut, from_window
from iblvideo.tracking.eks import PUPIL_ORDER, single_view_s, smooth_pupil, smooth_single_view
from iblvideo.tracking.lp_networks import ROLES, member_dirs, networks_dir
from iblvideo.tracking.plan import plan_for
from iblvideo.tracking.tracker import Detections
from iblvideo.tracks import PoseTracks, concat_points
from iblvideo.video.reader import VideoReader

log = logging.getLogger(__name__)

# IBL scales the paw ensembles' posterior variances so that their square root tracks the pixel
# error on a labeled test set
PAW_VARIANCE_INFLATION = 100.0


@dataclass(frozen=True)
class Ensemble:
    """The networks of one role and how their frames are prepared."""

    role: str
    members: tuple[LPModel, ...]
    brightness: float = 1.0


def limited_range(path: Path) -> bool:
    """Whether the video's luma is limited range (16–235), as encoders write unless told otherwise."""
    with av.open(str(path)) as container:
        context = container.streams.video[0].codec_context
        return context.color_range != 2 and not (context.pix_fmt or "").startswith("yuvj")


class LightningPoseTracker:
    """A Lightning Pose network set for one camera: each stage an ensemble, smoothed after tracking."""

    def __init__(self, root: Path, camera: Camera, device: str = "cpu", limited: bool = True):
        self.camera, self.view, self.plan, self.device = camera, View.of(camera), plan_for(camera), torch_device(device)
        self.limited = limited
        loaded: dict[Path, LPModel] = {}  # the body camera's ROI and tail stage share networks
        # IBL's sets have no network that refines another's points
        self.stages = tuple(stage for stage in self.plan.stages if stage.role in ROLES)
        self.ensembles = {self.plan.roi: self._load(root, self.plan.roi, self.plan.anchors, loaded)}
        self.ensembles.update((stage.role, self._load(root, stage.role, stage.points, loaded)) for stage in self.stages)
        ensembles = {s.role: [m.path.name for m in self.ensembles[s.role].members] for s in self.stages}
        version = re.search(r"_v(\d+(?:\.\d+)*)$", root.name)
        self.provenance: dict[str, Any] = {
            "weights": root.name, "weights_version": version.group(1) if version else "",
            "weights_description": "Lightning Pose ensembles, Kalman-smoothed: " + ", ".join(f"{role} {len(m)}" for role, m in ensembles.items()),
            "networks": str(root), "ensembles": ensembles,
        }

    def _load(self, root: Path, role: str, points: tuple[str, ...], loaded: dict[Path, LPModel]) -> Ensemble:
        members = []
        for folder in member_dirs(root, role):
            if folder not in loaded:
                loaded[folder] = load_lp_model(folder, self.device)
            missing = [p for p in points if p not in loaded[folder].keypoints]
            if missing:
                raise IblVideoError(folder, f"the {role!r} network does not track {', '.join(missing)}")
            members.append(loaded[folder])
        log.debug("%s: %d network(s) for %s", self.camera.label, len(members), role)
        return Ensemble(role, tuple(members), ROLES[role].brightness)

    def input_size(self, role: str) -> None:
        """None: a whole-frame window is the frame itself, stretched to each member's input as in IBL's pipeline."""
        return None

    def prepare(self, frames: torch.Tensor, ensemble: Ensemble, window: Window, size: tuple[int, int]) -> torch.Tensor:
        """The crops (N, 1, h, w) in [0, 1] a member of ``ensemble`` sees."""
        crops = cut(frames, self.view, window, size)
        if self.limited:  # the networks learnt from RGB decodes, which stretch limited-range luma
            crops = (crops - 16.0) * (255.0 / 219.0)
        return (crops / 255.0 * ensemble.brightness).clamp_(0.0, 1.0)

    def detect(self, role: str, frames: tuple[np.ndarray, ...], window: Window, points: tuple[str, ...]) -> Detections:
        """The ensemble's median on the sampled frames, unsmoothed; a context network reads them as one
        sequence, as in IBL (a short video samples few frames: each is read on its own)."""
        ensemble = self.ensembles[role]
        batch = torch.from_numpy(np.stack(frames)).to(self.device)
        xy, likelihood = [], []
        for member in ensemble.members:
            crops = self.prepare(batch, ensemble, window, member.input_size)
            if len(batch) < CONTEXT:
                got = [member.single(crops)]
            else:
                stream = member.stream()
                got = [stream.push(crops), stream.close()]
            columns = [member.keypoints.index(p) for p in points]
            xy.append(to_camera(np.concatenate([g[0] for g in got])[:, columns], self.view, window, member.input_size))
            likelihood.append(np.concatenate([g[1] for g in got])[:, columns])
        return np.median(xy, axis=0), np.median(likelihood, axis=0).astype(np.float64)

    def start(self, windows: dict[str, Window], n_frames: int, fps: float) -> _Pass:
        return _Pass(self, windows, fps)


class _Pass:
    """Every member of every stage on each batch in order; the stages' ensembles smoothed at the end."""

    def __init__(self, tracker: LightningPoseTracker, windows: dict[str, Window], fps: float):
        self.tracker, self.windows, self.fps = tracker, windows, fps
        self.streams = {s.role: [m.stream() for m in tracker.ensembles[s.role].members] for s in tracker.stages}
        # per role and member, the (model pixels, confidences) of each batch: context networks answer two frames late
        self.found: dict[str, list[list[tuple[np.ndarray, np.ndarray]]]] = {role: [[] for _ in s] for role, s in self.streams.items()}

    def __enter__(self) -> _Pass:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def push(self, first: int, frames: np.ndarray, done: Callable[[], None]) -> None:
        batch = torch.from_numpy(frames).to(self.tracker.device)
        for stage in self.tracker.stages:
            ensemble = self.tracker.ensembles[stage.role]
            crops: dict[tuple[int, int], torch.Tensor] = {}  # members trained at one size share their crops
            for member, stream, found in zip(ensemble.members, self.streams[stage.role], self.found[stage.role], strict=True):
                if member.input_size not in crops:
                    crops[member.input_size] = self.tracker.prepare(batch, ensemble, self.windows[stage.role], member.input_size)
                found.append(stream.push(crops[member.input_size]))
        done()

    def finish(self) -> PoseTracks:
        tracker, parts = self.tracker, []
        for stage in tracker.stages:
            xy, likelihood = [], []
            for member, stream, found in zip(tracker.ensembles[stage.role].members, self.streams[stage.role], self.found[stage.role], strict=True):
                found.append(stream.close())
                columns = [member.keypoints.index(p) for p in stage.points]
                xy.append(to_camera(np.concatenate([f[0] for f in found])[:, columns], tracker.view, self.windows[stage.role], member.input_size))
                likelihood.append(np.concatenate([f[1] for f in found])[:, columns].astype(np.float64))
            parts.append(smooth_stage(stage.role, stage.points, np.array(xy), np.array(likelihood), self.fps))
        return replace(concat_points(parts), fps=self.fps)


def to_camera(xy: np.ndarray, view: View, window: Window, size: tuple[int, int]) -> np.ndarray:
    """Lightning Pose model pixels (N, K, 2) of a crop of ``window`` resized to ``size`` → camera pixels."""
    # Lightning Pose maps model pixels to the crop's pixels by multiplication (x · W / w), the map its
    # networks learnt; in the pixel-centre convention of crops.from_window that is a shift of half a
    # model pixel less half a crop pixel
    crop_w, crop_h = window.w / view.scale, window.h / view.scale
    x = xy[..., 0] + 0.5 * size[0] / crop_w - 0.5
    y = xy[..., 1] + 0.5 * size[1] / crop_h - 0.5
    return np.stack(view.to_camera(*from_window(x, y, window, size)), axis=-1)


def smooth_stage(role: str, points: tuple[str, ...], xy: np.ndarray, likelihood: np.ndarray, fps: float) -> PoseTracks:
    """One stage's tracks from its members' (M, T, P, 2) tracks: a lone network's as they are, an ensemble's smoothed."""
    if len(xy) == 1:
        return PoseTracks(points, xy[0], likelihood[0])
    if role == "eye":
        order = [points.index(p) for p in PUPIL_ORDER]
        table = smooth_pupil(xy[..., order, 0], xy[..., order, 1], likelihood[..., order])
    else:
        table = smooth_single_view(points, xy[..., 0], xy[..., 1], likelihood, single_view_s(fps))
        if role == "paws":
            variances = [c for c in table.columns if c.endswith("_posterior_var")]
            table[variances] *= PAW_VARIANCE_INFLATION
    return PoseTracks.from_frame(table)


def build(camera: Camera, reader: VideoReader, networks: str | Path | None, device: str) -> LightningPoseTracker:
    """The tracker of the network set ``networks``: a folder or the URL of its zip (default:
    ``$IBLVIDEO_LP_NETWORKS``, else IBL's ``networks_v2.2``)."""
    return LightningPoseTracker(networks_dir(networks), camera, device, limited=limited_range(reader.path))
