"""Lick events: one per lick, from the frames where a side camera sees the tongue.

IBL's ``licks.times`` (``features.lick_times``) lists every frame where a tongue coordinate jumps, several
per lick. Here a lick is a run of frames with a confidently tracked tongue point (likelihood at least
IBL's 0.9), gaps of up to ``MAX_GAP`` bridged; its time is the middle of the run, where the tongue is
furthest out. The two side cameras' events are merged on the session clock: events within ``TOLERANCE``
of each other are one lick seen by both. Mice lick at 6-8 Hz, the tongue out about 85 ms of each
125-170 ms cycle, so both bounds sit well inside the 40 ms or more that the tongue is back in between.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from iblvideo.tracks import PoseTracks

TONGUE_POINTS = ("tongue_end_l", "tongue_end_r")
MAX_GAP = 0.04  # s between two sightings of the tongue within one lick: bridges a missed 60 Hz frame
TOLERANCE = 0.04  # s between the two cameras' times of one lick
COLUMNS = ("times", "side")
BOTH = "both"


def tongue_seen(tracks: PoseTracks) -> np.ndarray:
    """Per frame: is any tongue point confidently tracked?"""
    confident = tracks.confident()
    return np.any([np.isfinite(confident.point_xy(p)).all(axis=1) for p in TONGUE_POINTS], axis=0)


def lick_runs(seen: np.ndarray, times: np.ndarray, max_gap: float = MAX_GAP) -> list[tuple[float, float]]:
    """(first, last) times of each run of seen frames, runs closer than ``max_gap`` s joined."""
    seen_times = np.asarray(times, dtype=float)[np.asarray(seen, dtype=bool)]
    if not seen_times.size:
        return []
    breaks = np.flatnonzero(np.diff(seen_times) > max_gap)
    starts, ends = np.r_[0, breaks + 1], np.r_[breaks, seen_times.size - 1]
    return list(zip(seen_times[starts].tolist(), seen_times[ends].tolist(), strict=True))


def lick_events(tracks: PoseTracks, times: np.ndarray, max_gap: float = MAX_GAP) -> np.ndarray:
    """Times of one camera's licks: the middle of each run of frames where the tongue is seen."""
    runs = lick_runs(tongue_seen(tracks), np.asarray(times)[: len(tracks)], max_gap)
    return np.array([(first + last) / 2 for first, last in runs], dtype=float)


def merge_lick_events(events: dict[str, np.ndarray], tolerance: float = TOLERANCE) -> pd.DataFrame:
    """One row per lick (``times``, ``side``) from each camera's lick times; a lick that two cameras saw
    within ``tolerance`` s of each other is one lick of side ``both``, at the mean of the two times."""
    rows = sorted((float(t), camera) for camera, times in events.items() for t in times)
    merged: list[tuple[float, str]] = []
    k = 0
    while k < len(rows):
        (time, camera), following = rows[k], rows[k + 1] if k + 1 < len(rows) else None
        if following is not None and following[1] != camera and following[0] - time <= tolerance:
            merged.append(((time + following[0]) / 2, BOTH))
            k += 2
        else:
            merged.append((time, camera))
            k += 1
    return pd.DataFrame({"times": np.array([t for t, _ in merged], dtype=float), "side": [s for _, s in merged]},
                        columns=list(COLUMNS))
