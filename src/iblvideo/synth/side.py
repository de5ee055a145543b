"""The side cameras' scene: a head-fixed mouse seen from one side, its snout, eye, tongue, paws and the wheel.

The scene is laid out once per seed and camera in canonical left-camera pixels (1280 x 1024, the mouse
facing left) and mapped to the camera by a :class:`~iblvideo.synth.draw.View`: identity for the left
camera, mirror-and-halve for the right camera, which films the mouse's other side. Static things (head,
body, eye socket, spout, wheel face) are drawn once into the background; each frame paints only the parts
that move, over their bounding boxes.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from iblvideo.cameras import Camera
from iblvideo.synth import draw
from iblvideo.synth.behaviour import LICK_VISIBLE, WHEEL_RADIUS_PX, Behaviour

TONGUE_HALF_WIDTH = 8.0  # canonical px
PAW_AXES = (19.0, 13.0)  # canonical px, along and across the wheel rim
BLUR_STEP = 1.0  # one blur sample per camera pixel of travel during the exposure
MAX_BLUR_SAMPLES = 6
N_WHEEL_MARKS = 36
MARK_PHASES = 4  # wheel ribs are pre-drawn at quarter-pixel offsets and stamped, not drawn per frame
FUR_PAD = 8  # px of fur texture beyond the frame, more than the snout ever moves

GREYS = {  # scene grey levels before illumination, chosen to look like IBL infrared video
    "fur": 105.0, "snout": 118.0, "rhinarium": 62.0, "eye": 150.0, "pupil": 20.0, "glint": 235.0,
    "lid": 92.0, "tongue": 192.0, "spout": 170.0, "spout_shine": 215.0, "wheel": 52.0, "wheel_rim": 80.0,
    "wheel_mark": 88.0, "limb": 112.0, "paw": 205.0, "paw_core": 240.0, "pad": 122.0,
}


@dataclass(frozen=True)
class Layout:
    """Where the static anatomy and rig sit, in canonical left-camera pixels, for one seed and camera."""

    anchor: np.ndarray  # a reference point on the head; most anatomy is placed relative to it
    heading: float  # direction the nose points (radians, image coordinates: y grows downwards)
    nose: np.ndarray  # nose tip at rest
    snout_axes: tuple[float, float]
    eye: np.ndarray
    eye_axes: tuple[float, float]
    mouth: np.ndarray
    spout_tip: np.ndarray
    spout_base: np.ndarray
    spout_radius: float
    wheel: np.ndarray
    paw_angles: tuple[float, float]  # near, far: where each paw rests on the rim
    shoulders: tuple[np.ndarray, np.ndarray]  # near, far: where each foreleg leaves the body
    groom: tuple[np.ndarray, np.ndarray]  # near, far: where each paw rubs the face while grooming
    background: float
    brightness: float


def random_layout(rng: np.random.Generator) -> Layout:
    """Jitter anatomy, spout and wheel by tens of pixels and the light by ~15 % so seeds look different."""
    # the head high in the frame and the wheel's top in its lower half, as IBL's cameras frame the mouse: the
    # mean of the tracked points then sits inside IBL's QC box (x 301-700, y 181-470; mirrored and halved on
    # the right camera, x 80-678 and y 220-550 in these pixels)
    anchor = np.array([510.0, 280.0]) + rng.uniform([-35, -30], [35, 30])
    heading = np.pi - 0.2 + rng.uniform(-0.08, 0.08)
    h = np.array([np.cos(heading), np.sin(heading)])
    nose = anchor + 180 * h + rng.uniform(-6, 6, 2)
    mouth = nose - 38 * h + np.array([0.0, 36.0])
    spout_tip = mouth + np.array([-62.0, 34.0]) + rng.uniform(-12, 12, 2)
    return Layout(
        anchor=anchor, heading=heading, nose=nose, snout_axes=(95.0 + rng.uniform(-6, 6), 52.0 + rng.uniform(-4, 4)),
        eye=anchor + np.array([40.0, -95.0]) + rng.uniform(-8, 8, 2), eye_axes=(34.0, 25.0),
        mouth=mouth, spout_tip=spout_tip, spout_base=spout_tip + np.array([-150.0, -190.0]) + rng.uniform(-30, 30, 2),
        spout_radius=11.0 + rng.uniform(-1, 1),
        wheel=np.array([590.0, 1140.0]) + rng.uniform([-30, -15], [30, 15]),
        paw_angles=(-1.62 + rng.uniform(-0.04, 0.04), -1.40 + rng.uniform(-0.04, 0.04)),
        shoulders=(anchor + np.array([110.0, 210.0]), anchor + np.array([160.0, 190.0])),
        # under the snout, behind its tip and below the whisker pad, so that the nose tip and the tongue stay
        # in view; the far paw higher and further back than the near one, so that neither hides the other
        groom=(nose - 75 * h + np.array([0.0, 50.0]), nose - 105 * h + np.array([0.0, 14.0])),
        background=28.0 + rng.uniform(-6, 6), brightness=rng.uniform(0.85, 1.15),
    )


def _unit(angle: float) -> np.ndarray:
    return np.array([np.cos(angle), np.sin(angle)])


class SideScene:
    """Renders one side camera (left or right) and its ground truth from behaviour samples."""

    def __init__(self, camera: Camera, seed: int):
        self.camera = camera
        self.far_side = "right" if camera.name == "left" else "left"  # which of the mouse's paws is far
        self.near_side = camera.name
        rng = np.random.default_rng([seed, 1 if camera.name == "left" else 2])
        self.layout = random_layout(rng)
        self.view = draw.View(camera.width / 1280, mirror=camera.name == "right")
        self.s = self.view.scale
        self.greys = {k: v * self.layout.brightness for k, v in GREYS.items()}
        self._static_geometry()
        self.canvas = draw.Canvas(self._background(rng), rng)
        self._pad_texture(rng)
        self._mark_stamps()

    # ---- static geometry in camera pixels -------------------------------------------------------------

    def _pt(self, p: np.ndarray) -> tuple[float, float]:
        x, y = self.view.point(p[0], p[1])
        return float(x), float(y)

    def _static_geometry(self) -> None:
        lay, v, s = self.layout, self.view, self.s
        self.heading = v.angle(lay.heading)
        self.eye = (*self._pt(lay.eye), lay.eye_axes[0] * s, lay.eye_axes[1] * s, v.angle(-0.25))
        self.mouth = self._pt(lay.mouth)
        # the tongue is drawn exactly when the truth calls it visible: out more than LICK_VISIBLE of its reach
        self.tongue_shortest = LICK_VISIBLE * float(np.hypot(*(lay.spout_tip - lay.mouth))) * s
        self.spout = (*self._pt(lay.spout_base), *self._pt(lay.spout_tip), lay.spout_radius * s)
        self.wheel = (*self._pt(lay.wheel), WHEEL_RADIUS_PX * s)
        # the whisker pad: behind the nose tip, on the side of the snout
        h = _unit(lay.heading)
        self.pad = (*self._pt(lay.nose - 118 * h + np.array([0.0, 12.0])), 50 * s, 30 * s, self.heading)
        d = lay.spout_tip - lay.spout_base
        across = np.array([-d[1], d[0]]) / np.hypot(*d) * lay.spout_radius
        ends = sorted((lay.spout_tip + across, lay.spout_tip - across), key=lambda p: p[1])
        self.anchor_points = {
            "tube_top": self._pt(ends[0]), "tube_bottom": self._pt(ends[1]),
            "eye_centre": self._pt(lay.eye), "nose_rest": self._pt(lay.nose), "mouth": self._pt(lay.mouth),
            "spout_tip": self._pt(lay.spout_tip), "wheel_centre": self._pt(lay.wheel),
        }

    def anchors(self) -> dict[str, object]:
        """Static points a region-of-interest network needs, in camera pixels."""
        return {name: [round(x, 3), round(y, 3)] for name, (x, y) in self.anchor_points.items()} | {
            "eye_axes": [round(self.eye[2], 3), round(self.eye[3], 3)], "wheel_radius": round(self.wheel[2], 3),
        }

    def _background(self, rng: np.random.Generator) -> np.ndarray:
        """The static frame: dark rig, head and body fur, ear, eye socket, wheel face and the spout."""
        lay, v, s, g = self.layout, self.view, self.s, self.greys
        shape = (self.camera.height, self.camera.width)
        ys, xs = draw.grid((0, shape[0], 0, shape[1]))
        # dark box with a soft pool of infrared light on the mouse
        cx, cy = self._pt(lay.anchor + np.array([100.0, 100.0]))
        falloff = ((xs - cx) ** 2 + (ys - cy) ** 2) / (700 * s) ** 2
        image = lay.background * (1.1 - 0.5 * np.minimum(falloff, 1.0)) + 4 * draw.smooth_noise(rng, shape, 30 * s)
        fur = g["fur"] + 9 * draw.smooth_noise(rng, shape, 2.5 * s) + 6 * draw.smooth_noise(rng, shape, 12 * s)

        def over(box: draw.Box | None, coverage: Callable[..., np.ndarray], grey: float | np.ndarray, *args: float) -> None:
            """Paint ``grey`` (a level or a whole-frame texture) where the shape covers, inside its box only."""
            if box is None:
                return
            y0, y1, x0, x1 = box
            region = image[y0:y1, x0:x1]
            value = grey[y0:y1, x0:x1] if isinstance(grey, np.ndarray) else grey
            region += coverage(*draw.grid(box), *args) * (value - region)

        def ellipse(centre: tuple[float, float], ax: float, ay: float, angle: float, grey: float | np.ndarray) -> None:
            over(draw.ellipse_box(*centre, ax, ay, shape), draw.ellipse, grey, *centre, ax, ay, angle)

        def capsule(x0: float, y0: float, x1: float, y1: float, r: float, grey: float) -> None:
            over(draw.segment_box(x0, y0, x1, y1, r, shape), draw.capsule, grey, x0, y0, x1, y1, r)

        capsule(*self._pt(lay.anchor + [-60.0, -260.0]), *self._pt(lay.anchor + [260.0, -230.0]), 22 * s, 58.0)  # head bar
        ellipse(self._pt(lay.anchor + [430.0, 270.0]), 400 * s, 250 * s, v.angle(-0.35), fur - 8)  # body
        ellipse(self._pt(lay.anchor + [90.0, -35.0]), 235 * s, 160 * s, v.angle(lay.heading - np.pi), fur)  # head
        ellipse(self._pt(lay.anchor + [175.0, -150.0]), 55 * s, 75 * s, v.angle(0.5), fur + 22)  # ear
        ex, ey, eax, eay, eangle = self.eye
        ellipse((ex, ey), eax * 1.35, eay * 1.5, eangle, fur - 25)  # socket
        ellipse((ex, ey), eax, eay, eangle, g["lid"])
        for shoulder, grey in zip(lay.shoulders, (g["limb"], g["limb"] - 20), strict=True):
            ellipse(self._pt(shoulder), 45 * s, 60 * s, 0.0, grey - 10)
        wx, wy, wr = self.wheel
        ellipse((wx, wy), wr, wr, 0.0, g["wheel_rim"])
        ellipse((wx, wy), wr - 9 * s, wr - 9 * s, 0.0, g["wheel"] + 5 * draw.smooth_noise(rng, shape, 6 * s))
        bx, by, tx, ty, r = self.spout
        capsule(bx, by, tx, ty, r, g["spout"])
        axis = (lay.spout_tip - lay.spout_base) / np.hypot(*(lay.spout_tip - lay.spout_base))
        shine = self.view.vector(*(0.4 * lay.spout_radius * np.array([-axis[1], axis[0]])))
        capsule(bx + shine[0], by + shine[1], tx + shine[0], ty + shine[1], r * 0.3, g["spout_shine"])
        # the snout is drawn per frame and takes its fur from here, padded so the fur can move with it
        self._fur = np.pad(fur, FUR_PAD, mode="reflect")
        return np.clip(image, 0, 255)

    def _pad_texture(self, rng: np.random.Generator) -> None:
        """Whisker-pad texture (rows of follicles), larger than the pad so that whisking can slide it."""
        px, py, ax, ay, angle = self.pad
        self.pad_box = draw.in_view(draw.box_around(px, py, ax, ay, self.canvas.shape), "whisker pad")
        self.pad_margin = int(np.ceil(8 * self.s)) + 1
        y0, y1, x0, x1 = self.pad_box
        m = self.pad_margin
        ys, xs = draw.grid((y0 - m, y1 + m, x0 - m, x1 + m))
        rows = np.sin((ys - py) * 2 * np.pi / (7 * self.s)) ** 8  # follicle rows
        dots = np.sin((xs - px) * 2 * np.pi / (6 * self.s) + 3 * np.sin(ys / (9 * self.s))) ** 8
        grain = draw.smooth_noise(rng, rows.shape[:1] + dots.shape[1:], 1.5 * self.s)
        texture = self.greys["pad"] - 45 * rows * dots + 10 * grain
        self.pad_texture = texture.astype(np.float32)
        self.pad_alpha = 0.85 * draw.ellipse(*draw.grid(self.pad_box), px, py, ax, ay, angle)

    def _mark_stamps(self) -> None:
        """One wheel rib (a small disc) at each quarter-pixel offset, ready to stamp."""
        radius = 5 * self.s
        self.mark_half = int(np.ceil(radius + 1))
        offsets = np.arange(-self.mark_half, self.mark_half + 1, dtype=np.float32)
        phases = np.arange(MARK_PHASES) / MARK_PHASES
        self.mark_stamps = [[draw.circle(offsets[:, None], offsets[None, :], fx, fy, radius) for fx in phases]
                            for fy in phases]

    # ---- per-frame geometry -----------------------------------------------------------------------------

    def geometry(self, state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Positions of every moving part at the sampled times, in this camera's pixels."""
        lay = self.layout
        h = _unit(lay.heading)
        out: dict[str, np.ndarray] = {}

        def put(name: str, x: np.ndarray, y: np.ndarray) -> None:
            out[f"{name}_x"], out[f"{name}_y"] = self.view.point(x, y)

        sniff = state["sniff"]
        put("nose_tip", lay.nose[0] + sniff * h[0], lay.nose[1] + sniff * h[1] - 0.3 * np.abs(sniff))
        cx, cy = lay.eye[0] + state["pupil_dx"], lay.eye[1] + state["pupil_dy"]
        r = state["pupil_diameter"] / 2
        # extremes of the pupil in the canonical (left-looking) frame, then mapped: on the right camera
        # pupil_right_r lands on the left of the image, as it does in IBL's flipped right-camera frames
        extremes = {"top": (0, -1), "right": (1, 0), "bottom": (0, 1), "left": (-1, 0)}
        for name, (dx, dy) in extremes.items():
            put(f"pupil_{name}_r", cx + dx * r, cy + dy * r)
        put("pupil", cx, cy)
        out["pupil_radius"] = r * self.s
        # the upper lid falls from just above the eye to just below it, covering the pupil from the top:
        # each pupil point is hidden once the lid comes down to it (a camera pixel of margin for the lid's
        # soft edge); the pupil as a whole, for its diameter, as soon as the lid touches it, because its
        # outline is then no longer a circle
        eye_y, eye_ry = lay.eye[1], lay.eye_axes[1]
        lid = eye_y - 1.1 * eye_ry + state["eyelid"] * 2.3 * eye_ry
        out["lid_y"] = lid * self.s
        for name, (_, dy) in extremes.items():
            out[f"pupil_{name}_r_hidden"] = lid > cy + dy * r - 1 / self.s
        out["pupil_hidden"] = out["pupil_top_r_hidden"]

        reach = lay.spout_tip - lay.mouth
        u = reach / np.hypot(*reach)
        across = np.array([-u[1], u[0]]) * TONGUE_HALF_WIDTH
        tip = lay.mouth[:, None] + np.outer(reach, state["tongue"])
        put("tongue_tip", tip[0], tip[1])
        put("tongue_end_l", tip[0] + across[0], tip[1] + across[1])  # the upper corner in the canonical frame
        put("tongue_end_r", tip[0] - across[0], tip[1] - across[1])
        out["tongue_visible"] = state["tongue"] > LICK_VISIBLE

        groom = state["groom"]
        rub = np.outer(h, state["rub_along"]) + np.outer([-h[1], h[0]], state["rub_across"])
        for role, side in (("near", self.near_side), ("far", self.far_side)):
            angle = lay.paw_angles[role == "far"] + state[f"paw_{side}_travel"] / WHEEL_RADIUS_PX
            # the near paw stands on the rim in front of the wheel; the far paw is behind the wheel face and
            # disappears whenever its centre sinks below the rim line
            height = state[f"paw_{side}_height"]
            lift = height if role == "far" else PAW_AXES[1] + 0.5 * height
            radius = WHEEL_RADIUS_PX + lift
            rim = lay.wheel[:, None] + radius * np.array([np.cos(angle), np.sin(angle)])
            # grooming: both paws rise from the rim to the face and stroke it together
            paw = rim + groom * (lay.groom[role == "far"][:, None] + rub - rim)
            put(f"paw_{role}", paw[0], paw[1])
            out[f"paw_{role}_angle"] = angle
            above_rim = np.hypot(*(paw - lay.wheel[:, None])) > WHEEL_RADIUS_PX
            out[f"paw_{role}_visible"] = above_rim if role == "far" else np.ones(len(lift), bool)
        for name in ("tube_top", "tube_bottom"):
            x, y = self.anchor_points[name]
            out[f"{name}_x"], out[f"{name}_y"] = np.full(len(state["sniff"]), x), np.full(len(state["sniff"]), y)
        out["wheel"] = state["wheel"]
        out["whisk"] = state["whisk"] * self.s
        out["gain"] = state["gain"]
        return out

    def truth(self, geometry: dict[str, np.ndarray]) -> pd.DataFrame:
        """The pose table the networks should output: NaN and likelihood 0 where a point is hidden."""
        always = np.ones(len(geometry["pupil_hidden"]), bool)
        visible = {
            "nose_tip": always, "tube_top": always, "tube_bottom": always,  # the spout never moves
            "tongue": geometry["tongue_visible"], "paw_r": geometry["paw_near_visible"], "paw_l": geometry["paw_far_visible"],
            **{point: ~geometry[f"{point}_hidden"] for point in self.camera.points if point.startswith("pupil")},
        }
        source = {"paw_r": "paw_near", "paw_l": "paw_far"}
        columns = {}
        for point in self.camera.points:
            seen = visible[point.split("_")[0] if point.startswith("tongue") else point]
            key = source.get(point, point)
            columns[f"{point}_x"] = np.where(seen, geometry[f"{key}_x"], np.nan)
            columns[f"{point}_y"] = np.where(seen, geometry[f"{key}_y"], np.nan)
            columns[f"{point}_likelihood"] = seen.astype(np.float64)
        return pd.DataFrame(columns)

    def paw_states(self, behaviour: Behaviour, times: np.ndarray) -> pd.DataFrame:
        """The true state of each tracked paw at ``times``, with the pose table's names: ``paw_r`` is the near paw."""
        return pd.DataFrame({"paw_r": behaviour.paw_state(times, self.near_side), "paw_l": behaviour.paw_state(times, self.far_side)})

    def pupil_diameter(self, geometry: dict[str, np.ndarray]) -> np.ndarray:
        return np.where(geometry["pupil_hidden"], np.nan, 2 * geometry["pupil_radius"])

    # ---- drawing ---------------------------------------------------------------------------------------

    def draw(self, now: dict[str, np.ndarray], before: dict[str, np.ndarray], after: dict[str, np.ndarray], i: int) -> np.ndarray:
        """Frame ``i`` of the chunk: ``before``/``after`` are the geometry at the exposure's start and end (blur)."""
        c = self.canvas
        c.start(float(now["gain"][i]))
        self._draw_snout(now, i)
        self._draw_eye(now, i)
        self._draw_tongue(before, after, i)
        self._draw_wheel_marks(now, i)
        self._draw_paw(before, after, i, "far")
        self._draw_paw(before, after, i, "near")
        return c.finish()

    def _draw_snout(self, g: dict[str, np.ndarray], i: int) -> None:
        c, s, h = self.canvas, self.s, self.heading
        nx, ny = float(g["nose_tip_x"][i]), float(g["nose_tip_y"][i])
        ax, ay = (a * s for a in self.layout.snout_axes)
        cx, cy = nx - ax * np.cos(h), ny - ax * np.sin(h)
        box = draw.ellipse_box(cx, cy, ax, ay, c.shape)
        if box is not None:
            ys, xs = draw.grid(box)
            y0, y1, x0, x1 = box
            # the fur moves with the sniffing snout (to the nearest pixel) rather than sliding under it
            dx = FUR_PAD - int(round(nx - self.anchor_points["nose_rest"][0]))
            dy = FUR_PAD - int(round(ny - self.anchor_points["nose_rest"][1]))
            fur = self._fur[y0 + dy:y1 + dy, x0 + dx:x1 + dx] + (self.greys["snout"] - self.greys["fur"])
            c.paint(box, draw.ellipse(ys, xs, cx, cy, ax, ay, h), fur)
        # whisker pad: the texture slides with whisking; the pad outline stays put
        shift = int(round(float(g["whisk"][i])))
        m = self.pad_margin
        y0, y1, x0, x1 = self.pad_box
        texture = self.pad_texture[m:m + y1 - y0, m + shift:m + shift + x1 - x0]
        c.paint(self.pad_box, self.pad_alpha, texture)
        # the rhinarium: a dark naked pad just behind the tip, leaving a rim of fur so the tip itself is a
        # sharp fur-on-background edge
        rx, ry = nx - 12 * s * np.cos(h), ny - 12 * s * np.sin(h)
        box = draw.ellipse_box(rx, ry, 7 * s, 10 * s, c.shape)
        if box is not None:
            c.paint(box, draw.ellipse(*draw.grid(box), rx, ry, 7 * s, 10 * s, h), self.greys["rhinarium"])

    def _draw_eye(self, g: dict[str, np.ndarray], i: int) -> None:
        c = self.canvas
        ex, ey, eax, eay, eangle = self.eye
        box = draw.in_view(draw.ellipse_box(ex, ey, eax, eay, c.shape), "eye")
        ys, xs = draw.grid(box)
        eye = draw.ellipse(ys, xs, ex, ey, eax, eay, eangle)
        pupil = draw.circle(ys, xs, float(g["pupil_x"][i]), float(g["pupil_y"][i]), float(g["pupil_radius"][i]))
        # the corneal reflection of the infrared lamp: fixed in the camera, off the pupil's usual range
        glint = draw.circle(ys, xs, ex - 0.62 * eax, ey - 0.5 * eay, max(2.5 * self.s, 1.2))
        grey = self.greys
        inside = grey["eye"] + pupil * (grey["pupil"] - grey["eye"])
        inside = inside + glint * (grey["glint"] - inside)
        lid = np.clip(float(g["lid_y"][i]) - ys + 0.5, 0.0, 1.0)
        c.paint(box, eye, inside + lid * (grey["lid"] - inside))

    def _draw_tongue(self, before: dict[str, np.ndarray], after: dict[str, np.ndarray], i: int) -> None:
        c, s = self.canvas, self.s
        mx, my = self.mouth
        path = _blur_path(before, after, i, "tongue_tip")
        tips = [(x, y) for x, y in path if np.hypot(x - mx, y - my) > self.tongue_shortest]
        if not tips:
            return
        box = draw.union(*(draw.segment_box(mx, my, x, y, (TONGUE_HALF_WIDTH + 1) * s, c.shape) for x, y in tips))
        if box is None:
            return
        ys, xs = draw.grid(box)
        alpha = sum(draw.bar(ys, xs, mx, my, x, y, TONGUE_HALF_WIDTH * s, 2 * s) for x, y in tips) / len(path)
        c.paint(box, alpha, self.greys["tongue"])

    def _draw_wheel_marks(self, g: dict[str, np.ndarray], i: int) -> None:
        """Ribs on the wheel face that turn with it, so wheel motion shows in the video."""
        lay, c, s = self.layout, self.canvas, self.s
        angles = float(g["wheel"][i]) + 2 * np.pi * np.arange(N_WHEEL_MARKS) / N_WHEEL_MARKS
        x, y = self.view.point(lay.wheel[0] + (WHEEL_RADIUS_PX - 30) * np.cos(angles),
                               lay.wheel[1] + (WHEEL_RADIUS_PX - 30) * np.sin(angles))
        for k in np.flatnonzero((y > -10 * s) & (y < c.shape[0] + 10 * s)):
            xi, yi = int(np.floor(x[k])), int(np.floor(y[k]))
            stamp = self.mark_stamps[int((y[k] - yi) * MARK_PHASES)][int((x[k] - xi) * MARK_PHASES)]
            c.stamp(yi - self.mark_half, xi - self.mark_half, stamp, self.greys["wheel_mark"])

    def _draw_paw(self, before: dict[str, np.ndarray], after: dict[str, np.ndarray], i: int, role: str) -> None:
        c, s, lay = self.canvas, self.s, self.layout
        centres = _blur_path(before, after, i, f"paw_{role}")
        shoulder = self._pt(lay.shoulders[role == "far"])
        px, py = centres[len(centres) // 2]
        ax, ay = PAW_AXES[0] * s, PAW_AXES[1] * s
        box = draw.union(*(draw.ellipse_box(x, y, ax, ay, c.shape) for x, y in centres),
                         draw.segment_box(*shoulder, px, py, 13 * s, c.shape))
        if box is None:
            return
        ys, xs = draw.grid(box)
        dim = 0.8 if role == "far" else 1.0  # the far side is further from the lamp
        # across the rim, i.e. along the paw: the paw lies tangent to the wheel
        angle = self.view.angle(float(before[f"paw_{role}_angle"][i]) + np.pi / 2)
        limb = draw.capsule(ys, xs, *shoulder, px, py, 12 * s)
        paw = sum(draw.ellipse(ys, xs, x, y, ax, ay, angle) for x, y in centres) / len(centres)
        core = sum(draw.circle(ys, xs, x, y, 5 * s) for x, y in centres) / len(centres)
        if role == "far":
            # behind the wheel: the wheel face hides whatever of the far leg is below the rim
            wx, wy, wr = self.wheel
            hidden = 1 - draw.circle(ys, xs, wx, wy, wr)
            limb, paw, core = limb * hidden, paw * hidden, core * hidden
        grey = self.greys
        c.paint(box, limb, grey["limb"] * dim)
        c.paint(box, paw, grey["paw"] * dim)
        c.paint(box, core, grey["paw_core"] * dim)


def _blur_path(before: dict[str, np.ndarray], after: dict[str, np.ndarray], i: int, name: str) -> list[tuple[float, float]]:
    """Positions of a point through the exposure, one per pixel of travel: their mean coverage is motion blur."""
    x0, y0 = float(before[f"{name}_x"][i]), float(before[f"{name}_y"][i])
    x1, y1 = float(after[f"{name}_x"][i]), float(after[f"{name}_y"][i])
    n = int(min(MAX_BLUR_SAMPLES, 1 + np.hypot(x1 - x0, y1 - y0) // BLUR_STEP))
    if n == 1:
        return [((x0 + x1) / 2, (y0 + y1) / 2)]
    return [(x0 + (x1 - x0) * k / (n - 1), y0 + (y1 - y0) * k / (n - 1)) for k in range(n)]
