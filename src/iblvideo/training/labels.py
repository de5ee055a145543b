"""Labeled frames in the DeepLabCut / Lightning Pose layout: ``CollectedData*.csv`` or ``.h5``.

The table has three header rows (scorer, bodyparts, coords), one row per image with the image path
as the index, and an empty cell wherever a keypoint is not labeled.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pandas as pd

from iblvideo.errors import IblVideoError
from iblvideo.extras import DISTRIBUTIONS, MissingExtra

log = logging.getLogger(__name__)

HEADER = ["scorer", "bodyparts", "coords"]


@dataclass(frozen=True)
class LabeledFrames:
    """Grey images (N, H, W) uint8, their keypoints (N, K, 2) in pixels (NaN = unlabeled), and where they came from."""

    path: Path
    keypoints: tuple[str, ...]
    image_paths: tuple[str, ...]
    images: np.ndarray
    points: np.ndarray
    sha256: str

    @property
    def image_size(self) -> tuple[int, int]:
        """(width, height) shared by every image."""
        return self.images.shape[2], self.images.shape[1]

    def subset(self, image_paths: list[str]) -> LabeledFrames:
        """The frames named in ``image_paths``, in that order."""
        where = {name: i for i, name in enumerate(self.image_paths)}
        missing = [name for name in image_paths if name not in where]
        if missing:
            raise IblVideoError(self.path, f"has no labeled frame {missing[0]!r} ({len(missing)} of {len(image_paths)} missing)")
        rows = [where[name] for name in image_paths]
        return LabeledFrames(self.path, self.keypoints, tuple(image_paths), self.images[rows], self.points[rows], self.sha256)


def read_image(path: Path) -> np.ndarray:
    """A greyscale image file (PNG, JPEG, …) as a uint8 (H, W) array, decoded by FFmpeg."""
    try:
        with av.open(str(path)) as container:
            frame = next(container.decode(video=0))
            return frame.to_ndarray(format="gray")
    except (av.error.FFmpegError, StopIteration, OSError) as err:
        raise IblVideoError(path, f"not a readable image ({err})") from None


def _read_table(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise IblVideoError(path, "is a folder, not a labels file (CollectedData*.csv or .h5)" if path.is_dir() else "no such labels file")
    try:
        if path.suffix == ".h5":
            table = pd.read_hdf(path)
        else:
            table = pd.read_csv(path, header=[0, 1, 2], index_col=0)
    except ImportError:  # pandas reads .h5 through PyTables
        raise MissingExtra(DISTRIBUTIONS["tables"], "dlc") from None
    except (ValueError, KeyError, IndexError, OSError, pd.errors.ParserError) as err:
        raise IblVideoError(path, f"not a labels table with scorer/bodyparts/coords header rows ({type(err).__name__}: {err})") from None
    if not isinstance(table, pd.DataFrame) or table.columns.nlevels != 3 or list(table.columns.names) != HEADER:
        names = list(getattr(table, "columns", pd.Index([])).names)
        raise IblVideoError(path, f"header rows must be {', '.join(HEADER)}; found {', '.join(map(str, names))}")
    return table


def _points(path: Path, table: pd.DataFrame) -> tuple[tuple[str, ...], np.ndarray]:
    """Keypoint names in column order and their (N, K, 2) coordinates."""
    keypoints = tuple(dict.fromkeys(table.columns.get_level_values("bodyparts")))
    try:
        values = np.stack([table.xs(k, axis=1, level="bodyparts").droplevel("scorer", axis=1)[["x", "y"]].to_numpy(float) for k in keypoints], axis=1)
    except (KeyError, ValueError) as err:
        raise IblVideoError(path, f"every keypoint needs numeric x and y columns ({err})") from None
    never = [k for k, column in zip(keypoints, values.transpose(1, 0, 2), strict=True) if np.isnan(column).all()]
    if never:
        raise IblVideoError(path, f"keypoint {never[0]!r} is never labeled; remove it or label it")
    return keypoints, values


def _image_name(index: object) -> str:
    # newer DeepLabCut tables index by (labeled-data, video, image) instead of one path
    return "/".join(map(str, index)) if isinstance(index, tuple) else str(index)


def _locate(path: Path, name: str) -> Path:
    """The image file ``name`` names, relative to the labels file's folder or one of its parents."""
    for root in (path.parent, *list(path.parents)[1:3]):
        candidate = root / name
        if candidate.is_file():
            return candidate
    raise IblVideoError(path, f"image {name!r} not found next to the labels file or up to two folders above")


def read_labels(path: str | Path) -> LabeledFrames:
    """Read a labels table and its images; frames without any label are left out."""
    path = Path(path)
    table = _read_table(path)
    keypoints, points = _points(path, table)
    names = [_image_name(index) for index in table.index]
    labeled = ~np.isnan(points).all(axis=(1, 2))
    if not labeled.all():
        log.info("%s: %d frames have no labels and are left out", path, int((~labeled).sum()))
    names, points = [n for n, keep in zip(names, labeled, strict=True) if keep], points[labeled]
    if not names:
        raise IblVideoError(path, "no labeled frames")
    digest = hashlib.sha256(path.read_bytes())
    images: list[np.ndarray] = []
    for name in names:
        file = _locate(path, name)
        digest.update(file.read_bytes())
        image = read_image(file)
        if images and image.shape != images[0].shape:
            raise IblVideoError(file, f"is {image.shape[1]}x{image.shape[0]} but {names[0]} is {images[0].shape[1]}x{images[0].shape[0]}; all labeled images must be one size")
        images.append(image)
    return LabeledFrames(path, keypoints, tuple(names), np.stack(images), points.astype(np.float32), digest.hexdigest())
