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
