"""What the synthetic mouse does, on the session clock: trials, wheel, licks, blinks, pupil, sniffing, paws, posture.

Everything is drawn from one seeded generator, so a seed fixes the whole session. Continuous signals live
on a regular grid and are read at any time by linear interpolation; licks and blinks are event lists whose
shape in time is computed exactly. Sign conventions follow IBL: ``choice`` -1 is a counter-clockwise turn,
+1 clockwise, 0 no response; the wheel position (radians) grows counter-clockwise; a stimulus on the right
(``contrastRight``) is answered correctly by turning counter-clockwise (choice -1).
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.ndimage import gaussian_filter1d
from scipy.signal import lfilter

GRID_HZ = 200.0  # continuous behaviour signals (pupil, sniffing, whisking, paws, posture)
WHEEL_HZ = 1000.0
WHEEL_TICK = 2 * np.pi / (1024 * 4)  # IBL rotary encoder: 1024 lines read in X4 mode
WHEEL_RADIUS_PX = 480.0  # the wheel's radius in canonical left-camera pixels, to turn rotation into paw travel
CONTRASTS = np.array([1.0, 0.25, 0.125, 0.0625, 0.0])
NOGO_TIMEOUT = 4.0  # shorter than IBL's 60 s so that a few seconds of video still hold several trials
LICK_DURATION = 0.085  # seconds the tongue is out per lick: protrusion and retraction
LICK_VISIBLE = 0.08  # the tongue counts as visible when it is out more than this fraction of its reach
CAMERA_START = (0.02, 0.2)  # s after the session clock's zero that a camera's first frame comes
# every trial ends this long before the session's nominal end, which the slowest camera (30 Hz, its first
# frame at 0.02 s at the earliest) still films; the first starts late enough that IBL's QC window (from
# 0.5 s before its stimulus, itself at least 0.2 s into the trial) lies inside every camera's frames
TRIALS_MARGIN = 0.05
FIRST_TRIAL = CAMERA_START[1] + 0.5 - 0.2 + TRIALS_MARGIN


@dataclass(frozen=True)
class Behaviour:
    """One synthetic session's behaviour; ``sample`` reads its state at any times on the session clock."""

    span: float  # seconds of session clock covered: the video and a margin
    trials: pd.DataFrame
    wheel_times: np.ndarray
    wheel_position: np.ndarray
    lick_times: np.ndarray
    lick_spontaneous: np.ndarray
    lick_reach: np.ndarray
    blink_onsets: np.ndarray
    blink_durations: np.ndarray
    signals: dict[str, np.ndarray]  # name -> values on the GRID_HZ grid starting at 0

    def sample(self, times: np.ndarray) -> dict[str, np.ndarray]:
        """Every signal at ``times``: grid signals interpolated, plus tongue, eyelid and wheel state."""
        grid = np.arange(len(self.signals["pupil_diameter"])) / GRID_HZ
        state = {name: np.interp(times, grid, values) for name, values in self.signals.items()}
        state["tongue"] = self._tongue(times)
        state["eyelid"] = self._eyelid(times)
        state["wheel"] = np.interp(times, self.wheel_times, self.wheel_position)
        return state

    def _tongue(self, times: np.ndarray) -> np.ndarray:
        """Tongue protrusion as a fraction of the way to the spout: a parabola peaking at each lick time."""
        if not len(self.lick_times):
            return np.zeros_like(times)
        nearest = np.clip(np.searchsorted(self.lick_times, times), 1, len(self.lick_times)) - 1
        # the lick before and the lick after; licks never overlap, so the larger of the two is the one
        after = np.minimum(nearest + 1, len(self.lick_times) - 1)
        out = np.zeros_like(times)
        for k in (nearest, after):
            u = (times - self.lick_times[k]) / (LICK_DURATION / 2)
            out = np.maximum(out, self.lick_reach[k] * np.clip(1 - u * u, 0, None))
        return out

    def _eyelid(self, times: np.ndarray) -> np.ndarray:
        """Eyelid closure at ``times``: 0 open, 1 shut."""
        if not len(self.blink_onsets):
            return np.zeros_like(times)
        k = np.clip(np.searchsorted(self.blink_onsets, times, side="right") - 1, 0, None)
        u = (times - self.blink_onsets[k]) / self.blink_durations[k]
        blinking = (u >= 0) & (u <= 1)
        # the lid drops fast (first 35 %) and rises more slowly, as in a real blink
        shut = np.where(u < 0.35, u / 0.35, (1 - u) / 0.65)
        return np.where(blinking, _smoothstep(shut), 0.0)


