"""Paw states as IBL's Lightning Action pipeline makes them: inputs, scaling, ensembles and the table, against
IBL's own code run on the same session (tests/reference/make_paw_states_reference.py), with stand-in networks."""
from __future__ import annotations

import hashlib
import io
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import la_standin
from http_server import FileServer
from iblvideo.cli import main
from iblvideo.errors import IblVideoError
from iblvideo.io.alf import WHEEL_POSITION, WHEEL_TIMES, SessionPaths
from iblvideo.io.session_files import provenance, table_metadata
from iblvideo.measures import paw_states
from iblvideo.networks.lightning_action import TRANSFORMS
from iblvideo.sessions.stages import paw_states_stage
from iblvideo.tracking import la_networks

DATA = Path(__file__).parent / "data"
SOURCE = DATA / "ibl-tools-session" / "synth_mouse_2" / "2026-01-01" / "002" / "alf"
DLC_SOURCE = SOURCE.parent.parent / "001" / "alf"
REFERENCE = Path(__file__).parent / "reference" / "paw_states"
CAMERAS = ("left", "right")


def _copy_session(root: Path, source: Path = SOURCE, attribute: str = "lightningPose") -> Path:
    session = root / "mouse" / "2026-01-01" / "001"
    (session / "alf").mkdir(parents=True)
    names = [f"_ibl_{c}Camera.{a}" for c in CAMERAS for a in (f"{attribute}.pqt", "times.npy")] + [WHEEL_POSITION, WHEEL_TIMES]
    for name in names:
        shutil.copy(source / name, session / "alf" / name)
    return session


@pytest.fixture
def session(tmp_path: Path) -> Path:
    return _copy_session(tmp_path)


@pytest.fixture
def networks(tmp_path: Path) -> Path:
    return la_standin.write_set(tmp_path / "sets")


def _wheel() -> tuple[np.ndarray, np.ndarray]:
    return paw_states.wheel_velocity(np.load(SOURCE / WHEEL_TIMES), np.load(SOURCE / WHEEL_POSITION))


@pytest.mark.parametrize("camera", CAMERAS)
@pytest.mark.parametrize("paw", paw_states.PAWS)
def test_inputs_and_scaling_are_ibls(camera, paw):
    """x, y (the right camera's mirrored back), the wheel velocity on the networks' clock, transformed: IBL's, to the bit in float32."""
    table = pd.read_parquet(SOURCE / f"_ibl_{camera}Camera.lightningPose.pqt")
    times = np.load(SOURCE / f"_ibl_{camera}Camera.times.npy")
    reference = np.load(REFERENCE / f"{camera}_inputs.npz")
    inputs, clock = paw_states.paw_inputs(table, times, _wheel(), camera, paw)
    if camera == "right":  # 150 Hz: the networks see 60 Hz
        assert clock is not None and len(clock) == 1200
        np.testing.assert_array_equal(clock, reference[f"{paw}_clock"])
    else:
        assert clock is None and len(reference[f"{paw}_clock"]) == 0
    np.testing.assert_allclose(inputs, reference[f"{paw}_inputs"], rtol=0, atol=1e-12)
    assert np.abs(inputs[:, 2]).max() > 1.0  # the wheel turns in this session: the velocity is tested, not zeros
    # the networks' transforms (networks.lightning_action) on these inputs, as lightning-action's own
    x = inputs.astype(np.float32)
    np.testing.assert_array_equal(TRANSFORMS["ZScore"](x), reference[f"{paw}_zscore"])
    ibl = TRANSFORMS["ZScore"](TRANSFORMS["VelocityConcat"](x))  # configs/ibl.yaml's: the changes appended, then all six z-scored
    assert ibl.dtype == np.float32 and ibl.shape == (len(inputs), 6)
    np.testing.assert_array_equal(ibl, reference[f"{paw}_ibl"])


