"""The trackers: a name for the command line and the API, the module that implements it, and the ALF
attribute of the pose table it writes. Adding a tracker is one module and one line here; nothing
is imported until a tracker is asked for, so reading this needs no torch."""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from iblvideo.errors import IblVideoError
from iblvideo.io.alf import TRUTH_ATTRIBUTE

if TYPE_CHECKING:
    from iblvideo.tracking.tracker import TrackerFactory


@dataclass(frozen=True)
class Entry:
    """Where a tracker lives and what its pose table is called (``_ibl_<cam>Camera.<attribute>.pqt``)."""

    module: str
    attribute: str
    description: str


TRACKERS = {
    "dlc": Entry("iblvideo.tracking.pose_networks", "dlc", "IBL's DeepLabCut networks (weights_v2.2 by default), or ours (demo, a folder or a URL)"),
    "lightning-pose": Entry("iblvideo.tracking.lightning_pose", "lightningPose", "IBL's Lightning Pose ensembles, Kalman-smoothed"),
}
# a synthetic session's ground truth stands in for a tracker in sessions and queues: it is copied, not tracked
TRUTH = "truth"


def entry(name: str) -> Entry:
    """The tracker called ``name``; a one-line error listing the trackers otherwise."""
    try:
        return TRACKERS[name]
    except KeyError:
        raise IblVideoError(None, f"unknown tracker {name!r}; expected one of {', '.join(TRACKERS)}") from None


def factory(name: str) -> TrackerFactory:
    """The function that builds the tracker called ``name`` for a camera (imports its module: torch)."""
    return importlib.import_module(entry(name).module).build


def attribute(name: str) -> str:
    """The ALF attribute of the pose table of tracker ``name`` (``truth`` copies the ground truth's)."""
    return TRUTH_ATTRIBUTE if name == TRUTH else entry(name).attribute
