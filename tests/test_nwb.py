"""NWB export in IBL's NWB layout (catalystneuro/IBL-to-nwb), read back with pynwb, checked with
nwbinspector (DANDI's config too) and loaded with movement."""
from __future__ import annotations

import collections
import datetime as dt
import shutil
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from pynwb import NWBHDF5IO

from iblvideo.cli import main
from iblvideo.io.alf import LICKS, SessionPaths
from iblvideo.io.session_files import write_table
from iblvideo.results.load import load_session
from iblvideo.results.nwb import Subject, export_nwb, paw_states_name

TRACKED = {"tracker": "dlc", "weights": "weights_v9.9", "weights_version": "9.9", "weights_description": "demo nets", "iblvideo_version": "0.0.test"}
SUBJECT_FLAGS = ["--subject-sex", "F", "--subject-species", "Mus musculus", "--subject-age", "P90D"]
# IBL-to-nwb's names (src/ibl_to_nwb/datainterfaces/_pose_estimation_interface.py, IBL_TO_NWB_BODY_PART_NAMES)
IBL_SERIES = {
    "nose_tip": "PoseEstimationSeriesNoseTip", "paw_l": "PoseEstimationSeriesLeftPaw", "paw_r": "PoseEstimationSeriesRightPaw",
    "tongue_end_l": "PoseEstimationSeriesLeftTongueEnd", "tongue_end_r": "PoseEstimationSeriesRightTongueEnd",
    "pupil_top_r": "PoseEstimationSeriesRightPupilTop", "pupil_bottom_r": "PoseEstimationSeriesRightPupilBottom",
    "pupil_left_r": "PoseEstimationSeriesRightPupilLeft", "pupil_right_r": "PoseEstimationSeriesRightPupilRight",
    "tube_top": "PoseEstimationSeriesTubeTop", "tube_bottom": "PoseEstimationSeriesTubeBottom", "tail_start": "PoseEstimationSeriesTailStart",
}
# what nwbinspector still says of the file, none of it CRITICAL: IBL's unit px (nwbinspector wants "pixels"), IBL's module
# names (not NWB's schema names), and what only Alyx knows (institution, experimenter, a subject description)
KNOWN_NOTES = {"check_spatial_series_unit", "check_processing_module_name", "check_institution", "check_experimenter_exists", "check_description"}


def _copy(source: Path, root: Path, subject: str = "synth_mouse_2") -> Path:
    session = root / subject / "2026-01-01" / "001"
    shutil.copytree(source / "alf", session / "alf")
    return session


@pytest.fixture(scope="module")
def exported(session_with_truth_as_pose, tmp_path_factory) -> tuple[Path, Path]:
    """(session, file): the three-camera session exported through the command with the subject given by flags."""
    session = _copy(session_with_truth_as_pose, tmp_path_factory.mktemp("nwb"))
    left = session / "alf" / "_ibl_leftCamera.dlc.pqt"
    write_table(pd.read_parquet(left), left, TRACKED)
    assert main(["-q", "export", str(session), "--format", "nwb", *SUBJECT_FLAGS]) == 0
    return session, session / "sub-synth-mouse-2_ses-2026-01-01-001_pose.nwb"


def test_pose_is_in_ibls_layout(exported):
    session, path = exported
    results = load_session(session)
    with NWBHDF5IO(path, "r") as io:
        nwbfile = io.read()
        assert set(nwbfile.processing) == {"pose_estimation", "pupil", "motion_energy", "lick_times", "behavior"}
        pose = nwbfile.processing["pose_estimation"]
        assert set(pose.data_interfaces) == {"LeftCamera", "RightCamera", "BodyCamera", "Skeletons"}
        for name, camera in results.cameras.items():
            estimation = pose[f"{name.capitalize()}Camera"]
            names = sorted(IBL_SERIES[p] for p in camera.points)
            assert sorted(estimation.pose_estimation_series) == names
            assert sorted(pose["Skeletons"].skeletons[f"{name.capitalize()}Camera"].nodes[:]) == names
            assert estimation.skeleton.name == f"{name.capitalize()}Camera" and estimation.source_software == "iblvideo"
            for point in camera.points:
                series = estimation.pose_estimation_series[IBL_SERIES[point]]
                np.testing.assert_array_equal(series.data[:], camera.tracks.point_xy(point))
                np.testing.assert_array_equal(series.confidence[:], camera.tracks.point_likelihood(point))
                np.testing.assert_array_equal(series.timestamps[:], camera.times)
                assert series.unit == "px" and f"'{point}'" in series.description
        left = pose["LeftCamera"]
        assert "dlc with weights_v9.9 9.9: demo nets" in left.description
        assert left.scorer == "weights_v9.9 9.9" and left.source_software_version == "0.0.test"
        assert nwbfile.session_start_time == dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
        assert nwbfile.session_id == "synth_mouse_2_2026-01-01_001"
        subject = nwbfile.subject
        assert (subject.subject_id, subject.sex, subject.species, subject.age) == ("synth_mouse_2", "F", "Mus musculus", "P90D")


