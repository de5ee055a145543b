"""iblvideo: pose tracks, motion energy, features and QC from IBL rig videos."""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("iblvideo")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

from iblvideo.cameras import CAMERAS, Camera
from iblvideo.errors import IblVideoError, VideoError
from iblvideo.video.reader import VideoInfo, VideoReader, probe

__all__ = ["CAMERAS", "Camera", "IblVideoError", "VideoError", "VideoInfo", "VideoReader", "__version__", "dlc", "lightning_pose", "probe", "run_queue", "run_session"]

# imported on first use: tracking pulls in torch and the queue SQLAlchemy, which plain video reading does not need
_LAZY = {"dlc": "tracking.run", "lightning_pose": "tracking.run", "run_session": "sessions.session", "run_queue": "sessions.queue"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
