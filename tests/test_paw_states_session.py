"""Paw states in run_session after Lightning Pose (stand-in networks, tests/la_standin.py), and in the figures,
the report and the NWB export; every failure of the stage a one-line outcome that leaves the rest standing.

The Lightning Pose session (tests/data/ibl-tools-session/.../002) has IBL-layout tables, camera times, wheel
and trials but no videos: its cameras' tracking step is stood in for by one that keeps the tables (what
run_session does with a kept table, less the motion energy, which needs the video)."""
from __future__ import annotations

import io
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from one.api import One
from PIL import Image
from pynwb import NWBHDF5IO

import la_standin
from alyx_standin import logged_in
from iblvideo import run_session
from iblvideo.io.alf import QC_REPORT, WHEEL_POSITION, WHEEL_TIMES, SessionPaths
from iblvideo.io.one import register_remote
from iblvideo.results import plots
from iblvideo.results.load import load_session
from iblvideo.results.nwb import Subject, export_nwb, paw_states_name
from iblvideo.results.report import render_report
from iblvideo.sessions import session as session_module
from iblvideo.tracking.registry import attribute

DATA = Path(__file__).parent / "data" / "ibl-tools-session" / "synth_mouse_2" / "2026-01-01"
LP_SESSION, DLC_SESSION = DATA / "002", DATA / "001"
SIDES = ("left", "right")
STATES = list(la_standin.STATES)
SUBJECT = Subject(sex="F", species="Mus musculus", age="P90D")


def _kept_tables(session: Path, camera: str, options: session_module.Options) -> session_module.CameraResult:
    """The camera step with its pose table kept and no video to decode."""
    pose = SessionPaths(session).pose(camera, attribute(options.tracker))
    assert pose.exists()
    return session_module.CameraResult(camera, "Complete", [pose], 0.01)


@pytest.fixture(autouse=True)
def no_video(monkeypatch, tmp_path):
    monkeypatch.setattr(session_module, "_run_camera", _kept_tables)
    monkeypatch.setattr("iblvideo.sessions.stages._load_action_model", la_standin.load)
    monkeypatch.setenv("IBLVIDEO_CACHE", str(tmp_path / "cache"))  # no network set of the user's is found
    monkeypatch.delenv("IBLVIDEO_LA_NETWORKS", raising=False)


def _copy(source: Path, root: Path, subject: str = "synth_mouse_2") -> Path:
    session = root / "data" / subject / "2026-01-01" / "001"
    shutil.copytree(source / "alf", session / "alf")
    for camera in (*SIDES, "body"):  # what find_cameras looks for; _kept_tables never opens them
        video = SessionPaths(session).raw_video(camera)
        video.parent.mkdir(parents=True, exist_ok=True)
        video.touch()
    return session


@pytest.fixture(scope="module")
def networks(tmp_path_factory) -> Path:
    return la_standin.write_set(tmp_path_factory.mktemp("sets"))


def _outputs_but_paw_states(session: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (session / "alf").iterdir() if p.is_file() and not p.name.startswith(".") and p.suffix != ".json"}


