"""Run IBL's own tools, unchanged, on the session our pipeline made; store what they say in tests/reference/ibl_tools/.

Runs in IBL's venv (tests/reference/ibl_tools_venv.sh makes one), never iblvideo's, on
tests/data/ibl-tools-session (tests/reference/make_ibl_tools_session.py makes it), copied to a
temporary data root and indexed there with ONE's ``one.alf.cache.make_parquet_db``; ONE then runs in
local mode (``ONE(mode='local', cache_dir=...)``). What each tool is and what it is fed:

- ``ibllib.qc.dlc.DlcQC`` on session 001's dlc tables and ``LpQC`` on 002's lightningPose tables, one per
  camera, built with the local ONE (their __init__ then asks no database), ``run(update=False)``.
- ``ibllib.plots.figures.dlc_qc_plot`` on 001: it reads every file locally; what it would ask Alyx is
  fed by two stand-ins, named so in the fixtures: ``LocalOneAlyx`` (the local ONE with an ``alyx``
  attribute, whose ``base_url`` the figure compares with cortexlab's) and ``last_frame_past_end``:
  the figure draws the frame 5 min into each video (``get_video_frame(path, 5 * 60 * fps)``), which a
  20 s video does not have, so it gets the video's last frame instead. Each panel is recorded as drawn,
  missing (the figure's own red text) or raised (the error the figure logged); the figure is saved.
- ``brainbox.io.one.SessionLoader(one=..., session_path=...).load_session_data()`` on both sessions
  (and ``load_pose(tracker='lightningPose')`` on 002): which loaders succeeded, why the others failed
  (the exception SessionLoader logs), and the shapes, columns and values of what it loaded.
- ``one.load_object(eid, f'{cam}Camera', collection='alf').to_df()`` for every camera of both sessions.
- ``one.registration.RegistrationClient(one).prepare_files(files)`` on every file each session
  registers (tests/data/ibl-tools-session/registered.json) and every other file in alf/ and
  raw_video_data/: what it keeps and drops. It wants a ONE with an Alyx; ``LocalAlyx`` stands in,
  answering ``rest('dataset-types', 'list')`` and ``rest('data-formats', 'list')`` from IBL's published
  lists (tests/data/alyx/dataset_types.json and data_formats.json, as tests/alyx_standin.py serves them;
  where absent, Alyx's own fixtures alyx/data/fixtures/data.datasettype.json and data.dataformat.json,
  from --alyx).

One command, idempotent (tests/reference/ibl_tools/ is made again from scratch)::

    tests/reference/ibl_tools_venv.sh /tmp/ibl-tools-venv   # once
    /tmp/ibl-tools-venv/bin/python tests/reference/make_ibl_tools_reference.py [--alyx ALYX_CHECKOUT]
"""
from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
import tempfile
import traceback
import warnings
from importlib.metadata import version
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import cv2
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from brainbox.io.one import SessionLoader
from ibllib.plots import figures
from ibllib.qc.dlc import DlcQC, LpQC
from one.alf.cache import make_parquet_db
from one.alf.io import AlfBunch, check_dimensions
from one.api import ONE
from one.registration import RegistrationClient

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SESSION_ROOT = REPO / "tests" / "data" / "ibl-tools-session"
OUT = HERE / "ibl_tools"
DATASET_TYPES = REPO / "tests" / "data" / "alyx" / "dataset_types.json"  # IBL's published lists, as the Alyx stand-in serves them
DATA_FORMATS = DATASET_TYPES.with_name("data_formats.json")
ALYX_FIXTURES = "alyx/data/fixtures"
CAMERAS = ("left", "right", "body")
SESSIONS = {"001": "dlc", "002": "lightningPose"}  # session number: its tracker's pose attribute
PANELS = ("left trace on frame", "right trace on frame", "body trace on frame", "motion energy", "wheel position",
          "paw speed", "nose speed", "lick histogram", "lick raster", "pupil diameter")
PACKAGES = ("ibllib", "ONE-api", "iblutil", "pandas", "numpy", "scipy", "matplotlib", "opencv-python-headless", "pyarrow")


# ---- stand-ins for what the tools would ask Alyx -----------------------------------------------

