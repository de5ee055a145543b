"""IBL's own tools take our outputs as their own: what they said, run in their own venv, against ours.

The fixtures in tests/reference/ibl_tools/ are IBL's tools (ibllib 4.1.0, ONE 3.6.1) run unchanged on
tests/data/ibl-tools-session by tests/reference/make_ibl_tools_reference.py; the session is our
pipeline's (tests/reference/make_ibl_tools_session.py): 001 tracked with the demo weights, 002 the
same with IBL's Lightning Pose tables. No ibllib here: the tools' answers are read from the fixtures.
"""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from iblvideo.io.alf import CAMERA_NAMES, LICKS, QC_REPORT, SessionPaths, motion_energy_names
from iblvideo.sessions.stages import qc_stage

HERE = Path(__file__).resolve().parent
REFERENCE = HERE / "reference" / "ibl_tools"
ROOT = HERE / "data" / "ibl-tools-session"
TOOLS = json.loads((REFERENCE / "ibl_tools.json").read_text())
SESSIONS = {number: ROOT / entry["session"] for number, entry in TOOLS["sessions"].items()}
TRACKER = {number: entry["tracker"] for number, entry in TOOLS["sessions"].items()}
STAGE_TRACKER = {"dlc": "dlc", "lightningPose": "lightning-pose"}
# SessionLoader's loader of IBL's Lightning Action paw states (alf/lightningaction): no iblvideo output
NOT_OURS = {"pawstates"}
ME_COLUMN = {"left": "whiskerMotionEnergy", "right": "whiskerMotionEnergy", "body": "bodyMotionEnergy"}
IBL_KEY = re.compile(r"^_(dlc|lightningPose)(Left|Right|Body)_(\w+)$")


def ibl_checks(metrics: dict) -> dict[tuple[str, str], tuple[str, float | None]]:
    """IBL's extended_qc metrics (``_dlcLeft_pupil_blocked: 'PASS'`` or ``['PASS', 277.968]``) by (camera, check)."""
    out = {}
    for key, value in metrics.items():
        match = IBL_KEY.match(key)
        if match:
            outcome, number = (value, None) if isinstance(value, str) else (value[0], value[1])
            out[(match.group(2).lower(), match.group(3))] = (outcome, number)
    return out


def _ibl_keyed(report: object) -> dict:
    """Every IBL-keyed (``_dlcLeft_...``) entry anywhere in a report."""
    found: dict = {}
    if isinstance(report, dict):
        for key, value in report.items():
            if isinstance(key, str) and IBL_KEY.match(key):
                found[key] = value
            else:
                found.update(_ibl_keyed(value))
    return found


def our_checks(report: dict) -> dict[tuple[str, str], tuple[str, float | None]]:
    """Our QC report's checks by (camera, check): its IBL extended_qc keys where it writes them, else its per-camera checks."""
    keyed = _ibl_keyed(report)
    if keyed:
        return ibl_checks(keyed)
    return {(camera, name): (check["outcome"], check.get("value"))
            for camera, result in report["cameras"].items() for name, check in result["checks"].items()}


def our_outcomes(report: dict) -> dict[str, str]:
    """Each camera's outcome: its extended_qc namespace's aggregate (``dlcLeft``), as IBL raises the session QC to it."""
    extended = report.get("extended_qc", {})
    namespaces = {key[len(tracker):].lower(): value for key, value in extended.items()
                  for tracker in ("lightningPose", "dlc") if key.startswith(tracker) and key[len(tracker):].lower() in CAMERA_NAMES}
    return namespaces or {camera: result["outcome"] for camera, result in report.get("cameras", {}).items()}


def assert_same_qc(number: str, report: dict) -> None:
    """Our QC report gives IBL's QC's outcome for every check IBL runs, its value to IBL's rounding, and each camera's outcome."""
    theirs = {cam: entry for cam, entry in TOOLS["sessions"][number]["qc"].items()}
    assert all("error" not in entry for entry in theirs.values()), theirs
    ours = our_checks(report)
    for camera, entry in theirs.items():
        for (cam, name), (outcome, value) in ibl_checks(entry["metrics"]).items():
            assert (cam, name) in ours, f"{number} {cam}: our report has no {name}"
            our_outcome, our_value = ours[(cam, name)]
            assert our_outcome == outcome, f"{number} {cam} {name}: ours {our_outcome}, {entry['tool']} {outcome}"
            if value is not None:
                assert our_value is not None and round(our_value, 3) == pytest.approx(value, abs=1e-9), (number, cam, name)
        outcomes = our_outcomes(report)
        if outcomes:
            assert outcomes[camera] == entry["outcome"], f"{number} {camera}: ours {outcomes[camera]}, {entry['tool']} {entry['outcome']}"
    if _ibl_keyed(report):  # IBL's namespaces hold IBL's checks and no others
        assert set(ours) == {key for entry in theirs.values() for key in ibl_checks(entry["metrics"])}


@pytest.mark.parametrize("number", sorted(SESSIONS))
def test_committed_qc_report_is_ibls(number: str) -> None:
    report = json.loads(SessionPaths(SESSIONS[number]).session_file(QC_REPORT).read_text())
    assert_same_qc(number, report)


