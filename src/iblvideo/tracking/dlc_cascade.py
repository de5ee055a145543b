"""The ``dlc`` tracker: IBL's DeepLabCut network sets (``weights_v2.x``) run as IBL's pipeline ran them.

Following iblvideo 2.x (``pose_dlc.py``, ``params_dlc.py``), every step in the pixels of the frame the
networks see (the left camera's for both side cameras):

- the right camera is flipped horizontally and then scaled to twice its size (1280×1024) with ffmpeg's
  bicubic scaler before anything else (``NetworkView``);
- the ROI network looks at IBL's sample (``lp_crops.sample_indices``); each anchor is the truncated mean
  of its confident detections and a window's anchor the mean of its anchors (``lp_crops.anchor_means``);
- a window is IBL's ``[w, h, x - dx, y - dy]`` and ffmpeg's crop filter cuts it where ffmpeg would: x, y
  rounded to the nearest integer (halves to even), moved inside the frame, then rounded down to even
  pixels for the chroma of yuv420p (``Window.origin``); the eye's crop is brightened with ffmpeg's
  ``colorlevels`` (in max 0.25); the paws network sees the whole frame scaled to 128×102;
- DeepLabCut reads each video with OpenCV (limited-range luma to RGB, ``rgb_of_luma``); its read-out
  is then smoothed with DeepLabCut's ``filterpredictions`` (``median_filter``) and mapped back to the
  camera's pixels: ``x = (x · post + x_window) / sampling``, then ``640 − x`` on the right camera.

IBL re-encoded every intermediate video (libx264, crf 11 for crops, 23 for the rest, mp4v for the ROI
sample); these crops are cut from the decoded frames directly, which moves the points a little
(``benchmarks/dlc_reencoding.py``).

With ``ibl_exact`` points are mapped back as IBL mapped them: by the window's corner as computed, not
where ffmpeg cut it, and by ×10 for the paws' both axes (1024 / 102 is 10.04). Without it, by where
the crop was cut and by the paws' true scale.
"""
from __future__ import annotations

import functools
import logging
import os
import re
import warnings
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse

import av
import numpy as np
import pandas as pd
import torch
import yaml
from av.filter import Graph
from scipy import signal

from iblvideo.cameras import Camera
from iblvideo.errors import IblVideoError
from iblvideo.networks.dlc_resnet import POSE_CFG, DLCModel, build_network, load_tf_tensors, read_pose_cfg
from iblvideo.networks.tf_checkpoint import choose_snapshot, read_checkpoint
from iblvideo.tracking import cascade, lp_crops
from iblvideo.tracking.download import files_in_folders, set_folder, unpacked_sha256
from iblvideo.tracking.tracker import MissingAnchor, Placed
from iblvideo.tracks import PoseTracks
from iblvideo.video.reader import VideoReader

log = logging.getLogger(__name__)

CHUNK = 8  # frames a network sees at a time
MEDIAN_WINDOW = 5  # DeepLabCut's filterpredictions default, as IBL calls it
EYE_LEVELS = "rimax=0.25:gimax=0.25:bimax=0.25"  # IBL's eye brightening
SHUFFLE = 1  # analyze_videos' defaults, as IBL calls it: shuffle 1, the first training fraction
CONFIG = "config.yaml"
# IBL's public bucket, beside the Lightning Pose sets; the setting points elsewhere (a mirror, a copy, "demo")
DEFAULT_URL = "https://ibl-brain-wide-map-public.s3.amazonaws.com/resources/dlc/weights_v2.2.zip"
URL_VARIABLE, SHA256_VARIABLE = "IBLVIDEO_DLC_WEIGHTS", "IBLVIDEO_DLC_WEIGHTS_SHA256"
SET_NAME = re.compile(r"^weights_v\d+(\.\d+)*\.zip$")


@dataclass(frozen=True)
class DLCNetwork:
    """One network of IBL's set: its folder, and how IBL cuts and scales what it sees."""

    label: str
    folder: str  # IBL's glob of the network's DeepLabCut project in the set
    anchors: tuple[str, ...] = ()  # the ROI network's points that place its window
    crop: tuple[int, int, int, int] | None = None  # (w, h, dx, dy): the window [w, h, x − dx, y − dy] around the anchor
    scaled_to: tuple[int, int] | None = None  # the whole frame scaled to (w, h), for a network that cuts none
    downsampling: int = 1  # IBL's ``postcrop_downsampling``: network pixels to frame pixels
    brightened: bool = False


