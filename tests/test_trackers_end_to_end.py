"""Every tracker end to end on one synthetic session: real videos, real decoding, real networks.

The session is tracked with Lightning Pose networks (seeded weights in real Lightning Pose model
folders), then, on a copy, with the shipped dlc demo weights beside them, and a toy tracker is
added with one line of registry. Every stage that runs after tracking and every command that reads
pose tables runs on what each tracker wrote, and must read the table it was asked for (or the only
one there), never the other.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pynwb import NWBHDF5IO

from iblvideo.cameras import CAMERAS
from iblvideo.cli import main
from iblvideo.io import session_files
from iblvideo.io.alf import (
    LICK_EVENTS,
    LICKS,
    PROVENANCE,
    QC_REPORT,
    SessionPaths,
    features_name,
    motion_energy_names,
    pose_name,
    sniffs_name,
    speeds_name,
)
from iblvideo.io.session_files import provenance, read_json, read_npy, read_pose
from iblvideo.measures.features import ensemble_pupil_diameter, pupil_diameter
from iblvideo.measures.motion_energy import roi_from_pose
from iblvideo.measures.qc import NOT_IN_LP_QC
from iblvideo.results import load
from iblvideo.results.nwb import container_name, series_name
from iblvideo.results.plots import FIGURES
from iblvideo.sessions import stages
from iblvideo.sessions.session import SessionResult, run_session
from iblvideo.synth import synthesize_session
from iblvideo.tracking import registry
from iblvideo.tracking.run import track
from iblvideo.tracks import PoseTracks
from iblvideo.video.reader import probe
from lp_network_set import Member, write_network_set
from session_data import copy_session
from toy_tracker import place

# 12 left-camera frames (60 Hz) and 6 body-camera frames (30 Hz): enough for the context networks'
# five-frame windows, few enough for ResNet-50s on two cores
SECONDS = 0.2
CAMERAS_TRACKED = ("left", "body")
# Lightning Pose sets are ResNet-50s: at 32×32 inputs (features 1×1, heatmaps 8×8) they cost a quarter
# of test_lp_pipeline's 64×64, and the cascade, crops, streams and smoothers are the same code
SIZE = (32, 32)
PUPIL = ("pupil_top_r", "pupil_right_r", "pupil_bottom_r", "pupil_left_r")
# IBL's roles, with the fewest members that still run every kind of work: two eye networks (the
# pupil smoother), two paw context networks (single-view EKS over streamed five-frame windows),
# one network elsewhere (kept as it is). The body camera's ROI network is its tail network.
# Head gains: the motion-energy ROI (in the pass and in `motion-energy`) needs the nose tip and a
# pupil point at likelihood >= 0.9 somewhere. At lp_seeded's default gain 0.15 and 32×32 inputs the
# eye ensemble's confidence came out 0.80-0.99 (pupil_top_r 0.87): the ROI was placed only through
# IBL's fallback pupil points, by luck of the seeds. A gain of 1.0 sharpens the heatmaps' softmax so
# that the eye and nose networks are certain (likelihood 1.0), as the ROI networks' 3.0 makes them.
MEMBERS: tuple[Member, ...] = (
    ("roi_detect-0", "heatmap", ("pupil_top_r", "nose_tip", "tube_top", "tube_bottom"), 3.0),
    ("eye-mic-0", "heatmap", PUPIL, 1.0),
    ("eye-mic-1", "heatmap", PUPIL, 1.0),
    ("nose_tip-0", "heatmap", ("nose_tip",), 1.0),
    ("tongue-mic-0", "heatmap", ("tongue_end_l", "tongue_end_r", "tube_top", "tube_bottom"), 0.15),  # IBL's tongue tracks the spout
    ("paw2-mic-0", "heatmap_mhcrnn", ("paw_r", "paw_l"), 0.15),
    ("paw2-mic-1", "heatmap_mhcrnn", ("paw_r", "paw_l"), 0.15),
    ("tail-mic-0", "heatmap_mhcrnn", ("tail_start",), 3.0),
)
COMMANDS = ("motion-energy", "features", "qc", "plot", "report", "label-video", "export")
NWB_SUBJECT = ["--subject-sex", "U", "--subject-species", "Mus musculus", "--subject-age", "P90D"]  # what DANDI needs of an NWB file
LABELED_FRAMES = 5


def derived(attribute: str) -> dict[str, list[str]]:
    """Every output derived from a session's pose tables, with the tables of ``attribute`` it must be made from."""
    left, body = pose_name("left", attribute), pose_name("body", attribute)
    return {
        **{name: [left] for name in motion_energy_names("left")},
        **{name: [body] for name in motion_energy_names("body")},
        features_name("left"): [left], speeds_name("left"): [left], sniffs_name("left"): [left], LICKS: [left], LICK_EVENTS: [left],
        QC_REPORT: [left, body],
    }