@pytest.mark.parametrize("number", sorted(SESSIONS))
def test_recomputed_qc_is_ibls(number: str, tmp_path: Path) -> None:
    """qc_stage, as the tree computes it now, on a copy of the committed session."""
    session = tmp_path / SESSIONS[number].relative_to(ROOT)
    shutil.copytree(SESSIONS[number] / "alf", session / "alf")
    assert_same_qc(number, qc_stage(session, STAGE_TRACKER[TRACKER[number]], force=True))


def test_the_session_was_tracked() -> None:
    """The session's pose tables are the demo weights' tracks (not the ground truth that --tracker truth puts there)."""
    assert json.loads((ROOT / "registered.json").read_text())["tracker"] == "dlc"


def test_every_panel_of_ibls_qc_figure_drew() -> None:
    figure = TOOLS["sessions"]["001"]["figure"]
    assert "error" not in figure, figure
    assert {name: panel["status"] for name, panel in figure["panels"].items()} == dict.fromkeys(figure["panels"], "drawn")
    assert len(figure["panels"]) == 10
    # unchanged, the figure draws each video's frame at 5 min, past our 20 s videos' end: the only stand-in but the Alyx client's
    assert figure["unchanged"] is None or "get_video_frame" in figure["unchanged"]
    assert (REFERENCE / "dlc_qc_plot.png").stat().st_size > 10_000


@pytest.mark.parametrize("number", sorted(SESSIONS))
def test_session_loader_loads_everything(number: str) -> None:
    loader = TOOLS["sessions"][number]["session_loader"]
    failed = {name: loader["failures"].get(name) for name, loaded in loader["loaded"].items() if not loaded and name not in NOT_OURS}
    assert not failed, failed
    assert loader["pose_tracker"] == TRACKER[number]


@pytest.mark.parametrize("number", sorted(SESSIONS))
def test_session_loader_reads_our_values(number: str) -> None:
    """SessionLoader's pose, pupil, motion energy and licks are our tables and arrays, column for column."""
    paths, loader = SessionPaths(SESSIONS[number]), TOOLS["sessions"][number]["session_loader"]
    values = np.load(REFERENCE / loader["values"])
    for camera in CAMERA_NAMES:
        pose = pd.read_parquet(paths.pose(camera, TRACKER[number]))
        assert loader["pose"][f"{camera}Camera"] == {"shape": [len(pose), 1 + pose.shape[1]], "columns": ["times", *pose.columns]}
        times = np.load(paths.times(camera))
        energy = np.load(paths.alf / motion_energy_names(camera)[0])
        np.testing.assert_array_equal(values[f"motion_energy_{camera}Camera_{ME_COLUMN[camera]}"], energy.astype(float))
        np.testing.assert_array_equal(values[f"motion_energy_{camera}Camera_times"], times)
    features = pd.read_parquet(paths.features("left"))
    assert loader["pupil"]["columns"] == ["times", "pupilDiameter_raw", "pupilDiameter_smooth"]
    for column in ("pupilDiameter_raw", "pupilDiameter_smooth"):
        np.testing.assert_array_equal(values[f"pupil_{column}"], features[column].to_numpy(float))
    np.testing.assert_array_equal(values["licks_times"], np.load(paths.session_file(LICKS)))


@pytest.mark.parametrize("number", sorted(SESSIONS))
def test_camera_objects_load_and_convert(number: str) -> None:
    """one.load_object(eid, '<cam>Camera'): consistent lengths, no warning of ONE's about them, and to_df as on IBL's own objects.

    ONE 3.6.1's AlfBunch.to_df cannot take a table attribute (dlc, features) at all: on an object of IBL's own
    shapes and none of ours it raises the same error (``to_df_control``); the object's arrays convert."""
    control = TOOLS["to_df_control"]
    for camera, entry in TOOLS["sessions"][number]["load_object"].items():
        assert entry["check_dimensions"] == 0, (camera, entry["attributes"])
        assert not [w for w in entry["warnings"] if "default revision" not in w], entry["warnings"]
        assert "shape" in entry or entry.get("error") == control.get("error"), entry
        assert entry["arrays_to_df"]["shape"][0] == len(np.load(SessionPaths(SESSIONS[number]).times(camera)))


@pytest.mark.parametrize("number", sorted(SESSIONS))
def test_registration_keeps_every_ibl_dataset_we_write(number: str) -> None:
    """ONE's RegistrationClient.prepare_files, with IBL's published dataset types, keeps every IBL dataset that
    run_session hands to registration; what it drops is iblvideo's own (``_iblvideo_``), which register_remote
    keeps local by the same filter, as Alyx has no type for it."""
    outputs = json.loads((ROOT / "registered.json").read_text())[number]
    entry = TOOLS["sessions"][number]["prepare_files"]
    assert entry["registered"] == sorted(outputs)
    dropped = {name: entry["dropped"][name] for name in outputs if name not in entry["kept"]}
    assert not {name: why for name, why in dropped.items() if not Path(name).name.startswith("_iblvideo_")}, dropped
