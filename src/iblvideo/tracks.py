"""Pose tracks: the one data model every tracker gives and every later stage reads.

Points, their camera-pixel positions (T, P, 2) and likelihoods (T, P), named extra columns that
belong to a point (ensemble medians and variances, posterior variances), the frames they are of,
the frame rate and the provenance. ``to_frame`` / ``from_frame`` convert to and from IBL's flat
table (``<point>_x``, ``<point>_y``, ``<point>_likelihood``, then the point's extra columns).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

COORDS = ("x", "y", "likelihood")
LIKELIHOOD_THRESHOLD = 0.9  # IBL's: a point below it counts as not seen


@dataclass(frozen=True)
class PoseTracks:
    """Tracks of ``points`` over frames; ``extra`` maps a column name (``<point>_<field>``) to (T,) values."""

    points: tuple[str, ...]
    xy: np.ndarray
    likelihood: np.ndarray
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    frames: np.ndarray | None = None  # frame indices when the tracks are of some frames only (a sample)
    fps: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n, p = len(self.xy), len(self.points)
        if self.xy.shape != (n, p, 2) or self.likelihood.shape != (n, p):
            raise ValueError(f"pose tracks of {p} points need xy (T, {p}, 2) and likelihood (T, {p}); "
                             f"got {self.xy.shape} and {self.likelihood.shape}")
        if len(set(self.points)) != p:
            raise ValueError(f"pose tracks name a point twice: {self.points}")
        wrong = [name for name, values in self.extra.items() if values.shape != (n,)]
        if wrong:
            raise ValueError(f"extra columns {', '.join(wrong)} do not have one value per frame")

    def __len__(self) -> int:
        return len(self.xy)

    def index(self, point: str) -> int:
        """Where ``point`` sits in ``points``; a KeyError naming it when it is not tracked."""
        try:
            return self.points.index(point)
        except ValueError:
            raise KeyError(f"{point} is not tracked (tracked: {', '.join(self.points)})") from None

    def has(self, *points: str) -> bool:
        return set(points) <= set(self.points)

    def point_xy(self, point: str) -> np.ndarray:
        """(T, 2) positions of ``point``."""
        return self.xy[:, self.index(point)]

    def point_likelihood(self, point: str) -> np.ndarray:
        return self.likelihood[:, self.index(point)]

    def confident_xy(self, point: str, threshold: float = LIKELIHOOD_THRESHOLD) -> np.ndarray:
        """(T, 2) positions of ``point``, NaN where its likelihood is below ``threshold``."""
        xy = self.point_xy(point).astype(float, copy=True)
        xy[self.point_likelihood(point) < threshold] = np.nan
        return xy

    def confident(self, threshold: float = LIKELIHOOD_THRESHOLD) -> PoseTracks:
        """These tracks with x and y NaN wherever the likelihood is below ``threshold``."""
        xy = self.xy.astype(float, copy=True)
        xy[self.likelihood < threshold] = np.nan
        return replace(self, xy=xy)

    def select(self, points: tuple[str, ...]) -> PoseTracks:
        """The tracks of ``points`` only, with their extra columns."""
        columns = [self.index(p) for p in points]
        extra = {name: values for name, values in self.extra.items() if _owner(name, self.points) in points}
        return replace(self, points=tuple(points), xy=self.xy[:, columns], likelihood=self.likelihood[:, columns], extra=extra)

    def to_frame(self) -> pd.DataFrame:
        """IBL's flat table: per point x, y, likelihood and its extra columns; one row per frame (or sampled frame)."""
        columns: dict[str, np.ndarray] = {}
        owners = {name: _owner(name, self.points) for name in self.extra}
        for k, point in enumerate(self.points):
            columns[f"{point}_x"], columns[f"{point}_y"] = self.xy[:, k, 0], self.xy[:, k, 1]
            columns[f"{point}_likelihood"] = self.likelihood[:, k]
            columns.update((name, values) for name, values in self.extra.items() if owners[name] == point)
        columns.update((name, values) for name, values in self.extra.items() if owners[name] is None)
        table = pd.DataFrame(columns)
        if self.frames is not None:
            table.index = pd.Index(self.frames, name="frame")
        return table

    @classmethod
    def from_frame(cls, table: pd.DataFrame, fps: float | None = None, metadata: dict[str, Any] | None = None) -> PoseTracks:
        """Pose tracks from a flat table: every ``<point>`` with ``_x``, ``_y`` and ``_likelihood`` columns, in
        column order; every other column an extra one."""
        names = [str(c) for c in table.columns]
        present = set(names)
        points = tuple(dict.fromkeys(name[:-2] for name in names if name.endswith("_x")
                                     and {f"{name[:-2]}_y", f"{name[:-2]}_likelihood"} <= present))
        if not points:
            raise ValueError("no <point>_x, <point>_y, <point>_likelihood columns")
        coords = {f"{p}_{c}" for p in points for c in COORDS}
        xy = np.stack([table[[f"{p}_x", f"{p}_y"]].to_numpy(dtype=np.float64) for p in points], axis=1)
        likelihood = table[[f"{p}_likelihood" for p in points]].to_numpy(dtype=np.float64)
        extra = {name: table[name].to_numpy() for name in names if name not in coords}
        frames = None if isinstance(table.index, pd.RangeIndex) and table.index.start == 0 and table.index.step == 1 \
            else table.index.to_numpy()
        return cls(points, xy, likelihood, extra, frames, fps, dict(metadata or {}))


def concat_points(parts: list[PoseTracks]) -> PoseTracks:
    """Tracks of the same frames side by side: the points of each part, in order."""
    first = parts[0]
    return replace(first, points=tuple(p for part in parts for p in part.points),
                   xy=np.concatenate([part.xy for part in parts], axis=1),
                   likelihood=np.concatenate([part.likelihood for part in parts], axis=1),
                   extra={name: values for part in parts for name, values in part.extra.items()})


def _owner(column: str, points: tuple[str, ...]) -> str | None:
    """The point an extra column belongs to: the longest point name it starts with (``<point>_...``)."""
    owners = [p for p in points if column.startswith(f"{p}_")]
    return max(owners, key=len) if owners else None
