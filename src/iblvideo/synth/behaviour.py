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
# each paw's true state, as a person labelling the video would call it (IBL's Lightning Action states)
PAW_STATES = ("still", "move", "wheel_turn", "groom")
STILL_SPEED = 6.0  # canonical px/s: a paw slower than this (a tenth of a pixel a frame) is still
WHEEL_TURNING = 0.3  # rad/s: the wheel visibly turns (its ribs move over 2 px a frame on the left camera)
DIP_CHANCE = 0.1  # an idle shift of a paw is a dip below the rim this often
GROOM_CHANCE = 0.1  # a grooming bout follows a trial this often: about two a minute
GROOM_RISE = (0.3, 0.45)  # s the paws take from the rim to the face, and back
GROOM_RUB = (1.2, 3.0)  # s of rubbing at the face
GROOM_HZ = (4.0, 6.0)  # strokes per second
LICKS_END = 2.0  # s after feedback by which a reward's lick bout is over (at most 8 licks at 6 Hz from 0.5 s)


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
    groom_bouts: np.ndarray  # one row per bout: lift-off, paws at the face, paws leave the face, paws back on the rim
    signals: dict[str, np.ndarray]  # name -> values on the GRID_HZ grid starting at 0
    paw_states: dict[str, np.ndarray]  # paw (left, right) -> index into PAW_STATES on the GRID_HZ grid

    def sample(self, times: np.ndarray) -> dict[str, np.ndarray]:
        """Every signal at ``times``: grid signals interpolated, plus tongue, eyelid and wheel state."""
        grid = np.arange(len(self.signals["pupil_diameter"])) / GRID_HZ
        state = {name: np.interp(times, grid, values) for name, values in self.signals.items()}
        state["tongue"] = self._tongue(times)
        state["eyelid"] = self._eyelid(times)
        state["wheel"] = np.interp(times, self.wheel_times, self.wheel_position)
        return state

    def paw_state(self, times: np.ndarray, paw: str) -> np.ndarray:
        """The ``paw``'s (left or right) true state at ``times``, as names from PAW_STATES: the nearest grid sample's."""
        codes = self.paw_states[paw]
        index = np.clip(np.rint(np.asarray(times) * GRID_HZ).astype(int), 0, len(codes) - 1)
        return np.array(PAW_STATES)[codes[index]]

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


def _trials(rng: np.random.Generator, duration: float, groom_rng: np.random.Generator) -> tuple[pd.DataFrame, np.ndarray]:
    """IBL biased-choice-world trials, every event of each inside every camera's frames (of ``duration`` s), and
    the grooming bouts between them.

    Grooming comes from its own generator so that it adds bouts (and delays the trials after one) without
    changing any other draw. A bout starts once the trial is over and any reward's licks are done, and the
    next trial waits for it, as a mouse grooming at the end of a trial takes its time to start the next.
    """
    rows, bouts = [], []
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
        if groom_rng.random() < GROOM_CHANCE:
            lift = max(row["intervals_1"], row["feedback_times"] + LICKS_END) + groom_rng.uniform(0.1, 0.4)
            rise, rub, fall = groom_rng.uniform(*GROOM_RISE), groom_rng.uniform(*GROOM_RUB), groom_rng.uniform(*GROOM_RISE)
            bout = np.cumsum([lift, rise, rub, fall])
            if bout[-1] > duration - TRIALS_MARGIN:
                break
            bouts.append(bout)
            t = max(t, bout[-1] + groom_rng.uniform(0.3, 0.6))
    columns = ["intervals_0", "intervals_1", "stimOn_times", "goCue_times", "response_times", "firstMovement_times",
               "choice", "feedback_times", "feedbackType", "contrastLeft", "contrastRight", "probabilityLeft",
               "rewardVolume"]
    table = pd.DataFrame(rows, columns=columns)
    table = table.astype({c: "float64" for c in columns} | {"choice": "int64", "feedbackType": "int64"})
    return table, np.array(bouts).reshape(-1, 4)


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