def _smoothstep(u: np.ndarray) -> np.ndarray:
    u = np.clip(u, 0, 1)
    return u * u * (3 - 2 * u)


def _minimum_jerk(u: np.ndarray) -> np.ndarray:
    u = np.clip(u, 0, 1)
    return u**3 * (10 - 15 * u + 6 * u * u)


def _ou(rng: np.random.Generator, n: int, tau: float, sd: float, smooth: float = 0.02) -> np.ndarray:
    """An Ornstein-Uhlenbeck process on the grid (time constant ``tau`` s), lightly smoothed so it has a velocity."""
    a = np.exp(-1 / (GRID_HZ * tau))
    kicks = rng.standard_normal(n) * sd * np.sqrt(1 - a * a)
    kicks[0] = rng.standard_normal() * sd  # start in the stationary distribution
    return gaussian_filter1d(lfilter([1.0], [1.0, -a], kicks), smooth * GRID_HZ, mode="nearest")


def _bouts(rng: np.random.Generator, n: int, hz: tuple[float, float], amplitude: tuple[float, float],
           length: tuple[float, float], gap: tuple[float, float]) -> np.ndarray:
    """Rhythmic bouts (sniffing, whisking): sinusoids at ``hz`` with a smooth envelope, separated by pauses."""
    out = np.zeros(n)
    t = rng.uniform(*gap) / 2
    while t * GRID_HZ < n:
        seconds = rng.uniform(*length)
        first, last = int(t * GRID_HZ), min(n, int((t + seconds) * GRID_HZ))
        u = (np.arange(first, last) / GRID_HZ - t) / seconds
        envelope = np.sin(np.pi * np.clip(u, 0, 1)) ** 0.5
        phase = 2 * np.pi * rng.uniform(*hz) * u * seconds + rng.uniform(0, 2 * np.pi)
        out[first:last] += rng.uniform(*amplitude) * envelope * np.sin(phase)
        t += seconds + rng.uniform(*gap)
    return out


def _block_probabilities(rng: np.random.Generator) -> Iterator[float]:
    """IBL biased blocks: 90 unbiased trials, then blocks of 20-100 trials alternating P(left) 0.2 and 0.8."""
    for _ in range(90):
        yield 0.5
    probability = rng.choice([0.2, 0.8])
    while True:
        length = int(min(100, 20 + rng.exponential(40)))
        for _ in range(length):
            yield probability
        probability = 1.0 - probability


