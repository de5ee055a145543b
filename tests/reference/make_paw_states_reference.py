"""Run IBL's own Lightning Action pipeline (iblvideo 3.x ``segmentation_la.lightning_action``) on a session and
store what it makes in tests/reference/paw_states/: the inputs it gives each paw's networks and its pawstates tables.

Runs IBL's code, never ours: ``segmentation_la_utils.combine_input_streams`` (columns, right-camera flip,
wheel velocity and its resampling, the 150 → 60 Hz resampling), lightning-action 1.1.0's own
``load_feature_csv`` and ``ZScore`` (the scaling the networks see), and ``segmentation_la.lightning_action``
end to end (its sequence length, the resampling back to the camera's clock, ``run_ensembling``, the ALF
table). The networks are stand-ins (tests/la_standin.py's ``StandInNetwork``, member ``network-<k>``) behind a ``Model`` that
does what lightning-action's ``Model.predict`` does around the network: reads the features CSV with the
package's ``load_feature_csv``, passes it through the package's transforms that the member's config names
(the set's configs name ``configs/ibl.yaml``'s: ``VelocityConcat``, ``ZScore``), cuts it with the package's
``compute_sequences`` (no padding: a stand-in needs no context), and leaves NaN after the last whole
sequence. lightning-action's ``api`` (torch, Lightning, DALI) is therefore never imported: its modules
are loaded from their files. Whether our networks predict as lightning-action's do is the loader's parity
test, not this one.

Inputs: the committed Lightning Pose session tests/data/ibl-tools-session/synth_mouse_2/2026-01-01/002
(left 60 Hz, right 150 Hz, wheel at 1 kHz). To rerun, in a virtual environment of its own::

    python3.11 -m venv /tmp/la19/venv
    /tmp/la19/venv/bin/pip install numpy==2.4.6 pandas==2.3.3 scipy==1.17.1 pyarrow==26.0.1 pyyaml==6.0.3 jaxtyping
    /tmp/la19/venv/bin/pip install --no-deps lightning-action==1.1.0
    git clone https://github.com/int-brain-lab/iblvideo /tmp/iblvideo-upstream   # v3.2.0 (VERSIONS.txt)
    /tmp/la19/venv/bin/python tests/reference/make_paw_states_reference.py --iblvideo /tmp/iblvideo-upstream
"""
from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import shutil
import subprocess
import sys
import tempfile
import types
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
sys.path.insert(0, str(TESTS))
import la_standin  # noqa: E402  (NumPy only)

SESSION = TESTS / "data" / "ibl-tools-session" / "synth_mouse_2" / "2026-01-01" / "002"
OUT = HERE / "paw_states"
CAMERAS = ("left", "right")
PAWS = ("paw_r", "paw_l")
MEMBERS = 3
SEQUENCE_LENGTH = 500  # lightning_action()'s default, as ibllib's task runs it


