"""IBL's cascade plan: which specialised networks a camera has, and where each one's crop window sits
relative to the anchors that the ROI network finds (in canonical left-camera pixels)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from iblvideo.cameras import Camera
from iblvideo.tracking.crops import View, Window

CONFIDENT = 0.9  # likelihood above which an anchor detection counts, as IBL does


@dataclass(frozen=True)
class Stage:
    """One specialised network: where its window sits relative to its anchors, and what it tracks."""

    role: str
    points: tuple[str, ...]
    anchors: tuple[str, ...] = ()  # none: the whole frame
    size: tuple[int, int] = (0, 0)  # window (w, h) in canonical pixels
    offset: tuple[int, int] = (0, 0)  # window corner = anchor − offset
    # a stage that sharpens another's points: one window per point and frame, around where that stage put it
    refines: str = ""

    def window(self, anchors: dict[str, tuple[float, float]], view: View, size: tuple[int, int] | None) -> Window:
        """Where this stage cuts, given the anchors and its network's input ``size`` (None: any)."""
        if not self.anchors:
            return view.full_window(size)
        x, y = np.mean([anchors[name] for name in self.anchors], axis=0)
        return self.window_at(x, y, view)

    def window_at(self, x: float, y: float, view: View) -> Window:
        """This stage's window for an anchor at canonical (x, y)."""
        return view.snap(Window.around(x, y, *self.size, *self.offset))


@dataclass(frozen=True)
class Plan:
    """The networks of one kind of camera: the ROI network's role and the stages it places."""

    roi: str
    stages: tuple[Stage, ...]

    @property
    def anchors(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(name for stage in self.stages for name in stage.anchors))


# IBL's crop windows (w, h) and offsets, in left-camera pixels
SIDE_PLAN = Plan("roi", (
    Stage("eye", ("pupil_top_r", "pupil_right_r", "pupil_bottom_r", "pupil_left_r"), ("pupil_top_r",), (100, 100), (50, 50)),
    Stage("nose_tip", ("nose_tip",), ("nose_tip",), (100, 100), (50, 50)),
    Stage("tongue", ("tongue_end_r", "tongue_end_l", "tube_top", "tube_bottom"), ("tube_top", "tube_bottom"), (160, 160), (60, 100)),
    Stage("paws", ("paw_r", "paw_l")),
    # not IBL's: a weights set may add a network that finds each paw again, at five times the
    # resolution, in a window around where the whole-frame network placed it
    Stage("paws_fine", ("paw_r", "paw_l"), size=(128, 128), offset=(64, 64), refines="paws"),
))
BODY_PLAN = Plan("body_roi", (
    Stage("tail_start", ("tail_start",), ("tail_start",), (220, 220), (110, 110)),
))


def plan_for(camera: Camera) -> Plan:
    return BODY_PLAN if camera.name == "body" else SIDE_PLAN
