"""Outputs against a hostile or careless user: planted links, --out aimed at an input, kills mid-write,
read-only and full filesystems (issue 15, points 3, 5, 9 and 13)."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from iblvideo.cli import main
from iblvideo.errors import IblVideoError
from iblvideo.io import atomic
from iblvideo.io.alf import QC_REPORT, SessionPaths
from iblvideo.io.atomic import PARTIAL, atomic_path
from iblvideo.io.session_files import write_json, write_npy, write_parquet, write_table
from iblvideo.results.label_video import label_video
from iblvideo.sessions.stages import features_stage, motion_energy_stage

VICTIM = b"someone else's file\n"


def _copy(session: Path, root: Path) -> Path:
    """A copy of a processed session under ``root`` (the fixtures must not be modified)."""
    target = root.joinpath(*session.parts[-3:])
    shutil.copytree(session, target, symlinks=True)
    return target


@pytest.fixture
def session(session_with_truth_as_pose, tmp_path) -> Path:
    return _copy(session_with_truth_as_pose, tmp_path / "data")


def _cli(capsys, *args: object) -> tuple[int, str]:
    code = main(["-q", *map(str, args)])
    return code, capsys.readouterr().err


def _one_line(err: str, *words: str) -> None:
    assert err.count("\n") == 1 and err.startswith("iblvideo: error: ") and "Traceback" not in err, err
    for word in words:
        assert word in err, (word, err)


def _partials(folder: Path) -> list[Path]:
    return sorted(folder.glob(f".*{PARTIAL}*"))


# 3. temporaries: exclusive, unpredictable, never through a planted link

def _plant(out: Path, victim: Path, pids: range) -> list[Path]:
    """Links at the temporary names of ``out`` that the old atomic_path used, for each of ``pids``."""
    links = [out.with_name(f".{out.name}.partial-{pid}") for pid in pids]
    for link in links:
        link.symlink_to(victim)
    return links


WRITERS = {  # every kind of writer that opens the temporary by its path
    "np.save via a handle": lambda out: write_npy(np.arange(5), out),
    "pq.write_table": lambda out: write_table(pd.DataFrame({"a": [1, 2]}), out),
    "pandas to_parquet": lambda out: write_parquet(pd.DataFrame({"a": [1, 2]}), out),
    "write_text": lambda out: write_json({"a": 1}, out),
}


@pytest.mark.parametrize("writer", WRITERS)
def test_planted_links_at_the_old_temporary_names_are_not_followed(tmp_path, writer):
    victim = tmp_path / "victim.txt"
    victim.write_bytes(VICTIM)
    out = tmp_path / "out" / "result.bin"
    out.parent.mkdir()
    _plant(out, victim, range(os.getpid() - 2, os.getpid() + 3))
    WRITERS[writer](out)
    assert victim.read_bytes() == VICTIM
    assert out.is_file() and not out.is_symlink() and out.read_bytes() != VICTIM


def test_a_label_video_and_an_nwb_export_do_not_follow_planted_links(session, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_bytes(VICTIM)
    video = SessionPaths(session).raw_video("body")
    mp4, nwb = tmp_path / "labeled.mp4", tmp_path / "pose.nwb"
    _plant(mp4, victim, range(os.getpid(), os.getpid() + 1))
    _plant(nwb, victim, range(os.getpid(), os.getpid() + 1))
    label_video(video, frames=(0, 3), out=mp4)
    pytest.importorskip("pynwb")
    from iblvideo.results.nwb import Subject, export_nwb

    export_nwb(session, nwb, subject=Subject(sex="U", species="Mus musculus", age="P90D"))
    assert victim.read_bytes() == VICTIM
    assert not mp4.is_symlink() and not nwb.is_symlink() and mp4.stat().st_size > 1000 and nwb.stat().st_size > 1000


def test_a_guessed_new_name_is_never_opened_and_names_are_unpredictable(tmp_path, monkeypatch):
    victim = tmp_path / "victim.txt"
    victim.write_bytes(VICTIM)
    out = tmp_path / "result.npy"
    guesses = iter(["0" * 12, "1" * 12])
    monkeypatch.setattr(atomic.secrets, "token_hex", lambda n: next(guesses))
    planted = out.with_name(f".{out.name}{PARTIAL}{os.getpid()}-{atomic._host()}-{'0' * 12}")
    planted.symlink_to(victim)
    with atomic_path(out) as tmp:
        assert tmp.name.endswith("1" * 12) and tmp.is_file() and not tmp.is_symlink()
        tmp.write_bytes(b"data")
    assert victim.read_bytes() == VICTIM and out.read_bytes() == b"data" and planted.is_symlink()
    monkeypatch.undo()
    names = set()
    for _ in range(3):
        with atomic_path(out) as tmp:
            names.add(tmp.name)
    assert len(names) == 3


def test_a_temporary_swapped_for_a_link_mid_write_is_not_renamed(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_bytes(VICTIM)
    out = tmp_path / "result.txt"
    out.write_text("before\n")
    with pytest.raises(IblVideoError, match="replaced while it was written"), atomic_path(out) as tmp:
        tmp.unlink()
        tmp.symlink_to(victim)
    assert out.read_text() == "before\n" and not out.is_symlink() and victim.read_bytes() == VICTIM
    assert not _partials(tmp_path)


# 5. --out never replaces an input, and an existing output only with --force

def test_label_video_never_writes_over_its_video_even_with_force(session, capsys):
    video = SessionPaths(session).raw_video("body")
    before = video.read_bytes()
    for force in ([], ["--force"]):
        code, err = _cli(capsys, "label-video", video, "--frames", "0:5", "--out", video, *force)
        assert code == 2
        _one_line(err, str(video), "is an input")
    hard = video.with_name("hardlink.mp4")
    os.link(video, hard)
    code, err = _cli(capsys, "label-video", video, "--frames", "0:5", "--out", hard, "--force")
    assert code == 2 and "is an input" in err
    assert video.read_bytes() == before


def test_report_and_export_never_write_over_the_session_files(session, capsys):
    paths = SessionPaths(session)
    trials, video = paths.session_file("_ibl_trials.table.pqt"), paths.raw_video("left")
    kept = {path: path.read_bytes() for path in (trials, video)}
    code, err = _cli(capsys, "report", session, "--out", trials, "--force")
    assert code == 2
    _one_line(err, str(trials), "is an input")
    code, err = _cli(capsys, "plot", session, "--out", trials, "--force")  # a folder for the PNGs, and a file is there
    assert code == 2
    _one_line(err, str(trials), "is a file, not a folder")
    pytest.importorskip("pynwb")
    code, err = _cli(capsys, "export", session, "--out", video, "--force")
    assert code == 2
    _one_line(err, str(video), "is an input")
    assert {path: path.read_bytes() for path in kept} == kept


@pytest.mark.parametrize("command", ["label-video", "report", "plot", "export"])
def test_an_existing_output_is_kept_unless_force(session, tmp_path, capsys, command):
    if command == "export":
        pytest.importorskip("pynwb")
    target = tmp_path / "mine"
    subject = ["--subject-sex", "U", "--subject-species", "Mus musculus", "--subject-age", "P90D"]  # what DANDI needs of an NWB file
    args = {"label-video": [SessionPaths(session).raw_video("body"), "--frames", "0:3", "--out", target],
            "report": [session, "--out", target], "plot": [session, "--out", target], "export": [session, "--out", target, *subject]}[command]
    existing = target / "traces.png" if command == "plot" else target
    existing.parent.mkdir(parents=True, exist_ok=True)
    existing.write_bytes(VICTIM)
    code, err = _cli(capsys, command, *args)
    assert code == 2
    _one_line(err, str(existing), "already exists", "--force")
    assert existing.read_bytes() == VICTIM
    assert _cli(capsys, command, *args, "--force")[0] == 0
    assert existing.read_bytes() != VICTIM


def test_stages_keep_files_iblvideo_did_not_make_and_recompute_their_own(session, capsys):
    paths = SessionPaths(session)
    energy = paths.motion_energy("body")[0]
    features, qc = paths.features("left"), paths.session_file(QC_REPORT)
    own = energy.read_bytes()
    motion_energy_stage(session, cameras=("body",))  # iblvideo's own output: recomputed, the same numbers
    assert energy.read_bytes() == own
    record = paths.session_file("_iblvideo_provenance.json")
    record.write_text(json.dumps({}))  # as if IBL's own datasets were downloaded into alf/
    for command, path in (("motion-energy", energy), ("features", features), ("qc", qc)):
        path.write_bytes(VICTIM)
        args = [command, session, *(["--cameras", "body"] if command == "motion-energy" else [])]
        code, err = _cli(capsys, *args)
        assert code == 2, command
        _one_line(err, str(path), "already exists", "--force")
        assert path.read_bytes() == VICTIM
        assert _cli(capsys, *args, "--force")[0] == 0
        assert path.read_bytes() != VICTIM
    times = paths.times("left")
    times.unlink()
    times.symlink_to(features)  # a dataset name that is another input: never written over, even with force
    with pytest.raises(IblVideoError, match="is an input"):
        features_stage(session, force=True)


def test_run_session_reruns_keep_the_pose_table_and_recompute_with_force(session_with_truth_as_pose, tmp_path):
    from iblvideo.sessions.session import run_session

    session = _copy(session_with_truth_as_pose, tmp_path / "data")
    pose = session / "alf" / "_ibl_bodyCamera.dlc.pqt"
    kept = pose.stat().st_mtime_ns
    for force in (False, True):  # iblvideo's own derived outputs are recomputed either way
        result = run_session(session, cameras=("body",), tracker="truth", force=force)
        assert result.status == "Complete", result.error
        assert (pose.stat().st_mtime_ns == kept) is not force


# 9. leftovers of killed runs are removed by the next run of their kind

def test_a_killed_label_video_leaves_a_partial_that_the_rerun_removes(session):
    raw = SessionPaths(session).raw_video_data
    video, out = SessionPaths(session).raw_video("left"), raw / "left.labeled.mp4"
    command = [sys.executable, "-m", "iblvideo", "-q", "label-video", str(video), "--out", str(out)]
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not any(p.stat().st_size > 0 for p in _partials(raw) if p.exists()):
        assert child.poll() is None and time.monotonic() < deadline, child.stderr.read() if child.stderr else ""
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    left = _partials(raw)
    assert len(left) == 1 and not out.exists()
    done = subprocess.run([*command, "--frames", "0:3"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert out.is_file() and not _partials(raw)


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", ""])
    child.wait()
    return child.pid


def test_only_leftovers_of_gone_processes_of_this_machine_are_removed(tmp_path):
    out = tmp_path / "x.npy"
    dead = _dead_pid()
    here, other = atomic._host(), "0123abcd" if atomic._host() != "0123abcd" else "fedc4321"
    names = {
        "dead here": f".x.npy{PARTIAL}{dead}-{here}-aaaa", "old, dead": f".x.npy{PARTIAL}{dead}",
        "live here": f".x.npy{PARTIAL}{os.getpid()}-{here}-bbbb", "another machine": f".x.npy{PARTIAL}{dead}-{other}-cccc",
        "another output": f".y.npy{PARTIAL}{dead}-{here}-dddd",
    }
    for name in names.values():
        (tmp_path / name).write_bytes(b"partial")
    (tmp_path / f".x.npy{PARTIAL}{dead}-{here}-eeee").mkdir()  # an atomic_dir's
    write_npy(np.arange(2), out)
    assert sorted(p.name for p in _partials(tmp_path)) == sorted(names[k] for k in ("live here", "another machine", "another output"))


# 13. read-only and full filesystems: one line, exit 2, the folder and the problem

@contextlib.contextmanager
def _tmpfs(options: str) -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp())
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True, text=True)
    if mounted.returncode:
        folder.rmdir()
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()}); read-only and full filesystems need one")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)
        folder.rmdir()


def _remount_read_only(folder: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)


def test_a_read_only_alf_folder_or_data_root_is_one_line(session_with_truth_as_pose, capsys):
    with _tmpfs("size=64m") as root:
        session = _copy(session_with_truth_as_pose, root)
        _remount_read_only(root)
        code, err = _cli(capsys, "features", session, "--force")
        assert code == 2
        _one_line(err, str(session / "alf"), "Read-only file system")
        code, err = _cli(capsys, "synth", root / "new", "--cameras", "body", "--seconds", "0.2")
        assert code == 2
        _one_line(err, "Read-only file system")
    with _tmpfs("size=1m,ro") as root:
        video = SessionPaths(session_with_truth_as_pose).raw_video("body")
        code, err = _cli(capsys, "label-video", video, "--frames", "0:3", "--out", root / "labeled.mp4")
        assert code == 2
        _one_line(err, str(root), "cannot write labeled.mp4", "Read-only file system")


def test_a_folder_made_read_only_mid_write_reports_the_first_error(tmp_path):
    with _tmpfs("size=1m") as root:
        with pytest.raises(IblVideoError, match="Read-only file system") as raised, atomic_path(root / "x.txt") as tmp:
            tmp.write_text("complete")
            _remount_read_only(root)  # the rename fails, and so does the removal of the temporary
        assert isinstance(raised.value.__cause__, OSError) and raised.value.path == root


def test_a_full_disk_is_one_line_and_leaves_no_partial(session_with_truth_as_pose, capsys):
    video = SessionPaths(session_with_truth_as_pose).raw_video("left")
    with _tmpfs("size=64k") as root:
        for command in (["report", session_with_truth_as_pose], ["label-video", video, "--frames", "0:60"]):
            code, err = _cli(capsys, *command, "--out", root / "out")
            assert code == 2, command
            _one_line(err, str(root), "cannot write out", "No space left on device")
            assert not list(root.iterdir())