def load_file(name: str, path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def lightning_action_modules() -> tuple[types.ModuleType, types.ModuleType]:
    """lightning-action's ``data.transforms`` and ``data.utils``, loaded without its package ``__init__`` (torch)."""
    root = Path(importlib.util.find_spec("lightning_action").origin).parent / "data"  # type: ignore[arg-type]
    return load_file("la_transforms", root / "transforms.py"), load_file("la_utils", root / "utils.py")


def stand_in_api(transforms: types.ModuleType, utils: types.ModuleType) -> types.ModuleType:
    """A ``lightning_action.api`` whose ``Model`` runs a stand-in network inside lightning-action's own data path."""

    class Model:
        def __init__(self, member: Path) -> None:
            self.network = la_standin.StandInNetwork(la_standin.seed(member))
            self.config = {"training": {"sequence_length": 500}, **yaml.safe_load((member / "config.yaml").read_text())}

        @classmethod
        def from_dir(cls, model_dir: Path) -> Model:
            return cls(Path(model_dir))

        def predict(self, data_path: Path, input_dir: str, output_dir: str, output_file: str, expt_ids: list[str]) -> None:
            features, _ = utils.load_feature_csv(Path(data_path) / input_dir / f"{expt_ids[0]}.csv")
            for name in self.config["data"].get("transforms") or ["ZScore"]:  # the package's default: ZScore
                features = getattr(transforms, name)()(features)
            length = self.config["training"]["sequence_length"]
            sequences = utils.compute_sequences(features, length, 0)
            probs = np.vstack([self.network(s) for s in sequences]) if sequences else np.zeros((0, len(la_standin.STATES)))
            probs = np.vstack([probs, np.full((len(features) - len(probs), probs.shape[1]), np.nan)])
            pd.DataFrame(probs, columns=self.config["data"]["label_names"]).to_csv(output_file)

    api = types.ModuleType("lightning_action.api")
    api.Model = Model  # type: ignore[attr-defined]
    return api


def ibl_modules(upstream: Path, api: types.ModuleType) -> tuple[types.ModuleType, types.ModuleType]:
    """IBL's ``segmentation_la_utils`` and ``segmentation_la`` from the checkout, importing only what they need."""
    sys.modules["lightning_action.api"] = api
    package = types.ModuleType("iblvideo")
    package.__path__ = []  # type: ignore[attr-defined]
    package.download_la_models = None  # type: ignore[attr-defined]  # the set is passed
    sys.modules["iblvideo"] = package
    load_file("iblvideo.params_lp", upstream / "iblvideo" / "params_lp.py")
    utils = load_file("iblvideo.segmentation_la_utils", upstream / "iblvideo" / "segmentation_la_utils.py")
    return utils, load_file("iblvideo.segmentation_la", upstream / "iblvideo" / "segmentation_la.py")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iblvideo", type=Path, required=True, help="a checkout of int-brain-lab/iblvideo 3.x")
    args = parser.parse_args()
    transforms, la_utils = lightning_action_modules()
    ibl_utils, ibl_la = ibl_modules(args.iblvideo, stand_in_api(transforms, la_utils))
    params = sys.modules["iblvideo.params_lp"]
    OUT.mkdir(exist_ok=True)
    alf = SESSION / "alf"
    wheel, wheel_times = alf / "_ibl_wheel.position.npy", alf / "_ibl_wheel.timestamps.npy"
    with tempfile.TemporaryDirectory() as tmp:
        networks = la_standin.write_set(Path(tmp), MEMBERS)
        for camera in CAMERAS:
            pose, times = alf / f"_ibl_{camera}Camera.lightningPose.pqt", alf / f"_ibl_{camera}Camera.times.npy"
            video = params.RIGHT_VIDEO if camera == "right" else params.LEFT_VIDEO
            inputs = {}
            for paw in PAWS:
                csv = Path(tmp) / f"{camera}_{paw}.csv"
                frame, clock, resampled = ibl_utils.combine_input_streams(pose, times, wheel, wheel_times, paw, video["flip"],
                                                                           video["original_size"], csv)
                features, _ = la_utils.load_feature_csv(csv)
                inputs[f"{paw}_inputs"] = frame.to_numpy()
                inputs[f"{paw}_zscore"] = transforms.ZScore()(features)
                inputs[f"{paw}_ibl"] = transforms.ZScore()(transforms.VelocityConcat()(features))
                inputs[f"{paw}_clock"] = clock if resampled else np.array([])
            np.savez_compressed(OUT / f"{camera}_inputs.npz", **inputs)
            session = Path(tmp) / camera / "alf"
            session.mkdir(parents=True)
            for source in (pose, times, wheel, wheel_times):
                shutil.copy(source, session / source.name)
            table = ibl_la.lightning_action(session / pose.name, session / times.name, session / wheel.name, session / wheel_times.name,
                                            ckpts_path=networks, sequence_length=SEQUENCE_LENGTH, force=True)
            shutil.copy(table, OUT / Path(table).name)
            print(camera, pd.read_parquet(table).shape)
    commit = subprocess.run(["git", "-C", str(args.iblvideo), "describe", "--tags", "--always"], capture_output=True, text=True).stdout.strip()
    versions = [f"iblvideo (upstream) {commit}", f"python {sys.version.split()[0]}"]
    versions += [f"{name} {importlib.metadata.version(name)}" for name in ("lightning-action", "numpy", "pandas", "scipy", "pyarrow", "pyyaml")]
    versions += [f"members per paw {MEMBERS} (tests/la_standin.py, transforms {', '.join(la_standin.TRANSFORMS)}), sequence length {SEQUENCE_LENGTH}",
                 f"inputs {SESSION.relative_to(TESTS.parent)}"]
    (OUT / "VERSIONS.txt").write_text("\n".join(versions) + "\n")


if __name__ == "__main__":
    main()
