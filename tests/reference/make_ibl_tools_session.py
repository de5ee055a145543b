"""Make the session that IBL's own tools are run on (tests/data/ibl-tools-session/), in iblvideo's venv.

Two sessions of one synthetic mouse, under one data root:

- ``synth_mouse_2/2026-01-01/001``: ``iblvideo.synth.synthesize_session`` (all three cameras, SECONDS
  long, the demo's seed) run through ``iblvideo.run_session`` with the demo weights, tracker ``dlc``;
  its videos re-encoded small afterwards (see ``shrink_videos``) to keep the committed size down.
- ``synth_mouse_2/2026-01-01/002``: the same session with IBL's Lightning Pose tables in place of the
  DeepLabCut ones (``inputs.lp_table``, IBL's column layout, from 001's tracks), then our motion-energy
  (001's videos lent for the pass), features and QC stages with tracker ``lightning-pose``; no videos of
  its own (LpQC and SessionLoader read none).

``registered.json`` lists, per session, the files our pipeline hands to registration with ONE
(run_session's outputs; for 002, the tables and the files the stages wrote): ONE's RegistrationClient
must keep every IBL dataset among them. The ONE cache tables run_session wrote are removed: the
reference script builds its own.

``--tracker truth`` puts the ground truth in place of the demo weights' tracks: only to try the
reference script while the demo weights cannot track a session (the committed fixtures are ``dlc``'s).

One command, idempotent (the folder is made again from scratch)::

    /work/venv/bin/python tests/reference/make_ibl_tools_session.py
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import inputs  # IBL's Lightning Pose table layout, shared with the ibllib reference

from iblvideo.demo import DEMO_SEED
from iblvideo.io.alf import (
    ALF_COLLECTION,
    CAMERA_NAMES,
    QC_REPORT,
    RAW_VIDEO_COLLECTION,
    TRIALS,
    TRUTH_COLLECTION,
    WHEEL_POSITION,
    WHEEL_TIMES,
    SessionPaths,
    pose_name,
)
from iblvideo.sessions.session import run_session
from iblvideo.sessions.stages import features_stage, motion_energy_stage, qc_stage
from iblvideo.synth import synthesize_session

ROOT = inputs.DATA / "ibl-tools-session"
SUBJECT = f"synth_mouse_{DEMO_SEED}"
DLC_SESSION = ROOT / SUBJECT / "2026-01-01" / "001"
LP_SESSION = ROOT / SUBJECT / "2026-01-01" / "002"
REGISTERED = ROOT / "registered.json"
SECONDS = 20.0
# the committed videos: a few MB for the three cameras (IBL's tools read one frame of each; our
# outputs were made from the full-quality render before this)
SMALL_VIDEO = {"crf": "40", "preset": "ultrafast", "threads": "1", "flags": "+bitexact"}
NON_DATA = (".iblvideo-cache.lock", "sessions.pqt", "datasets.pqt", "cache_info.json")


def relative(session: Path, paths: list[Path]) -> list[str]:
    return sorted(Path(p).relative_to(session).as_posix() for p in paths)


def dlc_session(tmp: Path, tracker: str) -> list[str]:
    """Render and run the pipeline; the files run_session registered, relative to the session."""
    session = synthesize_session(tmp, seconds=SECONDS, seed=DEMO_SEED)
    result = run_session(session, tracker=tracker, weights="demo" if tracker == "dlc" else None)
    if result.status != "Complete":
        raise SystemExit(f"run_session: {result.status}\n{result.error}")
    print(f"run_session: {result.status}, QC {result.qc}, {result.seconds:.1f} s")
    outputs = [*result.outputs, *(p for c in result.cameras.values() for p in c.outputs)]
    return relative(session, outputs)


def lp_session(dlc: Path, out: Path) -> list[str]:
    """001 with IBL-layout Lightning Pose tables instead of its DeepLabCut ones; our features and QC on them."""
    alf = out / ALF_COLLECTION
    alf.mkdir(parents=True)
    source = SessionPaths(dlc)
    for name in (TRIALS, WHEEL_POSITION, WHEEL_TIMES):
        shutil.copyfile(source.session_file(name), alf / name)
    rng = np.random.default_rng(DEMO_SEED)
    for camera in CAMERA_NAMES:
        shutil.copyfile(source.times(camera), alf / source.times(camera).name)
        pose = pd.read_parquet(source.pose(camera, "dlc"))
        table = inputs.lp_table(rng, pose, camera)
        spout = [column for column in table.columns if column.startswith("tube_") and column in pose.columns]
        table[spout] = pose[spout]  # lp_table places a spout of its own: keep the one tracked
        table.to_parquet(alf / pose_name(camera, "lightningPose"))
    # motion energy from the lightningPose tables, with 001's videos lent for the pass and taken back
    shutil.copytree(source.raw_video_data, out / RAW_VIDEO_COLLECTION)
    written = [path for pair in motion_energy_stage(out, tracker="lightning-pose").values() for path in pair]
    shutil.rmtree(out / RAW_VIDEO_COLLECTION)
    written += list(features_stage(out, "lightning-pose").values())
    report = qc_stage(out, "lightning-pose")
    print(f"Lightning Pose copy: QC {report['outcome']}")
    tables = [alf / pose_name(camera, "lightningPose") for camera in CAMERA_NAMES]
    return relative(out, [*tables, *written, SessionPaths(out).session_file(QC_REPORT)])


def shrink_videos(session: Path) -> None:
    """Re-encode each raw video at a low quality, same size, rate and frame count."""
    import av

    for video in sorted((session / "raw_video_data").glob("_iblrig_*Camera.raw.mp4")):
        small = video.with_suffix(".small.mp4")
        with av.open(str(video)) as source, av.open(str(small), "w", options={"fflags": "+bitexact"}) as target:
            stream_in = source.streams.video[0]
            stream = target.add_stream("libx264", rate=stream_in.average_rate)
            stream.width, stream.height, stream.pix_fmt = stream_in.width, stream_in.height, "yuv420p"
            stream.options = dict(SMALL_VIDEO)
            for frame in source.decode(stream_in):
                target.mux(stream.encode(av.VideoFrame.from_ndarray(frame.to_ndarray(format="gray"), format="gray")))
            target.mux(stream.encode(None))
        small.replace(video)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracker", choices=("dlc", "truth"), default="dlc",
                        help="dlc (the demo weights; the fixtures' session) or truth (the ground truth as pose tables: "
                             "only to try the reference script while the demo weights cannot run)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rendered = Path(tmp) / "rendered"
        registered = {"tracker": args.tracker, "001": dlc_session(rendered, args.tracker)}
        made = rendered / SUBJECT / "2026-01-01" / "001"
        registered["002"] = lp_session(made, made.parent / "002")
        for leftover in NON_DATA:
            (rendered / leftover).unlink(missing_ok=True)
        shrink_videos(made)
        shutil.rmtree(ROOT, ignore_errors=True)
        shutil.copytree(rendered, ROOT)
    REGISTERED.write_text(json.dumps(registered, indent=2) + "\n")
    size = sum(p.stat().st_size for p in ROOT.rglob("*") if p.is_file())
    print(f"{ROOT}: {size / 1e6:.2f} MB; registered: 001 {len(registered['001'])} files, 002 {len(registered['002'])} files")
    print(f"truth in {TRUTH_COLLECTION}/: {sorted(p.name for p in (DLC_SESSION / TRUTH_COLLECTION).iterdir())}")


if __name__ == "__main__":
    main()