class LocalAlyx:
    """Stand-in for ONE's AlyxClient: the two REST lists RegistrationClient reads, from IBL's published Alyx lists; no server."""

    base_url = "local stand-in (no Alyx)"
    cache_mode = None

    def __init__(self, dataset_types: list[dict], data_formats: list[dict]):
        self.lists = {"dataset-types": dataset_types, "data-formats": data_formats}

    def rest(self, url: str, action: str, **_: object) -> list[dict]:
        assert action == "list", action
        return self.lists[url]


class LocalOneAlyx:
    """Stand-in for a OneAlyx: the local ONE, with ``LocalAlyx`` as its ``alyx``."""

    def __init__(self, one, alyx: LocalAlyx):
        self._one, self.alyx = one, alyx

    def __getattr__(self, name: str):
        return getattr(self._one, name)


def last_frame_past_end(original):
    """Stand-in for ibllib.io.video.get_video_frame: a frame past the video's end is its last frame."""
    def get_video_frame(video_path, frame_number):
        capture = cv2.VideoCapture(str(video_path))
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        capture.release()
        return original(video_path, min(frame_number, count - 1))
    return get_video_frame


def fixture_list(path: Path) -> list[dict]:
    """Alyx records from a Django fixture (``[{"model", "pk", "fields"}]``) or a plain list of records."""
    records = json.loads(path.read_text())
    records = records.get("results", records) if isinstance(records, dict) else records
    return [{**r.get("fields", r), **({"id": r["pk"]} if "pk" in r else {})} for r in records]


