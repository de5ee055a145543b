"""The HTML report: contents parsed in Python, and rendered by a real headless Chromium."""
from __future__ import annotations

import base64
import io
import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from iblvideo import __version__
from iblvideo.cli import main
from iblvideo.io.session_files import write_table
from iblvideo.measures.qc import BOUNDING_BOXES, CHECKS, PAW_NAN_FAIL, PAW_NAN_WARNING, PUPIL_STD_LIMIT
from iblvideo.results.plots import FIGURES, QC_UNITS

TRACKED = {"iblvideo_version": "0.0.test", "weights": "weights_v9.9", "weights_version": "9.9",
           "weights_description": "test <weights> & co", "device": "cpu", "seconds": 4.0, "frames": 180, "video": "_iblrig_leftCamera.raw.mp4"}


class Page(HTMLParser):
    """Images and visible text of a page."""

    def __init__(self, text: str):
        super().__init__()
        self.images: list[dict] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs))
        self.text.append(" ")  # cells and blocks are apart when rendered

    def handle_data(self, data):
        self.text.append(data)

    @property
    def words(self) -> str:
        """The visible text with whitespace runs made single spaces."""
        return " ".join("".join(self.text).split())


@pytest.fixture(scope="module")
def report(session_with_truth_as_pose, tmp_path_factory) -> Path:
    """The report of a copy of the session whose left pose table carries tracking metadata."""
    session = tmp_path_factory.mktemp("report") / "synth_mouse_2" / "2026-01-01" / "001"
    shutil.copytree(session_with_truth_as_pose, session)
    left = session / "alf" / "_ibl_leftCamera.dlc.pqt"
    write_table(pd.read_parquet(left), left, TRACKED)
    assert main(["-q", "report", str(session)]) == 0
    return session / "iblvideo_report.html"


def test_report_embeds_every_figure_and_the_qc(report):
    page = Page(report.read_text())
    assert {image["data-figure"] for image in page.images} == set(FIGURES)
    for image in page.images:
        assert image["src"].startswith("data:image/png;base64,")
        png = Image.open(io.BytesIO(base64.b64decode(image["src"].split(",", 1)[1])))
        assert png.format == "PNG" and min(png.size) > 300
    text = page.words
    qc = json.loads((report.parent / "alf" / "_iblvideo_dlc.qc.json").read_text())
    assert f"Session outcome: {qc['outcome']}" in text
    assert all(name in text for name in CHECKS)
    assert "src=\"http" not in report.read_text() and "<script" not in report.read_text()  # self-contained


def test_qc_values_carry_units_and_ibl_thresholds(report):
    text = Page(report.read_text()).words
    qc = json.loads((report.parent / "alf" / "_iblvideo_dlc.qc.json").read_text())
    assert "check unit left right body" in text
    assert f"pupil_blocked {QC_UNITS['pupil_blocked']}" in text
    for camera in ("left", "right"):
        assert f"threshold: FAIL above {PUPIL_STD_LIMIT[camera]} px" in text and f"threshold: FAIL below {PUPIL_STD_LIMIT[camera]}" in text
        snr = qc["cameras"][camera]["checks"]["pupil_diameter_snr"]
        assert f"{snr['outcome']} {snr['value']:.3g} ratio threshold: FAIL below {PUPIL_STD_LIMIT[camera]}" in text
    assert f"threshold: WARNING above {PAW_NAN_WARNING:.0%}, FAIL above {PAW_NAN_FAIL:.0%}" in text
    xrange, yrange = BOUNDING_BOXES["body"]
    assert f"threshold: FAIL outside x {xrange[0]}-{xrange[-1]}, y {yrange[0]}-{yrange[-1]} px" in text


