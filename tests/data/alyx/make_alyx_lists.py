"""Writes dataset_types.json and data_formats.json, the lists the Alyx stand-in serves (see README.md).

Run from the repository root with any Python 3.11; it reads Alyx's fixtures from a clone of
cortex-lab/alyx (``--alyx``, default the mirror) at the commit named below.
"""
from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

ALYX_COMMIT = "de5afa3c0dec78af9a0246f1b0f1451eedaf1d57"
FIXTURES = "alyx/data/fixtures"
HERE = Path(__file__).parent
VIDEO_TASKS = "ibllib 4.1.0, ibllib/pipes/video_tasks.py"
# (name, pattern, where ibllib 4.1.0 names the files): the video tasks' output files whose type Alyx's fixture lacks;
# the raw-video type names are those ibllib's CameraQC.dstypes spells (ibllib/qc/camera.py)
IBLLIB_TYPES = (
    ("_iblrig_Camera.raw", "_iblrig_*Camera.raw.*", f"{VIDEO_TASKS}: VideoCompress and VideoConvert output_files; name: ibllib/qc/camera.py CameraQC.dstypes"),
    ("_iblrig_Camera.timestamps", "_iblrig_*Camera.timestamps*", f"{VIDEO_TASKS}: VideoRegisterRaw output_files; name: ibllib/qc/camera.py CameraQC.dstypes"),
    ("_iblrig_Camera.GPIO", "_iblrig_*Camera.GPIO.*", f"{VIDEO_TASKS}: VideoRegisterRaw output_files; name: ibllib/qc/camera.py CameraQC.dstypes"),
    ("_iblrig_Camera.frame_counter", "_iblrig_*Camera.frame_counter.*", f"{VIDEO_TASKS}: VideoRegisterRaw output_files; name: ibllib/qc/camera.py CameraQC.dstypes"),
    ("_iblrig_Camera.frameData", "_iblrig_*Camera.frameData.*", f"{VIDEO_TASKS}: VideoRegisterRaw output_files; name: ibllib/qc/camera.py CameraQC.dstypes"),
    ("camera.ROIMotionEnergy", "*camera.ROIMotionEnergy.*", f"{VIDEO_TASKS}: DLC and LightningPose output_files"),
    ("ROIMotionEnergy.position", "*ROIMotionEnergy.position.*", f"{VIDEO_TASKS}: DLC and LightningPose output_files"),
    ("camera.lightningPose", "*camera.lightningPose.*", f"{VIDEO_TASKS}: LightningPose output_files"),
    ("camera.features", "*camera.features.*", f"{VIDEO_TASKS}: EphysPostDLC and PostLP output_files"),
)


def fixture(alyx: Path, name: str) -> list[dict]:
    text = subprocess.run(["git", "-C", str(alyx), "show", f"{ALYX_COMMIT}:{FIXTURES}/{name}"], check=True,
                          capture_output=True, text=True).stdout
    return [record["fields"] for record in json.loads(text)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--alyx", type=Path, default=Path("/work/.mirror/cortex-lab+alyx/repo"))
    alyx = parser.parse_args().alyx
    source = f"cortex-lab/alyx@{ALYX_COMMIT}:{FIXTURES}"
    types = [{"name": t["name"], "filename_pattern": t["filename_pattern"], "source": f"{source}/data.datasettype.json"}
             for t in fixture(alyx, "data.datasettype.json")]
    known = {t["name"] for t in types}
    types += [{"name": n, "filename_pattern": p, "source": s} for n, p, s in IBLLIB_TYPES if n not in known]
    formats = [{"name": f["name"], "file_extension": f["file_extension"], "source": f"{source}/data.dataformat.json"}
               for f in fixture(alyx, "data.dataformat.json")]
    (HERE / "dataset_types.json").write_text(json.dumps(types, indent=1) + "\n")
    (HERE / "data_formats.json").write_text(json.dumps(formats, indent=1) + "\n")
    print(f"{len(types)} dataset types ({len(types) - len(known)} from ibllib), {len(formats)} data formats")


if __name__ == "__main__":
    main()