def test_right_camera_is_mirrored_and_wheel_negated():
    """The same table read as the left and the right camera: x → 640 − x and the velocity's sign flipped (no rate change at 60 Hz)."""
    table = pd.read_parquet(SOURCE / "_ibl_leftCamera.lightningPose.pqt")
    times = np.load(SOURCE / "_ibl_leftCamera.times.npy")
    left, _ = paw_states.paw_inputs(table, times, _wheel(), "left", "paw_r")
    right, _ = paw_states.paw_inputs(table, times, _wheel(), "right", "paw_r")
    np.testing.assert_array_equal(right[:, 0], 640 - left[:, 0])
    np.testing.assert_array_equal(right[:, 1:], left[:, 1:] * [1, -1])


def test_wheel_velocity_of_a_steady_turn():
    """A wheel turning at 2 rad/s reads 2 rad/s away from the filter's edges, on a 1 kHz clock from its first sample."""
    times = np.linspace(3.0, 13.0, 501)
    clock, velocity = paw_states.wheel_velocity(times, 2.0 * times)
    assert clock[0] == 3.0 and np.allclose(np.diff(clock), 1e-3) and clock[-1] <= 13.0
    np.testing.assert_allclose(velocity[1000:-1000], 2.0, atol=1e-6)


def test_ensemble_mean_and_variance_skip_members_without_prediction():
    a, b, c = np.array([[0.2], [np.nan]]), np.array([[0.4], [0.5]]), np.array([[0.9], [np.nan]])
    mean, variance = paw_states.combine([a, b, c])
    np.testing.assert_allclose(mean[:, 0], [0.5, 0.5])
    np.testing.assert_allclose(variance[0, 0], np.var([0.2, 0.4, 0.9], ddof=1))
    assert np.isnan(variance[1, 0])  # one member: no spread


@pytest.mark.parametrize("camera", CAMERAS)
def test_stage_reproduces_ibls_table(session, networks, camera):
    """The stage end to end with stand-in networks against IBL's lightning_action() with the same stand-ins: same
    columns in IBL's order, float64, one row per frame, the same numbers (the right camera's tail extrapolated as IBL's is)."""
    written = paw_states_stage(session, networks=networks, model_loader=la_standin.load)
    assert set(written) == set(CAMERAS)
    assert written[camera] == session / "alf" / "lightningaction" / f"_ibl_{camera}Camera.pawstates.pqt"
    ours = pd.read_parquet(written[camera])
    ibl = pd.read_parquet(REFERENCE / f"_ibl_{camera}Camera.pawstates.pqt")
    assert list(ours.columns) == list(ibl.columns)
    assert (ours.dtypes == np.float64).all()
    assert len(ours) == len(np.load(SOURCE / f"_ibl_{camera}Camera.times.npy"))
    np.testing.assert_array_equal(ours.isna().to_numpy(), ibl.isna().to_numpy())
    np.testing.assert_allclose(ours.to_numpy(), ibl.to_numpy(), rtol=0, atol=1e-11)  # 5e-13 measured, in the extrapolated tail
    if camera == "left":  # 1200 frames: two sequences of 500, then no prediction
        assert ours.iloc[1000:].isna().all().all() and ours.iloc[:1000].notna().all().all()
    metadata = table_metadata(written[camera])
    assert metadata["network_set"] == "networks_v1.2" and metadata["members"]["paw_r"] == ["network-0", "network-1", "network-2"]
    assert provenance(session, written[camera].name) == [f"_ibl_{camera}Camera.lightningPose.pqt", f"_ibl_{camera}Camera.times.npy",
                                                         WHEEL_POSITION, WHEEL_TIMES]


def test_cli_writes_the_tables(session, networks, monkeypatch, capsys):
    monkeypatch.setattr("iblvideo.sessions.stages._load_action_model", la_standin.load)
    assert main(["pawstates", str(session), "--networks", str(networks)]) == 0
    assert capsys.readouterr().out.split() == [str(SessionPaths(session).pawstates(c)) for c in CAMERAS]


def _outputs(session: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((session / "alf").rglob("*")) if p.is_file()}


def _one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message
    return message


