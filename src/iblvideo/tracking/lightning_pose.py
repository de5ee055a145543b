"""The ``lightning-pose`` tracker: IBL's Lightning Pose network sets run as IBL's pipeline runs them.

The set's profile (``lp_networks``) says which networks a camera has. The ROI network (the first of
its folders, as IBL takes it) looks at IBL's sample of the video and places the cropped networks'
windows (``lp_crops``); then, in one decode pass, every member of every network sees its frames as
DALI prepares them, and the table is assembled as IBL assembles it (``lp_table``). Context networks
read each batch after the one before, so batches are tracked in order.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from iblvideo.cameras import Camera
from iblvideo.errors import BadArgument, IblVideoError
from iblvideo.networks.lightning_pose import CONTEXT, LPModel, load_lp_model
from iblvideo.tracking import cascade, lp_crops
from iblvideo.tracking.download import unpacked_sha256
from iblvideo.tracking.eks import PUPIL_ORDER
from iblvideo.tracking.lp_crops import Window, prepare
from iblvideo.tracking.lp_networks import Network, networks_dir, profile_for
from iblvideo.tracking.lp_table import NetworkOutput, pose_table
from iblvideo.tracking.tracker import MissingAnchor, Placed
from iblvideo.tracks import PoseTracks
from iblvideo.video.batching import BATCH_SIZE
from iblvideo.video.reader import VideoReader

log = logging.getLogger(__name__)

ROI_SAMPLINGS = ("ibl", "fast")  # IBL's evenly spread sample, or frames near keyframes (cheaper to decode)
CHUNK = 8  # frames made float at a time: a whole 1280×1024 frame in float is four times its size


@dataclass(frozen=True)
class Ensemble:
    """A network of the set and its members, loaded."""

    network: Network
    members: tuple[LPModel, ...]


class LightningPoseTracker:
    """A Lightning Pose network set for one camera, run as IBL runs it."""

    def __init__(self, root: Path, camera: Camera, device: str = "cpu", ibl_exact: bool = False, roi_sampling: str = "ibl",
                 any_set: bool = False):
        if roi_sampling not in ROI_SAMPLINGS:
            raise BadArgument(None, f"unknown ROI sampling {roi_sampling!r}; expected one of {', '.join(ROI_SAMPLINGS)}")
        self.camera, self.device, self.ibl_exact, self.roi_sampling = camera, cascade.torch_device(device), ibl_exact, roi_sampling
        self.profile = profile_for(root, any_set)
        self.flip, self.scale = camera.name == "right", 2 if camera.name == "right" else 1
        roi, *networks = self.profile.networks(camera.name)
        loaded: dict[Path, LPModel] = {}  # the body camera's ROI network is its tail network
        anchors = {name for network in networks if network.crop for name in network.crop.anchors}
        # IBL runs the first ROI folder only; a camera without cropped networks needs none
        self.roi = self._load(root, roi, loaded, anchors, first_only=True) if anchors else None
        # the pupil smoother reads the four pupil points, whatever else the eye network tracks
        self.ensembles = tuple(self._load(root, network, loaded, set(PUPIL_ORDER) if network.smoother == "pupil" else None) for network in networks)
        self.provenance: dict[str, Any] = {
            "weights": root.name, "weights_version": self.profile.name.rpartition("_v")[2], "network_set": self.profile.name,
            "network_set_sha256": unpacked_sha256(root), "networks": str(root),
            "weights_description": f"IBL's Lightning Pose ensembles ({self.profile.name}), smoothed as eks {self.profile.eks}: "
                                   + ", ".join(f"{e.network.label} {len(e.members)}" for e in self.ensembles),
            "ensembles": {e.network.label: [m.path.name for m in e.members] for e in self.ensembles},
            "roi_network": self.roi.members[0].path.name if self.roi else None,
            "mode": "ibl-exact" if ibl_exact else "corrected", "eks": self.profile.eks, "roi_sampling": roi_sampling,
        }

    def _load(self, root: Path, network: Network, loaded: dict[Path, LPModel], needs: set[str] | None = None,
              first_only: bool = False) -> Ensemble:
        folders = self.profile.members(root, network)[:1 if first_only else None]
        members = []
        for folder in folders:
            if folder not in loaded:
                loaded[folder] = load_lp_model(folder, self.device)
            missing = sorted((needs or set()) - set(loaded[folder].keypoints))
            if missing:
                raise IblVideoError(folder, f"the {network.label} network does not track {', '.join(missing)}")
            members.append(loaded[folder])
        log.debug("%s: %d network(s) for %s", self.camera.label, len(members), network.label)
        return Ensemble(network, tuple(members))

    @property
    def frame(self) -> tuple[int, int]:
        return self.camera.width, self.camera.height

    def inputs(self, frames: torch.Tensor, window: Window, brightness: float, size: tuple[int, int]) -> torch.Tensor:
        """Grey frames (N, H, W) as a network of input ``size`` sees ``window`` of them, a few frames at a time."""
        return torch.cat([prepare(lp_crops.network_frames(chunk, self.flip), window, brightness, size) for chunk in frames.split(CHUNK)])

    def place(self, reader: VideoReader) -> Placed[Window]:
        """Every network's window, from the ROI network on IBL's sample of the video."""
        if self.roi is None:  # no network cuts a window
            return Placed(self, reader, {e.network.label: Window.whole(self.frame) for e in self.ensembles}, 0)
        indices = self._sample(reader)
        model = self.roi.members[0]
        xy, likelihood = self._roi_detections(reader, indices)
        try:
            windows = lp_crops.place([e.network for e in self.ensembles], model.keypoints, xy[..., 0], xy[..., 1], likelihood, self.scale, self.frame)
        except MissingAnchor as missing:
            raise missing.error(reader.path, len(indices), self.camera.name) from None
        lp_crops.warn_clamped(windows, reader.path.name)
        log.debug("%s: windows %s", reader.path.name, {k: w.as_whxy() for k, w in windows.items()})
        return Placed(self, reader, windows, len(indices))

    def _sample(self, reader: VideoReader) -> np.ndarray:
        n, fps = reader.info.n_frames, reader.info.fps
        return lp_crops.sample_indices(n, fps) if self.roi_sampling == "ibl" else cascade.sample_indices(n, fps, reader.keyframes)

    def _roi_detections(self, reader: VideoReader, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The ROI network's frame pixels (N, K, 2) and likelihoods (N, K) on the frames ``indices``
        (repeats kept, as in IBL's subsampled video), read in order as one sequence."""
        assert self.roi is not None
        model = self.roi.members[0]
        window = Window.whole(self.frame)
        got, batch = [], []
        stream = model.stream() if len(indices) >= CONTEXT else None
        decoded = reader.sample(indices)
        index, frame = next(decoded)
        for position, wanted in enumerate(indices, 1):
            while index != wanted:
                index, frame = next(decoded)
            batch.append(frame)
            if len(batch) == BATCH_SIZE or position == len(indices):
                crops = self.inputs(torch.from_numpy(np.stack(batch)).to(self.device), window, self.roi.network.brightness, model.input_size)
                got.append(stream.push(crops) if stream else model.single(crops))
                batch = []
        if stream:
            got.append(stream.close())
        return in_window(np.concatenate([g[0] for g in got]), window, model), np.concatenate([g[1] for g in got])

    def start(self, placed: Placed[Window], n_frames: int, fps: float) -> _Pass:
        return _Pass(self, placed.windows, fps)


