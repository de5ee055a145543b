"""Figures of a processed session (matplotlib, Agg, no display needed).

* ``traces``: pose, pupil diameter, motion energy, wheel speed and licks over the session (one tick per lick
  event, and IBL's lick frames, ``licks.times``, beside them);
* ``trial_averages``: those signals around stimulus onset and feedback, correct and error trials apart, licks
  as lick events per second;
* ``qc_summary``: per camera, an example frame with the mean position of every point and the QC checks;
* ``paw_states`` (only with a paw-states table): per side camera and paw, an ethogram of the most probable
  Lightning Action state over the session, and each state's probability around stimulus onset and feedback,
  correct and error trials apart.
"""
from __future__ import annotations

import io
import logging
import warnings
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter1d

from iblvideo.cameras import CAMERAS
from iblvideo.extras import needs_extra
from iblvideo.io.alf import LICK_EVENTS, LICKS, QC_REPORT, TRIALS, WHEEL_POSITION, WHEEL_TIMES, SessionPaths
from iblvideo.io.atomic import atomic_path, refuse_overwrite
from iblvideo.measures.qc import BOUNDING_BOXES, LICK_NAN_LIMIT, PAW_NAN_FAIL, PAW_NAN_WARNING, PUPIL_STD_LIMIT
from iblvideo.results.load import CameraResults, SessionResults, load_session, point_colour
from iblvideo.video.reader import VideoReader

with needs_extra("figures"):
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

log = logging.getLogger(__name__)

WINDOW = (-0.5, 1.5)  # seconds around each trial event
EVENTS = {"stimOn_times": "stimulus onset", "feedback_times": "feedback"}
OUTCOMES = {1: ("correct", "tab:blue"), -1: ("error", "tab:red")}
MARK_COLOUR = "#ffd000"  # the QC box and the mean of all points: visible on grey frames and white legends
QC_COLOURS = {"PASS": "#b7e4c7", "WARNING": "#ffe08a", "FAIL": "#f4a3a3", "CRITICAL": "#d46a6a", "NOT_SET": "#e0e0e0"}
WHEEL_HZ = 250.0
LICK_BIN = 0.1  # seconds: a bin holds about one lick of a 6-8 Hz bout
LICK_RATE = "lick events per second"
MIN_TRIALS = 3  # fewer trials of a condition make a mean without meaning: drawn faint, without a SEM band
# what each QC check's value counts; checks without one only pass or fail
QC_UNITS = {"mean_in_bbox": "px", "pupil_blocked": "px (SD of raw diameter)", "pupil_diameter_snr": "ratio (var smooth / var residual)",
            "paw_close_nan": "NaN fraction", "paw_far_nan": "NaN fraction", "decode_errors": "frames"}


def _rgb(point: str) -> tuple[float, float, float]:
    red, green, blue = point_colour(point)
    return red / 255, green / 255, blue / 255


def _side_cameras(results: SessionResults) -> list[CameraResults]:
    return [c for name, c in results.cameras.items() if name != "body"]


