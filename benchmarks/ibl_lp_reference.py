"""IBL's own Lightning Pose post-processing (int-brain-lab/iblvideo v3.2.0), run on synthetic ensemble-member
predictions: the reference for our ``lightning-pose`` tracker's crop windows, EKS and final table.

Runs IBL's code, never ours: ``pose_lp.lightning_pose`` itself (``_subsample_video``, ``_run_network``
with ``pose_lp_utils.get_crop_window`` on the ROI network's csv, ``pose_lp_utils.build_dataloader``,
``_run_eks`` → ``pose_lp_utils.run_eks`` with eks 3.0.0, ``_extract_pose_alf``), on the inputs that
tests/reference/lp_inputs.py writes. Only what needs a GPU or the networks is replaced, by stand-ins
named as such that record what IBL hands them:

- ``pose_lp.analyze_video`` → ``_analyze_video_standin``: reads the model folder's config as IBL does,
  calls IBL's real ``build_dataloader``, then copies the prepared member csv where IBL's inference
  would have written it (the same file name, computed the same way);
- ``pose_lp_utils.video_pipe_crop_resize_flip`` → ``_record_dali_pipeline_standin`` and
  ``pose_lp_utils.LitDaliWrapper`` → ``_record_lit_dali_wrapper_standin``: record the DALI pipeline's
  and the iterator's arguments (crop_params, resize_dims, brightness, flip, sequence_length, step, ...);
- ``torch.cuda.get_device_properties`` → ``_gpu_properties_standin`` (``--gpu-memory-gb``), which
  ``_run_network`` reads to size its batches.

Modules of IBL's import chain that cannot be imported here are put in ``sys.modules`` as stand-ins
that raise if anything of them is called; the script prints which and why. Where DALI imports, IBL's own
``video_pipe_crop_resize_flip`` also runs as a CPU pipeline on 3 frames per network decoded by PyAV (its
GPU reader replaced by ``fn.external_source``), and DALI's crop origin is read off a ramp image.

Setup, in its own environment (tests/data/ibl-lp-reference/README.md says why each step)::

    python3.11 -m venv /tmp/ibl-lp-venv && . /tmp/ibl-lp-venv/bin/activate
    pip install torch==2.14.1 torchvision==0.29.1
    pip install ensemble-kalman-smoother==3.0.0 pandas moviepy opencv-python-headless pyarrow
    pip install --no-deps lightning-pose==2.2.0
    pip install "lightning>=2.5,<2.6" "pytorch-lightning>=2.5,<2.6" hydra-core jaxtyping kornia safetensors \
        "tensorboard<3" "transformers>=4.57.5" imaug aniposelib ONE-api av
    pip install nvidia-dali-cuda120==2.4.0      # optional: the CPU preprocessing part
    git clone --no-checkout <int-brain-lab/iblvideo> /tmp/iblvideo-upstream
    git -C /tmp/iblvideo-upstream checkout v3.2.0
    python benchmarks/ibl_lp_reference.py --iblvideo /tmp/iblvideo-upstream

Writes tests/data/ibl-lp-reference/<cam>/ (ibl_table.pqt, IBL's EKS csvs, ibl_calls.json, dali/) and VERSIONS.json.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
# written by tests/reference/lp_inputs.py (which needs iblvideo, not installed here): every input's name is
# read from its meta.json
OUT = ROOT / "tests" / "data" / "ibl-lp-reference"
VERSIONS = OUT / "VERSIONS.json"
TABLE = "ibl_table.pqt"
CALLS = "ibl_calls.json"
UPSTREAM_TAG = "v3.2.0"
# what IBL's pipeline runs on a GPU and this reference cannot: said in VERSIONS.json and printed
NOT_ON_CPU = [
    "DALI's GPU video reader, fn.readers.video(device='gpu'), and its nvdec decoding with YUV->RGB conversion",
    "the rest of video_pipe_crop_resize_flip on the GPU (/255, coord_transform brightness, flip, crop_mirror_normalize, "
    "resize); where DALI imports, the same operators ran on its CPU backend for 3 frames per network (<cam>/dali/)",
    "LitDaliWrapper (DALIGenericIterator) feeding the networks",
    "the networks themselves: load_model_from_checkpoint, pl.Trainer(accelerator='gpu').predict, PredictionHandler",
    "torch.cuda.get_device_properties (batch sizing in _run_network) and torch.cuda.synchronize / empty_cache",
]
# modules of IBL's import chain, tried in this order; those that fail to import become stand-ins
IMPORT_CHAIN = ["one.api", "one.remote.aws", "nvidia.dali", "nvidia.dali.fn", "nvidia.dali.types",
                "nvidia.dali.plugin.pytorch", "lightning.pytorch", "omegaconf", "moviepy", "cv2",
                "eks.ibl_pupil_smoother", "eks.singlecam_smoother", "eks.utils"]
STANDINS: dict[str, str] = {}  # module -> why it is a stand-in


class StandinCalled(RuntimeError):
    """Something of a stand-in module was actually used: this reference cannot stand for it."""


class _StandinMeta(type):
    """Stand-in classes: attributes are further stand-ins, calling one raises (decorating a function does not run it)."""

    def __getattr__(cls, name: str) -> type:
        if name.startswith("__"):
            raise AttributeError(name)
        return _standin_class(f"{cls.__qualname__}.{name}")

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        if len(args) == 1 and callable(args[0]) and not kwargs and not isinstance(args[0], _StandinMeta):
            function = args[0]

            def decorated(*a: Any, **k: Any) -> Any:
                raise StandinCalled(f"{cls.__qualname__}-decorated {function.__name__} called: {cls.__qualname__} is a stand-in")

            decorated.__name__ = function.__name__
            return decorated
        module = max((m for m in STANDINS if cls.__qualname__.startswith(m)), key=len, default="?")
        raise StandinCalled(f"{cls.__qualname__} called, but {module} is a stand-in ({STANDINS.get(module, '?')})")

    def __repr__(cls) -> str:
        return f"<stand-in {cls.__qualname__}>"


def _standin_class(qualname: str) -> type:
    return _StandinMeta(qualname.rsplit(".", 1)[-1], (), {"__qualname__": qualname})


class _StandinModule(types.ModuleType):
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return _standin_class(f"{self.__name__}.{name}")


def _insert_standin(name: str, why: str) -> None:
    """Put a stand-in for module ``name`` (and its missing parents) in sys.modules."""
    parts = name.split(".")
    for i in range(1, len(parts) + 1):
        sub = ".".join(parts[:i])
        if sys.modules.get(sub) is None:
            try:
                importlib.import_module(sub)
                continue
            except ImportError:
                pass
            module = _StandinModule(sub)
            module.__path__ = []  # a package: its submodules may be stand-ins too
            sys.modules[sub] = module
            STANDINS[sub] = why
            if i > 1:
                setattr(sys.modules[".".join(parts[:i - 1])], parts[i - 1], module)


def install_standins() -> None:
    """Import IBL's import chain; what cannot be imported here becomes a stand-in, and says why."""
    for name in IMPORT_CHAIN:
        try:
            importlib.import_module(name)
        except Exception as err:  # noqa: BLE001 - any failure to import is the reason given
            _insert_standin(name, f"import {name} failed: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}")


