"""The ``iblvideo`` command as a user runs it: its exit code, its output and its one-line errors, in a subprocess or through main()."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import write_video
from iblvideo.cli import build_parser, main
from iblvideo.sessions.queue import Queue

SYNTH_SESSION = Path(__file__).parent / "data" / "synth-session" / "synth_mouse_0" / "2026-01-01" / "001"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "iblvideo", *map(str, args)], capture_output=True, text=True, timeout=300)


def test_help_lists_subcommands_and_each_has_help():
    result = run("--help")
    assert result.returncode == 0 and "pose tracks" in result.stdout
    commands = next(a for a in build_parser()._actions if a.dest == "command").choices
    assert {"synth", "info", "demo"} <= set(commands)
    for command in commands:
        sub = run(command, "--help")
        assert sub.returncode == 0 and "usage: iblvideo" in sub.stdout, command


def test_info_prints_one_json_line_per_video(videos):
    result = run("info", videos["h264"], videos["hevc"], "--camera", "body", "--quiet")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["frames"], r["codec"], r["camera"]) for r in records] == [(90, "h264", "body"), (60, "hevc", "body")]


@pytest.mark.parametrize("name, problem", [
    ("text", "not a readable video"),
    ("zero", "no video frames"),
    ("truncated_tail", "not a readable video"),
])
def test_bad_input_one_line_error_and_nonzero_exit(videos, name, problem):
    result = run("info", videos[name])
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert str(videos[name]) in result.stderr and problem in result.stderr


def test_missing_file(tmp_path):
    result = run("info", tmp_path / "nope.mp4")
    assert result.returncode == 2 and result.stderr.strip() == f"iblvideo: error: {tmp_path / 'nope.mp4'}: no such file"


def test_bad_arguments_exit_nonzero():
    assert run("synth", "/tmp/x", "--cameras", "top").returncode == 2


def test_info_describes_a_video_of_no_ibl_camera(videos, capsys):
    assert main(["info", str(videos["unknown_size"])]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "path": str(videos["unknown_size"]), "camera": "unknown", "width": 400, "height": 300, "fps": 30.0, "frames": 10,
        "declared_frames": 10, "seconds": 0.333, "codec": "h264", "truncated": False}


def test_messages_name_the_flag_not_the_keyword(tmp_path, capsys):
    video = write_video(tmp_path / "body.mp4", 3, width=640, height=512)
    table = tmp_path / "body._ibl_bodyCamera.dlc.pqt"
    table.write_text("not a table")
    assert main(["-q", "dlc", "--weights", "demo", str(video)]) == 2
    assert capsys.readouterr().err == f"iblvideo: error: {table}: exists but is not a readable table (IblVideoError); pass --force to replace it\n"


def test_log_lines_name_the_flag_not_the_keyword(tmp_path, capsys):
    video = write_video(tmp_path / "body.mp4", 3, width=640, height=512)
    table = tmp_path / "body._ibl_bodyCamera.dlc.pqt"
    shutil.copy(SYNTH_SESSION / "alf" / "_ibl_bodyCamera.dlc.pqt", table)
    assert main(["dlc", "--weights", "demo", str(video)]) == 0
    assert capsys.readouterr().err.endswith(f" INFO iblvideo.tracking.run: {table} exists; keeping it (--force replaces it)\n")


def test_queue_list_has_a_header_on_a_terminal(tmp_path, capsys, monkeypatch):
    db = str(tmp_path / "queue.sqlite")
    Queue(db).add(["a"])
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    assert main(["queue", "list", "--db", db]) == 0
    assert capsys.readouterr().out.splitlines() == ["   id  status    tries      time  session  first error line",
                                                    "    1  Waiting   0/3" + " " * 14 + "a"]
