"""Writes ibllib_extended_qc.json: what ibllib 4.1.0's DlcQC and LpQC write to an Alyx session.

Run in a virtual environment with ibllib 4.1.0 (pandas < 3), from the repository root:
``python tests/data/alyx/make_ibllib_extended_qc.py``. For every reference session of
tests/reference (the DLC ones after EphysPostDLC's steps, the Lightning Pose ones after PostLP),
each camera with camera times gets ibllib's own ``run(update=True)``, talking to a session record
held in memory instead of Alyx; the file keeps that record's ``extended_qc`` and ``qc`` at the end.
"""
from __future__ import annotations

import copy
import json
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "reference"))
import inputs  # noqa: E402
import make_ibllib_reference as reference  # noqa: E402
from ibllib.qc.dlc import DlcQC, LpQC  # noqa: E402
from iblutil.util import Bunch  # noqa: E402


class SessionRecord:
    """The few AlyxClient calls ibllib's QC.update and update_extended_qc make, on one session record."""

    def __init__(self) -> None:
        self.record = {"qc": "NOT_SET", "extended_qc": None, "json": None}

    def get(self, url: str, clobber: bool = False) -> dict:
        return copy.deepcopy(self.record)

    def json_field_update(self, endpoint: str, uuid: str, field_name: str, data: dict) -> dict:
        self.record[field_name] = {**(self.record[field_name] or {}), **json.loads(json.dumps(data))}
        return self.record[field_name]

    def rest(self, endpoint: str, action: str, id: str, data: dict) -> dict:
        assert action == "partial_update"
        self.record.update(data)
        return copy.deepcopy(self.record)


def run_qc(kind: type, session: Path, camera: str, alyx: SessionRecord) -> None:
    """ibllib's ``kind`` (DlcQC or LpQC, built as its tasks build it) on one camera, ``run(update=True)`` writing to ``alyx``."""
    one = Bunch(alyx=alyx, offline=False, path2eid=lambda path: "eid")
    kind(session, side=camera, one=one, download_data=False).run(update=True)


def main() -> None:
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        reference.OUT = Path(tmp) / "reference-out"  # the reference script's side files go there, not into tests/reference
        reference.OUT.mkdir()
        sessions = {**{n: (s, DlcQC) for n, s in inputs.reference_sessions().items()}, **{n: (s, LpQC) for n, s in inputs.lp_sessions().items()}}
        for name, (source, kind) in sessions.items():
            session = Path(tmp) / name / "2024-01-01" / "001"
            shutil.copytree(source, session)
            if kind is DlcQC:  # EphysPostDLC's features, which DlcQC reads
                reference.post_dlc(session)
            else:
                reference.post_lp(session, name)
            alyx = SessionRecord()
            for camera in ("left", "right", "body"):
                if (session / "alf" / f"_ibl_{camera}Camera.times.npy").exists():  # IBL's tasks run the QC only there
                    run_qc(kind, session, camera, alyx)
            results[name] = {"qc": alyx.record["qc"], "extended_qc": alyx.record["extended_qc"]}
    (HERE / "ibllib_extended_qc.json").write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
