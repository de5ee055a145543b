"""One self-contained HTML page per session: QC table, figures (embedded PNGs), versions and run times.

The page needs no network, no script and no other file, so it can be mailed or attached to an issue.
"""
from __future__ import annotations

import base64
import datetime as dt
import html
import logging
import platform
from importlib import metadata
from pathlib import Path

import numpy as np

from iblvideo import __version__
from iblvideo.io.alf import CAMERA_NAMES, SessionPaths, pose_name
from iblvideo.io.atomic import atomic_path, refuse_overwrite
from iblvideo.measures.qc import CHECKS
from iblvideo.results.load import SessionResults, load_session
from iblvideo.results.plots import MIN_TRIALS, QC_COLOURS, QC_UNITS, qc_threshold, qc_value, render_figures, result_inputs

log = logging.getLogger(__name__)

REPORT_NAME = "iblvideo_report.html"
PACKAGES = ("numpy", "pandas", "pyarrow", "av", "torch", "scipy", "matplotlib")
CAPTIONS = {
    "traces": "Pose (confident points only), pupil diameter (each side camera on its own axis), motion energy, wheel speed and licks over the session: one tick "
              "per lick event, and IBL's lick frames (licks.times: every frame where a tongue point jumps, several per lick).",
    "trial_averages": "Signals around stimulus onset and feedback; correct and error trials apart (mean ± SEM; n trials "
                      f"in the legend, dotted and without a band under {MIN_TRIALS}); licks as lick events per second.",
    "qc_summary": "Middle frame of each video with the mean position of every point, and the pose QC checks.",
    "paw_states": "Per side camera and paw, the most probable Lightning Action state frame by frame (white: no prediction, as "
                  "IBL's last frames after the last whole 500-frame sequence), and each state's mean probability around stimulus "
                  "onset and feedback, correct (solid) and error (dashed) trials apart.",
}
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1300px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: left; }
th { background: #f0f0f0; }
figure { margin: 1em 0 2em; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { color: #555; font-size: 0.9em; }
.muted { color: #777; }
"""


def _e(value: object) -> str:
    return html.escape(str(value))


def _td(content: object, background: str | None = None, escaped: bool = False) -> str:
    style = f' style="background:{background}"' if background else ""
    return f"<td{style}>{content if escaped else _e(content)}</td>"


def _table(header: list[str], rows: list[list[str]]) -> str:
    """An HTML table: plain-text header, rows of ``_td`` cells."""
    head = "".join(f"<th>{_e(cell)}</th>" for cell in header)
    body = "".join("<tr>" + "".join(row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _outcome_cell(check: dict, value: str = "", threshold: str = "") -> str:
    """The outcome, the value with its unit, the threshold and the check's note, coloured by the outcome."""
    extra = [f"threshold: {threshold}" if threshold else "", check.get("note") or ""]
    muted = "".join(f'<br><span class="muted">{_e(line)}</span>' for line in extra if line)
    text = check["outcome"] + (f" {value}" if value else "")
    return _td(f"{_e(text)}{muted}", QC_COLOURS.get(check["outcome"], "white"), escaped=True)


def missing_cameras(results: SessionResults) -> dict[str, str]:
    """Cameras with a raw video but no pose table: camera -> the pose table expected in alf/.

    Tracking errors are not written to disk (``iblvideo session`` prints them), so the page can only say what is missing.
    """
    paths = SessionPaths(results.path)
    # the tracker of the session's other tables: _ibl_<camera>Camera.<attribute>.pqt
    attribute = next(iter(results.cameras.values())).source.name.split(".")[1]
    return {camera: pose_name(camera, attribute) for camera in CAMERA_NAMES
            if camera not in results.cameras and paths.raw_video(camera).exists()}


def missing_section(results: SessionResults) -> str:
    """One line per camera whose video has no pose table ("" when none is missing)."""
    lines = [f"<li><b>{_e(camera)} camera: no pose table</b> (expected alf/{_e(name)}); its tracking errored or was not run: "
             "see the errors <code>iblvideo session</code> printed, or run <code>iblvideo dlc</code> on its video.</li>"
             for camera, name in missing_cameras(results).items()]
    return f'<ul class="missing">{"".join(lines)}</ul>' if lines else ""


def qc_section(results: SessionResults) -> str:
    if results.qc is None:
        return missing_section(results) + '<p class="muted">No QC report in alf/ (run <code>iblvideo qc</code>).</p>'
    cameras = list(results.qc["cameras"])
    missing = [camera for camera in missing_cameras(results) if camera not in cameras]
    failed = _td("no pose table", QC_COLOURS["CRITICAL"])
    rows = [[_td(name), _td(QC_UNITS.get(name, "—"))]
            + [_outcome_cell(check := results.qc["cameras"][c]["checks"][name], qc_value(name, check), qc_threshold(name, c)) for c in cameras]
            + [failed] * len(missing) for name in CHECKS]
    rows.append([_td("<b>camera outcome</b>", escaped=True), _td("")] + [_outcome_cell(results.qc["cameras"][c]) for c in cameras]
                + [failed] * len(missing))
    return (missing_section(results) + f"<p>Session outcome: <b>{_e(results.qc['outcome'])}</b></p>"
            + _table(["check", "unit", *cameras, *missing], rows))


def figures_section(pngs: dict[str, bytes]) -> str:
    parts = []
    for name, png in pngs.items():
        data = base64.b64encode(png).decode("ascii")
        parts.append(
            f'<figure id="figure-{name}"><img src="data:image/png;base64,{data}" alt="{_e(name)}" data-figure="{_e(name)}">'
            f"<figcaption><b>{_e(name)}</b>: {_e(CAPTIONS.get(name, ''))}</figcaption></figure>"
        )
    return "\n".join(parts)


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def versions_section(results: SessionResults) -> str:
    """Tracker, code and weights that made each pose table (from its parquet metadata), and what made this page."""
    keys = ("tracker", "iblvideo_version", "weights", "weights_version", "weights_description", "device")
    rows = [[_td(name)] + [_td(camera.metadata.get(key, "—")) for key in keys] for name, camera in results.cameras.items()]
    made_by = [("iblvideo", __version__), ("python", platform.python_version())] + [(p, _version(p)) for p in PACKAGES]
    made_by_rows = [[_td(package), _td(version)] for package, version in made_by]
    untracked = [name for name, camera in results.cameras.items() if not camera.metadata]
    note = (f'<p class="muted">No tracking metadata in the pose tables of: {_e(", ".join(untracked))} '
            "(not written by <code>iblvideo dlc</code>).</p>") if untracked else ""
    return (
        "<h3>Pose tables</h3>" + note + _table(["camera", "tracker", "iblvideo", "weights", "weights version", "weights description", "device"], rows)
        + "<h3>This report</h3>" + _table(["package", "version"], made_by_rows)
    )


def paw_states_section(results: SessionResults) -> str:
    """Per side camera and paw, the share of predicted frames in which each state is the most probable ("" without paw states)."""
    cameras = [camera for camera in results.cameras.values() if camera.paws]
    if not cameras:
        return ""
    states = list(dict.fromkeys(state for camera in cameras for paw in camera.paws for state in camera.paw_states(paw)[0]))
    rows = []
    for camera in cameras:
        for paw in camera.paws:
            own, _ = camera.paw_states(paw)
            ethogram = camera.paw_state_ethogram(paw)
            predicted = ethogram[ethogram >= 0]
            shares = {state: np.mean(predicted == k) if len(predicted) else np.nan for k, state in enumerate(own)}
            rows.append([_td(camera.camera), _td(paw), _td(f"{len(predicted)} of {len(ethogram)}"),
                         *(_td(f"{shares[s]:.1%}" if s in shares else "—") for s in states)])
    return '<h2 id="paw-states">Paw states</h2>\n<p>Most probable Lightning Action state, share of the predicted frames.</p>' + \
        _table(["camera", "paw", "frames predicted", *states], rows)


def run_times_section(results: SessionResults) -> str:
    rows = []
    for name, camera in results.cameras.items():
        seconds, frames = camera.metadata.get("seconds"), camera.metadata.get("frames", camera.n_frames)
        rate = f"{frames / seconds:.1f}" if seconds else "—"
        rows.append([_td(name), _td(camera.metadata.get("video", "—")), _td(frames), _td(seconds if seconds is not None else "—"), _td(rate)])
    return _table(["camera", "video", "frames", "tracking time (s)", "frames/s"], rows)


def render_report(results: SessionResults, pngs: dict[str, bytes]) -> str:
    generated = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>iblvideo report: {_e(results.name)}</title>
<link rel="icon" href="data:,">
<style>{STYLE}</style>
</head>
<body>
<h1>iblvideo report: {_e(results.name)}</h1>
<p class="muted">{_e(results.path.resolve())}<br>generated {generated} by iblvideo {_e(__version__)}</p>
<h2>Quality control</h2>
{qc_section(results)}
{paw_states_section(results)}
<h2>Figures</h2>
{figures_section(pngs)}
<h2>Versions</h2>
{versions_section(results)}
<h2>Run times</h2>
{run_times_section(results)}
</body>
</html>
"""


def write_report(session: str | Path, out: str | Path | None = None, tracker: str | None = None, force: bool = False) -> Path:
    """Write the session's HTML report of ``tracker``'s pose tables (default: the only ones), by default
    as ``<session>/iblvideo_report.html``, and return its path; an existing file is kept unless ``force``."""
    results = load_session(session, tracker)
    out = refuse_overwrite(Path(out) if out else Path(session) / REPORT_NAME, result_inputs(results.path, results.cameras.values()), force)
    page = render_report(results, render_figures(results))
    with atomic_path(out) as tmp:
        tmp.write_text(page, encoding="utf-8")
    log.info("report written to %s", out)
    return out