def _trials(rng: np.random.Generator, duration: float) -> pd.DataFrame:
    """IBL biased-choice-world trials, every event of each inside every camera's frames (of ``duration`` s)."""
    rows = []
    t = FIRST_TRIAL + rng.uniform(0.0, 0.25)
    blocks = _block_probabilities(rng)
    while t < duration:
        stim_on = t + rng.uniform(0.2, 0.5)  # the quiescence period the mouse must hold the wheel still
        go_cue = stim_on + rng.uniform(0.0, 0.003)
        contrast = rng.choice(CONTRASTS)
        probability_left = next(blocks)
        on_left = bool(rng.random() < probability_left)
        correct_choice = 1 if on_left else -1
        row = {
            "intervals_0": t, "stimOn_times": stim_on, "goCue_times": go_cue,
            "contrastLeft": contrast if on_left else np.nan, "contrastRight": np.nan if on_left else contrast,
            "probabilityLeft": probability_left,
        }
        if rng.random() < 0.05:
            row.update(choice=0, firstMovement_times=np.nan, response_times=go_cue + NOGO_TIMEOUT, feedbackType=-1)
        else:
            first_movement = go_cue + rng.lognormal(np.log(0.35), 0.4)
            p_correct = 0.5 + 0.45 * np.tanh(8 * contrast)
            correct = bool(rng.random() < p_correct)
            row.update(
                choice=correct_choice if correct else -correct_choice,
                firstMovement_times=first_movement,
                response_times=first_movement + rng.uniform(0.15, 0.45),
                feedbackType=1 if correct else -1,
            )
        row["feedback_times"] = row["response_times"] + rng.uniform(0.0, 0.002)
        row["rewardVolume"] = 2.0 if row["feedbackType"] == 1 else 0.0
        # IBL holds the screen 1 s after a reward and 2 s after an error before the next trial
        row["intervals_1"] = row["feedback_times"] + (1.0 if row["feedbackType"] == 1 else 2.0)
        if row["intervals_1"] > duration - TRIALS_MARGIN:
            break
        rows.append(row)
        t = row["intervals_1"] + rng.uniform(0.05, 0.4)
    columns = ["intervals_0", "intervals_1", "stimOn_times", "goCue_times", "response_times", "firstMovement_times",
               "choice", "feedback_times", "feedbackType", "contrastLeft", "contrastRight", "probabilityLeft",
               "rewardVolume"]
    table = pd.DataFrame(rows, columns=columns)
    return table.astype({c: "float64" for c in columns} | {"choice": "int64", "feedbackType": "int64"})


def _wheel(rng: np.random.Generator, trials: pd.DataFrame, span: float) -> tuple[np.ndarray, np.ndarray]:
    """Wheel position (rad) at 1 kHz: a minimum-jerk turn from first movement to response on each trial."""
    times = np.arange(int(span * WHEEL_HZ) + 1) / WHEEL_HZ
    steps = np.zeros_like(times)
    for trial in trials.itertuples():
        if trial.choice == 0:
            continue
        first, last = np.searchsorted(times, [trial.firstMovement_times, trial.response_times])
        ramp = -trial.choice * rng.uniform(0.2, 0.4) * _minimum_jerk(
            (times[first - 1:last + 1] - trial.firstMovement_times) / (trial.response_times - trial.firstMovement_times))
        steps[first:last + 1] += np.diff(ramp)
    position = np.round(np.cumsum(steps) / WHEEL_TICK) * WHEEL_TICK
    return times, position


def _licks(rng: np.random.Generator, trials: pd.DataFrame, span: float) -> tuple[np.ndarray, np.ndarray]:
    """Lick times: a bout of 3-8 licks at 6-8 Hz 0.1-0.5 s after each reward, plus rare spontaneous licks."""
    times: list[float] = []
    for feedback in trials.loc[trials.feedbackType == 1, "feedback_times"]:
        rate = rng.uniform(6, 8)
        start = feedback + rng.uniform(0.1, 0.5)
        times.extend(start + np.arange(rng.integers(3, 9)) / rate + rng.normal(0, 0.004))
    rewarded = np.array(times)
    spontaneous = []
    for t in np.cumsum(rng.exponential(1 / 0.05, size=int(span * 0.05) + 5)):
        # a spontaneous lick keeps clear of reward bouts so that each lick belongs to one story
        if t < span and (not len(rewarded) or np.abs(rewarded - t).min() > 0.3):
            spontaneous.append(t)
    lick_times = np.concatenate([rewarded, spontaneous])
    flags = np.r_[np.zeros(len(rewarded), bool), np.ones(len(spontaneous), bool)]
    order = np.argsort(lick_times)
    return lick_times[order], flags[order]