def alyx_lists(alyx: Path | None) -> tuple[list[dict], list[dict], dict]:
    """IBL's dataset types and data formats, and where each came from."""
    def from_alyx(name: str) -> tuple[list[dict], str]:
        if alyx is None:
            raise SystemExit(f"no {DATASET_TYPES} and no --alyx checkout to read {ALYX_FIXTURES}/{name} from")
        if (alyx / ALYX_FIXTURES / name).exists():
            return fixture_list(alyx / ALYX_FIXTURES / name), f"{alyx / ALYX_FIXTURES / name}"
        text = subprocess.run(["git", f"--git-dir={alyx}", "show", f"HEAD:{ALYX_FIXTURES}/{name}"], capture_output=True, text=True, check=True).stdout
        commit = subprocess.run(["git", f"--git-dir={alyx}", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
        tmp = Path(tempfile.mkdtemp()) / name
        tmp.write_text(text)
        return fixture_list(tmp), f"cortex-lab/alyx@{commit}:{ALYX_FIXTURES}/{name}"

    def committed_or_alyx(committed: Path, name: str) -> tuple[list[dict], str]:
        return (fixture_list(committed), str(committed.relative_to(REPO))) if committed.exists() else from_alyx(name)

    types, types_from = committed_or_alyx(DATASET_TYPES, "data.datasettype.json")
    formats, formats_from = committed_or_alyx(DATA_FORMATS, "data.dataformat.json")
    return types, formats, {"dataset_types": types_from, "data_formats": formats_from, "n_dataset_types": len(types)}


# ---- what the tools say ----------------------------------------------------------------------

def plain(value):
    """JSON-able: numpy scalars as Python numbers, NaN as None, tuples as lists."""
    if isinstance(value, (tuple, list)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (np.floating, float)):
        return None if np.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if hasattr(value, "name") and not isinstance(value, str):  # spec.QC
        return value.name
    return value


def error_line(err: BaseException) -> str:
    return f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"


def run_qc(one, session: Path, attribute: str) -> dict:
    """DlcQC (dlc tables) or LpQC (lightningPose tables) per camera: outcome and IBL's extended_qc metrics."""
    kind = DlcQC if attribute == "dlc" else LpQC
    out = {}
    for camera in CAMERAS:
        try:
            qc = kind(session, side=camera, one=one)
            outcome, metrics = qc.run(update=False)
            out[camera] = {"tool": kind.__name__, "outcome": plain(outcome), "metrics": plain(metrics),
                           "ignored": list(qc.ignore_checks)}
        except Exception as err:  # noqa: BLE001 - recorded: the fixture says which camera raised and why
            out[camera] = {"tool": kind.__name__, "error": error_line(err), "traceback": traceback.format_exc().splitlines()[-3:]}
    return out


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _captured(logger_name: str):
    """Every record of a logger, DEBUG included, kept by a handler of ours; the logger's own handlers print no more than before."""
    handler, logger = _Records(), logging.getLogger(logger_name)
    level, shown = logger.level, logger.getEffectiveLevel()
    quieted = [(h, h.level) for h in logger.handlers]
    for own, own_level in quieted:
        own.setLevel(max(own_level, shown))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)

    def release() -> None:
        logger.removeHandler(handler)
        logger.setLevel(level)
        for own, own_level in quieted:
            own.setLevel(own_level)
    return handler, release


def unchanged_figure(one, session: Path) -> str | None:
    """dlc_qc_plot with nothing stood in but the Alyx client: the error it raises, or None."""
    try:
        plt.close(figures.dlc_qc_plot(session, one=one))
    except Exception as err:  # noqa: BLE001 - recorded: why the frame stand-in is needed
        return f"{error_line(err)} (at {traceback.extract_tb(err.__traceback__)[-1].line})"
    return None


def qc_figure(one, session: Path, png: Path) -> dict:
    """dlc_qc_plot on the session: each panel drawn, missing or raised; the figure saved as a small PNG."""
    unchanged = unchanged_figure(one, session)
    handler, release = _captured("ibllib.plots.figures")
    original = figures.get_video_frame
    figures.get_video_frame = last_frame_past_end(original)
    try:
        fig = figures.dlc_qc_plot(session, one=one)
    except Exception as err:  # noqa: BLE001 - the figure as a whole raised: recorded
        return {"error": error_line(err), "traceback": traceback.format_exc().splitlines()[-4:], "panels": {}, "unchanged": unchanged}
    finally:
        figures.get_video_frame = original
        release()
    errors = [r.getMessage() for r in handler.records if r.levelno >= logging.ERROR and r.getMessage().startswith("Error in ")]
    panels = {}
    letters = [ax for ax in fig.axes if any(t.get_text() in "ABCDEFGHIJ" and len(t.get_text()) == 1 for t in ax.texts)]
    for ax in letters:
        letter = next(t.get_text() for t in ax.texts if len(t.get_text()) == 1)
        name = PANELS[ord(letter) - ord("A")]
        red = [t.get_text() for t in ax.texts if t.get_color() == "r"]
        if not red:
            panels[name] = {"panel": letter, "status": "drawn"}
        elif red[0].startswith("Error while plotting"):
            function = red[0].split("\n")[-1]
            logged = next((e for e in errors if e.startswith(f"Error in {function}")), "")
            panels[name] = {"panel": letter, "status": "raised", "function": function,
                            "error": logged.strip().splitlines()[-1] if logged else "", "where": logged.strip().splitlines()[-3:-1]}
        else:
            panels[name] = {"panel": letter, "status": "missing", "text": red[0]}
    fig.savefig(png, dpi=40)
    plt.close(fig)
    warnings_logged = sorted({r.getMessage() for r in handler.records if r.levelno == logging.WARNING})
    return {"panels": panels, "warnings": warnings_logged, "unchanged": unchanged,
            "stand_ins": ["LocalOneAlyx (one.alyx.base_url)", "last_frame_past_end (frame 5 min in: the video's last frame)"]}


def frame_summary(df: pd.DataFrame) -> dict:
    return {"shape": list(df.shape), "columns": [str(c) for c in df.columns]}


def session_loader(one, session: Path, attribute: str, values: Path) -> dict:
    """SessionLoader.load_session_data(): per loader, loaded or the exception it logged; shapes and columns of
    what was loaded, its pupil, motion energy and licks saved in ``values`` (an .npz)."""
    handler, release = _captured("ibllib")  # brainbox.io.one logs on ibllib's logger
    try:
        loader = SessionLoader(one=one, session_path=session)
        loader.load_session_data()
        as_loaded = dict(zip(loader.data_info["name"], loader.data_info["is_loaded"].astype(bool), strict=True))
        if attribute != "dlc":  # load_session_data loads dlc tables: IBL's SessionLoader asks for others by name
            try:
                loader.load_pose(tracker=attribute)
                pose_with = attribute
            except Exception as err:  # noqa: BLE001 - recorded
                pose_with = error_line(err)
        else:
            pose_with = "dlc"
    finally:
        release()
    failures, current = {}, None
    for record in handler.records:
        message = record.getMessage()
        if message.startswith("Loading ") and message.endswith(" data"):
            current = message[len("Loading "):-len(" data")]
        elif record.levelno == logging.DEBUG and current is not None and record.args == () and not message.startswith("Not loading"):
            line = " ".join(message.split())
            failures.setdefault(current, f"{type(record.msg).__name__}: {line}" if isinstance(record.msg, BaseException) else line)
    loaded = dict(zip(loader.data_info["name"], loader.data_info["is_loaded"].astype(bool), strict=True))
    out = {
        "loaded": loaded, "failures": {k: v for k, v in failures.items() if not loaded.get(k)}, "pose_tracker": pose_with,
        "load_session_data": {"loaded": as_loaded, "failures": {k: v for k, v in failures.items() if not as_loaded.get(k)}},
        "trials": frame_summary(loader.trials), "wheel": frame_summary(loader.wheel),
        "pose": {k: frame_summary(v) for k, v in loader.pose.items()},
        "motion_energy": {k: frame_summary(v) for k, v in loader.motion_energy.items()},
        "pupil": frame_summary(loader.pupil), "licks": frame_summary(loader.licks), "values": values.name,
    }
    arrays = {f"pupil_{c}": loader.pupil[c].to_numpy(float) for c in loader.pupil.columns}
    arrays.update({f"motion_energy_{k}_{c}": v[c].to_numpy(float) for k, v in loader.motion_energy.items() for c in v.columns})
    arrays.update({f"licks_{c}": loader.licks[c].to_numpy(float) for c in loader.licks.columns})
    np.savez_compressed(values, **arrays)
    return out


def to_df(obj) -> dict:
    try:
        return frame_summary(obj.to_df())
    except Exception as err:  # noqa: BLE001 - recorded
        return {"error": error_line(err)}


def table_control() -> dict:
    """ONE's to_df on an object of IBL's own shapes (a frame-times vector beside a pose table), none of ours:
    whether ONE's AlfBunch.to_df takes a table attribute at all."""
    n = 3
    return to_df(AlfBunch(times=np.arange(n, dtype=float), dlc=pd.DataFrame({"nose_tip_x": np.zeros(n), "nose_tip_y": np.zeros(n)})))


def camera_objects(one, eid: str) -> dict:
    """one.load_object(eid, '<cam>Camera', collection='alf').to_df() per camera: its attributes and their lengths,
    ONE's dimension check, to_df of the whole object and of its array attributes, and any warning."""
    out = {}
    for camera in CAMERAS:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            handler, release = _captured("one.alf.io")
            try:
                obj = one.load_object(eid, f"{camera}Camera", collection="alf")
                arrays = AlfBunch({k: v for k, v in obj.items() if not isinstance(v, pd.DataFrame)})
                entry = {"attributes": {k: list(np.shape(v)) for k, v in sorted(obj.items())},
                         "check_dimensions": int(check_dimensions(obj)), **to_df(obj), "arrays_to_df": to_df(arrays)}
            except Exception as err:  # noqa: BLE001 - recorded
                entry = {"error": error_line(err)}
            finally:
                release()
        messages = [str(w.message) for w in caught] + [r.getMessage() for r in handler.records if r.levelno >= logging.WARNING]
        entry["warnings"] = sorted(set(messages))
        out[camera] = entry
    return out


def prepare_files(one, session: Path, registered: list[str]) -> dict:
    """RegistrationClient(one).prepare_files on every file of alf/ and raw_video_data/: kept, dropped, and why."""
    handler, release = _captured("one.registration")
    try:
        client = RegistrationClient(one)
        files = sorted(p for sub in ("alf", "raw_video_data") for p in (session / sub).rglob("*") if p.is_file())
        kept_by_session, _, _, _ = client.prepare_files(files)
    finally:
        release()
    kept = sorted(str(Path(p).as_posix()) for rel in kept_by_session.values() for p in rel)
    every = [p.relative_to(session).as_posix() for p in files]
    reasons = {}
    for record in handler.records:
        message = record.getMessage()
        for name in every:
            if Path(name).name in message and name not in kept:
                reasons.setdefault(name, message.split(": ", 1)[-1] if message.startswith(("/", str(session))) else message)
    return {
        "registered": sorted(registered),
        "kept": kept,
        "dropped": {name: reasons.get(name, "") for name in every if name not in kept},
        "registered_dropped": sorted(set(registered) - set(kept)),
    }


def versions() -> str:
    return "".join(f"{name} {version(name)}\n" for name in PACKAGES)


def summary(results: dict) -> str:
    lines = []
    lines.append(f"to_df on IBL's own shapes (times + a pose table): {results['to_df_control'].get('error') or 'ok'}")
    for number, session in results["sessions"].items():
        qc = session["qc"]
        lines.append(f"session {number} ({session['tracker']}): " + ", ".join(
            f"{cam} {qc[cam].get('tool')} {qc[cam].get('outcome') or qc[cam].get('error')}" for cam in CAMERAS))
        if "figure" in session:
            panels = session["figure"]["panels"]
            bad = {k: v for k, v in panels.items() if v["status"] != "drawn"}
            lines.append(f"  dlc_qc_plot as it is: {session['figure']['unchanged'] or 'ran'}")
            failed = f"; {session['figure']['error']}" if "error" in session["figure"] else ""
            lines.append(f"  dlc_qc_plot with the frame stand-in: {len(panels) - len(bad)} of 10 panels drawn{failed}")
            lines += [f"    {k}: {v['status']} {v.get('error') or v.get('text', '')!r}" for k, v in bad.items()]
        loader = session["session_loader"]
        ok = [k for k, v in loader["loaded"].items() if v]
        lines.append(f"  SessionLoader: loaded {', '.join(ok)}; failed " + (", ".join(f"{k} ({v})" for k, v in loader["failures"].items()) or
                                                                              ", ".join(k for k, v in loader["loaded"].items() if not v) or "none"))
        for cam, entry in session["load_object"].items():
            arrays = entry.get("arrays_to_df", {})
            lines.append(f"  load_object {cam}Camera: dimensions {'consistent' if entry.get('check_dimensions') == 0 else 'INCONSISTENT'}; "
                         + f"to_df {entry.get('shape') or entry.get('error')}; arrays' to_df {arrays.get('shape') or arrays.get('error')}"
                         + "".join(f"\n    warning: {w}" for w in entry["warnings"] if "default revision" not in w))
        reg = session["prepare_files"]
        lines.append(f"  prepare_files: kept {len(reg['kept'])}, dropped {len(reg['dropped'])}; "
                     f"handed to registration but dropped (kept local): {reg['registered_dropped'] or 'none'}")
        lines += [f"    dropped {k}: {v}" for k, v in reg["dropped"].items()]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alyx", type=Path, default=Path("/work/.mirror/cortex-lab+alyx/repo"),
                        help="a checkout (or bare git directory) of github.com/cortex-lab/alyx, for its published dataset types and formats")
    args = parser.parse_args()
    types, formats, sources = alyx_lists(args.alyx if args.alyx.exists() else None)
    registered = json.loads((SESSION_ROOT / "registered.json").read_text())
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    results: dict = {"to_df_control": table_control(), "alyx_stand_in": {**sources, "what": "LocalAlyx: rest('dataset-types'|'data-formats', 'list') from these lists; "
                                                          "cache_mode None; no server"}, "sessions": {}}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        shutil.copytree(SESSION_ROOT, root, ignore=shutil.ignore_patterns("registered.json"))
        make_parquet_db(root, hash_ids=True, hash_files=True)  # ONE checks each file's md5 on loading
        local = ONE(mode="local", cache_dir=root)
        one = LocalOneAlyx(local, LocalAlyx(types, formats))
        for number, attribute in SESSIONS.items():
            session = next(root.glob(f"*/*/{number}"))
            eid = str(local.path2eid(session))
            entry = {"tracker": attribute, "session": session.relative_to(root).as_posix(), "qc": run_qc(local, session, attribute)}
            if attribute == "dlc":
                entry["figure"] = qc_figure(one, session, OUT / "dlc_qc_plot.png")
            entry["session_loader"] = session_loader(local, session, attribute, OUT / f"session_loader_{number}.npz")
            entry["load_object"] = camera_objects(local, eid)
            entry["prepare_files"] = prepare_files(one, session, registered[number])
            results["sessions"][number] = entry
    (OUT / "ibl_tools.json").write_text(json.dumps(results, indent=1) + "\n")
    (OUT / "VERSIONS.txt").write_text(versions())
    print(summary(results))


if __name__ == "__main__":
    main()
