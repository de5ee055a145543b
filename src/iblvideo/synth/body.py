"""The body camera's scene: the mouse's trunk from above, on the wheel, with the base of the tail.

The trunk sways and leans with the mouse's posture (and with its pushes on the wheel); ``tail_start``
is where the thin, pale tail leaves the rear end of the trunk. Drawn in the camera's own pixels.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from iblvideo.cameras import Camera
from iblvideo.synth import draw

TRUNK_AXES = (160.0, 78.0)
TAIL_SEGMENTS = 10
TAIL_SEGMENT_PX = 15.0
TAIL_RADIUS = 6.5
RIDGE_PERIOD = 12  # px between the wheel's ridges as seen from above
WHEEL_PX_PER_RAD = 60.0  # how far the wheel's top surface travels in the image per radian


class BodyScene:
    """Renders the body camera and its ground truth (``tail_start``) from behaviour samples."""

    def __init__(self, camera: Camera, seed: int):
        self.camera = camera
        rng = np.random.default_rng([seed, 3])
        # the trunk left of centre, so that tail_start sits inside IBL's QC box (x 201-500, y 81-330)
        self.centre = np.array([235.0, 215.0]) + rng.uniform(-20, 20, 2)
        self.brightness = rng.uniform(0.85, 1.15)
        shape = (camera.height, camera.width)
        self.fur = (115.0 + 8 * draw.smooth_noise(rng, shape, 2.0) + 6 * draw.smooth_noise(rng, shape, 10.0)) * self.brightness
        self.canvas = draw.Canvas(self._background(rng, shape), rng)
        self._wheel_texture(rng)

    def _background(self, rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
        ys, xs = draw.grid((0, shape[0], 0, shape[1]))
        cx, cy = self.centre
        image = 30 * self.brightness * (1.1 - 0.4 * np.minimum(((xs - cx) ** 2 + (ys - cy) ** 2) / 400**2, 1))
        image = image + 4 * draw.smooth_noise(rng, shape, 20.0)
        bar = draw.capsule(ys, xs, cx - 190, cy - 200, cx - 190, cy + 200, 14)  # the head-fixation bar
        return np.clip(image + bar * (70 * self.brightness - image), 0, 255)

    def _wheel_texture(self, rng: np.random.Generator) -> None:
        """The wheel's top surface under the front of the trunk: ridges across it that slide as it turns."""
        cx, cy = self.centre
        self.wheel_box = draw.in_view(draw.box_around(cx - 60, cy, 110, 115, self.canvas.shape), "wheel")
        y0, y1, x0, x1 = self.wheel_box
        xs = np.arange(x0 - RIDGE_PERIOD, x1 + RIDGE_PERIOD, dtype=np.float32)[None, :]
        ridges = np.cos(2 * np.pi * xs / RIDGE_PERIOD) ** 2
        shading = 3 * draw.smooth_noise(rng, (y1 - y0, x1 - x0 + 2 * RIDGE_PERIOD), 3.0)
        self.ridges = (55 + 25 * ridges + shading) * self.brightness
        ys, xs = draw.grid(self.wheel_box)
        self.wheel_alpha = draw.bar(ys, xs, cx - 60, cy - 110, cx - 60, cy + 110, 105, 20)

    def anchors(self) -> dict[str, object]:
        """Static points: the trunk's centre at rest and the wheel's visible patch."""
        y0, y1, x0, x1 = self.wheel_box
        return {"trunk_rest": [round(float(v), 3) for v in self.centre], "wheel_box": [x0, y0, x1, y1]}

    def geometry(self, state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Trunk pose and tail at the sampled times, in camera pixels."""
        angle = state["posture_angle"]
        cx = self.centre[0] + state["posture_x"]
        cy = self.centre[1] + state["posture_y"]
        rear = TRUNK_AXES[0]  # the tail leaves the trunk at the rear tip of its outline
        return {
            "trunk_x": cx, "trunk_y": cy, "angle": angle,
            "tail_start_x": cx + rear * np.cos(angle), "tail_start_y": cy + rear * np.sin(angle),
            "tail_bend": state["tail_bend"], "wheel": state["wheel"], "gain": state["gain"],
        }

    def truth(self, geometry: dict[str, np.ndarray]) -> pd.DataFrame:
        n = len(geometry["tail_start_x"])
        return pd.DataFrame({"tail_start_x": geometry["tail_start_x"], "tail_start_y": geometry["tail_start_y"],
                             "tail_start_likelihood": np.ones(n)})

    def draw(self, now: dict[str, np.ndarray], before: dict[str, np.ndarray], after: dict[str, np.ndarray], i: int) -> np.ndarray:
        c = self.canvas
        c.start(float(now["gain"][i]))
        shift = int(round(float(now["wheel"][i]) * WHEEL_PX_PER_RAD)) % RIDGE_PERIOD
        y0, y1, x0, x1 = self.wheel_box
        c.paint(self.wheel_box, self.wheel_alpha, self.ridges[:, shift:shift + x1 - x0])
        cx, cy, angle = float(now["trunk_x"][i]), float(now["trunk_y"][i]), float(now["angle"][i])
        # trunk and head, whose tilt stays within a few degrees of horizontal
        box = draw.in_view(draw.box_around(cx - 30, cy, TRUNK_AXES[0] + 35, TRUNK_AXES[1] + 25, c.shape), "trunk")
        ys, xs = draw.grid(box)
        y0, y1, x0, x1 = box
        trunk = draw.ellipse(ys, xs, cx, cy, *TRUNK_AXES, angle)
        head = draw.ellipse(ys, xs, cx - 150 * np.cos(angle), cy - 150 * np.sin(angle), 62, 50, angle)
        c.paint(box, np.maximum(trunk, head), self.fur[y0:y1, x0:x1])
        self._draw_tail(now, i)
        return c.finish()

    def _draw_tail(self, g: dict[str, np.ndarray], i: int) -> None:
        """A pale tapering tail of short segments that bends with the mouse's posture."""
        c = self.canvas
        x, y = float(g["tail_start_x"][i]), float(g["tail_start_y"][i])
        heading = float(g["angle"][i])
        bend = float(g["tail_bend"][i])
        # start one radius out so that the tail's rounded root sits exactly at tail_start
        x, y = x + TAIL_RADIUS * np.cos(heading), y + TAIL_RADIUS * np.sin(heading)
        for k in range(TAIL_SEGMENTS):
            heading += 0.12 * bend
            nx, ny = x + TAIL_SEGMENT_PX * np.cos(heading), y + TAIL_SEGMENT_PX * np.sin(heading)
            radius = TAIL_RADIUS * (1 - 0.55 * k / TAIL_SEGMENTS)
            box = draw.box_around((x + nx) / 2, (y + ny) / 2, TAIL_SEGMENT_PX / 2 + radius, TAIL_SEGMENT_PX / 2 + radius, c.shape)
            if box is not None:
                c.paint(box, draw.capsule(*draw.grid(box), x, y, nx, ny, radius), 175 * self.brightness)
            x, y = nx, ny