def _licks(rng: np.random.Generator, trials: pd.DataFrame, span: float, grooming: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lick times: a bout of 3-8 licks at 6-8 Hz 0.1-0.5 s after each reward, plus rare spontaneous licks
    (none while grooming, when the paws are at the mouth)."""
    times: list[float] = []
    for feedback in trials.loc[trials.feedbackType == 1, "feedback_times"]:
        rate = rng.uniform(6, 8)
        start = feedback + rng.uniform(0.1, 0.5)
        times.extend(start + np.arange(rng.integers(3, 9)) / rate + rng.normal(0, 0.004))
    rewarded = np.array(times)
    spontaneous = []
    for t in np.cumsum(rng.exponential(1 / 0.05, size=int(span * 0.05) + 5)):
        # a spontaneous lick keeps clear of reward bouts so that each lick belongs to one story
        busy = ((grooming[:, 0] - 0.3 < t) & (t < grooming[:, 3] + 0.3)).any()
        if t < span and not busy and (not len(rewarded) or np.abs(rewarded - t).min() > 0.3):
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


def _adjustments(rng: np.random.Generator, n: int, rest: tuple[float, float], sd: tuple[float, float]) -> np.ndarray:
    """A paw's idle placement on the grid (travel and height, two rows): held still, then shifted to a new
    place (drawn about ``rest`` with ``sd``) by a short minimum-jerk movement, every 2.5 s or so; now and
    then the shift is a brief dip below the rim (height -12 to -3 px), held for a tenth of a second or so."""
    out = np.empty((2, n))
    rest_, sd_ = np.array(rest)[:, None], np.array(sd)[:, None]
    level, t, dipped = rest_ + sd_ * rng.standard_normal((2, 1)), 0, False
    while t < n:
        hold = int((rng.uniform(0.05, 0.2) if dipped else rng.exponential(2.5)) * GRID_HZ)
        out[:, t:t + hold] = level
        t += hold
        target = rest_ + sd_ * rng.standard_normal((2, 1))
        back, dipped = dipped, not dipped and rng.random() < DIP_CHANCE
        if dipped:
            target[1] = rng.uniform(-12, -3)
        # a dip is a quick drop and a quick return
        steps = max(2, int(rng.uniform(*((0.1, 0.2) if dipped or back else (0.15, 0.4))) * GRID_HZ))
        shift = out[:, t:t + steps]
        shift[:] = level + (target - level) * _minimum_jerk(np.arange(1, shift.shape[1] + 1) / steps)
        level, t = target, t + steps
    return out


def _carried(trials: pd.DataFrame, wheel: np.ndarray, lag: float) -> np.ndarray:
    """How far (canonical px along the rim) the wheel carries a paw that grips it: with the wheel from first
    movement to response (60 px at most, as the paw lets the rim slip), then back to where it was in a
    minimum-jerk slide that starts ``lag`` s after the response and takes 0.3-0.45 s."""
    t = np.arange(len(wheel)) / GRID_HZ
    out = np.zeros(len(wheel))
    for trial in trials.itertuples():
        if trial.choice == 0:
            continue
        first, last = np.searchsorted(t, [trial.firstMovement_times, trial.response_times])
        turn = 60 * np.tanh(WHEEL_RADIUS_PX * (wheel[first:last] - wheel[first]) / 60)
        out[first:last] = turn
        slide = 0.3 + 1.5 * lag  # the lagging paw also slides back more slowly
        back = t[last:] - trial.response_times - lag
        held = turn[-1] if len(turn) else 0.0
        out[last:] += held * (1 - _minimum_jerk(back / slide))
    return out


def _paw(rng: np.random.Generator, trials: pd.DataFrame, wheel: np.ndarray, lag: float) -> tuple[np.ndarray, np.ndarray]:
    """Travel along the wheel rim and height above it (canonical px) of one paw.

    The paw grips the rim and is carried by it while the wheel turns, then slides back; otherwise it
    stays where it is but for its idle shifts. The next turn comes long after the slide is over.
    """
    # the far paw is hidden while it dips below the rim
    travel, height = _adjustments(rng, len(wheel), (0.0, 16.0), (3.0, 5.0))
    return travel + _carried(trials, wheel, lag), height


def _grooming(bouts: np.ndarray, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Grooming on the grid: ``groom`` goes 0 (paws on the rim) to 1 (paws at the face) and back, and
    ``rub_along``, ``rub_across`` (canonical px, along the snout and across it) stroke the face meanwhile."""
    t = np.arange(n) / GRID_HZ
    groom, along, across = np.zeros(n), np.zeros(n), np.zeros(n)
    for lift, face, leave, down in bouts:
        groom += _minimum_jerk((t - lift) / (face - lift)) - _minimum_jerk((t - leave) / (down - leave))
        rubbing = (t >= face) & (t < leave)
        u = (t[rubbing] - face) / (leave - face)
        phase = 2 * np.pi * rng.uniform(*GROOM_HZ) * (t[rubbing] - face)
        envelope = np.sin(np.pi * u) ** 0.5
        along[rubbing] = rng.uniform(12, 20) * envelope * np.sin(phase)
        across[rubbing] = rng.uniform(5, 10) * envelope * np.cos(phase)
    return {"groom": groom, "rub_along": along, "rub_across": across}


def _paw_states(signals: dict[str, np.ndarray], wheel: np.ndarray, side: str) -> np.ndarray:
    """One paw's state on the grid: groom at the face, move on the way there and back, wheel_turn while it
    rides the turning wheel, move while it shifts or slides back, still otherwise."""
    speed = np.hypot(np.gradient(signals[f"paw_{side}_travel"]), np.gradient(signals[f"paw_{side}_height"])) * GRID_HZ
    # the encoder's ticks are smoothed away (10 ms) before the wheel's speed is read
    turning = np.abs(np.gradient(gaussian_filter1d(wheel, 0.01 * GRID_HZ))) * GRID_HZ > WHEEL_TURNING
    groom = signals["groom"]
    states = np.where(speed > STILL_SPEED, PAW_STATES.index("move"), PAW_STATES.index("still"))
    states[(groom == 0) & turning] = PAW_STATES.index("wheel_turn")
    states[groom > 0] = PAW_STATES.index("move")
    states[groom >= 1] = PAW_STATES.index("groom")
    return states


def simulate(seconds: float, seed: int) -> Behaviour:
    """The behaviour of synthetic session ``seed`` over ``seconds`` (plus a margin for camera start offsets)."""
    rng = np.random.default_rng(seed)
    groom_rng = np.random.default_rng([seed, 7])
    span = seconds + 1.0
    trials, groom_bouts = _trials(rng, seconds, groom_rng)
    wheel_times, wheel_position = _wheel(rng, trials, span)
    lick_times, lick_spontaneous = _licks(rng, trials, span, groom_bouts)
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
        signals[f"paw_{side}_travel"], signals[f"paw_{side}_height"] = _paw(rng, trials, wheel_grid, lag)
    reach = rng.uniform(0.9, 1.05, size=len(lick_times))
    signals |= _grooming(groom_bouts, groom_rng, n)
    states = {side: _paw_states(signals, wheel_grid, side) for side in ("left", "right")}
    return Behaviour(span, trials, wheel_times, wheel_position, lick_times, lick_spontaneous, reach,
                     blink_onsets, blink_durations, groom_bouts, signals, states)