def _blinks(rng: np.random.Generator, span: float) -> tuple[np.ndarray, np.ndarray]:
    """Blink onsets every 5-15 s (the first within a few seconds) lasting 150-300 ms."""
    onsets = []
    t = rng.uniform(0.3, 4.0)
    while t < span:
        onsets.append(t)
        t += rng.uniform(5, 15)
    return np.array(onsets), rng.uniform(0.15, 0.3, size=len(onsets))


def _paw(rng: np.random.Generator, wheel: np.ndarray, n: int, lag: float) -> tuple[np.ndarray, np.ndarray]:
    """Travel along the wheel rim and height above it (canonical px) of one paw.

    The paw grips the rim and is carried by it, then slides back: travel is the wheel angle minus its
    slow average, in pixels, plus small idle fidgeting.
    """
    tau = 0.3 + lag
    a = np.exp(-1 / (GRID_HZ * tau))
    carried = wheel - lfilter([1 - a], [1, -a], wheel, zi=[a * wheel[0]])[0]
    travel = 60 * np.tanh(WHEEL_RADIUS_PX * carried / 60) + _ou(rng, n, 0.5, 2.0, smooth=0.03)
    # negative: the paw dips below the rim, briefly and now and then (the far paw is then hidden)
    height = 16 + _ou(rng, n, 0.4, 7.0, smooth=0.05)
    return travel, height


def simulate(seconds: float, seed: int) -> Behaviour:
    """The behaviour of synthetic session ``seed`` over ``seconds`` (plus a margin for camera start offsets)."""
    rng = np.random.default_rng(seed)
    span = seconds + 1.0
    trials = _trials(rng, seconds)
    wheel_times, wheel_position = _wheel(rng, trials, span)
    lick_times, lick_spontaneous = _licks(rng, trials, span)
    blink_onsets, blink_durations = _blinks(rng, span)
    n = int(span * GRID_HZ) + 2
    wheel_grid = np.interp(np.arange(n) / GRID_HZ, wheel_times, wheel_position)
    signals = {
        # pupil diameter (canonical px) wanders slowly between 12 and 30
        "pupil_diameter": 12 + 18 / (1 + np.exp(-_ou(rng, n, 4.0, 1.3, smooth=0.2))),
        "pupil_dx": _ou(rng, n, 1.0, 2.0, smooth=0.05),
        "pupil_dy": _ou(rng, n, 1.0, 1.5, smooth=0.05),
        "sniff": _bouts(rng, n, (8, 10), (2.0, 4.0), (0.5, 2.0), (0.3, 2.5)),
        "whisk": _bouts(rng, n, (8, 12), (2.0, 5.0), (0.4, 1.5), (0.2, 2.0)),
        "gain": 1 + _ou(rng, n, 8.0, 0.05, smooth=0.5),  # illumination drift
        # the mouse leans into the wheel while it pushes: 2 px per rad/s of wheel speed
        "posture_x": _ou(rng, n, 2.0, 5.0, smooth=0.1) + 2.0 * np.gradient(wheel_grid, 1 / GRID_HZ),
        "posture_y": _ou(rng, n, 2.0, 4.0, smooth=0.1),
        "posture_angle": _ou(rng, n, 2.0, np.deg2rad(3), smooth=0.1),
        "tail_bend": _ou(rng, n, 1.0, 0.35, smooth=0.1),
    }
    for side, lag in (("left", 0.0), ("right", 0.08)):  # the two paws push slightly out of step
        signals[f"paw_{side}_travel"], signals[f"paw_{side}_height"] = _paw(rng, wheel_grid, n, lag)
    reach = rng.uniform(0.9, 1.05, size=len(lick_times))
    return Behaviour(span, trials, wheel_times, wheel_position, lick_times, lick_spontaneous, reach,
                     blink_onsets, blink_durations, signals)
