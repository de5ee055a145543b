"""iblvideo: pose tracks, motion energy, features and QC from IBL rig videos."""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("iblvideo")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

from .cameras import CAMERAS, Camera
from .errors import IblVideoError, VideoError
from .video import VideoInfo, VideoReader, probe

__all__ = ["CAMERAS", "Camera", "IblVideoError", "VideoError", "VideoInfo", "VideoReader", "probe", "__version__"]