class _Pass:
    """Every member of every network on each batch, in order; the table assembled at the end."""

    def __init__(self, tracker: LightningPoseTracker, windows: dict[str, Window], fps: float):
        self.tracker, self.windows, self.fps = tracker, windows, fps
        self.streams = {e.network.label: [m.stream() for m in e.members] for e in tracker.ensembles}
        # per network and member, the (model pixels, confidences) of each batch: context networks answer two frames late
        self.found: dict[str, list[list[tuple[np.ndarray, np.ndarray]]]] = {label: [[] for _ in s] for label, s in self.streams.items()}

    def __enter__(self) -> _Pass:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def push(self, first: int, frames: np.ndarray, done: Callable[[], None]) -> None:
        batch = torch.from_numpy(frames).to(self.tracker.device)
        for ensemble in self.tracker.ensembles:
            label = ensemble.network.label
            inputs: dict[tuple[int, int], torch.Tensor] = {}  # members trained at one size share their inputs
            for member, stream, found in zip(ensemble.members, self.streams[label], self.found[label], strict=True):
                if member.input_size not in inputs:
                    inputs[member.input_size] = self.tracker.inputs(batch, self.windows[label], ensemble.network.brightness, member.input_size)
                found.append(stream.push(inputs[member.input_size]))
        done()

    def finish(self) -> PoseTracks:
        tracker, outputs = self.tracker, []
        for ensemble in tracker.ensembles:
            label, window = ensemble.network.label, self.windows[ensemble.network.label]
            xs, ys, likelihoods = [], [], []
            for member, stream, found in zip(ensemble.members, self.streams[label], self.found[label], strict=True):
                found.append(stream.close())
                xy = in_window(np.concatenate([f[0] for f in found]), window, member)
                xs.append(xy[..., 0])
                ys.append(xy[..., 1])
                likelihoods.append(np.concatenate([f[1] for f in found]).astype(np.float64))
            keypoints = ensemble.members[0].keypoints
            if any(m.keypoints != keypoints for m in ensemble.members):
                raise IblVideoError(ensemble.members[0].path, f"the members of the {label} network track different keypoints")
            outputs.append(NetworkOutput(ensemble.network, keypoints, np.array(xs), np.array(ys), np.array(likelihoods), window))
        table = pose_table(outputs, tracker.profile, self.fps, tracker.flip, tracker.ibl_exact)
        return PoseTracks.from_frame(table, fps=self.fps)


def in_window(xy: np.ndarray, window: Window, model: LPModel) -> np.ndarray:
    """A model's pixels (..., 2) as the window's: Lightning Pose maps them by multiplication (x · w_window / w_input)."""
    return xy.astype(np.float64) * (np.array(window.size) / model.input_size)


def build(camera: Camera, reader: VideoReader, networks: str | Path | None, device: str, ibl_exact: bool = False,
          roi_sampling: str = "ibl", any_set: bool = False) -> LightningPoseTracker:
    """The tracker of the network set ``networks``: a folder or the URL of its zip (default:
    ``$IBLVIDEO_LP_NETWORKS``, else IBL's ``networks_v2.2``)."""
    return LightningPoseTracker(networks_dir(networks), camera, device, ibl_exact, roi_sampling, any_set)