def test_pupil_motion_energy_and_licks_are_on_the_camera_times(exported):
    session, path = exported
    paths, results = SessionPaths(session), load_session(session)
    with NWBHDF5IO(path, "r") as io:
        nwbfile = io.read()
        pupil, energy = nwbfile.processing["pupil"], nwbfile.processing["motion_energy"]
        assert set(pupil.data_interfaces) == {"LeftPupilDiameter", "LeftPupilDiameterSmoothed", "RightPupilDiameter", "RightPupilDiameterSmoothed"}
        assert set(energy.data_interfaces) == {"LeftCameraMotionEnergy", "RightCameraMotionEnergy", "BodyCameraMotionEnergy"}
        for name in ("left", "right"):
            features = pd.read_parquet(paths.features(name))
            for column, series in (("pupilDiameter_raw", "PupilDiameter"), ("pupilDiameter_smooth", "PupilDiameterSmoothed")):
                written = pupil[f"{name.capitalize()}{series}"]
                np.testing.assert_array_equal(written.data[:], features[column].to_numpy())
                np.testing.assert_array_equal(written.timestamps[:], results.cameras[name].times)
                assert written.unit == "px"
        for name, camera in results.cameras.items():
            trace, roi = (np.load(p) for p in paths.motion_energy(name))
            written = energy[f"{name.capitalize()}CameraMotionEnergy"]
            np.testing.assert_array_equal(written.data[:], trace)
            np.testing.assert_array_equal(written.timestamps[:], camera.times)
            assert written.unit == "a.u." and f"ROI (w, h, x, y) = ({', '.join(str(int(v)) for v in roi)})" in written.description
        licks = nwbfile.processing["lick_times"]["EventsLickTimes"]
        np.testing.assert_array_equal(licks.timestamps[:], np.load(paths.session_file(LICKS)))
        assert len(licks.timestamps) > 0


def test_paw_state_series_names_follow_ibls_camera_and_paw_names():
    """Our layout for the paw states (IBL-to-nwb has none): the camera's container name, then the paw's side and name."""
    assert paw_states_name("right", "paw_l") == "RightCameraLeftPawStates"
    assert paw_states_name("left", "paw_r") == "LeftCameraRightPawStates"


@pytest.mark.parametrize("config", [None, "dandi"])
def test_nwbinspector_finds_nothing_critical(exported, config):
    from nwbinspector import Importance, inspect_nwbfile, load_config

    # pynwb's schema validation is the same under either config: run once, with the default
    messages = [m for m in inspect_nwbfile(nwbfile_path=exported[1], config=load_config(config) if config else None, skip_validate=config is not None)
                if m is not None]
    counts = collections.Counter(m.importance for m in messages)
    assert counts[Importance.CRITICAL] == 0 and counts[Importance.ERROR] == 0, [m.message for m in messages if m.importance in (Importance.CRITICAL, Importance.ERROR)]
    assert {m.check_function_name for m in messages} <= KNOWN_NOTES


