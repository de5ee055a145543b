"""IBL's cascade with Lightning Pose ensembles: every member of every role's ensemble, then Kalman smoothing.

The cascade (ROI anchors → windows → one decode pass, crops per batch) is ``iblvideo.cascade``'s;
here each stage holds an ensemble, prepares frames the way its networks were trained (full-range
luma, IBL's eye brightening), and maps Lightning Pose's model pixels back to the camera. Ensembles
are smoothed as IBL does: the pupil smoother for the eye, single-view EKS for the others.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import av
import numpy as np
import pandas as pd
import torch

from iblvideo.video.batching import BATCH_SIZE
from iblvideo.cameras import Camera
from iblvideo.tracking.cascade import Cascade, Consumer, Sample
from iblvideo.tracking.crops import View, Window, cut, from_window
from iblvideo.errors import IblVideoError
from iblvideo.tracking.run import dlc_path
from iblvideo.tracking.run import track as track_video
from iblvideo.video.reader import VideoReader
from iblvideo.tracking.eks import PUPIL_ORDER, single_view_s, smooth_pupil, smooth_single_view
from iblvideo.networks.lightning_pose import CONTEXT, LPModel, Stream, load_lp_model
from iblvideo.tracking.lp_networks import ROLES, member_dirs, networks_dir

log = logging.getLogger(__name__)

# IBL scales the paw ensembles' posterior variances so that their square root tracks the pixel
# error on a labeled test set
PAW_VARIANCE_INFLATION = 100.0


@dataclass(frozen=True)
class WholeFrame:
    """What the cascade reads of a stage's network to size a whole-frame window: no input size, so the
    window is the frame itself, stretched to each member's input as in IBL's pipeline."""

    input_size: None = None


@dataclass(frozen=True)
class Ensemble:
    """The networks of one role and how their frames are prepared."""

    role: str
    members: tuple[LPModel, ...]
    brightness: float = 1.0
    network: WholeFrame = WholeFrame()


def limited_range(path: Path) -> bool:
    """Whether the video's luma is limited range (16–235), as encoders write unless told otherwise."""
    with av.open(str(path)) as container:
        context = container.streams.video[0].codec_context
        return context.color_range != 2 and not context.format.name.startswith("yuvj")