def version_of(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def upstream_checkout(path: Path) -> dict[str, str]:
    """The upstream checkout's commit and tag; refuse anything but IBL's v3.2.0."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(path), *args], check=True, capture_output=True, text=True).stdout.strip()

    commit, tagged = git("rev-parse", "HEAD"), git("rev-parse", f"{UPSTREAM_TAG}^{{commit}}")
    if commit != tagged:
        raise SystemExit(f"{path} is at {commit}, not {UPSTREAM_TAG} ({tagged}): git -C {path} checkout {UPSTREAM_TAG}")
    return {"tag": UPSTREAM_TAG, "commit": commit, "describe": git("describe", "--tags")}


def jsonable(value: Any) -> Any:
    """Recorded arguments as JSON: numbers, lists, dicts; anything else by its repr."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, _StandinMeta):
        return repr(value)
    if hasattr(value, "items"):  # omegaconf containers
        return {str(k): jsonable(v) for k, v in value.items()}
    return repr(value)


DALI_DISTRIBUTION = "nvidia-dali-cuda110"
# not IBL's DALI, but the one release on PyPI that installs here: its CPU operators, for the preprocessing part
DALI_CPU_DISTRIBUTION = "nvidia-dali-cuda120"
DALI_NOT_INSTALLED = ("PyPI's nvidia-dali-cuda110 1.50.0 is a stub sdist (wheel_stub) that fetches the real wheel from "
                      "NVIDIA's own package index at install time, which this machine cannot reach")


class IblRun:
    """One camera through IBL's ``lightning_pose``, with the GPU-only parts replaced by recording stand-ins."""

    def __init__(self, camera: str, work: Path, gpu_memory_gb: float, upstream: dict[str, Any]):
        self.camera, self.work, self.gpu_memory_gb = camera, work, gpu_memory_gb
        self.inputs = OUT / camera / "inputs"
        self.meta = json.loads((self.inputs / "meta.json").read_text())
        self.pose_lp, self.utils, self.params = upstream["pose_lp"], upstream["pose_lp_utils"], upstream["params_lp"]
        self.networks: list[dict] = []  # one per analyze_video call, with what build_dataloader handed DALI
        self.eks: list[dict] = []

    # ---- stand-ins ---------------------------------------------------------------------------------------

    def _gpu_properties_standin(self, device: int = 0) -> types.SimpleNamespace:
        """What _run_network reads to size its batches: a GPU of --gpu-memory-gb."""
        return types.SimpleNamespace(total_memory=self.gpu_memory_gb * 1e9, name="stand-in")

    def _record_dali_pipeline_standin(self, **kwargs: Any) -> dict:
        """Stands for video_pipe_crop_resize_flip (DALI on a GPU): records what IBL passes it."""
        kwargs["filenames"] = Path(kwargs["filenames"]).name
        self.networks[-1]["dali_pipeline"] = jsonable(kwargs)
        return {"standin": "video_pipe_crop_resize_flip"}

    def _record_lit_dali_wrapper_standin(self, pipe: dict, **kwargs: Any) -> dict:
        """Stands for lightning_pose's LitDaliWrapper: records the iterator's arguments."""
        self.networks[-1]["lit_dali_wrapper"] = jsonable(kwargs)
        return {"standin": "LitDaliWrapper", "pipe": pipe}

    def _analyze_video_standin(self, network: str, mp4_file: str, model_path: str, flip: bool, original_dims: list,
                               crop_window: list | None = None, ensemble_number: int = 0, sequence_length: int = 32,
                               save_dir: str | None = None) -> pd.DataFrame:
        """Stands for analyze_video: IBL's config read and real build_dataloader, then the prepared member csv
        copied to the file IBL's inference writes."""
        import yaml
        from omegaconf import DictConfig  # type: ignore[import-not-found]

        cfg = DictConfig(yaml.safe_load((Path(model_path) / "config.yaml").read_text()))
        self.networks.append(jsonable({
            "network": network, "ensemble_number": ensemble_number, "mp4_file": Path(mp4_file).name,
            "model_folder": Path(model_path).name, "flip": flip, "original_dims": original_dims,
            "crop_window": crop_window, "sequence_length": sequence_length,
            "model_type": cfg.model.model_type,
            "resize_dims": [cfg.data.image_resize_dims.height, cfg.data.image_resize_dims.width]}))
        self.utils.build_dataloader(
            network=network, mp4_file=mp4_file,
            model_type="context" if cfg.model.model_type == "heatmap_mhcrnn" else "baseline",
            sequence_length=sequence_length, flip=flip, crop_window=crop_window,
            resize_dims=[cfg.data.image_resize_dims.height, cfg.data.image_resize_dims.width], original_dims=original_dims)
        name = Path(mp4_file.replace(".mp4", f".{network}{ensemble_number}.csv")).name
        shutil.copyfile(self.inputs / name, Path(save_dir or Path(mp4_file).parent) / name)
        self.networks[-1]["csv"] = name
        return pd.read_csv(self.inputs / name, header=[0, 1, 2], index_col=0)

    def _run_eks_recorder(self, real: Callable[..., pd.DataFrame]) -> Callable[..., pd.DataFrame]:
        """IBL's own run_eks, its arguments (and the video's rate as moviepy reads it) recorded first."""
        from moviepy import VideoFileClip  # type: ignore[import-not-found]

        def run_eks(network: str, eks_params: dict, mp4_file: str, csv_files: list, remove_files: bool = True) -> pd.DataFrame:
            with VideoFileClip(mp4_file) as clip:
                fps = clip.fps
            self.eks.append(jsonable({"network": network, "eks_params": eks_params, "mp4_file": Path(mp4_file).name,
                                      "csv_files": [Path(f).name for f in csv_files], "moviepy_fps": fps,
                                      "remove_files": remove_files}))
            return real(network=network, eks_params=eks_params, mp4_file=mp4_file, csv_files=csv_files,
                        remove_files=remove_files)

        return run_eks

    # ---- the run -----------------------------------------------------------------------------------------

    def camera_params(self) -> dict:
        return {"left": self.params.LEFT_VIDEO, "right": self.params.RIGHT_VIDEO, "body": self.params.BODY_VIDEO}[self.camera]

    def write_model_folders(self, root: Path) -> None:
        """A config.yaml per ensemble member, in folders IBL's weight globs find (no checkpoints: nothing loads them)."""
        networks = self.meta["networks"] | {"roi_detect": self.meta["roi"] | {"members": 1}}
        for label, params in self.camera_params()["features"].items():
            spec = networks[label]
            for m in range(spec["members"]):
                folder = root / params["weights"].replace("*", str(m))
                folder.mkdir(parents=True, exist_ok=True)
                height, width = spec["resize_dims"]
                config = {"model": {"model_type": spec["model_type"]},
                          "data": {"image_resize_dims": {"height": height, "width": width}}}
                (folder / "config.yaml").write_text(json.dumps(config))  # JSON is YAML

    def run(self) -> Path:
        """IBL's lightning_pose on this camera's video; returns the ALF table it wrote."""
        import torch

        session = self.work / self.camera / "session"
        video = session / "raw_video_data" / self.meta["video"]
        video.parent.mkdir(parents=True)
        shutil.copyfile(self.inputs / self.meta["video"], video)
        models = self.work / self.camera / "networks"
        self.write_model_folders(models)
        saved = (self.pose_lp.analyze_video, self.pose_lp.run_eks, self.utils.video_pipe_crop_resize_flip,
                 self.utils.LitDaliWrapper, torch.cuda.get_device_properties)
        self.pose_lp.analyze_video = self._analyze_video_standin
        self.pose_lp.run_eks = self._run_eks_recorder(self.pose_lp.run_eks)
        self.utils.video_pipe_crop_resize_flip = self._record_dali_pipeline_standin
        self.utils.LitDaliWrapper = self._record_lit_dali_wrapper_standin
        torch.cuda.get_device_properties = self._gpu_properties_standin  # type: ignore[assignment]
        try:
            table = self.pose_lp.lightning_pose(str(video), ckpts_path=models, force=False, create_labels=False,
                                                remove_files=False)
        finally:
            (self.pose_lp.analyze_video, self.pose_lp.run_eks, self.utils.video_pipe_crop_resize_flip,
             self.utils.LitDaliWrapper, torch.cuda.get_device_properties) = saved
        self.tdir, self.video = video.parent / f"lp_tmp_iblrig_{self.meta['label']}.raw", video
        return Path(table)

    def save(self, table: Path) -> None:
        """The table, IBL's EKS csvs and the recorded calls into the fixtures."""
        out = OUT / self.camera
        shutil.copyfile(table, out / TABLE)
        eks_csvs = []
        for call in self.eks:
            name = call["mp4_file"].replace(".mp4", f".{call['network']}.csv")
            shutil.copyfile(self.tdir / name, out / name)
            eks_csvs.append(name)
        calls = {"camera": self.camera, "table": TABLE, "table_written_by_ibl_as": table.name,
                 "eks_csv": eks_csvs, "networks": self.networks, "run_eks": self.eks,
                 "gpu_memory_standin_gb": self.gpu_memory_gb}
        (out / CALLS).write_text(json.dumps(calls, indent=1) + "\n")


def crop_checks(run: IblRun, dali: CpuDali | None) -> dict:
    """Each window IBL's build_dataloader handed DALI: its origin (crop_pos × (frame − crop)) against the inputs'
    clamped origin, and the pixel DALI's CPU crop starts at against the inputs' cut origin."""
    width, height = run.meta["frame_size"]["width"], run.meta["frame_size"]["height"]
    out = {}
    for call in run.networks:
        crop = call["dali_pipeline"]["crop_params"]
        if crop is None or call["network"] in out:
            continue
        origin = [crop["crop_pos_x"] * (width - crop["crop_w"]), crop["crop_pos_y"] * (height - crop["crop_h"])]
        window = run.meta["windows"][call["network"]]
        out[call["network"]] = {"ibl_origin": origin, "inputs_clamped_origin": window["clamped_origin"],
                                "max_abs_px": float(np.max(np.abs(np.subtract(origin, window["clamped_origin"])))),
                                "inputs_cut_origin": window["cut_origin"]}
        if dali:
            cut = dali.cut_at(width, height, (crop["crop_w"], crop["crop_h"]), (crop["crop_pos_x"], crop["crop_pos_y"]))
            out[call["network"]] |= {"dali_cut_origin": cut, "dali_cut_equals_inputs": cut == window["cut_origin"]}
    return out


def truth_checks(run: IblRun, table: pd.DataFrame) -> dict:
    """Per point of IBL's table: its distance from the truth where the point is visible and the table confident."""
    truth = pd.read_parquet(run.inputs / run.meta["truth"])
    for name in ("tube_top", "tube_bottom"):  # the spout: static, its truth in the camera's anchors
        if name in run.meta["anchors_truth_camera"]:
            x, y = run.meta["anchors_truth_camera"][name]
            truth[f"{name}_x"], truth[f"{name}_y"], truth[f"{name}_likelihood"] = x, y, 1.0
    out: dict[str, dict[str, float]] = {}
    for point in dict.fromkeys(c.rsplit("_", 1)[0] for c in truth.columns if c.endswith("_x")):
        if f"{point}_x" not in table:
            continue
        dx = table[f"{point}_x"].to_numpy() - truth[f"{point}_x"].to_numpy()
        dy = table[f"{point}_y"].to_numpy() - truth[f"{point}_y"].to_numpy()
        used = (truth[f"{point}_likelihood"].to_numpy() > 0.5) & (table[f"{point}_likelihood"].to_numpy() >= 0.9)
        if not used.any():
            out[point] = {"frames": 0}
            continue
        error = np.hypot(dx[used], dy[used])
        out[point] = {"frames": int(used.sum()), "median_px": float(np.median(error)), "max_px": float(error.max()),
                      "mean_dx": float(dx[used].mean()), "mean_dy": float(dy[used].mean())}
    return out


def import_upstream(checkout: Path) -> dict[str, Any]:
    """IBL's modules from the checkout (and nowhere else)."""
    sys.path.insert(0, str(checkout))
    modules = {name: importlib.import_module(f"iblvideo.{name}") for name in ("params_lp", "pose_lp_utils", "pose_lp")}
    for module in modules.values():
        if not Path(module.__file__ or "").resolve().is_relative_to(checkout.resolve()):
            raise SystemExit(f"{module.__name__} came from {module.__file__}, not the checkout {checkout}")
    return modules


def versions(upstream: dict[str, str], gpu_memory_gb: float) -> dict:
    dali = version_of(DALI_DISTRIBUTION)
    return {
        "iblvideo_upstream": upstream | {"repository": "int-brain-lab/iblvideo"},
        "python": platform.python_version(),
        "ensemble-kalman-smoother": version_of("ensemble-kalman-smoother"),
        "jax": version_of("jax"), "jaxlib": version_of("jaxlib"),
        "numpy": version_of("numpy"), "pandas": version_of("pandas"), "pyarrow": version_of("pyarrow"),
        "lightning-pose": version_of("lightning-pose"), "lightning": version_of("lightning"),
        "torch": version_of("torch"), "torchvision": version_of("torchvision"),
        "moviepy": version_of("moviepy"), "opencv-python-headless": version_of("opencv-python-headless"),
        "opencv-python": version_of("opencv-python"), "omegaconf": version_of("omegaconf"),
        "ONE-api": version_of("ONE-api"), "av": version_of("av"),
        DALI_DISTRIBUTION: dali if dali != "not installed" else f"not installed: {DALI_NOT_INSTALLED}",
        DALI_CPU_DISTRIBUTION: version_of(DALI_CPU_DISTRIBUTION),
        "dali_cpu_part": (f"{DALI_CPU_DISTRIBUTION} {dali_version()}: IBL's video_pipe_crop_resize_flip as a CPU pipeline, "
                          "frames decoded by PyAV (FFmpeg), not nvdec; see <cam>/dali/dali.json") if dali_version()
                         else "not run: DALI does not import",
        "standins": dict(STANDINS),
        "not_run_on_cpu": NOT_ON_CPU,
        "gpu_memory_standin_gb": gpu_memory_gb,
        "inputs": "tests/reference/lp_inputs.py",
    }


def report(run: IblRun, table: pd.DataFrame, figures: dict) -> None:
    print(f"== {run.camera}: {len(table)} rows, {len(table.columns)} columns")
    print("   columns:", ", ".join(table.columns))
    for network, check in figures["crops"].items():
        print(f"   {network} window: IBL's origin {check['ibl_origin']}, inputs' {check['inputs_clamped_origin']}; "
              f"DALI cuts at {check.get('dali_cut_origin', '(DALI not run)')}, inputs at {check['inputs_cut_origin']}")
    for point, check in figures["truth"].items():
        if check["frames"]:
            print(f"   {point}: {check['frames']} frames, median {check['median_px']:.3f} px, max {check['max_px']:.3f} px, "
                  f"mean dx {check['mean_dx']:+.3f}, dy {check['mean_dy']:+.3f}")


DALI_FOLDER = "dali"  # per camera: IBL's network inputs through DALI's CPU operators
DALI_FRAMES = 3
CROP_ORIGINS = (0.5, 1.5, 2.5, 135.5, 136.5, 245.5, 530.25, 530.5, 530.75, 531.5)  # px, half-integers mostly


def dali_version() -> str | None:
    """DALI's version where the real package imports (not a stand-in), else None."""
    if "nvidia.dali" in STANDINS:
        return None
    import nvidia.dali  # type: ignore[import-not-found]

    return str(nvidia.dali.__version__)


def decode_rgb(video: Path, indices: list[int]) -> np.ndarray:
    """Frames ``indices`` as (F, H, W, 3) float32 RGB in 0..255, decoded by PyAV (FFmpeg's swscale), not nvdec."""
    import av

    wanted, frames = set(indices), {}
    with av.open(str(video)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in wanted:
                frames[i] = frame.to_ndarray(format="rgb24")
            if i >= max(indices):
                break
    return np.stack([frames[i] for i in indices]).astype(np.float32)


class CpuDali:
    """IBL's own ``video_pipe_crop_resize_flip`` built as a CPU pipeline: only its GPU video reader is replaced
    (by ``fn.external_source`` fed PyAV-decoded frames) and its GPU shape read moved to the CPU."""

    def __init__(self, utils: Any):
        import nvidia.dali.fn as fn  # type: ignore[import-not-found]
        from nvidia.dali.data_node import DataNode  # type: ignore[import-not-found]

        self.utils, self.fn, self.node = utils, fn, DataNode
        self.frames = np.zeros(0)
        self.reader_args: dict = {}

    def _video_reader_standin(self, **kwargs: Any) -> Any:
        """Stands for fn.readers.video(device='gpu'): records IBL's reader arguments, hands on the decoded frames."""
        import nvidia.dali.types as dali_types  # type: ignore[import-not-found]

        self.reader_args = jsonable({k: v for k, v in kwargs.items() if k != "filenames"})
        return self.fn.external_source(source=lambda: self.frames, batch=False, layout="FHWC", dtype=dali_types.FLOAT)

    def run(self, frames: np.ndarray, pipeline_args: dict) -> tuple[np.ndarray, list[int]]:
        """IBL's pipeline on ``frames`` with the arguments IBL passed it: the network input (F, C, H, W) and frame size."""
        real_shape = self.node.shape

        def _shape_on_cpu_standin(node: Any, *, dtype: Any = None, device: str = "cpu") -> Any:
            return real_shape(node, dtype=dtype, device="cpu")

        reader = self._video_reader_standin
        fn_with_cpu_reader = types.SimpleNamespace(**{name: getattr(self.fn, name) for name in dir(self.fn) if not name.startswith("_")})
        fn_with_cpu_reader.readers = types.SimpleNamespace(video=reader)
        args = pipeline_args | {"sequence_length": len(frames), "step": len(frames), "batch_size": 1,
                                "num_threads": 1, "device_id": None}
        self.frames = frames
        saved = self.utils.fn, self.node.shape
        self.utils.fn, self.node.shape = fn_with_cpu_reader, _shape_on_cpu_standin
        try:
            pipe = self.utils.video_pipe_crop_resize_flip(**args)
            pipe.build()
            video, _, size = pipe.run()
        finally:
            self.utils.fn, self.node.shape = saved
        return np.asarray(video[0]), np.asarray(size[0]).tolist()

    def cut_at(self, width: int, height: int, crop: tuple[float, float], pos: tuple[float, float]) -> list[int]:
        """The pixel (x0, y0) where DALI's crop_mirror_normalize starts for crop (w, h) at normalised ``pos``,
        read off a ramp image whose red channel is x and green channel y."""
        from nvidia.dali import pipeline_def

        ramp = np.zeros((1, height, width, 3), np.float32)
        ramp[..., 0], ramp[..., 1] = np.arange(width)[None, None, :], np.arange(height)[None, :, None]

        @pipeline_def
        def crop_ramp() -> Any:
            frames = self.fn.external_source(source=lambda: ramp, batch=False, layout="FHWC")
            return self.fn.crop_mirror_normalize(frames, output_layout="FCHW", mean=[0.0] * 3, std=[1.0] * 3,
                                                 crop_w=crop[0], crop_h=crop[1], crop_pos_x=pos[0], crop_pos_y=pos[1])

        pipe = crop_ramp(batch_size=1, num_threads=1, device_id=None)
        pipe.build()
        out = np.asarray(pipe.run()[0][0])
        return [int(out[0, 0, 0, 0]), int(out[0, 1, 0, 0])]

    def crop_origins(self, width: int, height: int, crop: float) -> list[dict]:
        """Which pixel DALI's crop starts at for CROP_ORIGINS normalised as IBL's build_dataloader does."""
        rows = []
        for origin in CROP_ORIGINS:
            if origin > min(width, height) - crop:
                continue
            pos_x, pos_y = origin / (width - crop), origin / (height - crop)
            x0, y0 = self.cut_at(width, height, (crop, crop), (pos_x, pos_y))
            # DALI keeps crop_pos as float32: the origin it cuts at is this product, to the nearest pixel
            product = [float(np.float32(pos_x)) * (width - crop), float(np.float32(pos_y)) * (height - crop)]
            rows.append({"frame": [width, height], "crop": crop, "origin": origin, "crop_pos_x": pos_x, "crop_pos_y": pos_y,
                         "float32_crop_pos_x_times_span": product[0], "float32_crop_pos_y_times_span": product[1],
                         "dali_x0": x0, "dali_y0": y0,
                         "nearest_pixel_of_product": [x0, y0] == [int(np.floor(v + 0.5)) for v in product]})
        return rows


def dali_part(run: IblRun, dali: CpuDali, version: str) -> dict:
    """IBL's per-frame preprocessing on DALI_FRAMES frames per network, saved as .npy; and the crop-origin table."""
    import av

    folder = OUT / run.camera / DALI_FOLDER
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir()
    record: dict = {"dali": version, "decoder": f"PyAV {av.__version__} (FFmpeg), rgb24, not nvdec", "networks": {}}
    seen = {"roi_detect"}  # its frames are IBL's mp4v re-encode of the sample; its operators are the paws' (tail's)
    for call in run.networks:
        if call["network"] in seen:
            continue  # ensemble members share the preprocessing
        seen.add(call["network"])
        pipeline_args = dict(call["dali_pipeline"])
        n = run.meta["frame_count"]
        indices = [0, n // 2, n - 1]
        inputs, size = dali.run(decode_rgb(run.video, indices), pipeline_args | {"filenames": str(run.video)})
        name = f"{call['network']}.npy"
        np.save(folder / name, inputs.astype(np.float32))
        record["networks"][call["network"]] = {"npy": name, "shape": list(inputs.shape), "frames": indices,
                                               "video": run.video.name, "frame_size_output": size,
                                               "pipeline_args": pipeline_args, "reader_args_ibl_passed": dali.reader_args,
                                               "cpu_run_overrides": {"sequence_length": len(indices), "step": len(indices),
                                                                     "device_id": None, "reader": "fn.external_source"}}
    width, height = run.meta["frame_size"]["width"], run.meta["frame_size"]["height"]
    crops = sorted({w["window"][0] for w in run.meta["windows"].values()})
    record["crop_origins"] = [row for crop in crops for row in dali.crop_origins(width, height, crop)]
    (folder / "dali.json").write_text(json.dumps(record, indent=1) + "\n")
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iblvideo", type=Path, required=True, help=f"a checkout of int-brain-lab/iblvideo at {UPSTREAM_TAG}")
    parser.add_argument("--cameras", nargs="+", default=["left", "right", "body"])
    parser.add_argument("--gpu-memory-gb", type=float, default=8.0,
                        help="the GPU memory _run_network is told (params_lp sizes batches for 8 GB)")
    args = parser.parse_args()
    upstream = upstream_checkout(args.iblvideo)
    install_standins()
    modules = import_upstream(args.iblvideo)
    print("stand-ins:", json.dumps(STANDINS, indent=1) if STANDINS else "none")
    dali_ran = dali_version()
    dali = CpuDali(modules["pose_lp_utils"]) if dali_ran else None
    with tempfile.TemporaryDirectory() as tmp:
        for camera in args.cameras:
            run = IblRun(camera, Path(tmp), args.gpu_memory_gb, modules)
            table_path = run.run()
            run.save(table_path)
            table = pd.read_parquet(table_path)
            figures = {"crops": crop_checks(run, dali), "truth": truth_checks(run, table)}
            calls = json.loads((OUT / camera / CALLS).read_text()) | {"figures": figures}
            (OUT / camera / CALLS).write_text(json.dumps(calls, indent=1) + "\n")
            report(run, table, figures)
            if dali:
                origins = dali_part(run, dali, dali_ran or "")["crop_origins"]
                print("   DALI crop origins (origin -> x0, y0):", ", ".join(f"{r['origin']}->{r['dali_x0']},{r['dali_y0']}" for r in origins))
                print(f"   nearest pixel of float32(crop_pos) × span: {sum(r['nearest_pixel_of_product'] for r in origins)} of {len(origins)}")
    VERSIONS.write_text(json.dumps(versions(upstream, args.gpu_memory_gb), indent=1) + "\n")
    print("not run on a CPU (stood in for):", *NOT_ON_CPU, sep="\n  - ")


if __name__ == "__main__":
    main()