def test_movement_reads_the_left_camera_by_default_and_the_others_by_key(exported):
    from movement.io import load_dataset, load_poses

    session, path = exported
    results = load_session(session)
    left = load_dataset(path, source_software="NWB")
    assert dict(left.sizes) == {"time": len(results.cameras["left"].tracks), "space": 2, "keypoints": 11, "individuals": 1}
    assert sorted(left.keypoints.values) == sorted(IBL_SERIES[p] for p in results.cameras["left"].points)
    np.testing.assert_array_equal(left.position.sel(keypoints="PoseEstimationSeriesNoseTip", individuals=left.individuals[0]).values,
                                  results.cameras["left"].tracks.point_xy("nose_tip"))
    body = load_poses.from_nwb_file(path, processing_module_key="pose_estimation", pose_estimation_key="BodyCamera")
    assert dict(body.sizes) == {"time": len(results.cameras["body"].tracks), "space": 2, "keypoints": 1, "individuals": 1}
    with NWBHDF5IO(path, "r") as io:  # the default's copy is links: the left camera's series are stored once
        io.read()
        series = io._file["processing/behavior/PoseEstimation/PoseEstimationSeriesNoseTip"]
        assert series.get("data", getlink=True).path == "/processing/pose_estimation/LeftCamera/PoseEstimationSeriesNoseTip/data"


def test_a_missing_subject_field_is_one_line_naming_the_flags(session_with_truth_as_pose, tmp_path, capsys):
    session = _copy(session_with_truth_as_pose, tmp_path)
    out = tmp_path / "x.nwb"
    assert main(["-q", "export", str(session), "--out", str(out), "--subject-sex", "F", "--subject-dob", "2025-10-01"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pass --subject-species (" in err and not out.exists()
    assert main(["-q", "export", str(session), "--out", str(out), *SUBJECT_FLAGS[:4], "--subject-age", "90 days"]) == 2
    assert "subject age '90 days': expected an ISO 8601 duration" in capsys.readouterr().err and not out.exists()


def test_nwb_needs_camera_times(session_with_truth_as_pose, tmp_path, capsys):
    session = tmp_path / "mouse" / "2026-01-01" / "001"
    (session / "alf").mkdir(parents=True)
    shutil.copy(session_with_truth_as_pose / "alf" / "_ibl_bodyCamera.dlc.pqt", session / "alf")
    assert main(["-q", "export", str(session), "--out", str(tmp_path / "x.nwb"), *SUBJECT_FLAGS]) == 2
    assert "body camera: no alf/_ibl_bodyCamera.times.npy" in capsys.readouterr().err
    assert not (tmp_path / "x.nwb").exists()


EID = "6b3d1a6e-1c2f-4a57-9f7e-0d1b2c3d4e5f"


class AlyxRecords:
    """ONE's ``alyx.rest`` as it answers for one IBL session: Alyx's records as its REST schema spells them."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict]] = []

    def rest(self, url: str, action: str, **filters):
        self.calls.append((url, action, filters))
        if url == "sessions":
            return {"id": EID, "subject": "KS023", "lab": "cortexlab", "start_time": "2026-01-01T13:45:10.123456", "users": ["olivier"]}
        if url == "labs":
            return [{"name": "cortexlab", "institution": "University College London", "timezone": "Europe/London"}]
        return [{"nickname": "KS023", "lab": "cortexlab", "sex": "M", "species": "mouse", "birth_date": "2025-09-15", "description": ""}]


class OnlineOne:
    """The part of ONE that the export uses: an eid's local folder, and Alyx."""

    offline = False

    def __init__(self, folder: Path) -> None:
        self.folder, self.alyx = folder, AlyxRecords()

    def eid2path(self, eid: str) -> Path | None:
        return self.folder if eid == EID else None


def test_an_eid_through_one_takes_the_subject_and_session_from_alyx(session_with_truth_as_pose, tmp_path):
    session = _copy(session_with_truth_as_pose, tmp_path, "KS023")
    one = OnlineOne(session)
    path = export_nwb(EID, tmp_path / "ks023.nwb", one=one, subject=Subject(age="P108D"))
    assert ("subjects", "list", {"nickname": "KS023"}) in one.alyx.calls
    with NWBHDF5IO(path, "r") as io:
        nwbfile = io.read()
        assert nwbfile.session_id == EID and nwbfile.lab == "cortexlab" and nwbfile.institution == "University College London"
        assert nwbfile.session_start_time == dt.datetime(2026, 1, 1, 13, 45, 10, 123456, tzinfo=ZoneInfo("Europe/London"))
        assert list(nwbfile.experimenter) == ["olivier"]
        subject = nwbfile.subject
        assert (subject.subject_id, subject.sex, subject.species, subject.age) == ("KS023", "M", "Mus musculus", "P108D")
        assert subject.date_of_birth.date() == dt.date(2025, 9, 15)
