"""Labeled videos: every keypoint, the motion-energy ROI and the frame number and time drawn on the frames.

Only the frames asked for are decoded: a frame range, or the frames of chosen trials (from the
trials table and the camera times). Text is rasterised with matplotlib's FreeType/Agg font
renderer; everything else is drawn straight into the numpy frames.
"""
from __future__ import annotations

import functools
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from iblvideo.errors import IblVideoError
from iblvideo.extras import needs_extra
from iblvideo.io.alf import TRIALS, SessionPaths, session_root
from iblvideo.io.atomic import atomic_path, refuse_overwrite
from iblvideo.io.session_files import read_trials
from iblvideo.progress import progress_bar
from iblvideo.results.load import CameraResults, load_camera, point_colour
from iblvideo.results.plots import result_inputs
from iblvideo.tracks import LIKELIHOOD_THRESHOLD
from iblvideo.video.reader import VideoInfo, VideoReader
from iblvideo.video.writer import VideoWriter

log = logging.getLogger(__name__)

FADE = 0.35  # opacity of a point whose likelihood is below 0.9
ROI_COLOUR = (255, 255, 255)
Segment = tuple[int, int]  # frames [start, stop)


def trial_segments(trials: pd.DataFrame, times: np.ndarray, numbers: list[int], source: Path) -> list[Segment]:
    """The frames filmed during each chosen trial (intervals_0 to intervals_1), merged where they touch."""
    outside = [n for n in numbers if n >= len(trials)]
    if outside:
        raise IblVideoError(source, f"no trial {outside[0]}: the session has {len(trials)} trials (numbered from 0)")
    segments = []
    for number in sorted(set(numbers)):
        start, end = trials.loc[number, ["intervals_0", "intervals_1"]]
        first, stop = np.searchsorted(times, start, "left"), np.searchsorted(times, end, "right")
        if first >= stop:
            raise IblVideoError(source, f"trial {number} ({start:.2f}-{end:.2f} s) lies outside the video")
        segments.append((int(first), int(stop)))
    merged = [segments[0]]
    for first, stop in segments[1:]:
        if first <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(stop, merged[-1][1]))
        else:
            merged.append((first, stop))
    return merged


@functools.lru_cache(maxsize=4)
def _font(pixels: int):
    with needs_extra("figures"):
        from matplotlib.font_manager import FontProperties, findfont
        from matplotlib.ft2font import FT2Font

    font = FT2Font(findfont(FontProperties(family="DejaVu Sans Mono", weight="bold")))
    font.set_size(pixels, 72)  # at 72 dpi a point is a pixel
    return font


def render_text(text: str, pixels: int) -> np.ndarray:
    """Anti-aliased coverage (0-1, float32) of ``text`` set ``pixels`` high."""
    with needs_extra("figures"):
        from matplotlib.ft2font import LoadFlags

    font = _font(pixels)
    font.set_text(text, 0.0, flags=LoadFlags.DEFAULT)
    font.draw_glyphs_to_bitmap(antialiased=True)
    return np.asarray(font.get_image(), dtype=np.float32) / 255