# IBL's SIDE_FEATURES and BODY_FEATURES, in their order (the table's)
SIDE = (
    DLCNetwork("nose_tip", "nose_tip-*", ("nose_tip",), (100, 100, 50, 50)),
    DLCNetwork("eye", "eye-mic-*", ("pupil_top_r",), (100, 100, 50, 50), brightened=True),
    DLCNetwork("paws", "paw2-mic-*", scaled_to=(128, 102), downsampling=10),
    DLCNetwork("tongue", "tongue-mic-*", ("tube_top", "tube_bottom"), (160, 160, 60, 100)),
)
BODY = (DLCNetwork("tail_start", "tail-mic-*", ("tail_start",), (220, 220, 110, 110)),)
ROI_FOLDERS = {"side": "roi_detect-*", "body": "tail-mic-*"}  # the body camera's ROI network is its tail network
CAMERAS = ("left", "right", "body")


def networks_for(camera: str) -> tuple[str, tuple[DLCNetwork, ...]]:
    """The ROI network's folder glob and the networks of a camera."""
    if camera not in CAMERAS:
        raise IblVideoError(None, f"IBL's DeepLabCut networks track the {', '.join(CAMERAS)} cameras, not {camera!r}")
    return (ROI_FOLDERS["body"], BODY) if camera == "body" else (ROI_FOLDERS["side"], SIDE)


def project_folder(root: Path, pattern: str) -> Path:
    """The one DeepLabCut project of the set matching IBL's glob ``pattern``."""
    found = sorted(p for p in root.glob(pattern) if (p / CONFIG).is_file())
    if len(found) != 1:
        expected = ", ".join(sorted({ROI_FOLDERS["side"], *(n.folder for n in SIDE + BODY)}))
        what = "no" if not found else f"{len(found)}"
        raise IblVideoError(root, f"not an IBL DeepLabCut weights set: {what} {pattern} folder with a {CONFIG} (expected {expected})")
    return found[0]


@dataclass(frozen=True)
class Snapshot:
    """What DeepLabCut's ``analyze_videos`` loads from a project: the test pose config and a training snapshot."""

    pose_cfg: Path
    prefix: Path


def choose_model(project: Path) -> Snapshot:
    """The snapshot ``analyze_videos`` takes in ``project``: its config's iteration, first training
    fraction, shuffle 1 and ``snapshotindex`` (``all`` read as the last)."""
    path = project / CONFIG
    try:
        cfg = yaml.safe_load(path.read_text())
        task, date, iteration = str(cfg["Task"]), str(cfg["date"]), int(cfg["iteration"])
        fraction = float(cfg["TrainingFraction"][0])
        index = cfg.get("snapshotindex", -1)
        index = -1 if index == "all" else int(index)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise IblVideoError(path, f"unreadable DeepLabCut project config ({type(err).__name__})") from None
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as err:
        raise IblVideoError(path, f"DeepLabCut project config lacks or garbles Task, date, iteration, TrainingFraction "
                                  f"or snapshotindex ({type(err).__name__}: {err})") from None
    # DeepLabCut names the folder by int(fraction · 100), truncation included
    model = project / "dlc-models" / f"iteration-{iteration}" / f"{task}{date}-trainset{int(fraction * 100)}shuffle{SHUFFLE}"
    if not (model / "test" / "pose_cfg.yaml").is_file():
        raise IblVideoError(project, f"no DeepLabCut model {model.relative_to(project)}/test/pose_cfg.yaml, where {CONFIG} points")
    return Snapshot(model / "test" / "pose_cfg.yaml", choose_snapshot(model / "train", index))


def load_snapshot(chosen: Snapshot, device: torch.device) -> DLCModel:
    """The network ``analyze_videos`` runs for a chosen snapshot."""
    config = read_pose_cfg(chosen.pose_cfg)
    network = build_network(config)
    load_tf_tensors(network, read_checkpoint(chosen.prefix), chosen.prefix)
    return DLCModel(chosen.prefix.parent, config, network.to(device))


def ffmpeg_filter(frame: av.VideoFrame, chain: Sequence[tuple[str, str]]) -> av.VideoFrame:
    """One frame through an ffmpeg filter chain."""
    graph = Graph()
    node = graph.add_buffer(width=frame.width, height=frame.height, format=frame.format, time_base=Fraction(1, 30))
    for name, args in chain:
        following = graph.add(name, args)
        node.link_to(following)
        node = following
    sink = graph.add("buffersink")
    node.link_to(sink)
    graph.configure()
    graph.push(frame)
    out = graph.pull()
    assert isinstance(out, av.VideoFrame)
    return out