def assert_made_from(session: Path, attribute: str, names: list[str] | None = None) -> None:
    """Each of ``names`` (default: every derived output) exists and the provenance file says it was made from
    ``attribute``'s tables; the QC report names them too."""
    expected = derived(attribute)
    names = names or list(expected)
    for name in names:
        assert (session / "alf" / name).exists(), name
        assert provenance(session, name) == expected[name], name
    if QC_REPORT in names:
        report = read_json(SessionPaths(session).session_file(QC_REPORT))
        assert report is not None and report["pose_tables"] == {camera: pose_name(camera, attribute) for camera in CAMERAS_TRACKED}


def assert_complete(result: SessionResult, attribute: str) -> None:
    """The session ran every stage on both cameras and each camera returned its own files."""
    assert result.status == "Complete", result.error
    assert sorted(p.name for p in result.cameras["left"].outputs) == sorted(
        [pose_name("left", attribute), *motion_energy_names("left"), features_name("left"), speeds_name("left"), sniffs_name("left")])
    assert sorted(p.name for p in result.cameras["body"].outputs) == sorted([pose_name("body", attribute), *motion_energy_names("body")])
    assert sorted(p.name for p in result.outputs) == sorted([LICKS, LICK_EVENTS, QC_REPORT])
    assert all(path.exists() for path in [*result.outputs, *(p for c in result.cameras.values() for p in c.outputs)])


def assert_tracked(session: Path, attribute: str, tracker: str) -> dict[str, PoseTracks]:
    """Each camera's pose table of ``attribute``: one row per video frame, every point of the camera, written by ``tracker``."""
    paths, tables = SessionPaths(session), {}
    for camera in CAMERAS_TRACKED:
        tracks = read_pose(paths.pose(camera, attribute))
        assert len(tracks) == probe(paths.raw_video(camera)).n_frames
        assert set(tracks.points) == set(CAMERAS[camera].points)
        # a heatmap's confidence is a float32 sum of softmax values: one rounding step above 1 happens
        assert np.isfinite(tracks.xy).all() and ((tracks.likelihood >= 0) & (tracks.likelihood <= 1 + 1e-6)).all()
        assert tracks.metadata["tracker"] == tracker and tracks.metadata["camera"] == camera
        tables[camera] = tracks
    return tables


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic session as rendered: raw videos, camera times, trials, wheel, ground truth; nothing tracked."""
    return synthesize_session(tmp_path_factory.mktemp("rendered"), cameras=CAMERAS_TRACKED, seconds=SECONDS, seed=3)


@pytest.fixture(scope="module")
def networks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Lightning Pose network set, as a folder of model folders (what --weights takes)."""
    return write_network_set(tmp_path_factory.mktemp("networks") / "networks_v2.2", MEMBERS, SIZE)


@pytest.fixture(scope="module")
def lp_session(rendered: Path, networks: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SessionResult]:
    """A copy of the session run with the Lightning Pose network set: only lightningPose tables in alf/."""
    session = copy_session(rendered, tmp_path_factory.mktemp("lp"), "mouse_lp")
    return session, run_session(session, tracker="lightning-pose", weights=str(networks))


@pytest.fixture(scope="module")
def both(lp_session: tuple[Path, SessionResult], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SessionResult]:
    """A copy of the Lightning Pose session run again with the dlc demo weights: both trackers' tables in alf/."""
    session = copy_session(lp_session[0], tmp_path_factory.mktemp("both"), "mouse_both")
    return session, run_session(session, tracker="dlc")