def test_missing_networks_is_one_line_and_writes_nothing(session, tmp_path, capsys):
    before = _outputs(session)
    with pytest.raises(IblVideoError) as err:
        paw_states_stage(session, networks=tmp_path / "absent", model_loader=la_standin.load)
    assert "Lightning Action network folder not found" in _one_line(err)
    assert main(["pawstates", str(session), "--networks", str(tmp_path / "absent")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert _outputs(session) == before


def test_a_set_without_a_paw_is_refused(session, networks):
    shutil.rmtree(networks / "paw_l_networks")
    with pytest.raises(IblVideoError) as err:
        paw_states_stage(session, networks=networks, model_loader=la_standin.load)
    assert "no paw_l_networks/network-* folder" in _one_line(err)


def test_no_wheel_data_is_one_line(session, networks):
    (session / "alf" / WHEEL_POSITION).unlink()
    before = _outputs(session)
    with pytest.raises(IblVideoError) as err:
        paw_states_stage(session, networks=networks, model_loader=la_standin.load)
    assert "no wheel data" in _one_line(err)
    assert _outputs(session) == before


def test_too_short_wheel_data_is_one_line(session, networks):
    np.save(session / "alf" / WHEEL_TIMES, np.array([0.0, 0.001, 0.002]))
    np.save(session / "alf" / WHEEL_POSITION, np.array([0.0, 0.1, 0.2]))
    with pytest.raises(IblVideoError) as err:
        paw_states_stage(session, networks=networks, model_loader=la_standin.load)
    assert _one_line(err) == f"{session / 'alf' / WHEEL_TIMES}: 2 ms of wheel data: too short to filter"


def test_a_dlc_table_is_not_read(tmp_path, networks):
    """IBL's networks read the Lightning Pose table's smoothed paws; a session with DeepLabCut tables only gets one line."""
    session = _copy_session(tmp_path, DLC_SOURCE, "dlc")
    with pytest.raises(IblVideoError) as err:
        paw_states_stage(session, networks=networks, model_loader=la_standin.load)
    assert "no side camera's lightning-pose pose table (_ibl_<left|right>Camera.lightningPose.pqt)" in _one_line(err)


def test_a_table_without_paws_skips_its_camera_only(session, networks, caplog):
    pose = session / "alf" / "_ibl_rightCamera.lightningPose.pqt"
    pd.read_parquet(pose).drop(columns=["paw_l_x", "paw_l_y"]).to_parquet(pose)
    written = paw_states_stage(session, networks=networks, model_loader=la_standin.load)
    assert list(written) == ["left"]
    assert "has no paw_l_x, paw_l_y column(s)" in caplog.text
    assert not SessionPaths(session).pawstates("right").exists()
    pd.read_parquet(session / "alf" / "_ibl_leftCamera.lightningPose.pqt").drop(columns=["paw_r_x"]).to_parquet(
        session / "alf" / "_ibl_leftCamera.lightningPose.pqt")
    with pytest.raises(IblVideoError) as err:
        paw_states_stage(session, networks=networks, model_loader=la_standin.load)
    assert "no paw states written" in _one_line(err) and "paw_r_x" in str(err.value)


def test_times_of_another_length_skip_the_camera(session, networks, caplog):
    times = session / "alf" / "_ibl_leftCamera.times.npy"
    np.save(times, np.load(times)[:-5])
    assert list(paw_states_stage(session, networks=networks, model_loader=la_standin.load)) == ["right"]
    assert "1200 pose rows but 1195 camera times" in caplog.text


def test_a_model_of_other_inputs_is_refused(session, networks):
    class Wide(la_standin.StandInModel):
        n_features = 6

    with pytest.raises(IblVideoError) as err:
        paw_states_stage(session, networks=networks, model_loader=lambda member: Wide(0))
    assert "takes 6 inputs per frame, not IBL's 3 (x, y, wheel velocity)" in _one_line(err)


def test_members_of_other_states_are_refused(session, networks):
    class Other(la_standin.StandInModel):
        class_names = ("still", "move")

    with pytest.raises(IblVideoError) as err:
        paw_states_stage(session, networks=networks, model_loader=lambda m: Other(0) if m.name == "network-2" else la_standin.load(m))
    assert "its states ['still', 'move'] are not the other networks'" in _one_line(err)


def test_set_zip_unpacks_only_the_paw_networks(networks, tmp_path):
    bundle = tmp_path / "networks_v1.2.zip"
    with zipfile.ZipFile(bundle, "w") as out:
        for path in sorted(networks.rglob("*")):
            if path.is_file():
                out.write(path, f"networks_v1.2/{path.relative_to(networks)}")
        out.writestr("networks_v1.2/notes/readme.txt", "not a network")
        out.writestr("__MACOSX/networks_v1.2/._x.yaml", "")
    with zipfile.ZipFile(bundle) as opened:
        members = la_networks.model_members(opened)
    assert len(members) == 6 and all("/paw_" in m and m.endswith("config.yaml") for m in members)


def test_unknown_set_name_is_refused(networks):
    renamed = networks.rename(networks.with_name("networks_v9"))
    with pytest.raises(IblVideoError) as err:
        la_networks.profile_for(renamed)
    assert "unknown Lightning Action network set 'networks_v9'" in _one_line(err)
    assert la_networks.profile_for(renamed, any_set=True) is la_networks.V1_2


def test_stage_runs_our_lightning_action_loader(tmp_path):
    """With networks.lightning_action's loader on a seeded IBL-shaped model (tests/data/la-reference/ibl-dtcn-0.2.4), one
    member per paw: IBL's table, the states summing to one where predicted, no spread with one member."""
    session = _copy_session(tmp_path)
    for name in ("_ibl_rightCamera.lightningPose.pqt", "_ibl_rightCamera.times.npy"):
        (session / "alf" / name).unlink()
    model = DATA / "la-reference" / "ibl-dtcn-0.2.4"
    for paw in paw_states.PAWS:
        member = tmp_path / "networks_v1.2" / f"{paw}_networks" / "network-0"
        member.mkdir(parents=True)
        for name in ("config.yaml", "final_model.ckpt"):
            shutil.copy(model / name, member / name)
    table = pd.read_parquet(paw_states_stage(session, networks=tmp_path / "networks_v1.2")["left"])
    assert list(table.columns) == list(pd.read_parquet(REFERENCE / "_ibl_leftCamera.pawstates.pqt").columns)
    states = table.filter(regex=r"^paw_[rl]_[a-z_]+(?<!_ens_var)$").to_numpy()
    np.testing.assert_allclose(states[:1000].reshape(1000, 2, 5).sum(axis=2), 1.0, atol=1e-5)
    assert np.isnan(states[1000:]).all() and table.filter(like="_ens_var").isna().all().all()


def test_the_set_is_downloaded_verified_and_checked_at_every_use(networks, tmp_path, monkeypatch):
    """IBL's zip from a server on loopback: fetched once into the cache, its sha256 checked, only the model files
    unpacked, and a file damaged afterwards refused with one line at the next use."""
    monkeypatch.setenv("IBLVIDEO_CACHE", str(tmp_path / "cache"))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as out:
        for path in sorted(networks.rglob("*")):
            if path.is_file():
                out.write(path, f"networks_v1.2/{path.relative_to(networks)}")
        out.writestr("networks_v1.2/notes/readme.txt", "not a network")
    data = buffer.getvalue()
    with FileServer({"networks_v1.2.zip": data}) as server:
        url = server.url("networks_v1.2.zip")
        with pytest.raises(IblVideoError) as err:
            la_networks.networks_dir(url, sha256="0" * 64)
        assert "checksum mismatch" in _one_line(err)
        root = la_networks.networks_dir(url, sha256=hashlib.sha256(data).hexdigest())
    assert la_networks.profile_for(root) is la_networks.V1_2 and not (root / "notes").exists()
    assert la_networks.found() is None  # $IBLVIDEO_LA_NETWORKS unset, IBL's own URL never fetched
    member = la_networks.V1_2.members(root, "paw_r")[0] / "config.yaml"
    member.write_text(member.read_text() + "# changed\n")
    with FileServer({"networks_v1.2.zip": data}) as server, pytest.raises(IblVideoError) as err:
        la_networks.networks_dir(server.url("networks_v1.2.zip"))
    assert "delete" in _one_line(err) or "changed" in _one_line(err)