def _zscore(values: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return (values - np.nanmean(values)) / np.nanstd(values)


def wheel_speed(times: np.ndarray, position: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Wheel speed (rad/s, unsigned) on a regular 250 Hz grid, smoothed over 20 ms: encoder ticks are coarse."""
    grid = np.arange(times[0], times[-1], 1 / WHEEL_HZ)
    velocity = np.gradient(np.interp(grid, times, position)) * WHEEL_HZ
    return grid, np.abs(gaussian_filter1d(velocity, 0.02 * WHEEL_HZ))


def _no_data(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_yticks([])


# --- traces over the session -------------------------------------------------------------------

def _trace_panels(results: SessionResults) -> list[tuple[str, Callable[[Axes], None]]]:
    side = _side_cameras(results)
    main = side[0] if side else next(iter(results.cameras.values()))
    panels = [
        (f"x (px), {main.camera}", lambda ax: _plot_pose(ax, main, 0)),
        (f"y (px), {main.camera}", lambda ax: _plot_pose(ax, main, 1)),
    ]
    # each side camera on its own axis: the left video's pupil is about twice the right's in pixels
    with_pupil = [camera for camera in side if camera.features is not None]
    panels += [(f"pupil diameter (px), {c.camera}", partial(_plot_pupil, camera=c)) for c in with_pupil]
    if side and not with_pupil:
        panels.append(("pupil diameter (px)", lambda ax: _no_data(ax, "no feature tables (iblvideo features)")))
    panels.append(("motion energy (z)", lambda ax: _plot_motion_energy(ax, results)))
    panels.append(("wheel speed (rad/s)", lambda ax: _plot_wheel(ax, results)))
    panels.append(("licks", lambda ax: _plot_licks(ax, results)))
    return panels


def _plot_pose(ax: Axes, camera: CameraResults, axis: int) -> None:
    times = camera.frame_times()
    for point in camera.points:
        ax.plot(times, camera.confident_xy(point)[:, axis], lw=0.8, color=_rgb(point), label=point)
    if axis == 1:
        ax.invert_yaxis()  # image rows grow downwards: up on the plot is up in the frame


def _plot_pupil(ax: Axes, camera: CameraResults) -> None:
    assert camera.features is not None
    times = camera.frame_times()
    ax.plot(times, camera.features["pupilDiameter_raw"], lw=0.5, color="tab:purple", alpha=0.35, label="raw")
    ax.plot(times, camera.features["pupilDiameter_smooth"], lw=1.2, color="tab:purple", label="smoothed")


def _plot_motion_energy(ax: Axes, results: SessionResults) -> None:
    energies = [(c.camera, c.frame_times(), c.motion_energy) for c in results.cameras.values() if c.motion_energy is not None]
    for camera, times, energy in energies:
        ax.plot(times[: len(energy)], _zscore(energy), lw=0.5, alpha=0.8, label=camera)
    if not energies:
        _no_data(ax, "no motion energy (iblvideo motion-energy)")


def _plot_wheel(ax: Axes, results: SessionResults) -> None:
    if results.wheel is None:
        return _no_data(ax, "no wheel data")
    ax.plot(*wheel_speed(*results.wheel), lw=0.7, color="0.2")


def _plot_licks(ax: Axes, results: SessionResults) -> None:
    """Lick events (one tick per lick) above IBL's lick frames (every frame where a tongue coordinate jumps)."""
    events = None if results.lick_events is None else results.lick_events["times"].to_numpy(float)
    rows = [(name, times, colour) for name, times, colour in (("lick events", events, "k"), ("IBL lick frames", results.licks, "0.55"))
            if times is not None]
    if not rows:
        return _no_data(ax, "no lick times (iblvideo features)")
    offsets = [len(rows) - row - 0.5 for row in range(len(rows))]  # the first row on top
    for (_, times, colour), offset in zip(rows, offsets, strict=True):
        ax.eventplot(times, colors=colour, lineoffsets=offset, linelengths=0.8, linewidths=0.8)
    ax.set_yticks(offsets, [name for name, _, _ in rows], fontsize=7)
    ax.set_ylim(0, len(rows))


def _mark_trials(ax: Axes, results: SessionResults) -> None:
    """Thin lines at stimulus onsets (green) and feedback (blue correct, red error)."""
    trials = results.trials
    if trials is None:
        return
    for t in trials["stimOn_times"].dropna():
        ax.axvline(t, color="tab:green", lw=0.6, alpha=0.6, zorder=0)
    for t, outcome in zip(trials["feedback_times"], trials["feedbackType"], strict=True):
        if np.isfinite(t):
            ax.axvline(t, color=OUTCOMES.get(int(outcome), ("", "0.5"))[1], lw=0.6, ls="--", alpha=0.6, zorder=0)


def traces_figure(results: SessionResults) -> Figure:
    panels = _trace_panels(results)
    figure = Figure(figsize=(12, 1.8 * len(panels) + 0.6), layout="constrained")
    axes = figure.subplots(len(panels), 1, sharex=True)
    for ax, (label, plot) in zip(axes, panels, strict=True):
        plot(ax)
        _mark_trials(ax, results)
        ax.set_ylabel(label)
        if ax.get_legend_handles_labels()[0] and not label.startswith("y (px)"):  # y shares the x legend
            ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7, frameon=False)
    clock = "session time" if any(c.times is not None for c in results.cameras.values()) else "frame / nominal rate"
    axes[-1].set_xlabel(f"{clock} (s); green: stimulus onset, dashed: feedback (blue correct, red error)")
    figure.suptitle(f"{results.name}: traces")
    return figure


# --- trial averages ----------------------------------------------------------------------------

def peri_event(times: np.ndarray, values: np.ndarray, events: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """(n_events, n_offsets) values at ``events + offsets``, linearly interpolated over NaN gaps.

    Events whose window is not wholly recorded are all NaN: a trial that drops out part-way would put
    a step into the average.
    """
    good = np.isfinite(values)
    if good.sum() < 2:
        return np.full((len(events), len(offsets)), np.nan)
    samples = np.interp(events[:, None] + offsets, times[good], values[good])
    recorded = (events + offsets[0] >= times[good][0]) & (events + offsets[-1] <= times[good][-1])
    samples[~recorded] = np.nan
    return samples


def condition_label(label: str, n: int) -> str:
    """``label (n=…)``, saying so when the condition has too few trials for its mean to be trusted."""
    return f"{label} (n={n})" if n >= MIN_TRIALS else f"{label} (n={n} < {MIN_TRIALS}: no band)"


def _mean_sem(ax: Axes, offsets: np.ndarray, samples: np.ndarray, colour: str, label: str) -> None:
    """Mean and SEM band over trials; a condition of fewer than MIN_TRIALS trials is a faint dashed mean alone."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # offsets with no trial, or a single trial
        mean = np.nanmean(samples, axis=0)
        sem = np.nanstd(samples, axis=0) / np.sqrt(np.sum(np.isfinite(samples), axis=0))
    if len(samples) < MIN_TRIALS:
        ax.plot(offsets, mean, color=colour, lw=1.0, ls=":", alpha=0.5, label=condition_label(label, len(samples)))
        return
    ax.plot(offsets, mean, color=colour, lw=1.3, label=condition_label(label, len(samples)))
    ax.fill_between(offsets, mean - sem, mean + sem, color=colour, alpha=0.25, lw=0)


def _signals(results: SessionResults) -> dict[str, tuple[np.ndarray, np.ndarray] | None]:
    """Continuous signals to average: name -> (times, values), None when the session lacks them."""
    signals: dict[str, tuple[np.ndarray, np.ndarray] | None] = {
        "wheel speed (rad/s)": wheel_speed(*results.wheel) if results.wheel is not None else None,
    }
    for camera in _side_cameras(results):
        if camera.features is not None:
            signals[f"pupil diameter (px), {camera.camera}"] = (camera.frame_times(), camera.features["pupilDiameter_smooth"].to_numpy(float))
        if camera.speeds is not None:
            signals[f"nose speed (px/s), {camera.camera}"] = (camera.frame_times(), camera.speeds["nose_tip"].to_numpy(float))
    for camera in results.cameras.values():
        if camera.motion_energy is not None:
            signals[f"motion energy (z), {camera.camera}"] = (camera.frame_times()[: len(camera.motion_energy)], _zscore(camera.motion_energy))
    return signals


def _lick_rate(licks: np.ndarray, events: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Licks per second in LICK_BIN bins around ``events``: bin centres and (n_events, n_bins) rates."""
    edges = np.arange(WINDOW[0], WINDOW[1] + LICK_BIN / 2, LICK_BIN)
    counts = np.stack([np.histogram(licks - event, edges)[0] for event in events]) if len(events) else np.zeros((0, len(edges) - 1))
    return edges[:-1] + LICK_BIN / 2, counts / LICK_BIN


def trial_average_figure(results: SessionResults) -> Figure:
    signals = _signals(results)
    rows = [*signals, LICK_RATE]
    licks = None if results.lick_events is None else results.lick_events["times"].to_numpy(float)
    figure = Figure(figsize=(10, 1.9 * len(rows) + 0.8), layout="constrained")
    axes = figure.subplots(len(rows), len(EVENTS), sharex=True, squeeze=False)
    trials = results.trials
    offsets = np.arange(WINDOW[0], WINDOW[1], 0.01)
    for col, (event, event_name) in enumerate(EVENTS.items()):
        axes[0, col].set_title(f"aligned to {event_name}")
        axes[-1, col].set_xlabel(f"time from {event_name} (s)")
        for row, name in enumerate(rows):
            ax = axes[row, col]
            ax.axvline(0, color="0.5", lw=0.8)
            if trials is None:
                _no_data(ax, "no trials table")
                continue
            for outcome, (label, colour) in OUTCOMES.items():
                chosen = trials[trials["feedbackType"] == outcome][event].dropna().to_numpy(float)
                if not len(chosen):
                    continue
                if name == LICK_RATE:
                    if licks is not None:
                        _mean_sem(ax, *_lick_rate(licks, chosen), colour, label)
                elif (signal := signals[name]) is not None:
                    _mean_sem(ax, offsets, peri_event(*signal, chosen, offsets), colour, label)
            if col == 0:
                ax.set_ylabel(name, fontsize=8)
    if trials is not None:
        axes[0, -1].legend(loc="upper right", fontsize=7, frameon=False)
    figure.suptitle(f"{results.name}: trial averages (mean ± SEM; dotted, no band: under {MIN_TRIALS} trials)")
    return figure


# --- paw states --------------------------------------------------------------------------------

# IBL's states; a set of other states gets tab10's colours in its own order
STATE_COLOURS = {"background": "#d9d9d9", "still": "#4c72b0", "move": "#dd8452", "wheel_turn": "#55a868", "groom": "#c44e52"}
NO_STATE_COLOUR = "white"  # frames without a prediction (IBL's last T mod 500)
OUTCOME_STYLES = {1: ("correct", "-"), -1: ("error", "--")}


def state_colours(states: list[str]) -> list[str]:
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    other = colormaps["tab10"]
    return [STATE_COLOURS.get(state) or to_hex(other(k % 10)) for k, state in enumerate(states)]


def _plot_ethogram(ax: Axes, camera: CameraResults, paw: str) -> None:
    from matplotlib.colors import ListedColormap

    states, _ = camera.paw_states(paw)
    ethogram = np.ma.masked_less(camera.paw_state_ethogram(paw), 0)
    cmap = ListedColormap(state_colours(states)).with_extremes(bad=NO_STATE_COLOUR)
    times = camera.frame_times()
    ax.imshow(ethogram[None, :], aspect="auto", cmap=cmap, vmin=-0.5, vmax=len(states) - 0.5, interpolation="nearest",
              extent=(times[0], times[-1], 0, 1))
    ax.set_yticks([])
    ax.set_ylabel(f"{camera.camera}\n{paw}", fontsize=8)


def _plot_state_averages(ax: Axes, results: SessionResults, camera: CameraResults, paw: str, event: str) -> None:
    states, probabilities = camera.paw_states(paw)
    trials = results.trials
    ax.axvline(0, color="0.5", lw=0.8)
    if trials is None:
        _no_data(ax, "no trials table")
        return
    offsets = np.arange(WINDOW[0], WINDOW[1], 0.01)
    times = camera.frame_times()
    for outcome, (label, style) in OUTCOME_STYLES.items():
        chosen = trials[trials["feedbackType"] == outcome][event].dropna().to_numpy(float)
        if not len(chosen):
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # offsets with no predicted trial
            for k, (state, colour) in enumerate(zip(states, state_colours(states), strict=True)):
                mean = np.nanmean(peri_event(times, probabilities[:, k], chosen, offsets), axis=0)
                ax.plot(offsets, mean, style, color=colour, lw=1.2, label=f"{state}, {label} (n={len(chosen)})",
                        alpha=1.0 if len(chosen) >= MIN_TRIALS else 0.4)
    ax.set_ylim(0, 1)


def paw_states_figure(results: SessionResults) -> Figure:
    rows = [(camera, paw) for camera in _side_cameras(results) for paw in camera.paws]
    figure = Figure(figsize=(14, 1.9 * len(rows) + 1.2), layout="constrained")
    axes = figure.subplots(len(rows), 1 + len(EVENTS), squeeze=False, width_ratios=[2.4, 1, 1])
    for row, (camera, paw) in enumerate(rows):
        _plot_ethogram(axes[row, 0], camera, paw)
        for col, event in enumerate(EVENTS, start=1):
            _plot_state_averages(axes[row, col], results, camera, paw, event)
    axes[0, 0].set_title("most probable state (white: no prediction)")
    for col, event_name in enumerate(EVENTS.values(), start=1):
        axes[0, col].set_title(f"P(state) aligned to {event_name}")
        axes[-1, col].set_xlabel(f"time from {event_name} (s)")
    axes[-1, 0].set_xlabel("session time (s)")
    handles, labels = axes[0, -1].get_legend_handles_labels()
    if handles:
        figure.legend(handles, labels, loc="outside lower center", ncol=5, fontsize=7, frameon=False)
    figure.suptitle(f"{results.name}: paw states (Lightning Action); solid: correct, dashed: error trials")
    return figure


def has_paw_states(results: SessionResults) -> bool:
    return any(camera.paws for camera in _side_cameras(results))


# --- QC summary --------------------------------------------------------------------------------

def example_frame(camera: CameraResults) -> np.ndarray | None:
    """The middle frame of the camera's video, or None without a readable video."""
    if camera.video is None:
        return None
    with VideoReader(camera.video) as reader:
        return reader[len(reader) // 2]


def _mean_positions(ax: Axes, camera: CameraResults) -> None:
    """Each point's mean position (where confident), and the mean over all points that QC boxes in."""
    means = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # points never confidently tracked
        for point in camera.points:
            means[point] = np.nanmean(camera.confident_xy(point), axis=0)
    for point, (x, y) in means.items():
        if np.isfinite(x) and np.isfinite(y):
            ax.plot(x, y, "o", ms=6, mfc=_rgb(point), mec="k", label=point)
    xrange, yrange = BOUNDING_BOXES[camera.camera]
    ax.add_patch(Rectangle((xrange.start, yrange.start), len(xrange), len(yrange), fill=False, ec=MARK_COLOUR, ls="--", lw=1.2,
                           label="QC box (mean of all points)"))
    centre = np.nanmean([m for m in means.values()], axis=0) if means else (np.nan, np.nan)
    if np.all(np.isfinite(centre)):
        ax.plot(*centre, "+", ms=14, mew=2, color=MARK_COLOUR, label="mean of all points")


def _qc_table(ax: Axes, results: SessionResults, camera: str) -> None:
    ax.axis("off")
    report = (results.qc or {}).get("cameras", {}).get(camera)
    if report is None:
        ax.text(0.5, 0.5, "no QC report (iblvideo qc)", ha="center", va="center", color="0.4")
        return
    rows = [[name, _cell(name, check)] for name, check in report["checks"].items()] + [["camera outcome", report["outcome"]]]
    table = ax.table(cellText=rows, loc="upper center", colWidths=[0.62, 0.38])
    table.auto_set_font_size(False)
    table.set_fontsize(7)
    for row, (_, text) in enumerate(rows):
        table[row, 1].set_facecolor(QC_COLOURS.get(text.split()[0], "white"))


def qc_value(name: str, check: dict) -> str:
    """The check's value with its unit ("" without a value)."""
    value = check.get("value")
    if value is None:
        return ""
    if QC_UNITS.get(name) == "NaN fraction":
        return f"{value:.1%} NaN"
    unit = QC_UNITS.get(name, "").split(" (")[0]
    return f"{value:.3g} {unit}".rstrip()


def qc_threshold(name: str, camera: str) -> str:
    """IBL's threshold of the check for ``camera``, from ``measures.qc`` ("" for a pass/fail check without one)."""
    xrange, yrange = BOUNDING_BOXES[camera]
    thresholds = {
        "mean_in_bbox": f"FAIL outside x {xrange.start}-{xrange.stop - 1}, y {yrange.start}-{yrange.stop - 1} px",
        "decode_errors": "WARNING above 0 frames",
    }
    pupil = PUPIL_STD_LIMIT.get(camera)
    if pupil is not None:  # the side cameras: the body camera has neither pupil nor paw checks
        paw = f"WARNING above {PAW_NAN_WARNING:.0%}, FAIL above {PAW_NAN_FAIL:.0%}"
        thresholds |= {"pupil_blocked": f"FAIL above {pupil} px", "pupil_diameter_snr": f"FAIL below {pupil}",
                       "paw_close_nan": paw, "paw_far_nan": paw,
                       "lick_detection": f"FAIL when both tongue points are NaN in under {LICK_NAN_LIMIT:.0%} of frames"}
    return thresholds.get(name, "")


def _cell(name: str, check: dict) -> str:
    value = qc_value(name, check)
    return check["outcome"] + (f" ({value})" if value else "")


def qc_figure(results: SessionResults) -> Figure:
    cameras = list(results.cameras.values())
    figure = Figure(figsize=(4.6 * len(cameras), 6.6), layout="constrained")
    axes = figure.subplots(2, len(cameras), squeeze=False, height_ratios=[3, 2])
    for col, camera in enumerate(cameras):
        ax = axes[0, col]
        spec = CAMERAS[camera.camera]
        frame = example_frame(camera)
        if frame is None:
            frame = np.zeros((spec.height, spec.width), np.uint8)
        ax.imshow(frame, cmap="gray", vmin=0, vmax=255)
        _mean_positions(ax, camera)
        ax.set_xlim(0, frame.shape[1])
        ax.set_ylim(frame.shape[0], 0)
        ax.set_xticks([])
        ax.set_yticks([])
        outcome = ((results.qc or {}).get("cameras", {}).get(camera.camera) or {}).get("outcome", "no QC")
        ax.set_title(f"{camera.camera} camera: {outcome}")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.01), ncol=2, fontsize=6, frameon=False)
        _qc_table(axes[1, col], results, camera.camera)
    session_outcome = (results.qc or {}).get("outcome", "not run")
    figure.suptitle(f"{results.name}: QC {session_outcome}; example frame with mean point positions")
    return figure


FIGURES: dict[str, Callable[[SessionResults], Figure]] = {
    "traces": traces_figure, "trial_averages": trial_average_figure, "qc_summary": qc_figure,
}


def render_png(figure: Figure, dpi: int = 100) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def figures_of(results: SessionResults) -> dict[str, Callable[[SessionResults], Figure]]:
    """The figures the session has data for: every one of FIGURES, and the paw states when it has them."""
    return {**FIGURES, "paw_states": paw_states_figure} if has_paw_states(results) else FIGURES


def render_figures(results: SessionResults) -> dict[str, bytes]:
    """Every figure of the session as PNG bytes, by name."""
    return {name: render_png(make(results)) for name, make in figures_of(results).items()}


def result_inputs(session: Path, cameras: Iterable[CameraResults]) -> list[Path]:
    """Every file the result views read for ``cameras`` of ``session``: an output is never one of them."""
    paths = SessionPaths(session)
    files = [paths.session_file(name) for name in (TRIALS, WHEEL_TIMES, WHEEL_POSITION, LICKS, LICK_EVENTS, QC_REPORT)]
    for camera in cameras:
        files += [camera.source, paths.raw_video(camera.camera), paths.times(camera.camera), paths.features(camera.camera),
                  paths.speeds(camera.camera), paths.sniffs(camera.camera), *paths.motion_energy(camera.camera), paths.pawstates(camera.camera)]
    return files


def save_figures(session: str | Path, out: str | Path | None = None, tracker: str | None = None, force: bool = False) -> list[Path]:
    """Write every figure of ``tracker``'s pose tables (default: the only ones) as ``<out>/<name>.png``
    (default ``<session>/figures``) and return the paths; existing PNGs are kept unless ``force``."""
    results = load_session(session, tracker)
    folder = Path(out) if out else Path(session) / "figures"
    inputs = result_inputs(results.path, results.cameras.values())
    written = [refuse_overwrite(folder / f"{name}.png", inputs, force) for name in figures_of(results)]
    for path, png in zip(written, render_figures(results).values(), strict=True):
        with atomic_path(path) as tmp:
            tmp.write_bytes(png)
    log.info("%d figures written to %s", len(written), folder)
    return written