def grey_yuv(luma: np.ndarray) -> av.VideoFrame:
    """A yuv420p frame of ``luma`` with neutral chroma, as IBL's grey cameras record."""
    h, w = luma.shape
    return av.VideoFrame.from_ndarray(np.concatenate([luma.reshape(-1), np.full(h * w // 2, 128, np.uint8)]).reshape(h * 3 // 2, w),
                                      format="yuv420p")


@functools.cache
def rgb_of_luma(brightened: bool = False) -> np.ndarray:
    """The grey level (256,) DeepLabCut's OpenCV reads for each luma of a grey video: limited range
    stretched by ffmpeg's scaler; brightened, the luma as IBL's colorlevels pass rewrote it first."""
    ramp = grey_yuv(np.tile(np.arange(256, dtype=np.uint8), (2, 1)))
    if brightened:  # ffmpeg converts to RGB for colorlevels and back to yuv420p for the encoder
        ramp = ffmpeg_filter(ramp.reformat(format="rgb24"), [("colorlevels", EYE_LEVELS), ("format", "yuv420p")])
    rgb = ramp.reformat(format="rgb24", interpolation="BICUBIC").to_ndarray()[0]
    if not (rgb[:, 0] == rgb[:, 1]).all() or not (rgb[:, 0] == rgb[:, 2]).all():
        raise AssertionError("ffmpeg's grey is not grey")  # would mean DeepLabCut saw colour
    return np.ascontiguousarray(rgb[:, 0])


def scaled(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A grey frame scaled to ``size`` (w, h) by ffmpeg's scaler as its ``scale`` filter calls it (bicubic)."""
    return av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="gray").reformat(
        width=size[0], height=size[1], interpolation="BICUBIC").to_ndarray()


@dataclass(frozen=True)
class NetworkView:
    """A camera's frames as IBL's networks see them: the right camera's flipped, then doubled."""

    flip: bool
    sampling: int  # IBL's: network-frame pixels per camera pixel
    camera_width: int

    @classmethod
    def of(cls, camera: Camera) -> NetworkView:
        right = camera.name == "right"
        return cls(right, 2 if right else 1, camera.width)

    def frames(self, frames: np.ndarray) -> np.ndarray:
        """Grey camera frames (N, H, W) in the networks' frame."""
        if not self.flip:
            return frames
        flipped = frames[:, :, ::-1]
        h, w = frames.shape[1:]
        return np.stack([scaled(f, (w * self.sampling, h * self.sampling)) for f in flipped])

    def size(self, camera: Camera) -> tuple[int, int]:
        return camera.width * self.sampling, camera.height * self.sampling

    def to_camera(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Network-frame pixels to the camera's, as IBL maps them."""
        x, y = x / self.sampling, y / self.sampling
        return (self.camera_width - x if self.flip else x), y


@dataclass(frozen=True)
class Window:
    """A network's window in the networks' frame: IBL's (w, h, x, y) (x, y may be half pixels or leave
    the frame), and the frame it is cut from."""

    w: int
    h: int
    x: float
    y: float
    frame: tuple[int, int]  # (width, height)

    @classmethod
    def whole(cls, frame: tuple[int, int]) -> Window:
        return cls(frame[0], frame[1], 0.0, 0.0, frame)

    @property
    def origin(self) -> tuple[int, int]:
        """Where ffmpeg's crop filter cuts: to the nearest pixel (halves to even), inside the frame,
        then down to even pixels (yuv420p's chroma, as crop does without ``exact``)."""
        corner = []
        for c, size, room in zip((self.x, self.y), (self.w, self.h), self.frame, strict=True):
            at = min(max(int(np.rint(c)), 0), room - size)
            corner.append(at & ~1)
        return corner[0], corner[1]

    def as_whxy(self) -> tuple[float, float, float, float]:
        return (float(self.w), float(self.h), self.x, self.y)


def place_windows(networks: Sequence[DLCNetwork], points: Sequence[str], xy: np.ndarray, likelihood: np.ndarray,
                  frame: tuple[int, int]) -> dict[str, Window]:
    """Every network's window from the ROI network's (N, P, 2) detections of its ``points``."""
    means = dict(zip(points, lp_crops.anchor_means(xy[..., 0], xy[..., 1], likelihood), strict=True))
    windows = {}
    for network in networks:
        if network.crop is None:
            windows[network.label] = Window.whole(frame)
            continue
        x, y = lp_crops.anchor_at(network.anchors, means)
        w, h, dx, dy = network.crop
        windows[network.label] = Window(w, h, x - dx, y - dy, frame)
    return windows


def median_filter(values: np.ndarray) -> np.ndarray:
    """DeepLabCut's median filter of a (N, ...) track over frames: scipy's ``medfilt``, window 5, zeros beyond the ends."""
    flat = values.reshape(len(values), -1).astype(np.float64)
    with warnings.catch_warnings():  # a video shorter than the window: scipy warns, and DeepLabCut filters all the same
        warnings.filterwarnings("ignore", "kernel_size exceeds volume extent", UserWarning)
        return np.stack([signal.medfilt(column, MEDIAN_WINDOW) for column in flat.T], axis=1).reshape(values.shape)


def chunks(frames: np.ndarray) -> Iterator[np.ndarray]:
    for start in range(0, len(frames), CHUNK):
        yield frames[start:start + CHUNK]


def predict(model: DLCModel, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A network's read-out of grey frames (N, H, W), a few at a time."""
    found = [model.predict(chunk) for chunk in chunks(frames)]
    return np.concatenate([f[0] for f in found]).astype(np.float64), np.concatenate([f[1] for f in found]).astype(np.float64)


class DLCTracker:
    """An IBL DeepLabCut weights set for one camera, run as IBL's pipeline ran it."""

    def __init__(self, root: Path, camera: Camera, device: str = "cpu", ibl_exact: bool = False):
        self.camera, self.device, self.ibl_exact = camera, cascade.torch_device(device), ibl_exact
        roi_glob, self.networks = networks_for(camera.name)
        self.view = NetworkView.of(camera)
        self.frame = self.view.size(camera)
        projects = {n.label: project_folder(root, n.folder) for n in self.networks}
        roi_project = project_folder(root, roi_glob)
        chosen = {project: choose_model(project) for project in (roi_project, *projects.values())}
        loaded = {project: load_snapshot(snapshot, self.device) for project, snapshot in chosen.items()}  # the body's ROI network is its tail network
        self.roi, self.models = loaded[roi_project], {label: loaded[p] for label, p in projects.items()}
        self._check_points()
        self.provenance: dict[str, Any] = {
            "weights": root.name, "weights_version": root.name.rpartition("_v")[2] if "_v" in root.name else None, "networks": str(root),
            "weights_description": f"IBL's DeepLabCut networks ({root.name}): " + ", ".join(self.models),
            "snapshots": {label: str(chosen[p].prefix.relative_to(root)) for label, p in projects.items()},
            "weights_sha256": unpacked_sha256(root), "roi_network": roi_project.name, "mode": "ibl-exact" if ibl_exact else "corrected",
            "filter": f"median {MEDIAN_WINDOW}",
        }

    def _check_points(self) -> None:
        anchors = sorted({a for n in self.networks for a in n.anchors} - set(self.roi.joints))
        if anchors:
            raise IblVideoError(self.roi.path, f"the ROI network does not track {', '.join(anchors)}")
        seen: dict[str, str] = {}
        for label, model in self.models.items():
            for joint in model.joints:
                if joint in seen:
                    raise IblVideoError(model.path, f"the {label} and {seen[joint]} networks both track {joint}")
                seen[joint] = label

    def place(self, reader: VideoReader) -> Placed[Window]:
        """Every network's window, from the ROI network on IBL's sample of the video."""
        indices = lp_crops.sample_indices(reader.info.n_frames, reader.info.fps)
        unique, found, batch, n = [], [], [], len(np.unique(indices))
        # DeepLabCut tracks frame by frame: a frame IBL's sample repeats is tracked once and counted twice
        for position, (index, frame) in enumerate(reader.sample(indices), 1):
            unique.append(index)
            batch.append(frame)
            if len(batch) == CHUNK or position == n:
                found.append(predict(self.roi, self.inputs(self.view.frames(np.stack(batch)), False)))
                batch = []
        rows = np.searchsorted(unique, indices)
        xy, likelihood = np.concatenate([f[0] for f in found])[rows], np.concatenate([f[1] for f in found])[rows]
        try:
            windows = place_windows(self.networks, self.roi.joints, xy, likelihood, self.frame)
        except MissingAnchor as missing:
            raise missing.error(reader.path, len(indices), self.camera.name) from None
        log.debug("%s: windows %s", reader.path.name, {k: w.as_whxy() for k, w in windows.items()})
        return Placed(self, reader, windows, len(indices))

    @staticmethod
    def inputs(frames: np.ndarray, brightened: bool) -> np.ndarray:
        """Luma frames as DeepLabCut's OpenCV reader gives them (grey, full range)."""
        return rgb_of_luma(brightened)[frames]

    def crops(self, frames: np.ndarray, network: DLCNetwork, window: Window) -> np.ndarray:
        """What ``network`` sees of networks'-frame luma ``frames``."""
        if network.scaled_to is not None:
            frames = np.stack([scaled(f, network.scaled_to) for f in frames])
        else:
            (x0, y0), (w, h) = window.origin, (window.w, window.h)
            frames = frames[:, y0:y0 + h, x0:x0 + w]
        return self.inputs(np.ascontiguousarray(frames), network.brightened)

    def to_frame(self, network: DLCNetwork, window: Window) -> tuple[tuple[float, float], tuple[float, float]]:
        """(scale x, scale y), (offset x, offset y) from network pixels to the networks' frame."""
        if self.ibl_exact:
            return (network.downsampling, network.downsampling), ((0.0, 0.0) if network.crop is None else (window.x, window.y))
        if network.scaled_to is not None:
            return (window.w / network.scaled_to[0], window.h / network.scaled_to[1]), (0.0, 0.0)
        x0, y0 = window.origin
        return (1.0, 1.0), (float(x0), float(y0))

    def start(self, placed: Placed[Window], n_frames: int, fps: float) -> _Pass:
        return _Pass(self, placed.windows, fps)


class _Pass:
    """Each network on each batch (in any order); filtered, mapped and tabled at the end."""

    def __init__(self, tracker: DLCTracker, windows: dict[str, Window], fps: float):
        self.tracker, self.windows, self.fps = tracker, windows, fps
        self.found: dict[int, dict[str, tuple[np.ndarray, np.ndarray]]] = {}

    def __enter__(self) -> _Pass:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def push(self, first: int, frames: np.ndarray, done: Callable[[], None]) -> None:
        tracker = self.tracker
        view = tracker.view.frames(frames)
        crops = {n.label: tracker.crops(view, n, self.windows[n.label]) for n in tracker.networks}
        done()
        self.found[first] = {label: predict(tracker.models[label], c) for label, c in crops.items()}

    def finish(self) -> PoseTracks:
        tracker, columns = self.tracker, {}
        order = sorted(self.found)
        for network in tracker.networks:
            label = network.label
            xy = median_filter(np.concatenate([self.found[f][label][0] for f in order]))
            likelihood = np.concatenate([self.found[f][label][1] for f in order])
            (sx, sy), (ox, oy) = tracker.to_frame(network, self.windows[label])
            x, y = tracker.view.to_camera(xy[..., 0] * sx + ox, xy[..., 1] * sy + oy)
            for j, joint in enumerate(tracker.models[label].joints):
                columns.update({f"{joint}_x": x[:, j], f"{joint}_y": y[:, j], f"{joint}_likelihood": likelihood[:, j]})
        return PoseTracks.from_frame(pd.DataFrame(columns), fps=self.fps)


def is_weights_set(spec: str | Path) -> bool:
    """Whether ``spec`` names one of IBL's DeepLabCut sets: a folder holding its ROI network's DeepLabCut
    project, or the URL of a zip named as IBL names them (``weights_v2.2.zip``)."""
    text = str(spec)
    if re.match(r"^https?://", text):
        return bool(SET_NAME.match(PurePosixPath(urlparse(text).path).name))
    return any((p / CONFIG).is_file() for p in Path(text).glob(ROI_FOLDERS["side"])) if Path(text).is_dir() else False


def weights_dir(spec: str | Path, sha256: str | None = None) -> Path:
    """The set's folder: ``spec`` itself, or the zip at the URL ``spec`` downloaded once into the cache
    (resumable, locked, verified against ``sha256`` or ``$IBLVIDEO_DLC_WEIGHTS_SHA256`` when given)."""
    return set_folder(str(spec), set_members, sha256 or os.environ.get(SHA256_VARIABLE) or None,
                      "no such folder: IBL's DeepLabCut weights set (weights_v2.x), unpacked")


def set_members(bundle: zipfile.ZipFile) -> list[str]:
    """What of a set's zip is unpacked: the projects' configs and the snapshots' index and data, in folders a network names."""
    def wanted(path: PurePosixPath) -> bool:
        return path.name in (CONFIG, POSE_CFG) or (path.name.startswith("snapshot-") and path.suffix != ".meta")

    return files_in_folders(bundle, {ROI_FOLDERS["side"], *(n.folder for n in SIDE + BODY)}, wanted, f"DeepLabCut project with a {CONFIG}")


def default_weights() -> str:
    """Where IBL's DeepLabCut weights come from when none are named: ``$IBLVIDEO_DLC_WEIGHTS``, else IBL's bucket."""
    return os.environ.get(URL_VARIABLE) or DEFAULT_URL