def test_run_session_adds_paw_states_that_every_view_shows(tmp_path, networks):
    session = _copy(LP_SESSION, tmp_path)
    result = run_session(session, tracker="lightning-pose", pawstates=networks)

    assert result.status == "Complete", result.error
    assert result.errors == [] and result.notes == []
    paths = SessionPaths(session)
    for camera in SIDES:
        assert paths.pawstates(camera) in result.cameras[camera].outputs
    assert not paths.pawstates("body").exists()
    assert result.to_json()["cameras"]["left"]["outputs"][-1].endswith("lightningaction/_ibl_leftCamera.pawstates.pqt")
    table = pd.read_parquet(paths.pawstates("right"))
    # 150 Hz: predicted at 60 Hz and resampled back, extrapolated past the last whole sequence as IBL does, so no NaN
    assert len(table) == 3000 and table.notna().all().all()
    states = One(cache_dir=tmp_path / "data", mode="local").load_object(result.eid, "leftCamera", collection="alf/lightningaction")
    assert list(states) == ["pawstates"] and len(states["pawstates"]) == 1200

    results = load_session(session, "lightning-pose")
    left = results.cameras["left"]
    assert left.paws == ["paw_r", "paw_l"] and results.cameras["body"].paws == []
    names, probabilities = left.paw_states("paw_r")
    assert names == STATES and probabilities.shape == (1200, 5)
    np.testing.assert_allclose(np.nansum(probabilities, axis=1)[:1000], 1.0, atol=1e-6)
    ethogram = left.paw_state_ethogram("paw_r")
    assert (ethogram[1000:] == -1).all() and set(ethogram[:1000]) <= set(range(5)) and len(set(ethogram[:1000])) > 1

    assert "paw_states" in plots.figures_of(results)
    figure = plots.paw_states_figure(results)
    labels = [ax.yaxis.label.get_text() for ax in figure.axes if ax.yaxis.label.get_text()]
    assert labels == ["left\npaw_r", "left\npaw_l", "right\npaw_r", "right\npaw_l"]
    titles = {ax.title.get_text() for ax in figure.axes}
    assert {"P(state) aligned to stimulus onset", "P(state) aligned to feedback"} <= titles
    legend = {text.get_text() for text in figure.legends[0].texts}
    assert {f"{state}, {outcome}" for state in STATES for outcome in ("correct (n=7)", "error (n=1)")} == legend  # 002's 8 trials
    ethogram_image = figure.axes[0].images[0].get_array()
    assert ethogram_image.mask[0, 1000:].all() and not ethogram_image.mask[0, :1000].any()
    png = np.asarray(Image.open(io.BytesIO(plots.render_png(figure))).convert("L"))
    assert png.shape[0] > 400 and png.std() > 10  # drawn, not blank

    page = render_report(results, {"paw_states": b"png"})
    assert '<h2 id="paw-states">Paw states</h2>' in page and 'data-figure="paw_states"' in page
    shares = [float(cell.split("%")[0]) for cell in page.split('id="paw-states"')[1].split("</table>")[0].split("<td>") if "%" in cell]
    assert len(shares) == 4 * 5 and all(abs(sum(shares[k:k + 5]) - 100) < 0.5 for k in range(0, 20, 5))
    assert "1000 of 1200" in page

    out = export_nwb(session, tmp_path / "session.nwb", tracker="lightning-pose", subject=SUBJECT)
    with NWBHDF5IO(out, "r") as nwb:
        module = nwb.read().processing["paw_states"]
        series = {f"{paw_states_name(c, p)}{kind}" for c in SIDES for p in ("paw_r", "paw_l") for kind in ("", "EnsembleVariance")}
        assert set(module.data_interfaces) == series
        right = module[paw_states_name("right", "paw_l")]
        np.testing.assert_array_equal(right.data[:], table[[f"paw_l_{s}" for s in STATES]].to_numpy())
        np.testing.assert_array_equal(right.timestamps[:], np.load(paths.times("right")))
        assert "columns: background, still, move, wheel_turn, groom" in right.description and right.unit == "probability"
    assert paw_states_name("left", "paw_r") == "LeftCameraRightPawStates"
    from nwbinspector import Importance, inspect_nwbfile

    # of the module, nwbinspector says only what it says of IBL's other module names: not one of NWB's
    flagged = [m for m in inspect_nwbfile(nwbfile_path=out) if m is not None and "paw_states" in f"{m.location} {m.object_name}"]
    assert {m.check_function_name for m in flagged} == {"check_processing_module_name"}
    assert all(m.importance not in (Importance.CRITICAL, Importance.ERROR) for m in flagged)


def _assert_one_line_and_the_rest_intact(result, session: Path, expected: str) -> None:
    assert result.status == "Errored"
    [line] = [e for e in result.errors if e.startswith("paw states: ")]
    assert "\n" not in line and expected in line, line
    assert all(c.status == "Complete" for c in result.cameras.values())
    assert result.qc is not None and SessionPaths(session).session_file(QC_REPORT) in result.outputs
    assert SessionPaths(session).features("left") in result.cameras["left"].outputs
    assert not (session / "alf" / "lightningaction").exists()


