"""The ``iblvideo`` command as a user runs it: a real subprocess, its exit code and its one-line errors."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from iblvideo.cli import build_parser


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
    ("unknown_size", "cannot tell which camera filmed a 400x300 video"),
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
