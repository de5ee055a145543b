"""IBL's extended QC: our keys and values against what ibllib's own DlcQC and LpQC write to Alyx, and the
Alyx session updated as ibllib updates it, through ONE's real AlyxClient on the Alyx stand-in."""
from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from alyx_standin import logged_in
from iblvideo.io.alf import QC_REPORT
from iblvideo.io.one import update_alyx_qc
from iblvideo.measures import qc as Q
from iblvideo.sessions.stages import features_stage, qc_stage
from reference import inputs

# made by tests/data/alyx/make_ibllib_extended_qc.py with ibllib 4.1.0
REFERENCE = json.loads((Path(__file__).parent / "data" / "alyx" / "ibllib_extended_qc.json").read_text())
SESSIONS = {**inputs.reference_sessions(), **inputs.lp_sessions()}


def ibl_keys(extended: dict) -> dict:
    return {key: value for key, value in extended.items() if not key.startswith("_iblvideo")}


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, dict]:
    """Our QC report of every reference session, after our features (ibllib's QC reads its feature tables)."""
    root, out = tmp_path_factory.mktemp("alyx-qc"), {}
    for name, source in SESSIONS.items():
        session = root / name / "2024-01-01" / "001"
        shutil.copytree(source, session)
        features_stage(session)
        out[name] = qc_stage(session)
        assert json.loads((session / "alf" / QC_REPORT).read_text())["extended_qc"] == out[name]["extended_qc"]
    return out


@pytest.fixture
def alyx(tmp_path, monkeypatch):
    with logged_in(tmp_path, monkeypatch) as (server, client):
        yield server, SimpleNamespace(alyx=client, offline=False)


@pytest.mark.parametrize("name", list(SESSIONS))
def test_extended_qc_is_what_ibllib_writes(reports, name):
    extended, theirs = reports[name]["extended_qc"], REFERENCE[name]["extended_qc"]
    assert ibl_keys(extended) == theirs
    # our own check sits apart, one per camera IBL checks
    cameras = [key.removeprefix("dlc").removeprefix("lightningPose") for key in theirs if not key.startswith("_")]
    assert set(extended) - set(theirs) == {f"_iblvideo{camera}_decode_errors" for camera in cameras}


def test_alyx_session_gets_ibllibs_extended_qc_and_qc(alyx, reports):
    server, one = alyx
    for name, report in reports.items():
        eid = str(uuid.uuid4())
        server.add_session(eid)
        assert update_alyx_qc(one, eid, report["extended_qc"]) == REFERENCE[name]["qc"], name
        record = server.sessions[eid]
        assert ibl_keys(record["extended_qc"]) == REFERENCE[name]["extended_qc"] and record["qc"] == REFERENCE[name]["qc"]


def test_alyx_keeps_other_keys_and_a_worse_qc(alyx, reports):
    server, one = alyx
    eid = str(uuid.uuid4())
    server.add_session(eid, qc="CRITICAL", extended_qc={"_task_iti_delays": 0.9, "dlcLeft": "FAIL"})
    assert update_alyx_qc(one, eid, reports["good"]["extended_qc"]) == "CRITICAL"  # IBL lowers no outcome
    extended = server.sessions[eid]["extended_qc"]
    assert extended["_task_iti_delays"] == 0.9 and extended["dlcLeft"] == "PASS" and extended["_dlcLeft_pupil_diameter_snr"] == ["PASS", 90.858]
    server.add_session(eid, qc="WARNING")
    assert update_alyx_qc(one, eid, reports["blind"]["extended_qc"]) == "FAIL" == server.sessions[eid]["qc"]


def test_decode_errors_stay_out_of_ibls_namespace_and_aggregate():
    data = Q.CameraData("body", coords={"tail_start": np.array([[300.0] * 50, [200.0] * 50])}, times=np.arange(50) / 30, decode_errors=3)
    result = Q.run_camera_qc(data)
    assert result["outcome"] == "WARNING"  # our report counts the damage
    assert Q.camera_extended_qc("body", result) == {
        "_dlcBody_time_trace_length_match": "PASS", "_dlcBody_trace_all_nan": "PASS", "_dlcBody_mean_in_bbox": "PASS",
        "_dlcBody_lick_detection": "NOT_SET", "_dlcBody_pupil_blocked": "NOT_SET", "_dlcBody_pupil_diameter_snr": "NOT_SET",
        "_dlcBody_paw_close_nan": "NOT_SET", "_dlcBody_paw_far_nan": "NOT_SET", "dlcBody": "PASS",
        "_iblvideoBody_decode_errors": ["WARNING", 3.0],
    }
