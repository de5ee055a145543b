"""The ``iblvideo`` command: one subcommand per pipeline stage.

Each subcommand's handler imports its stage lazily, so ``iblvideo --help`` stays instant.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Callable, Sequence

from . import __doc__ as package_doc, __version__
from .errors import IblVideoError
from .progress import configure

log = logging.getLogger("iblvideo")
Handler = Callable[[argparse.Namespace], int | None]


def _cameras(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [name for name in names if name not in ("left", "right", "body")]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"cameras must be a comma list of left, right, body; got {text!r}")
    return names


def _cmd_synth(args: argparse.Namespace) -> None:
    from .synth import synthesize_session

    session = synthesize_session(args.dir, cameras=args.cameras, seconds=args.seconds, seed=args.seed, rig=args.rig, force=args.force)
    print(session)


def _cmd_info(args: argparse.Namespace) -> None:
    from .video import probe

    for path in args.videos:
        info = probe(path)
        camera = info.camera(args.camera)
        record = {
            "path": str(info.path), "camera": camera.name, "width": info.width, "height": info.height,
            "fps": round(info.fps, 3), "frames": info.n_frames, "declared_frames": info.declared_frames,
            "seconds": round(info.duration, 3), "codec": info.codec, "truncated": info.truncated,
        }
        print(json.dumps(record))


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be WIDTHxHEIGHT, e.g. 256x256; got {text!r}") from None
    if width < 32 or height < 32 or width % 32 or height % 32:
        raise argparse.ArgumentTypeError(f"width and height must be multiples of 32, at least 32; got {text!r}")
    return width, height


def _cmd_train(args: argparse.Namespace) -> None:
    from .pose.settings import TrainSettings
    from .pose.train import train

    settings = TrainSettings(backbone=args.backbone, input_size=args.input_size, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed)
    print(train(args.labels, args.out, settings, device=args.device))


def _cmd_evaluate(args: argparse.Namespace) -> None:
    from .pose.evaluate import evaluate

    print(evaluate(args.model_dir, args.labels, device=args.device).to_string(float_format=lambda v: f"{v:.2f}"))


def _cmd_predict(args: argparse.Namespace) -> None:
    from .pose.predict import predict_video

    print(predict_video(args.model_dir, args.video, args.out, fmt=args.format, batch_size=args.batch_size, force=args.force, device=args.device))


def _cmd_demo(args: argparse.Namespace) -> None:
    from .demo import run_demo

    run_demo(args.dir, seconds=args.seconds, force=args.force)


def _cmd_motion_energy(args: argparse.Namespace) -> None:
    from .motion_energy import session_motion_energy

    for paths in session_motion_energy(args.session, cameras=args.cameras).values():
        print(*paths, sep="\n")


def _cmd_features(args: argparse.Namespace) -> None:
    from .features import compute_session_features

    print(*compute_session_features(args.session).values(), sep="\n")


def _cmd_qc(args: argparse.Namespace) -> None:
    from .qc import format_report, run_qc

    print(format_report(run_qc(args.session)))


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors; no progress bars")
    common.add_argument("-v", "--verbose", action="store_true", help="debug logging")

    parser = argparse.ArgumentParser(prog="iblvideo", description=package_doc, parents=[common])
    parser.add_argument("--version", action="version", version=f"iblvideo {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, handler: Handler, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help, parents=[common])
        p.set_defaults(handler=handler)
        return p

    p = command("synth", _cmd_synth, "render a synthetic IBL session (videos, times, trials, wheel, ground truth)")
    p.add_argument("dir", type=Path, help="data root; the session lands in DIR/<subject>/<date>/<nnn>")
    p.add_argument("--cameras", type=_cameras, default=("left", "right", "body"), help="comma list (default: left,right,body)")
    p.add_argument("--seconds", type=float, default=10.0, help="duration (default: 10)")
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same bytes")
    p.add_argument("--rig", choices=("recording", "training"), default="recording", help="training rigs film the left camera at 30 Hz only")
    p.add_argument("--force", action="store_true", help="replace an existing session")

    p = command("info", _cmd_info, "print camera, size, rate and exact frame count of videos as JSON lines")
    p.add_argument("videos", type=Path, nargs="+")
    p.add_argument("--camera", choices=("left", "right", "body"), help="which camera filmed it, when the name and size do not tell")

    from .pose.settings import TrainSettings  # no torch import: --help stays instant

    defaults = TrainSettings()
    p = command("train", _cmd_train, "train a pose network on labeled frames (DeepLabCut / Lightning Pose CollectedData csv or h5)")
    p.add_argument("labels", type=Path, help="CollectedData*.csv or .h5; image paths relative to its folder")
    p.add_argument("--out", type=Path, required=True, help="model folder; rerunning the same command resumes an interrupted run")
    p.add_argument("--backbone", choices=("efficientnet_lite0", "resnet50"), default=defaults.backbone, help=f"(default: {defaults.backbone})")
    p.add_argument("--epochs", type=int, default=defaults.epochs, help=f"(default: {defaults.epochs})")
    p.add_argument("--seed", type=int, default=defaults.seed, help="fixes split, initialisation and augmentation (default: 0)")
    p.add_argument("--input-size", type=_size, default=defaults.input_size, help="network input WIDTHxHEIGHT, multiples of 32 (default: {}x{})".format(*defaults.input_size))
    p.add_argument("--batch-size", type=int, default=defaults.batch_size, help=f"(default: {defaults.batch_size})")
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
    p.add_argument("--batch-size", type=int, default=64, help="frames per batch (default: 64)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    p.add_argument("--force", action="store_true", help="replace an existing output")

    p = command("demo", _cmd_demo, "run the pipeline end to end on a freshly rendered synthetic session")
    p.add_argument("dir", type=Path, nargs="?", default=Path("iblvideo-demo"), help="output folder (default: ./iblvideo-demo)")
    p.add_argument("--seconds", type=float, default=5.0, help="duration of the synthetic session (default: 5)")
    p.add_argument("--force", action="store_true", help="replace the outputs of an earlier demo")

    p = command("motion-energy", _cmd_motion_energy, "motion energy in the whisker-pad / body ROI placed from the pose tracks")
    p.add_argument("session", type=Path, help="ALF session folder with raw_video_data/ and alf/_ibl_<cam>Camera.dlc.pqt")
    p.add_argument("--cameras", type=_cameras, default=("left", "right", "body"), help="comma list (default: left,right,body)")

    p = command("features", _cmd_features, "pupil diameter, speeds, sniffs and merged lick times from a session's pose tables")
    p.add_argument("session", type=Path, help="ALF session folder with alf/_ibl_<cam>Camera.dlc.pqt and .times.npy")

    p = command("qc", _cmd_qc, "IBL's pose QC per camera: prints a table, writes alf/_iblvideo_dlc.qc.json")
    p.add_argument("session", type=Path, help="ALF session folder with alf/_ibl_<cam>Camera.dlc.pqt")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure(quiet=args.quiet, verbose=args.verbose)
    try:
        args.handler(args)
    except IblVideoError as err:
        print(f"iblvideo: error: {err}", file=sys.stderr)
        return 2
    except FileExistsError as err:
        print(f"iblvideo: error: {err.filename or err}: already exists; pass --force to replace it", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("iblvideo: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