def test_a_camera_without_pose_table_is_shown(report, tmp_path):
    """A camera whose tracking errored leaves its video and no pose table: the page names it and the file it lacks."""
    session = tmp_path / "synth_mouse_2" / "2026-01-01" / "001"
    shutil.copytree(report.parent, session)
    (session / "alf" / "_ibl_rightCamera.dlc.pqt").unlink()
    qc_path = session / "alf" / "_iblvideo_dlc.qc.json"
    qc = json.loads(qc_path.read_text())
    del qc["cameras"]["right"]  # as run_session's QC of the cameras that were tracked
    qc_path.write_text(json.dumps(qc))
    assert main(["-q", "report", str(session), "--force"]) == 0
    text = Page((session / "iblvideo_report.html").read_text()).words
    qc_text = text.split("Quality control")[1].split("Figures")[0]
    assert "right camera: no pose table (expected alf/_ibl_rightCamera.dlc.pqt)" in qc_text
    assert "left camera" not in qc_text and "body camera" not in qc_text
    assert "check unit left body right" in qc_text and qc_text.count("no pose table") == 2 + len(CHECKS)


def test_report_lists_versions_and_run_times(report):
    text = Page(report.read_text()).words
    assert "weights_v9.9" in text and "test <weights> & co" in text and "0.0.test" in text  # escaped, read back
    assert f"iblvideo {__version__}" in text
    assert "180 4.0 45.0" in text  # frames, tracking seconds and frames/s of the left camera
    assert "No tracking metadata in the pose tables of: right, body" in text


def test_no_paw_states_section_without_a_paw_states_table(report):
    """The section (tests/test_paw_states_session.py) is there only when alf/lightningaction has a table."""
    page = report.read_text()
    assert 'id="paw-states"' not in page and 'data-figure="paw_states"' not in page


def _chromium() -> tuple[str, str] | None:
    browser, driver = shutil.which("chromium") or shutil.which("chromium-browser"), shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@pytest.mark.skipif(_chromium() is None, reason="chromium and chromedriver not installed (Debian: apt-get install chromium chromium-driver)")
def test_report_renders_in_headless_chromium(report, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver_path = _chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(driver_path))
    try:
        driver.get(report.as_uri())
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.dataset.figure, i.complete, i.naturalWidth, i.naturalHeight])")
        assert {name for name, *_ in images} == set(FIGURES)
        assert all(complete and width > 0 and height > 0 for _, complete, width, height in images), images
        assert [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"] == []
        # the same checks do catch a broken page: a bad image and a console error
        broken = tmp_path / "broken.html"
        broken.write_text('<!DOCTYPE html><img src="data:image/png;base64,AAAA"><script>console.error("boom")</script>')
        driver.get(broken.as_uri())
        assert driver.execute_script("return document.images[0].naturalWidth") == 0
        assert any("boom" in entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE")
    finally:
        driver.quit()


def test_results_from_real_dlc(session_with_dlc, tmp_path):
    """The real tracker's outputs (demo weights, body camera) through every view."""
    from pynwb import NWBHDF5IO

    from iblvideo.io.session_files import table_metadata
    from iblvideo.results.nwb import Subject, export_nwb
    from iblvideo.video.reader import VideoReader

    pose_table = session_with_dlc / "alf" / "_ibl_bodyCamera.dlc.pqt"
    metadata = table_metadata(pose_table)
    video = session_with_dlc / "raw_video_data" / "_iblrig_bodyCamera.raw.mp4"
    assert main(["-q", "label-video", str(video), "--frames", "0:12", "--out", str(tmp_path / "body.mp4")]) == 0
    with VideoReader(tmp_path / "body.mp4") as labeled:
        assert len(labeled) == 12
    assert main(["-q", "report", str(session_with_dlc), "--out", str(tmp_path / "report.html")]) == 0
    text = Page((tmp_path / "report.html").read_text()).words
    assert metadata["weights"] in text and metadata["weights_description"] in text
    pose = pd.read_parquet(pose_table)
    with NWBHDF5IO(export_nwb(session_with_dlc, tmp_path / "pose.nwb", subject=Subject(sex="U", species="Mus musculus", age="P90D")), "r") as io_:
        estimation = io_.read().processing["pose_estimation"]["BodyCamera"]
        assert metadata["weights_description"] in estimation.description
        tail = estimation.pose_estimation_series["PoseEstimationSeriesTailStart"]
        np.testing.assert_array_equal(tail.data[:], pose[["tail_start_x", "tail_start_y"]].to_numpy())
