"""The ``iblvideo`` command: one subcommand per pipeline stage.

Each subcommand's handler imports its stage lazily, so ``iblvideo --help`` stays instant.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

from iblvideo import __doc__ as package_doc, __version__
from iblvideo.errors import BadArgument, IblVideoError
from iblvideo.extras import MissingExtra
from iblvideo.io.alf import CAMERA_NAMES
from iblvideo.io.session_files import LIGHTNING_POSE
from iblvideo.progress import configure
from iblvideo.tracking.registry import TRACKERS, TRUTH
from iblvideo.video.batching import BATCH_SIZE

log = logging.getLogger("iblvideo")
T = TypeVar("T")
Handler = Callable[[argparse.Namespace], int | None]


def _cameras(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [name for name in names if name not in CAMERA_NAMES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"cameras must be a comma list of left, right, body; got {text!r}")
    return names


def _checked(parse: Callable[[str], T], valid: Callable[[T], bool], rule: str) -> Callable[[str], T]:
    """An argparse type: the text parsed, and refused in one line saying ``rule`` unless ``valid``."""
    def check(text: str) -> T:
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{rule}; got {text!r}") from None
        if not valid(value):
            raise argparse.ArgumentTypeError(f"{rule}; got {text!r}")
        return value
    return check


_count = _checked(int, lambda value: value >= 1, "must be a whole number, at least 1")  # batch sizes
_seed = _checked(int, lambda value: value >= 0, "seed must be a whole number from 0")
_seconds = _checked(float, lambda value: math.isfinite(value) and value > 0, "seconds must be a finite number above 0")


def _cmd_synth(args: argparse.Namespace) -> None:
    from iblvideo.synth import synthesize_session

    session = synthesize_session(args.dir, cameras=args.cameras, seconds=args.seconds, seed=args.seed, rig=args.rig, force=args.force)
    print(session)


def _cmd_info(args: argparse.Namespace) -> None:
    from iblvideo.video.reader import probe

    for path in args.videos:
        info = probe(path)  # not a readable video: the one-line error
        try:
            camera = info.camera(args.camera).name
        except IblVideoError:  # a readable video from another rig is still described
            camera = "unknown"
        record = {
            "path": str(info.path), "camera": camera, "width": info.width, "height": info.height,
            "fps": round(info.fps, 3), "frames": info.n_frames, "declared_frames": info.declared_frames,
            "seconds": round(info.duration, 3), "codec": info.codec, "truncated": info.truncated,
        }
        print(json.dumps(record))


def _cmd_dlc(args: argparse.Namespace) -> None:
    from iblvideo.tracking.run import track

    options: dict[str, object] = {"ibl_exact": args.ibl_exact, "roi_sampling": args.roi_sampling, "any_set": args.any_network_set}
    if args.tracker != "lightning-pose":
        given = [flag for flag, set_ in (("--roi-sampling", args.roi_sampling != "ibl"), ("--any-network-set", args.any_network_set)) if set_]
        if given:
            raise BadArgument(None, f"{', '.join(given)}: for --tracker lightning-pose only")
        options = {"ibl_exact": True} if args.ibl_exact else {}
    for video in args.videos:
        print(track(video, args.tracker, args.weights, device=args.device, batch_size=args.batch_size, force=args.force, camera=args.camera,
                    options=options))


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be WIDTHxHEIGHT, e.g. 256x256; got {text!r}") from None
    if width < 32 or height < 32 or width % 32 or height % 32:
        raise argparse.ArgumentTypeError(f"width and height must be multiples of 32, at least 32; got {text!r}")
    return width, height


def _cmd_train(args: argparse.Namespace) -> None:
    from iblvideo.networks.settings import TrainSettings
    from iblvideo.training.train import train

    settings = TrainSettings(backbone=args.backbone, input_size=args.input_size, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed)
    print(train(args.labels, args.out, settings, device=args.device))


def _cmd_evaluate(args: argparse.Namespace) -> None:
    from iblvideo.training.evaluate import evaluate

    print(evaluate(args.model_dir, args.labels, device=args.device).to_string(float_format=lambda v: f"{v:.2f}"))


def _cmd_predict(args: argparse.Namespace) -> None:
    from iblvideo.training.predict import predict_video

    print(predict_video(args.model_dir, args.video, args.out, fmt=args.format, batch_size=args.batch_size, force=args.force, device=args.device))


def _cmd_demo(args: argparse.Namespace) -> None:
    from iblvideo.demo import run_demo

    run_demo(args.dir, seconds=args.seconds, force=args.force)


def _cmd_motion_energy(args: argparse.Namespace) -> None:
    from iblvideo.sessions.stages import motion_energy_stage

    for paths in motion_energy_stage(args.session, cameras=args.cameras, tracker=args.tracker, force=args.force).values():
        print(*paths, sep="\n")


def _cmd_features(args: argparse.Namespace) -> None:
    from iblvideo.sessions.stages import features_stage

    for path in features_stage(args.session, args.tracker, force=args.force).values():
        print(path)


def _cmd_pawstates(args: argparse.Namespace) -> None:
    from iblvideo.sessions.stages import paw_states_stage

    for path in paw_states_stage(args.session, force=args.force, networks=args.networks, tracker=args.tracker).values():
        print(path)


def _cmd_qc(args: argparse.Namespace) -> None:
    from iblvideo.measures.qc import format_report
    from iblvideo.sessions.stages import qc_stage

    print(format_report(qc_stage(args.session, args.tracker, force=args.force)))


def _frame_range(text: str) -> tuple[int, int]:
    try:
        start, stop = (int(part) for part in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"frames must be START:STOP, e.g. 100:400; got {text!r}") from None
    if not 0 <= start < stop:
        raise argparse.ArgumentTypeError(f"frames START:STOP needs 0 <= START < STOP; got {text!r}")
    return start, stop


def _trial_numbers(text: str) -> list[int]:
    try:
        numbers = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        numbers = []
    if not numbers or min(numbers) < 0:
        raise argparse.ArgumentTypeError(f"trials must be a comma list of trial numbers from 0, e.g. 3,7; got {text!r}")
    return numbers


def _cmd_label_video(args: argparse.Namespace) -> None:
    from iblvideo.results.label_video import label_video

    print(label_video(args.video, frames=args.frames, trials=args.trials, out=args.out, camera=args.camera, tracker=args.tracker, force=args.force))


def _cmd_plot(args: argparse.Namespace) -> None:
    from iblvideo.results.plots import save_figures

    print(*save_figures(args.session, args.out, args.tracker, force=args.force), sep="\n")


def _cmd_report(args: argparse.Namespace) -> None:
    from iblvideo.results.report import write_report

    print(write_report(args.session, args.out, args.tracker, force=args.force))


def _cmd_export(args: argparse.Namespace) -> None:
    if args.format == "nwb":
        from iblvideo.results.nwb import Subject, export_nwb, parse_dob

        subject = Subject(sex=args.subject_sex, species=args.subject_species, age=args.subject_age, date_of_birth=parse_dob(args.subject_dob))
        print(export_nwb(args.session, args.out, args.tracker, force=args.force, subject=subject))
        return
    from iblvideo.results.export import export_poses

    print(*export_poses(args.session, args.format, args.out, args.tracker, force=args.force), sep="\n")


def _read_tracker(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tracker", choices=tuple(TRACKERS), help="whose pose tables to read (default: the only ones there)")


def _replace(p: argparse.ArgumentParser, what: str = "an existing output") -> None:
    p.add_argument("--force", action="store_true", help=f"replace {what} (an input is never replaced)")


def _session_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cameras", type=_cameras, help="comma list (default: every camera with a raw video)")
    p.add_argument("--tracker", choices=(*TRACKERS, TRUTH), default="dlc",
                   help=f"{', '.join(TRACKERS)}, or truth: a synthetic session's ground-truth pose (default: dlc)")
    p.add_argument("--weights", help="the tracker's weights: demo, a folder or a zip URL (default: IBL's weights_v2.2 for dlc, networks_v2.2 for lightning-pose)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    p.add_argument("--pawstates", metavar="DIR|URL", help="IBL's Lightning Action networks for the paw states after lightning-pose "
                                                         "(default: $IBLVIDEO_LA_NETWORKS, else IBL's networks_v1.2 if already downloaded)")
    p.add_argument("--force", action="store_true", help="replace existing pose tables")


def _cmd_session(args: argparse.Namespace) -> int:
    from iblvideo.io.one import local_one
    from iblvideo.sessions.session import run_session

    one = local_one(args.root) if args.root else None
    result = run_session(args.session, one=one, cameras=args.cameras, tracker=args.tracker, force=args.force, weights=args.weights, device=args.device,
                         pawstates=args.pawstates)
    print(json.dumps(result.to_json(), indent=2))
    return 0 if result.status == "Complete" else 1


def _cmd_queue_add(args: argparse.Namespace) -> None:
    from iblvideo.io.one import local_one
    from iblvideo.sessions.queue import add_once, find_sessions, open_queue

    one = local_one(args.root) if args.root else None
    entries = find_sessions(args.items, one)  # every item checked before the database is touched
    added = add_once(open_queue(args.db, max_attempts=args.max_attempts), entries, one, priority=args.priority, hold=args.hold)
    print(*added, sep="\n")
    log.info("%d session(s) queued", len(added))


def _cmd_queue_list(args: argparse.Namespace) -> None:
    from iblvideo.sessions.queue import open_queue

    if sys.stdout.isatty():  # a pipe (grep, wc -l) gets the rows alone
        print(f"{'id':>5}  {'status':<8}  tries  {'time':>8}  session  first error line")
    for task in open_queue(args.db).tasks(args.status):
        seconds = "" if task.seconds is None else f"{task.seconds:.1f}s"
        error = (task.error or "").splitlines()[0] if task.error and args.status != "Complete" else ""
        tries = f"{task.attempts}/{task.max_attempts}"
        print(f"{task.id:>5}  {task.status:<8}  {tries:<5}  {seconds:>8}  {task.session}  {error}".rstrip())


def _cmd_queue_run(args: argparse.Namespace) -> int:
    import contextlib

    from iblvideo.io.one import local_one
    from iblvideo.sessions.queue import open_queue, run_queue

    queue = open_queue(args.db, args.lease, args.max_attempts)  # bad settings are refused before a scheduler is dialled
    with contextlib.ExitStack() as stack:
        client = None
        if args.scheduler:
            from iblvideo.sessions.queue.cluster import connect

            client = stack.enter_context(connect(args.scheduler))
        outcomes = run_queue(args.n_sessions, db=queue, one=local_one(args.root) if args.root else None, cameras=args.cameras,
                             tracker=args.tracker, force=args.force, weights=args.weights, device=args.device, client=client,
                             lease_seconds=args.lease, max_attempts=args.max_attempts, pawstates=args.pawstates)
    for outcome in outcomes:
        print(f"{outcome.status:<8}  {outcome.seconds:7.1f}s  {outcome.session}")
    return 0 if all(o.status in ("Complete", "Empty") for o in outcomes) else 1


def _cmd_queue_retry(args: argparse.Namespace) -> None:
    from iblvideo.sessions.queue import open_queue

    print(f"{open_queue(args.db).retry(args.ids)} task(s) back to Waiting")


def build_parser() -> argparse.ArgumentParser:
    def flags(default: object) -> argparse.ArgumentParser:
        options = argparse.ArgumentParser(add_help=False)
        options.add_argument("-q", "--quiet", action="store_true", default=default, help="only warnings and errors; no progress bars")
        options.add_argument("-v", "--verbose", action="store_true", default=default, help="debug logging")
        return options

    # the flags work before or after the subcommand: a subcommand leaves them alone unless given there
    common = flags(argparse.SUPPRESS)
    parser = argparse.ArgumentParser(prog="iblvideo", description=package_doc, parents=[flags(False)])
    parser.add_argument("--version", action="version", version=f"iblvideo {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, handler: Handler, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help, parents=[common])
        p.set_defaults(handler=handler)
        return p

    p = command("synth", _cmd_synth, "render a synthetic IBL session (videos, times, trials, wheel, ground truth)")
    p.add_argument("dir", type=Path, help="data root; the session lands in DIR/<subject>/<date>/<nnn>")
    p.add_argument("--cameras", type=_cameras, default=CAMERA_NAMES, help="comma list (default: left,right,body)")
    p.add_argument("--seconds", type=_seconds, default=10.0, help="duration (default: 10)")
    p.add_argument("--seed", type=_seed, default=0, help="random seed; the same seed gives the same bytes")
    p.add_argument("--rig", choices=("recording", "training"), default="recording", help="training rigs film the left camera at 30 Hz only")
    p.add_argument("--force", action="store_true", help="replace an existing session")

    p = command("info", _cmd_info, "print camera, size, rate and exact frame count of videos as JSON lines")
    p.add_argument("videos", type=Path, nargs="+")
    p.add_argument("--camera", choices=CAMERA_NAMES, help="which camera filmed it, when the name and size do not tell")

    p = command("dlc", _cmd_dlc, "track the IBL keypoints in videos; writes <session>/alf/_ibl_<cam>Camera.dlc.pqt "
                                 "(.lightningPose.pqt with --tracker lightning-pose)")
    p.add_argument("videos", type=Path, nargs="+")
    p.add_argument("--tracker", choices=tuple(TRACKERS), default="dlc",
                   help="; ".join(f"{name}: {entry.description} (.{entry.attribute}.pqt)" for name, entry in TRACKERS.items()))
    p.add_argument("--weights", help="dlc: IBL's DeepLabCut weights_v2.2 (the default: $IBLVIDEO_DLC_WEIGHTS, else IBL's bucket), a folder or "
                                     "zip URL of one of IBL's sets, demo (the synthetic rig's networks, shipped) or a set of your own; "
                                     "lightning-pose: a network set folder or zip URL (default: $IBLVIDEO_LP_NETWORKS, else IBL's networks_v2.2)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    p.add_argument("--batch-size", type=_count, default=BATCH_SIZE, help=f"frames per batch (default: {BATCH_SIZE})")
    p.add_argument("--camera", choices=CAMERA_NAMES, help="which camera filmed it, when the name and size do not tell")
    p.add_argument("--force", action="store_true", help="replace an existing output")
    p.add_argument("--ibl-exact", action="store_true", help="IBL's tables exactly: lightning-pose's eks 3.0.0 pupil labels and edge windows; "
                                                            "dlc's points mapped back from where IBL asked its crops to start (default: corrected)")
    p.add_argument("--roi-sampling", choices=("ibl", "fast"), default="ibl",
                   help="lightning-pose: the frames the ROI network sees: IBL's, evenly spread (default), or frames near keyframes, cheaper to decode")
    p.add_argument("--any-network-set", action="store_true", help="lightning-pose: run a network set that no profile knows, with networks_v2.2's settings")

    from iblvideo.networks.settings import TrainSettings  # no torch import: --help stays instant

    defaults = TrainSettings()
    p = command("train", _cmd_train, "train a pose network on labeled frames (DeepLabCut / Lightning Pose CollectedData csv or h5)")
    p.add_argument("labels", type=Path, help="CollectedData*.csv or .h5; image paths relative to its folder")
    p.add_argument("--out", type=Path, required=True, help="model folder; rerunning the same command resumes an interrupted run")
    p.add_argument("--backbone", choices=("efficientnet_lite0", "resnet50"), default=defaults.backbone, help=f"(default: {defaults.backbone})")
    p.add_argument("--epochs", type=int, default=defaults.epochs, help=f"(default: {defaults.epochs})")
    p.add_argument("--seed", type=_seed, default=defaults.seed, help="fixes split, initialisation and augmentation (default: 0)")
    p.add_argument("--input-size", type=_size, default=defaults.input_size, help="network input WIDTHxHEIGHT, multiples of 32 (default: {}x{})".format(*defaults.input_size))
    p.add_argument("--batch-size", type=_count, default=defaults.batch_size, help=f"(default: {defaults.batch_size})")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")

    p = command("evaluate", _cmd_evaluate, "pixel error per keypoint on a model's test split; saved as evaluation.csv in the model folder")
    p.add_argument("model_dir", type=Path)
    p.add_argument("labels", type=Path, help="the labels the model was trained on")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")

    p = command("predict", _cmd_predict, "run a trained pose network on every frame of a video")
    p.add_argument("model_dir", type=Path)
    p.add_argument("video", type=Path)
    p.add_argument("--format", choices=("pqt", "dlc-h5", "dlc-csv", "lp-csv"), default="pqt", help="(default: pqt)")
    p.add_argument("--out", type=Path, help="output file (default: beside the video, e.g. VIDEO.pose.pqt)")
    p.add_argument("--batch-size", type=_count, default=BATCH_SIZE, help=f"frames per batch (default: {BATCH_SIZE})")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    p.add_argument("--force", action="store_true", help="replace an existing output")

    p = command("demo", _cmd_demo, "run the pipeline end to end on a freshly rendered synthetic session")
    p.add_argument("dir", type=Path, nargs="?", default=Path("iblvideo-demo"), help="output folder (default: ./iblvideo-demo)")
    p.add_argument("--seconds", type=_seconds, default=5.0, help="duration of the synthetic session (default: 5)")
    p.add_argument("--force", action="store_true", help="replace the outputs of an earlier demo")

    p = command("motion-energy", _cmd_motion_energy, "motion energy in the whisker-pad / body ROI placed from the pose tracks")
    p.add_argument("session", type=Path, help="ALF session folder with raw_video_data/ and a pose table in alf/")
    _read_tracker(p)
    p.add_argument("--cameras", type=_cameras, default=CAMERA_NAMES, help="comma list (default: left,right,body)")
    _replace(p, "existing files that iblvideo did not make (its own are recomputed)")

    p = command("features", _cmd_features, "pupil diameter, speeds, sniffs and merged lick times from a session's pose tables")
    p.add_argument("session", type=Path, help="ALF session folder with a pose table in alf/ and .times.npy")
    _read_tracker(p)
    _replace(p, "existing files that iblvideo did not make (its own are recomputed)")

    p = command("pawstates", _cmd_pawstates, "IBL's Lightning Action paw states per side camera from its Lightning Pose table and the wheel")
    p.add_argument("session", type=Path, help="ALF session folder with Lightning Pose tables, camera times and wheel data in alf/")
    p.add_argument("--networks", help="Lightning Action network set: demo (the synthetic rig's), a folder or the URL of a zip "
                                      "(default: $IBLVIDEO_LA_NETWORKS, else IBL's networks_v1.2)")
    p.add_argument("--tracker", choices=(*TRACKERS, TRUTH), default=LIGHTNING_POSE,
                   help="whose pose tables the networks read (default: lightning-pose, as IBL's; the demo set reads any)")
    _replace(p, "existing paw-state tables that iblvideo did not make (its own are recomputed)")

    p = command("qc", _cmd_qc, "IBL's pose QC per camera: prints a table, writes alf/_iblvideo_dlc.qc.json")
    p.add_argument("session", type=Path, help="ALF session folder with a pose table in alf/")
    _read_tracker(p)
    _replace(p, "a QC report that iblvideo did not write (its own is rewritten)")

    p = command("label-video", _cmd_label_video, "an mp4 with the keypoints (faded below likelihood 0.9), motion-energy ROI, frame number and time drawn")
    p.add_argument("video", type=Path, help="raw video inside an ALF session with a pose table in alf/")
    _read_tracker(p)
    chosen = p.add_mutually_exclusive_group()
    chosen.add_argument("--frames", type=_frame_range, metavar="A:B", help="frames A to B (B excluded); only those are decoded")
    chosen.add_argument("--trials", type=_trial_numbers, metavar="N,M", help="trials N, M, ... (rows of the trials table, from 0), from intervals_0 to intervals_1")
    p.add_argument("--out", type=Path, help="output mp4 (default: beside the video, <name>.labeled[.frames_A-B|.trials_N_M].mp4)")
    p.add_argument("--camera", choices=CAMERA_NAMES, help="which camera filmed it, when the name and size do not tell")
    _replace(p)

    p = command("plot", _cmd_plot, "PNG figures of a session: traces, trial averages around stimulus and feedback, QC summary")
    p.add_argument("session", type=Path, help="ALF session folder with a pose table in alf/")
    _read_tracker(p)
    p.add_argument("--out", type=Path, help="folder for the PNGs (default: SESSION/figures)")
    _replace(p, "existing PNGs")

    p = command("report", _cmd_report, "one self-contained HTML page: QC table, figures, code and weights versions, run times")
    p.add_argument("session", type=Path, help="ALF session folder with a pose table in alf/")
    _read_tracker(p)
    p.add_argument("--out", type=Path, help="output .html (default: SESSION/iblvideo_report.html)")
    _replace(p)

    p = command("export", _cmd_export, "export the pose tracks to a shareable format: NWB with ndx-pose, or each camera's table as DeepLabCut or Lightning Pose write theirs")
    p.add_argument("session", type=Path, help="ALF session folder with a pose table in alf/ (and camera times, for nwb); "
                                              "nwb also takes an eid of the configured ONE, whose Alyx gives the subject")
    _read_tracker(p)
    p.add_argument("--format", choices=("nwb", "dlc-h5", "dlc-csv", "lp-csv"), default="nwb",
                   help="nwb (IBL's NWB layout: pose, pupil, motion energy, licks), or one file per camera: dlc-h5 / dlc-csv named "
                        "<video stem><scorer>.h5/.csv, lp-csv <video stem>.csv (default: nwb)")
    p.add_argument("--out", type=Path, help="nwb: output file (default: SESSION/sub-<subject>_ses-<date>-<number>_pose.nwb); "
                                            "other formats: a folder (default: beside the raw videos, where DeepLabCut's tools look)")
    subject = p.add_argument_group("nwb subject (DANDI needs sex, species and age or date of birth; they override Alyx's)")
    subject.add_argument("--subject-sex", metavar="M|F|U|O", help="the subject's sex: M, F, U (unknown) or O (other)")
    subject.add_argument("--subject-species", metavar="NAME", help="Latin binomial, e.g. 'Mus musculus'")
    subject.add_argument("--subject-age", metavar="DURATION", help="age at the session as an ISO 8601 duration, e.g. P90D")
    subject.add_argument("--subject-dob", metavar="YYYY-MM-DD", help="date of birth")
    _replace(p)

    p = command("session", _cmd_session, "run every stage on one session (folder or eid); outputs in alf/ and in ONE; prints a JSON summary; exits 1 unless Complete")
    p.add_argument("session", help="ALF session folder, or an eid of the configured ONE (or of --root)")
    p.add_argument("--root", type=Path, help="data root for ONE in local mode (default: the session folder's root)")
    _session_options(p)

    queue = sub.add_parser("queue", help="a queue of sessions in a database, run by any number of workers",
                           description="a queue of sessions in a database, run by any number of workers", parents=[common])
    queue_sub = queue.add_subparsers(dest="queue_command", metavar="ACTION", required=True)
    db_help = "SQLAlchemy URL (postgresql://...), SQLite file (default: $IBLVIDEO_QUEUE_DB or ./iblvideo-queue.sqlite), or alyx: the tasks of ONE's Alyx database"

    def action(name: str, handler: Handler, help: str) -> argparse.ArgumentParser:
        p = queue_sub.add_parser(name, help=help, description=help, parents=[common])
        p.set_defaults(handler=handler)
        p.add_argument("--db", help=db_help)
        return p

    p = action("add", _cmd_queue_add, "queue eids, session folders, or every session of a data root that lacks outputs")
    p.add_argument("items", nargs="+", help="eids, session folders or data roots")
    p.add_argument("--root", type=Path, help="data root for ONE in local mode: eids are queued as their session folders, one task per session")
    p.add_argument("--priority", type=int, default=0, help="higher runs first (default: 0)")
    p.add_argument("--hold", action="store_true", help="add as Held: not run until 'queue retry'")
    p.add_argument("--max-attempts", type=int, default=3, help="tries before a task stays Errored (default: 3)")
    p = action("list", _cmd_queue_list, "one line per task: id, status, attempts, duration, session, first error line")
    p.add_argument("--status", choices=("Waiting", "Started", "Complete", "Errored", "Empty", "Held"))
    p = action("run", _cmd_queue_run, "work through queued sessions here, or on a Dask cluster (--scheduler), one per GPU")
    p.add_argument("-n", "--n-sessions", type=int, default=10, help="sessions to run before stopping (default: 10)")
    p.add_argument("--scheduler", help="Dask scheduler address, tcp://HOST:PORT; its workers need --resources GPU=1")
    p.add_argument("--root", type=Path, help="data root for ONE in local mode, for tasks given as eids")
    p.add_argument("--lease", type=float, default=600.0, help="seconds without a heartbeat before a task is taken from a dead worker (default: 600)")
    p.add_argument("--max-attempts", type=int, default=3, help="tries before a task stays Errored (default: 3)")
    _session_options(p)
    p = action("retry", _cmd_queue_retry, "put Errored and Held tasks (all, or the ids given) back to Waiting")
    p.add_argument("ids", nargs="*", help="task ids (default: all Errored and Held)")
    return parser


@contextlib.contextmanager
def short_gil_turns(seconds: float = 0.001) -> Iterator[None]:
    """Python threads take turns with the interpreter every ``seconds`` rather than every 5 ms, for one command.

    The decoding thread needs the interpreter briefly for every frame; with the default turn it waits
    behind the network threads often enough to slow tracking by a tenth. This is the process's
    setting, so the command line sets it, not the library.
    """
    before = sys.getswitchinterval()
    sys.setswitchinterval(seconds)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


# the API's keywords, as the command line's flags: messages written for both name them either way
API_FLAGS = {"force=True": "--force", "any_set=True": "--any-network-set", "ibl_exact=True": "--ibl-exact", "weights=DIR": "--weights DIR"}


def in_flags(text: str) -> str:
    """``text`` naming the command line's flags where it names the API's keywords (``force=True`` → ``--force``)."""
    for keyword, flag in API_FLAGS.items():
        text = text.replace(f"{flag} ({keyword})", flag).replace(f"{keyword} ({flag})", flag).replace(keyword, flag)
    return text


class _InFlags(logging.Formatter):
    """The console's log lines in the command line's words; the record itself (for task logs) is left as it is."""

    def __init__(self, inner: logging.Formatter):
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        return in_flags(self.inner.format(record))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure(quiet=args.quiet, verbose=args.verbose)
    for handler in logging.getLogger("iblvideo").handlers:
        handler.setFormatter(_InFlags(handler.formatter or logging.Formatter()))
    try:
        with short_gil_turns():
            code = args.handler(args)
        sys.stdout.flush()  # a reader that has gone (`| head`) shows here, not in the interpreter's exit
    except BrokenPipeError:
        # as Python's docs advise (signal module): what is still buffered goes nowhere rather than failing again at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a command whose reader went away
    except MissingExtra as err:
        command = " ".join(filter(None, ("iblvideo", args.command, getattr(args, "queue_command", None))))
        print(f"iblvideo: error: {err.needed_by(repr(command))}", file=sys.stderr)
        return 2
    except IblVideoError as err:
        print(f"iblvideo: error: {in_flags(str(err))}", file=sys.stderr)
        return 2
    except FileExistsError as err:
        print(f"iblvideo: error: {err.filename or err}: already exists; pass --force to replace it", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("iblvideo: interrupted", file=sys.stderr)
        return 130
    return code or 0


if __name__ == "__main__":
    raise SystemExit(main())