def test_missing_networks_are_one_line(tmp_path):
    session = _copy(LP_SESSION, tmp_path)
    result = run_session(session, tracker="lightning-pose", pawstates=tmp_path / "absent")
    _assert_one_line_and_the_rest_intact(result, session, "Lightning Action network folder not found")
    assert result.to_json()["errors"] == result.errors and result.error.endswith(result.errors[-1])


def test_no_wheel_data_is_one_line(tmp_path, networks):
    session = _copy(LP_SESSION, tmp_path)
    for name in (WHEEL_POSITION, WHEEL_TIMES):
        (session / "alf" / name).unlink()
    _assert_one_line_and_the_rest_intact(run_session(session, tracker="lightning-pose", pawstates=networks), session, "wheel")


def test_tables_without_paws_are_one_line(tmp_path, networks):
    session = _copy(LP_SESSION, tmp_path)
    for camera in SIDES:
        pose = SessionPaths(session).pose(camera, "lightningPose")
        table = pd.read_parquet(pose)
        table.drop(columns=[c for c in table.columns if c.startswith("paw_")]).to_parquet(pose)
    result = run_session(session, tracker="lightning-pose", pawstates=networks)
    [line] = [e for e in result.errors if e.startswith("paw states: ")]
    assert "no paw states written" in line and "paw_r_x" in line and "\n" not in line
    assert all(c.status == "Complete" for c in result.cameras.values())  # the features' own error (no paws) is apart
    assert not (session / "alf" / "lightningaction").exists()


def test_without_networks_paw_states_are_left_out_with_a_note(tmp_path):
    session = _copy(LP_SESSION, tmp_path)
    result = run_session(session, tracker="lightning-pose")
    assert result.status == "Complete", result.error
    assert result.notes == ["paw states not run: no Lightning Action network set found (pass pawstates=, or set $IBLVIDEO_LA_NETWORKS)"]
    assert result.to_json()["notes"] == result.notes
    assert not (session / "alf" / "lightningaction").exists()
    results = load_session(session, "lightning-pose")
    assert "paw_states" not in plots.figures_of(results) and "paw-states" not in render_report(results, {})


def test_a_set_in_the_environment_is_found(tmp_path, networks, monkeypatch):
    monkeypatch.setenv("IBLVIDEO_LA_NETWORKS", str(networks))
    session = _copy(LP_SESSION, tmp_path)
    result = run_session(session, tracker="lightning-pose")
    assert result.status == "Complete", result.error
    assert SessionPaths(session).pawstates("left") in result.cameras["left"].outputs


def test_dlc_tracker_skips_paw_states_with_a_note(tmp_path, networks):
    session = _copy(DLC_SESSION, tmp_path)
    result = run_session(session, tracker="dlc", pawstates=networks)
    assert result.notes == ["paw states skipped: IBL's Lightning Action networks read Lightning Pose tables, and the tracker is dlc"]
    assert not any(e.startswith("paw states") for e in result.errors)
    assert not (session / "alf" / "lightningaction").exists()


def test_paw_states_are_registered_on_alyx(tmp_path, networks, monkeypatch):
    """ibllib's LightningAction task signature names _ibl_<cam>Camera.pawstates.pqt: with its dataset type
    (tests/data/alyx/dataset_types.json), ONE's registration keeps the tables rather than leaving them local."""
    session = _copy(LP_SESSION, tmp_path)
    result = run_session(session, tracker="lightning-pose", pawstates=networks)
    tables = [SessionPaths(session).pawstates(camera) for camera in SIDES]
    with logged_in(tmp_path, monkeypatch) as (server, client):
        registered = register_remote(SimpleNamespace(alyx=client), [*tables, *result.cameras["left"].outputs])
        (sent,) = server.registered
    assert set(tables) <= set(registered)
    assert {"alf/lightningaction/_ibl_leftCamera.pawstates.pqt", "alf/lightningaction/_ibl_rightCamera.pawstates.pqt"} <= set(sent["filenames"])