@pytest.fixture
def tables_read(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The pose tables a command reads: the stages' and the result views' reader, wrapped to note each path."""
    read: list[Path] = []

    def noting(path: str | Path) -> PoseTracks:
        read.append(Path(path))
        return session_files.read_pose(path)

    for module in (stages, load):  # every reader of pose tables after tracking goes through these two
        monkeypatch.setattr(module, "read_pose", noting)
    return read


@pytest.fixture
def toy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The toy tracker, added as any tracker is: one entry in the registry."""
    monkeypatch.setitem(registry.TRACKERS, "toy", registry.Entry("toy_tracker", "toyPose", "a toy"))


def command(name: str, session: Path, out: Path) -> tuple[list[str], list[Path]]:
    """The arguments of command ``name`` on ``session`` (its own outputs in ``out``) and the files it must write."""
    paths = SessionPaths(session)
    return {
        "motion-energy": (["motion-energy", str(session)], [*paths.motion_energy("left"), *paths.motion_energy("body")]),
        "features": (["features", str(session)], [paths.features("left"), paths.speeds("left"), paths.sniffs("left"),
                                                   paths.session_file(LICKS), paths.session_file(LICK_EVENTS)]),
        "qc": (["qc", str(session)], [paths.session_file(QC_REPORT)]),
        "plot": (["plot", str(session), "--out", str(out / "figures")], [out / "figures" / f"{figure}.png" for figure in FIGURES]),
        "report": (["report", str(session), "--out", str(out / "report.html")], [out / "report.html"]),
        "label-video": (["label-video", str(paths.raw_video("left")), "--frames", f"0:{LABELED_FRAMES}", "--out", str(out / "labeled.mp4")],
                        [out / "labeled.mp4"]),
        "export": (["export", str(session), "--format", "nwb", "--out", str(out / "pose.nwb"), *NWB_SUBJECT], [out / "pose.nwb"]),
    }[name]


def run_command(name: str, session: Path, out: Path, tracker: str | None) -> tuple[int, list[Path]]:
    """Exit code of command ``name`` (with ``--tracker`` when given) and the files it must have written, removed
    first with the provenance file: what exists afterwards, this command wrote."""
    args, outputs = command(name, session, out)
    for path in [*outputs, SessionPaths(session).session_file(PROVENANCE)]:
        path.unlink(missing_ok=True)
    return main(["-q", *args, *(["--tracker", tracker] if tracker else [])]), outputs


def assert_output_of(name: str, session: Path, outputs: list[Path], attribute: str) -> None:
    """What command ``name`` wrote, checked against the pose tables of ``attribute``."""
    missing = [path.name for path in outputs if not path.exists()]
    assert not missing, f"{name} did not write {missing}"
    in_alf = [path.name for path in outputs if path.parent == session / "alf"]
    if in_alf:
        assert_made_from(session, attribute, in_alf)
    if name == "label-video":
        assert probe(outputs[0]).n_frames == LABELED_FRAMES
    if name == "export":  # the NWB file holds this table's tracks, not the other tracker's
        with NWBHDF5IO(outputs[0], "r") as io:
            pose = io.read().processing["pose_estimation"]
            for camera in CAMERAS_TRACKED:
                tracks = read_pose(SessionPaths(session).pose(camera, attribute))
                series = pose[container_name(camera)].pose_estimation_series
                for point in tracks.points:
                    np.testing.assert_array_equal(series[series_name(point)].data[:], tracks.point_xy(point))


def test_lightning_pose_session_writes_every_output(lp_session: tuple[Path, SessionResult]) -> None:
    """run_session with Lightning Pose: Complete, every output written and made from the lightningPose tables."""
    session, result = lp_session
    assert_complete(result, "lightningPose")
    tables = assert_tracked(session, "lightningPose", "lightning-pose")
    assert not list((session / "alf").glob("*.dlc.pqt"))
    assert_made_from(session, "lightningPose")
    # every output made from a pose table names its networks: the set and the zip it came from
    record = read_json(SessionPaths(session).session_file(PROVENANCE))
    assert record is not None
    networks = record[motion_energy_names("left")[0]]["networks"][pose_name("left", "lightningPose")]
    assert (networks["tracker"], networks["network_set"], networks["network_set_sha256"], networks["mode"]) == ("lightning-pose", "networks_v2.2", "", "corrected")
    # licks come from the tongue tracked on a camera with times: both hold here, so licks were written
    assert tables["left"].has("tongue_end_l", "tongue_end_r") and SessionPaths(session).times("left").exists()
    assert read_npy(SessionPaths(session).session_file(LICKS)) is not None
    # the ensembles were smoothed: IBL's EKS columns beside x, y, likelihood
    assert {"pupil_top_r_x_posterior_var", "paw_r_x_ens_var", "paw_r_x_posterior_var"} <= set(tables["left"].to_frame())
    metadata = tables["left"].metadata
    assert metadata["ensembles"]["eye"] == ["eye-mic-0", "eye-mic-1"] and metadata["ensembles"]["paws"] == ["paw2-mic-0", "paw2-mic-1"]
    for camera in CAMERAS_TRACKED:
        energy, _ = SessionPaths(session).motion_energy(camera)
        assert len(np.load(energy)) == len(tables[camera])


def test_lightning_pose_session_runs_ibls_post_lp(lp_session: tuple[Path, SessionResult]) -> None:
    """The stages after Lightning Pose are IBL's: the ROI from the table's final tracks, PostLP's pupil diameters
    (ensemble medians raw, smoothed points smooth), LpQC's checks; the table has every column IBL's code reads."""
    session, _ = lp_session
    paths = SessionPaths(session)
    table = pd.read_parquet(paths.pose("left", "lightningPose"))
    # ibllib's likelihood_threshold takes a point from every column ending _x, _y or _likelihood and needs all three
    points = {c.rsplit("_", 1)[0] for c in table.columns if c.endswith(("_x", "_y"))} | \
        {c[: -len("_likelihood")] for c in table.columns if c.endswith("_likelihood")}
    assert {f"{p}_{f}" for p in points for f in ("x", "y", "likelihood")} <= set(table.columns)
    assert {f"{p}_{axis}_ens_median" for p in PUPIL for axis in "xy"} <= set(table.columns)
    tracks = {camera: read_pose(paths.pose(camera, "lightningPose")) for camera in CAMERAS_TRACKED}
    for camera in CAMERAS_TRACKED:
        np.testing.assert_array_equal(np.load(paths.motion_energy(camera)[1]), roi_from_pose(tracks[camera], camera).to_array())
    features = pd.read_parquet(paths.features("left"))
    np.testing.assert_array_equal(features["pupilDiameter_raw"], ensemble_pupil_diameter(tracks["left"]))
    np.testing.assert_array_equal(features["pupilDiameter_smooth"], pupil_diameter(tracks["left"].confident()))
    report = read_json(paths.session_file(QC_REPORT))
    assert report is not None
    for camera in CAMERAS_TRACKED:
        assert report["cameras"][camera]["ibl_qc"] == "LpQC"
        assert all(report["cameras"][camera]["checks"][name]["outcome"] == "NOT_SET" for name in NOT_IN_LP_QC)


@pytest.mark.parametrize("tracker", [None, "lightning-pose"])
@pytest.mark.parametrize("name", COMMANDS)
def test_commands_on_the_lightning_pose_session(name: str, tracker: str | None, lp_session: tuple[Path, SessionResult], tmp_path: Path,
                                                tables_read: list[Path]) -> None:
    """With --tracker lightning-pose, and without it while only Lightning Pose's tables are there, each command reads them."""
    session = copy_session(lp_session[0], tmp_path, "mouse_lp")  # its own copy: the tests do not depend on their order
    code, outputs = run_command(name, session, tmp_path / "out", tracker)
    assert code == 0
    assert_output_of(name, session, outputs, "lightningPose")
    assert tables_read and {path.name for path in tables_read} <= {pose_name(c, "lightningPose") for c in CAMERAS_TRACKED}


def test_dlc_session_beside_lightning_pose(both: tuple[Path, SessionResult], lp_session: tuple[Path, SessionResult]) -> None:
    """run_session with dlc on a session Lightning Pose has tracked: its outputs come from the dlc tables; the others stay."""
    session, result = both
    assert_complete(result, "dlc")
    assert_tracked(session, "dlc", "dlc")
    assert_made_from(session, "dlc")
    for camera in CAMERAS_TRACKED:  # the Lightning Pose tables are as that run left them
        name = pose_name(camera, "lightningPose")
        assert (session / "alf" / name).read_bytes() == (lp_session[0] / "alf" / name).read_bytes()


@pytest.mark.parametrize("name", COMMANDS)
def test_commands_refuse_to_guess_between_trackers(name: str, both: tuple[Path, SessionResult], tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """With both trackers' tables and no --tracker: exit 2 and one line naming both tables and --tracker; nothing written."""
    session = copy_session(both[0], tmp_path, "mouse_both")
    capsys.readouterr()
    code, outputs = run_command(name, session, tmp_path / "out", None)
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith("iblvideo: error:")
    assert "_ibl_leftCamera.dlc.pqt" in err and "_ibl_leftCamera.lightningPose.pqt" in err and "--tracker" in err
    assert not any(path.exists() for path in [*outputs, SessionPaths(session).session_file(PROVENANCE)])


@pytest.mark.parametrize("tracker", ["dlc", "lightning-pose"])
@pytest.mark.parametrize("name", COMMANDS)
def test_commands_read_the_tracker_asked_for(name: str, tracker: str, both: tuple[Path, SessionResult], tmp_path: Path,
                                             tables_read: list[Path]) -> None:
    """With both trackers' tables, --tracker picks whose each command reads, and what it writes follows."""
    session = copy_session(both[0], tmp_path, "mouse_both")
    attribute = registry.attribute(tracker)
    code, outputs = run_command(name, session, tmp_path / "out", tracker)
    assert code == 0
    assert_output_of(name, session, outputs, attribute)
    assert tables_read and {path.name for path in tables_read} <= {pose_name(c, attribute) for c in CAMERAS_TRACKED}


def test_toy_tracker_writes_its_own_table(toy: None, rendered: Path, tmp_path: Path) -> None:
    """track() with a tracker the registry learnt one line ago: its pose table, one row per frame."""
    session = copy_session(rendered, tmp_path, "mouse_toy")
    video = SessionPaths(session).raw_video("left")
    out = track(video, "toy")
    assert out == session / "alf" / "_ibl_leftCamera.toyPose.pqt"
    tracks = read_pose(out)
    camera = CAMERAS["left"]
    assert len(tracks) == probe(video).n_frames and tracks.points == camera.points
    np.testing.assert_array_equal(tracks.likelihood, 1.0)
    np.testing.assert_allclose(tracks.point_xy("nose_tip"), np.broadcast_to(place(camera, "nose_tip"), (len(tracks), 2)))
    assert tracks.metadata["tracker"] == "toy" and tracks.metadata["weights"] == "toy"
    # the cascade placed every stage's window from the toy's anchors
    assert set(tracks.metadata["crop_windows_whxy"]) == {"eye", "nose_tip", "tongue", "paws"}


def test_toy_tracker_runs_a_session(toy: None, rendered: Path, tmp_path: Path) -> None:
    """run_session with the toy tracker: every stage after tracking runs on the toyPose tables."""
    session = copy_session(rendered, tmp_path, "mouse_toy")
    result = run_session(session, tracker="toy")
    assert_complete(result, "toyPose")
    tracks = assert_tracked(session, "toyPose", "toy")
    assert_made_from(session, "toyPose")
    # the tracks never move, so the ROI placed from the sampled frames in the pass is IBL's from the final tracks
    for camera in CAMERAS_TRACKED:
        _, roi = SessionPaths(session).motion_energy(camera)
        np.testing.assert_array_equal(np.load(roi), roi_from_pose(tracks[camera], camera).to_array())
    assert json.loads((session / "alf" / QC_REPORT).read_text())["outcome"] == result.qc
