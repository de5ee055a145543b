"""Compute ibllib's own answers for the parity tests and store them in tests/reference/ibllib/.

Runs IBL's code, never ours: ibllib's brainbox.behavior.dlc (pupil diameter, smoothing, licks,
sniffs, speeds), ibllib.qc.dlc.DlcQC (QC checks and outcome), and upstream iblvideo's
motion_energy.motion_energy (ROI and motion energy through OpenCV). On Lightning Pose tables
(the ``lp_`` fixtures): ibllib's PostLP task itself (``video_tasks.PostLP._run``: features, licks,
and its LpQC, kept offline), and upstream's motion energy on the lightningPose tables.

Inputs (committed): the real IBL ensembles in tests/data/ibl-ensembles; a synthetic session from
``iblvideo synth`` in tests/data/synth-session (see inputs.SYNTH_SESSION); and the fake sessions and
motion-energy videos this script writes with tests/reference/inputs.py (``--write-inputs``).

To rerun, in a virtual environment separate from iblvideo's (ibllib pins its own stack)::

    python -m venv /work/ibllib-venv
    /work/ibllib-venv/bin/pip install ibllib==4.1.0 av opencv-python-headless==5.0.0.93   # one-api 3.6.1 (VERSIONS.txt)
    git clone https://github.com/int-brain-lab/iblvideo /tmp/iblvideo-upstream
    /work/ibllib-venv/bin/python tests/reference/make_ibllib_reference.py \
        --iblvideo /tmp/iblvideo-upstream [--write-inputs]

``--write-inputs`` regenerates the committed inputs first (only needed when inputs.py changes).
The Lightning Pose tables our tracker wrote (inputs.LP_TRACKED_SESSION) are written in iblvideo's venv,
before this script runs: ``python -c "import sys; sys.path.insert(0, 'tests/reference'); import inputs;
inputs.write_lp_tracked_session()"``. ``--lp-only`` remakes the ``lp_*`` fixtures alone.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import inputs  # the shared, dependency-light input definitions
from brainbox.behavior import dlc as bb_dlc
from ibllib.pipes import video_tasks
from ibllib.qc.dlc import DlcQC, LpQC
from iblutil.util import Bunch

OUT = inputs.REFERENCE


def offline_qc(session: Path | None, side: str) -> DlcQC:
    """A DlcQC without ONE/Alyx: its __init__ wants a database connection, which we skip."""
    qc = DlcQC.__new__(DlcQC)
    qc.side, qc.tracker, qc.one, qc.eid = side, "dlc", None, None
    qc.session_path, qc.download_data = session, False
    qc.ignore_checks, qc.data, qc.metrics = ["check_pupil_diameter_snr"], Bunch(), None
    return qc


def jsonable(metrics: dict) -> dict:
    """QC metrics keyed by check name (IBL's ``_dlcLeft_`` prefix dropped); (outcome, value) tuples kept as lists."""
    out = {}
    for key, value in metrics.items():
        name = key.split("_", 2)[2]
        out[name] = [value[0], None if np.isnan(value[1]) else value[1]] if isinstance(value, tuple) else value
    return out


def save_npy(name: str, values) -> None:
    np.save(OUT / name, np.asarray(values, dtype=float))


def pupil_ensemble() -> dict:
    """Pupil diameters of the real pupil ensemble, smoothed as the left and as the right camera; pupil QC."""
    pose = bb_dlc.likelihood_threshold(inputs.ensemble_median("pupil", "left"))
    raw = bb_dlc.get_pupil_diameter(pose)
    save_npy("pupil_raw.npy", raw)
    qc_out = {}
    for camera in ("left", "right"):
        smooth = bb_dlc.get_smooth_pupil_diameter(raw, camera)
        save_npy(f"pupil_smooth_{camera}.npy", smooth)
        qc = offline_qc(None, camera)
        qc.data.update(pupilDiameter_raw=raw, pupilDiameter_smooth=smooth)
        qc_out[camera] = {"pupil_blocked": qc.check_pupil_blocked(), "pupil_diameter_snr": list(qc.check_pupil_diameter_snr())}
    return qc_out


def paw_ensemble() -> dict:
    """Paw speeds, event times of the paw traces, and the pose QC checks on the real paw ensembles."""
    qc_out = {}
    for camera in ("left", "right"):
        pose = bb_dlc.likelihood_threshold(inputs.ensemble_median("paw", camera))
        times = inputs.ensemble_times(camera)
        for point in ("paw_l", "paw_r"):
            save_npy(f"speed_{camera}_{point}.npy", bb_dlc.get_speed(pose, times, camera, point))
        save_npy(f"events_{camera}_paws.npy", bb_dlc.get_feature_event_times(pose, times, ["paw_l_x", "paw_l_y", "paw_r_x", "paw_r_y"]))
        qc = offline_qc(None, camera)
        qc.data.update(
            camera_times=times, stimOn_times=inputs.stim_on_times(times),
            pose_coords={p: np.array((pose[f"{p}_x"], pose[f"{p}_y"])) for p in ("paw_l", "paw_r")},
        )
        qc_out[camera] = {
            name: getattr(qc, f"check_{name}")()
            for name in ("time_trace_length_match", "trace_all_nan", "mean_in_bbox", "paw_close_nan", "paw_far_nan")
        }
    return qc_out


def post_dlc(session: Path) -> dict:
    """ibllib's EphysPostDLC steps on one session (features, merged licks), then DlcQC per camera it would check."""
    alf = session / "alf"
    licks, qc_out = [], {}
    for camera in ("left", "right", "body"):
        pose = bb_dlc.likelihood_threshold(pd.read_parquet(alf / f"_ibl_{camera}Camera.dlc.pqt"))
        times_file = alf / f"_ibl_{camera}Camera.times.npy"
        times = np.load(times_file) if times_file.exists() else None
        usable = times is not None and times.shape[0] >= len(pose)
        if camera != "body":
            if usable:
                licks.append(bb_dlc.get_licks(pose, times))
                save_npy(f"{session.parts[-3]}_{camera}_sniffs.npy", bb_dlc.get_sniffs(pose, times))
                for point in ("paw_r", "paw_l", "nose_tip"):
                    save_npy(f"{session.parts[-3]}_{camera}_{point}_speed.npy", bb_dlc.get_speed(pose, times[: len(pose)], camera, point))
            features = pd.DataFrame({"pupilDiameter_raw": bb_dlc.get_pupil_diameter(pose)})
            try:
                features["pupilDiameter_smooth"] = bb_dlc.get_smooth_pupil_diameter(features["pupilDiameter_raw"], camera)
            except Exception:  # noqa: BLE001 - EphysPostDLC saves NaNs when smoothing fails, whatever the error
                features["pupilDiameter_smooth"] = np.nan
            features.to_parquet(alf / f"_ibl_{camera}Camera.features.pqt")
            features.to_parquet(OUT / f"{session.parts[-3]}_{camera}_features.pqt")
        if times is not None:  # EphysPostDLC runs the QC only where camera times exist
            qc = offline_qc(session, camera)
            outcome, metrics = qc.run()
            qc_out[camera] = {"outcome": outcome.name, "checks": jsonable(metrics)}
    if licks:
        save_npy(f"{session.parts[-3]}_licks.npy", sorted(np.concatenate(licks)))
    return qc_out


def motion_energy(iblvideo: Path) -> dict:
    """Upstream iblvideo's motion energy on the committed motion videos."""
    upstream = _upstream_motion_energy(iblvideo)
    rois = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, source in {"me": inputs.ME_SESSION, "synth": inputs.SYNTH_SESSION}.items():
            session = Path(tmp) / name
            shutil.copytree(source, session)
            for video in sorted((session / "raw_video_data").glob("_iblrig_*Camera.raw.mp4")):
                camera = video.name[len("_iblrig_"):-len("Camera.raw.mp4")]
                me_file, roi_file = upstream.motion_energy(video, session / "alf" / f"_ibl_{camera}Camera.dlc.pqt", frames=20)
                save_npy(f"motion_energy_{name}_{camera}.npy", np.load(me_file))
                rois[f"{name}_{camera}"] = np.load(roi_file).tolist()
    return rois


class OfflineLpQC(LpQC):
    """IBL's LpQC as PostLP builds it, without ONE/Alyx: ``run(update=True)`` keeps its outcome in ``RESULTS``."""

    RESULTS: ClassVar[dict] = {}

    def __init__(self, session_path: Path, side: str, **_: object):
        self.side, self.tracker, self.one, self.eid = side, "lightningPose", None, None
        self.session_path, self.download_data = Path(session_path), False
        self.ignore_checks, self.data, self.metrics = [], Bunch(), None  # LpQC's default: no check ignored

    def run(self, update: bool = False, **kwargs):
        outcome, metrics = super().run(update=False, **kwargs)
        self.RESULTS[self.side] = {"outcome": outcome.name, "checks": jsonable(metrics)}
        return outcome, metrics


def post_lp(session: Path, prefix: str) -> dict:
    """ibllib's PostLP task, run as it is, on one session of Lightning Pose tables; its LpQC outcomes per camera."""
    alf = session / "alf"
    task = video_tasks.PostLP.__new__(video_tasks.PostLP)
    task.session_path, task.one, task.status, task.output_files = session, None, 0, []
    task.cameras = [camera for camera in ("left", "right", "body") if (alf / f"_ibl_{camera}Camera.lightningPose.pqt").exists()]
    task.assert_expected = lambda *args, **kwargs: (False, None)  # outputs never exist beforehand here
    OfflineLpQC.RESULTS = {}
    original, video_tasks.LpQC = video_tasks.LpQC, OfflineLpQC
    try:
        video_tasks.PostLP._run(task, overwrite=True, run_qc=True, plot_qc=False)
    finally:
        video_tasks.LpQC = original
    for camera in task.cameras:
        if (alf / f"_ibl_{camera}Camera.features.pqt").exists():
            shutil.copyfile(alf / f"_ibl_{camera}Camera.features.pqt", OUT / f"{prefix}_{camera}_features.pqt")
        times_file = alf / f"_ibl_{camera}Camera.times.npy"
        pose = bb_dlc.likelihood_threshold(pd.read_parquet(alf / f"_ibl_{camera}Camera.lightningPose.pqt"))
        if camera != "body" and times_file.exists() and len(np.load(times_file)) >= len(pose):
            times = np.load(times_file)  # iblvideo's sniffs and speeds, from the same thresholded table
            save_npy(f"{prefix}_{camera}_sniffs.npy", bb_dlc.get_sniffs(pose, times))
            for point in ("paw_r", "paw_l", "nose_tip"):
                save_npy(f"{prefix}_{camera}_{point}_speed.npy", bb_dlc.get_speed(pose, times[: len(pose)], camera, point))
    if (alf / "licks.times.npy").exists():
        save_npy(f"{prefix}_licks.npy", np.load(alf / "licks.times.npy"))
    return {"status": task.status, **OfflineLpQC.RESULTS}


def lp_motion_energy(iblvideo: Path) -> dict:
    """Upstream iblvideo's motion energy on the motion videos and the tracked session's, its ROI placed from
    their lightningPose tables."""
    upstream = _upstream_motion_energy(iblvideo)
    rois = {}
    with tempfile.TemporaryDirectory() as tmp:
        me = Path(tmp) / "lp_me" / "2024-01-01" / "001"
        shutil.copytree(inputs.LP_ME_SESSION, me)
        shutil.copytree(inputs.ME_SESSION / "raw_video_data", me / "raw_video_data")
        tracked = Path(tmp) / "lp_tracked" / "2024-01-01" / "001"
        shutil.copytree(inputs.LP_TRACKED_SESSION, tracked)
        for name, session in {"me": me, "tracked": tracked}.items():
            for table in sorted((session / "alf").glob("_ibl_*Camera.lightningPose.pqt")):
                camera = table.name[len("_ibl_"):-len("Camera.lightningPose.pqt")]
                video = session / "raw_video_data" / f"_iblrig_{camera}Camera.raw.mp4"
                me_file, roi_file = upstream.motion_energy(video, table, frames=20)
                save_npy(f"lp_motion_energy_{name}_{camera}.npy", np.load(me_file))
                rois[f"{name}_{camera}"] = np.load(roi_file).tolist()
    return rois


def _upstream_motion_energy(iblvideo: Path):
    spec = importlib.util.spec_from_file_location("upstream_motion_energy", iblvideo / "iblvideo" / "motion_energy.py")
    upstream = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(upstream)
    return upstream


def lightning_pose(iblvideo: Path) -> None:
    """Every Lightning Pose fixture (``lp_*``): PostLP and LpQC on the committed sessions, motion energy on
    their lightningPose tables."""
    for old in OUT.glob("lp_*"):
        old.unlink()
    qc = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, source in inputs.lp_sessions().items():
            session = Path(tmp) / name / "2024-01-01" / "001"
            shutil.copytree(source, session)
            qc[name] = post_lp(session, name)
    (OUT / "lp_qc.json").write_text(json.dumps(qc, indent=2) + "\n")
    (OUT / "lp_motion_energy_roi.json").write_text(json.dumps(lp_motion_energy(iblvideo), indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iblvideo", type=Path, required=True, help="checkout of github.com/int-brain-lab/iblvideo")
    parser.add_argument("--write-inputs", action="store_true", help="regenerate the committed fake sessions and videos first")
    parser.add_argument("--lp-only", action="store_true", help="remake the Lightning Pose fixtures (lp_*) only")
    args = parser.parse_args()
    if args.lp_only:
        lightning_pose(args.iblvideo)
        return
    if args.write_inputs:
        shutil.rmtree(inputs.FAKE_SESSIONS, ignore_errors=True)
        for name, seed in inputs.FAKE_CASES.items():
            inputs.write_fake_session(inputs.FAKE_SESSIONS, name, seed)
        shutil.rmtree(inputs.ME_SESSION.parents[2], ignore_errors=True)
        for camera in inputs.ME_SIZE:
            inputs.write_motion_video(camera)
            inputs.write_motion_pose(camera)
            inputs.write_motion_lp_pose(camera)
        for name, seed in inputs.LP_CASES.items():
            inputs.write_lp_session(inputs.FAKE_SESSIONS, name, seed)
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    qc = {"pupil_ensemble": pupil_ensemble(), "paw_ensemble": paw_ensemble()}
    with tempfile.TemporaryDirectory() as tmp:
        for name, source in inputs.reference_sessions().items():
            session = Path(tmp) / name / "2024-01-01" / "001"
            shutil.copytree(source, session)
            qc[name] = post_dlc(session)
    rois = motion_energy(args.iblvideo)
    (OUT / "qc.json").write_text(json.dumps(qc, indent=2) + "\n")
    (OUT / "motion_energy_roi.json").write_text(json.dumps(rois, indent=2) + "\n")
    lightning_pose(args.iblvideo)
    (OUT / "VERSIONS.txt").write_text(versions(args.iblvideo))


def versions(iblvideo: Path) -> str:
    """What made these numbers: package versions and the upstream iblvideo commit."""
    from importlib.metadata import version

    commit = subprocess.run(["git", "-C", str(iblvideo), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    packages = ("ibllib", "ibl-neuropixel", "one-api", "opencv-python-headless", "numpy", "scipy", "pandas")
    return "".join(f"{name} {version(name)}\n" for name in packages) + f"iblvideo (upstream) {commit or 'unknown commit'}\n"


if __name__ == "__main__":
    main()