@functools.lru_cache(maxsize=8)
def _disc(radius: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column offsets of a filled disc."""
    dy, dx = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    inside = dy**2 + dx**2 <= radius**2 + radius  # + radius: rounder edges at small sizes
    return dy[inside], dx[inside]


def draw_disc(image: np.ndarray, x: float, y: float, radius: int, colour: tuple[int, int, int], opacity: float = 1.0) -> None:
    """Blend a filled disc into an RGB uint8 image in place, clipped at the border."""
    dy, dx = _disc(radius)
    rows, cols = dy + int(round(y)), dx + int(round(x))
    keep = (rows >= 0) & (rows < image.shape[0]) & (cols >= 0) & (cols < image.shape[1])
    rows, cols = rows[keep], cols[keep]
    pixels = image[rows, cols].astype(np.float32)
    image[rows, cols] = (pixels + opacity * (np.asarray(colour, np.float32) - pixels)).astype(np.uint8)


def draw_rectangle(image: np.ndarray, x: int, y: int, w: int, h: int, colour: tuple[int, int, int], thickness: int = 2) -> None:
    """Outline of a rectangle (top-left x, y; width, height), clipped at the border."""
    height, width = image.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, width), min(y + h, height)
    if x0 >= x1 or y0 >= y1:
        return
    image[y0:y0 + thickness, x0:x1] = colour
    image[max(y1 - thickness, y0):y1, x0:x1] = colour
    image[y0:y1, x0:x0 + thickness] = colour
    image[y0:y1, max(x1 - thickness, x0):x1] = colour


def draw_label(image: np.ndarray, text: str, pixels: int) -> None:
    """White text on a dark box in the top-left corner."""
    coverage = render_text(text, pixels)
    pad = max(2, pixels // 4)
    h, w = min(coverage.shape[0], image.shape[0] - 2 * pad), min(coverage.shape[1], image.shape[1] - 2 * pad)
    image[: h + 2 * pad, : w + 2 * pad] //= 4
    box = image[pad:pad + h, pad:pad + w].astype(np.float32)
    alpha = coverage[:h, :w, None]
    image[pad:pad + h, pad:pad + w] = (box + alpha * (255 - box)).astype(np.uint8)


class Labeler:
    """Draws one camera's keypoints, ROI and frame label onto its frames."""

    def __init__(self, results: CameraResults, width: int):
        self.results = results
        self.times = results.frame_times()
        self.radius = max(3, round(width / 200))
        self.text_pixels = max(12, round(width / 50))
        points = results.points
        self.colours = [point_colour(p) for p in points]
        self.xy = np.stack([results.tracks.point_xy(p) for p in points], axis=1)
        self.likelihood = np.stack([results.tracks.point_likelihood(p) for p in points], axis=1)

    def draw(self, index: int, grey: np.ndarray) -> np.ndarray:
        image = np.repeat(grey[:, :, None], 3, axis=2)
        roi = self.results.roi
        if roi is not None:
            draw_rectangle(image, roi.x, roi.y, roi.w, roi.h, ROI_COLOUR)
        if index < len(self.xy):
            for (x, y), likelihood, colour in zip(self.xy[index], self.likelihood[index], self.colours, strict=True):
                if not (np.isfinite(x) and np.isfinite(y)):
                    continue
                if likelihood >= LIKELIHOOD_THRESHOLD:
                    draw_disc(image, x, y, self.radius + 1, (0, 0, 0))  # a dark rim keeps confident points crisp
                    draw_disc(image, x, y, self.radius, colour)
                else:
                    draw_disc(image, x, y, self.radius, colour, FADE)
        time = f"  {self.times[index]:.3f} s" if index < len(self.times) else ""
        draw_label(image, f"frame {index}{time}", self.text_pixels)
        return image


def default_output(video: Path, frames: Segment | None, trials: list[int] | None) -> Path:
    """``<video stem>.labeled[.frames_A-B|.trials_N_M].mp4`` beside the video."""
    stem = video.name.removesuffix(".mp4").removesuffix(".raw")
    selection = f".frames_{frames[0]}-{frames[1]}" if frames else f".trials_{'_'.join(map(str, trials))}" if trials else ""
    return video.with_name(f"{stem}.labeled{selection}.mp4")


def label_video(video: str | Path, frames: Segment | None = None, trials: list[int] | None = None,
                out: str | Path | None = None, camera: str | None = None, tracker: str | None = None, force: bool = False) -> Path:
    """Write a labeled copy of ``video`` (all frames, a frame range, or chosen trials) and return its path;
    the points are ``tracker``'s (default: the only pose table of the camera). An existing file is kept
    unless ``force``; the video and the files it is labeled from never are."""
    video = Path(video)
    if frames and trials:
        raise IblVideoError(None, "choose frames or trials, not both")
    with VideoReader(video) as reader:
        info = reader.info
        cam = info.camera(camera)
        session = session_root(video.parent)
        if session is None:
            raise IblVideoError(video, "not inside an ALF session (<subject>/<date>/<number>); cannot find its pose table")
        results = load_camera(session, cam.name, tracker)
        segments = _segments(results, info, frames, trials, session)
        out = refuse_overwrite(Path(out) if out else default_output(video, frames, trials), [video, *result_inputs(session, [results])], force)
        labeler = Labeler(results, info.width)
        total = sum(stop - start for start, stop in segments)
        with atomic_path(out) as tmp, VideoWriter(tmp, info.width, info.height, info.fps) as writer, \
                progress_bar(total=total, desc=f"label {video.name}", unit="frame") as bar:
            for start, stop in segments:
                for index, grey in reader.frames(start, stop):
                    writer.write(labeler.draw(index, grey))
                    bar.update()
    log.info("%s: %d labeled frames -> %s", video.name, total, out)
    return out


def _segments(results: CameraResults, info: VideoInfo, frames: Segment | None, trials: list[int] | None, session: Path) -> list[Segment]:
    """The frame ranges to label: the chosen trials', the frame range (cut at the video's end), or every frame."""
    n_frames = info.n_frames
    if trials:
        table = SessionPaths(session).session_file(TRIALS)
        trials_table = read_trials(session, needs=("intervals_0", "intervals_1"))
        if trials_table is None:
            raise IblVideoError(table, "no trials table; cannot select frames by trial")
        if results.times is None:
            raise IblVideoError(table.parent, f"no usable {results.camera} camera times; cannot place trials in the video")
        return trial_segments(trials_table, results.times, trials, table)
    if frames:
        if frames[0] >= n_frames:
            raise IblVideoError(info.path, f"frames {frames[0]}:{frames[1]} start after the video's last frame ({n_frames - 1})")
        return [(frames[0], min(frames[1], n_frames))]
    return [(0, n_frames)]
