"""Video in and out: frame-exact reading in batches (``reader``), H.264 writing (``writer``), the batch size."""
from iblvideo.video.reader import VideoInfo, VideoReader, prefetched, probe, usable_cores
from iblvideo.video.writer import VideoWriter

__all__ = ["VideoInfo", "VideoReader", "VideoWriter", "prefetched", "probe", "usable_cores"]