class LPCascade(Cascade):
    """The cascade with a Lightning Pose network set: each stage an ensemble, smoothed after tracking."""

    batches_in_parallel = False  # context networks read each batch after the one before

    def __init__(self, root: Path, camera: Camera, device: str = "cpu", limited: bool = True):
        self._loaded: dict[Path, LPModel] = {}  # the body camera's ROI and tail stage share networks
        self.limited = limited
        super().__init__(root, camera, device)

    def _provides(self, weights: Path, role: str) -> bool:
        return role in ROLES

    def _load(self, weights: Path, role: str, points: tuple[str, ...]) -> Ensemble:
        members = []
        for folder in member_dirs(weights, role):
            if folder not in self._loaded:
                self._loaded[folder] = load_lp_model(folder, self.device)
            model = self._loaded[folder]
            missing = [p for p in points if p not in model.keypoints]
            if missing:
                raise IblVideoError(folder, f"the {role!r} network does not track {', '.join(missing)}")
            members.append(model)
        log.debug("%s: %d network(s) for %s", self.camera.label, len(members), role)
        return Ensemble(role, tuple(members), ROLES[role].brightness)

    def _prepare(self, frames: torch.Tensor, ensemble: Ensemble, window: Window, size: tuple[int, int]) -> torch.Tensor:
        """The crops (N, 1, h, w) in [0, 1] a member of ``ensemble`` sees."""
        crops = cut(frames, self.view, window, size)
        if self.limited:  # the networks learnt from RGB decodes, which stretch limited-range luma
            crops = (crops - 16.0) * (255.0 / 219.0)
        return (crops / 255.0 * ensemble.brightness).clamp_(0.0, 1.0)

    def _to_camera(self, xy: np.ndarray, window: Window, size: tuple[int, int], columns: list[int]) -> np.ndarray:
        return to_camera(xy[:, columns], self.view, window, size)

    def _track(self, ensemble: Ensemble, frames: torch.Tensor, window: Window, points: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        crops: dict[tuple[int, int], torch.Tensor] = {}  # members trained at one size share their crops
        for member, stream, track in zip(ensemble.members, self._streams[ensemble.role], self._tracks[ensemble.role]):
            if member.input_size not in crops:
                crops[member.input_size] = self._prepare(frames, ensemble, window, member.input_size)
            track.append(stream.push(crops[member.input_size]))
        # the tracks are gathered in self._tracks: context networks answer two frames late
        return np.full((len(frames), len(points), 2), np.nan), np.zeros((len(frames), len(points)))

    def windows(self, reader: VideoReader, batch_size: int = 500, sample: Sample | None = None) -> dict[str, Window]:
        # all sampled frames (at most 100) in one batch: a context ROI network sees them as one sequence, as in IBL
        return super().windows(reader, batch_size, sample)

    def track_sample(self, sample: Sample, windows: dict[str, Window], points: Iterable[str] | None = None,
                     batch_size: int = 500) -> pd.DataFrame:
        # as for the ROI network: the sampled frames in one sequence, each ensemble's median, unsmoothed
        return super().track_sample(sample, windows, points, batch_size)

    def _sampled(self, ensemble: Ensemble, frames: torch.Tensor, window: Window, points: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Camera pixels and likelihoods of ``points`` in sampled frames: the ensemble's median."""
        xy, likelihood = [], []
        for member in ensemble.members:
            crops = self._prepare(frames, ensemble, window, member.input_size)
            if len(frames) < CONTEXT:  # a short video samples few frames: each is read on its own
                got = [member.single(crops)]
            else:
                stream = member.stream()
                got = [stream.push(crops), stream.close()]
            columns = [member.keypoints.index(p) for p in points]
            xy.append(self._to_camera(np.concatenate([g[0] for g in got]), window, member.input_size, columns))
            likelihood.append(np.concatenate([g[1] for g in got])[:, columns])
        return np.median(xy, axis=0), np.median(likelihood, axis=0).astype(np.float64)

    def run(self, reader: VideoReader, windows: dict[str, Window], batch_size: int = BATCH_SIZE,
            consumers: Iterable[Consumer] = ()) -> pd.DataFrame:
        """Every member of every stage on every frame, then each ensemble smoothed: IBL's Lightning Pose table."""
        self._streams: dict[str, list[Stream]] = {s.role: [m.stream() for m in self.models[s.role].members] for s in self.stages}
        self._tracks: dict[str, list[list[tuple[np.ndarray, np.ndarray]]]] = {role: [[] for _ in streams] for role, streams in self._streams.items()}
        super().run(reader, windows, batch_size, consumers)
        tables = []
        for stage in self.stages:
            ensemble = self.models[stage.role]
            xy, likelihood = [], []
            for member, stream, track in zip(ensemble.members, self._streams[stage.role], self._tracks[stage.role]):
                track.append(stream.close())
                columns = [member.keypoints.index(p) for p in stage.points]
                xy.append(self._to_camera(np.concatenate([t[0] for t in track]), windows[stage.role], member.input_size, columns))
                likelihood.append(np.concatenate([t[1] for t in track])[:, columns].astype(np.float64))
            tables.append(smooth_stage(stage.role, stage.points, np.array(xy), np.array(likelihood), reader.info.fps))
        return pd.concat(tables, axis=1)


def to_camera(xy: np.ndarray, view: View, window: Window, size: tuple[int, int]) -> np.ndarray:
    """Lightning Pose model pixels (N, K, 2) of a crop of ``window`` resized to ``size`` → camera pixels."""
    # Lightning Pose maps model pixels to the crop's pixels by multiplication (x · W / w), the map its
    # networks learnt; in the pixel-centre convention of crops.from_window that is a shift of half a
    # model pixel less half a crop pixel
    crop_w, crop_h = window.w / view.scale, window.h / view.scale
    x = xy[..., 0] + 0.5 * size[0] / crop_w - 0.5
    y = xy[..., 1] + 0.5 * size[1] / crop_h - 0.5
    return np.stack(view.to_camera(*from_window(x, y, window, size)), axis=-1)


def smooth_stage(role: str, points: tuple[str, ...], xy: np.ndarray, likelihood: np.ndarray, fps: float) -> pd.DataFrame:
    """One stage's columns from its members' (M, T, P, 2) tracks: a lone network's as they are, an ensemble's smoothed."""
    if len(xy) == 1:
        return pd.DataFrame({f"{p}_{field}": values for k, p in enumerate(points)
                             for field, values in (("x", xy[0, :, k, 0]), ("y", xy[0, :, k, 1]), ("likelihood", likelihood[0, :, k]))})
    if role == "eye":
        order = [points.index(p) for p in PUPIL_ORDER]
        return smooth_pupil(xy[..., order, 0], xy[..., order, 1], likelihood[..., order])
    table = smooth_single_view(points, xy[..., 0], xy[..., 1], likelihood, single_view_s(fps))
    if role == "paws":
        variances = [c for c in table.columns if c.endswith("_posterior_var")]
        table[variances] *= PAW_VARIANCE_INFLATION
    return table


def lightning_pose_path(video: Path, camera: Camera) -> Path:
    """``<session>/alf/_ibl_<cam>Camera.lightningPose.pqt``, else beside the video."""
    return dlc_path(video, camera).with_name(f"_ibl_{camera.label}.lightningPose.pqt")


def lightning_pose(video: str | Path, networks: str | Path | None = None, device: str = "cpu", batch_size: int = BATCH_SIZE,
                   force: bool = False, camera: str | None = None) -> Path:
    """Track ``video`` with IBL's Lightning Pose ensembles; returns the path of its ``.lightningPose.pqt``.

    ``networks``: a network set folder or the URL of its zip (default: ``$IBLVIDEO_LP_NETWORKS``, else
    IBL's ``networks_v2.2``). An existing output is kept unless ``force``.
    """
    def cascade_for(cam: Camera, reader: VideoReader) -> tuple[LPCascade, dict]:
        root = networks_dir(networks)
        cascade = LPCascade(root, cam, device, limited=limited_range(reader.path))
        ensembles = {role: [m.path.name for m in ensemble.members] for role, ensemble in cascade.models.items()}
        return cascade, {"tracker": "lightning-pose", "networks": str(root), "ensembles": ensembles}

    return track_video(video, lightning_pose_path, cascade_for, device, batch_size, force, camera)
