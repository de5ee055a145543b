"""Video in: stream frames in batches through PyAV (FFmpeg), with exact counts and frame-exact seeking.

One packet scan (no decoding) at open gives the exact frame count and every frame's timestamp, so
seeking lands on the frame asked for and a truncated file is told apart from a complete one.
"""
from __future__ import annotations

import bisect
import collections
import contextlib
import errno
import itertools
import logging
import os
import stat
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import av
import av.logging
import numpy as np

from iblvideo.cameras import Camera, identify_camera
from iblvideo.errors import VideoError
from iblvideo.video.batching import BATCH_SIZE

log = logging.getLogger(__name__)
T = TypeVar("T")

_PLANAR_LUMA = {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "gray", "nv12", "nv21"}


@dataclass(frozen=True)
class VideoInfo:
    """What a video holds: size, rate, exact frame count, and the count its header declares."""

    path: Path
    width: int
    height: int
    fps: float
    n_frames: int
    declared_frames: int
    codec: str

    @property
    def truncated(self) -> bool:
        return 0 < self.n_frames < self.declared_frames

    @property
    def duration(self) -> float:
        return self.n_frames / self.fps

    def camera(self, override: str | None = None) -> Camera:
        return identify_camera(self.path, self.width, self.height, self.fps, override)


def _open_container(path: Path) -> av.container.InputContainer:
    try:
        status = path.stat()
    except OSError as err:
        raise VideoError(path, _unreachable(path, err)) from None
    if stat.S_ISDIR(status.st_mode):
        raise VideoError(path, "is a folder, not a video file")
    if status.st_size == 0:
        raise VideoError(path, "empty file (0 bytes)")
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except av.error.InvalidDataError:
        raise VideoError(path, "not a readable video (truncated, or not a video file at all)") from None
    except (av.error.FFmpegError, OSError) as err:
        raise VideoError(path, f"cannot open: {err}") from None
    if not container.streams.video:
        kinds = sorted({stream.type for stream in container.streams})
        container.close()
        raise VideoError(path, f"has no video stream (holds {', '.join(kinds)})" if kinds else "holds no video frames")
    return container


def _unreachable(path: Path, err: OSError) -> str:
    """Why ``path`` cannot be reached, in a few words."""
    if err.errno == errno.ELOOP:
        return "symlink loop (the link leads back to itself)"
    if err.errno == errno.ENOENT:
        return "broken symlink (its target does not exist)" if path.is_symlink() else "no such file"
    return err.strerror or type(err).__name__


def _scan_packets(path: Path, container: av.container.InputContainer) -> tuple[list[int], set[int], int]:
    """Presentation timestamps of every complete packet (sorted), those of keyframes, and the file's
    declared frame count."""
    stream = container.streams.video[0]
    declared = stream.frames
    size = path.stat().st_size
    found: list[int | None] = []
    keys_found: set[int | None] = set()
    last_end = 0
    try:
        for packet in container.demux(stream):
            if not packet.size:
                continue
            found.append(VideoReader._stamp(packet))
            if packet.is_keyframe:
                keys_found.add(found[-1])
            last_end = (packet.pos or 0) + packet.size
    except av.error.FFmpegError as err:
        log.debug("%s: demux stopped early: %s", path, err)
    if declared > len(found) and found and last_end >= size:
        # the demuxer hands out the cut packet shortened to what is on disk: that frame is not whole
        found.pop()
    if any(s is None for s in found):
        return list(range(len(found))), {0}, max(declared, len(found))
    stamps = sorted(s for s in found if s is not None)
    return stamps, {k for k in keys_found if k is not None}, max(declared, len(stamps))


class _FFmpegReports:
    """FFmpeg's reports of errors it concealed while decoding ("concealing 2431 DC, 2431 AC, 2431 MV errors in P
    frame"): bit flips in a slice decode to wrong pixels with no error raised, and these reports are all
    that tells. PyAV hears FFmpeg's messages only when asked, for the whole process, so the first reader
    to decode asks and the last one to stop puts PyAV's setting back; the other messages heard meanwhile
    go on to Python's logging as PyAV would have sent them. Readers decoding at once in one process
    share the reports: a concealment is counted once, by the reader that looks first."""

    CONCEALING = "concealing "

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._capture: av.logging.Capture | None = None
        self._heard: list[tuple[int, str, str]] = []
        self._before: tuple[int | None, bool] = (None, True)

    @contextlib.contextmanager
    def listening(self) -> Iterator[None]:
        with self._lock:
            if not self._users:
                level = av.logging.get_level()
                self._before = level, av.logging.get_skip_repeated()
                if level is None or level < av.logging.INFO:
                    av.logging.set_level(av.logging.INFO)
                av.logging.set_skip_repeated(False)  # two frames concealing as many errors are two reports
                self._capture = av.logging.Capture(local=False)  # FFmpeg's decoding threads report too
                self._heard = self._capture.__enter__()
            self._users += 1
        try:
            yield
        finally:
            with self._lock:
                self._users -= 1
                if not self._users and self._capture is not None:
                    self._capture.__exit__(None, None, None)
                    self._capture = None
                    self._pass_on()
                    av.logging.set_level(self._before[0])
                    av.logging.set_skip_repeated(self._before[1])

    def concealments(self) -> int:
        """Concealment reports heard since the last call."""
        with self._lock:
            return self._pass_on()

    def _pass_on(self) -> int:
        """Count the concealments heard and send the other messages on; the lock is held."""
        n = len(self._heard)  # FFmpeg's threads may add more meanwhile: they stay for the next call
        heard = self._heard[:n]
        del self._heard[:n]
        level = self._before[0]
        count = 0
        for lib_level, name, message in heard:
            if message.startswith(self.CONCEALING):
                count += 1
            elif level is not None and lib_level <= level:
                logging.getLogger(f"libav.{name or 'generic'}").log(av.logging.adapt_level(lib_level), message.strip())
        return count


_REPORTS = _FFmpegReports()


class FramePool:
    """Batch arrays to fill again: ``take`` hands out a free one (or a new one), ``give_back`` returns it.

    Arrays are handed back from other threads (those that track a batch), hence the lock. The pool
    makes an array only when none of the shape is free, so it holds at most as many as were ever in
    use at once.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._made: dict[int, np.ndarray] = {}  # by id: the arrays keep their ids while the pool holds them
        self._free: dict[tuple[tuple[int, ...], np.dtype], list[np.ndarray]] = collections.defaultdict(list)

    def take(self, shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
        """A free array of ``shape`` and ``dtype``, else a new one; its contents are whatever it last held."""
        key = (tuple(shape), np.dtype(dtype))
        with self._lock:
            if self._free[key]:
                return self._free[key].pop()
            array = np.empty(*key)
            self._made[id(array)] = array
            return array

    def give_back(self, array: np.ndarray) -> None:
        """Return ``array`` (or a leading slice of it, as the last batch of a video is) to be filled again."""
        with self._lock:
            whole = self._owner(array)
            free = self._free[(whole.shape, whole.dtype)]
            if any(other is whole for other in free):
                raise ValueError("this array was already given back to the pool")
            free.append(whole)

    @property
    def arrays(self) -> int:
        """How many arrays the pool has made."""
        return len(self._made)

    def _owner(self, array: np.ndarray) -> np.ndarray:
        """The pool's array that ``array`` is, or begins."""
        root = array if array.base is None else array.base  # numpy points a view of a view at the owner
        whole = self._made.get(id(root))
        if whole is not root or not _leading_slice(array, whole):
            raise ValueError("this array was not taken from the pool (nor is it the leading rows of one that was)")
        return whole


def _leading_slice(view: np.ndarray, whole: np.ndarray) -> bool:
    """Whether ``view`` is ``whole[:k]`` for some k."""
    return (view.ctypes.data == whole.ctypes.data and view.dtype == whole.dtype and view.shape[1:] == whole.shape[1:]
            and view.strides == whole.strides and view.shape[0] <= whole.shape[0])


class VideoReader:
    """Frames of one video, streamed in decode order or fetched by index.

    ``grey=True`` yields uint8 arrays (H, W) straight from the luma plane; ``grey=False`` yields RGB
    (H, W, 3). ``strict`` refuses truncated files; with ``strict=False`` they read up to the cut.
    """

    def __init__(self, path: str | Path, grey: bool = True, strict: bool = True, threads: int | None = None):
        """``threads``: decoding threads (default: one per core the process may use)."""
        self.path = Path(path)
        self.grey = grey
        self._container = _open_container(self.path)
        # FFmpeg's reports are heard from the first decode to close (see _FFmpegReports)
        self._listening = False
        self._stop_listening = contextlib.ExitStack()
        stream = self._container.streams.video[0]
        self._stamps, keys, declared = _scan_packets(self.path, self._container)
        self._keyframes = [i for i, stamp in enumerate(self._stamps) if stamp in keys] or [0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        self.info = VideoInfo(
            path=self.path, width=stream.codec_context.width, height=stream.codec_context.height,
            fps=float(rate) if rate else 0.0, n_frames=len(self._stamps), declared_frames=declared,
            codec=stream.codec_context.name,
        )
        if self.info.n_frames == 0:
            self.close()
            raise VideoError(self.path, "video has no frames")
        if strict and self.info.truncated:
            self.close()
            raise VideoError(self.path, f"truncated: header declares {declared} frames, only {self.info.n_frames} are complete")
        self._index_of = {stamp: i for i, stamp in enumerate(self._stamps)}
        # (first, last): frames among which FFmpeg reported concealing errors (their pixels partly guessed)
        self._concealed: set[tuple[int, int]] = set()
        stream.thread_type = "AUTO"
        # FFmpeg's own guess runs a thread more than there are cores, a third slower on two cores
        self._threads = threads or usable_cores()
        stream.thread_count = self._threads
        # conceal nothing: a damaged frame is an error, not a silently smeared image
        stream.codec_context.options = {"err_detect": "explode"}

    def _decode(self, stamp: int | None = None) -> Iterator[tuple[int, av.VideoFrame]]:
        """(index, frame) from the keyframe at or before ``stamp`` (the start when None); frames FFmpeg
        reports concealing errors in are noted in ``concealed``."""
        stream = self._container.streams.video[0]
        self._container.seek(self._stamps[0] if stamp is None else stamp, stream=stream, backward=True, any_frame=False)
        expected = None
        if not self._listening:
            self._listening = True
            self._stop_listening.enter_context(_REPORTS.listening())
        try:
            for packet in self._container.demux(stream):
                if packet.size and self._stamp(packet) not in self._index_of:
                    continue  # the cut packet at the end of a truncated file
                frames = packet.decode()
                if _REPORTS.concealments():
                    self._note_concealed(packet, expected)
                for frame in frames:
                    stamp = self._stamp(frame)
                    index = expected if stamp is None else self._index_of.get(stamp, expected)
                    if index is None:
                        continue
                    yield index, frame
                    expected = index + 1
        except av.error.FFmpegError as err:
            where = f"after frame {expected - 1}" if expected else "at the first frame"
            raise VideoError(self.path, f"corrupt video data {where} ({err.strerror or type(err).__name__})") from None

    def _note_concealed(self, packet: av.Packet, expected: int | None) -> None:
        """Note the frames a concealment was reported in while ``packet`` was decoded."""
        # one thread decodes the packet sent and reports on it then; several report on one of the frames
        # in flight: sent, and not yet out (a window that concealed_frames decodes again on one thread)
        stamp, last = self._stamp(packet) if packet.size else None, self.info.n_frames - 1  # no size: the flush at the end
        sent = last if stamp is None else self._index_of.get(stamp, last)
        self._concealed.add((sent, sent) if self._threads == 1 else (min(expected or 0, sent), sent))

    def concealed_frames(self) -> list[int]:
        """Indices of the frames decoded so far that FFmpeg concealed errors in (wrong pixels, no error
        raised), each found exactly."""
        exact = {first for first, last in self._concealed if first == last}
        windows = sorted(window for window in self._concealed if window[0] < window[1])
        if windows:
            with VideoReader(self.path, self.grey, strict=False, threads=1) as again:
                for first, last in windows:
                    for _ in again.frames(first, last + 1):
                        pass
                exact |= {index for index in again.concealed_frames() if any(a <= index <= b for a, b in windows)}
        return sorted(exact)

    @staticmethod
    def _stamp(item: av.Packet | av.VideoFrame) -> int | None:
        return item.pts if item.pts is not None else item.dts

    def _to_array(self, frame: av.VideoFrame) -> np.ndarray:
        if not self.grey:
            return frame.to_ndarray(format="rgb24")
        if frame.format.name in _PLANAR_LUMA:
            plane = frame.planes[0]
            rows = np.frombuffer(memoryview(plane), np.uint8).reshape(frame.height, plane.line_size)
            return rows[:, : frame.width]
        return frame.to_ndarray(format="gray")

    def _decoded_from(self, start: int) -> Iterator[tuple[int, av.VideoFrame]]:
        """Decoded frames from ``start`` on, seeking back further until ``start`` itself comes out."""
        # open-GOP streams (HEVC CRA, some H.264) drop leading frames after a seek to the next keyframe
        anchor, step = start, 1
        while True:
            decoded = self._decode(self._stamps[anchor] if anchor else None)
            for index, frame in decoded:  # noqa: B007 - the frame found is used after the loop
                if index >= start:
                    break
            else:
                return iter(())
            if index == start or anchor == 0:
                return itertools.chain([(index, frame)], decoded)
            anchor, step = max(0, anchor - step), step * 2

    def frames(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """(index, frame) for every frame in [start, stop), decoding each once."""
        stop = self.info.n_frames if stop is None else min(stop, self.info.n_frames)
        if start >= stop:
            return
        expected = start
        for index, frame in self._decoded_from(start):
            if index >= stop:
                break
            if index != expected:
                raise VideoError(self.path, f"frame {expected} could not be decoded (next was {index})")
            yield index, self._to_array(frame)
            expected += 1
        if expected < stop:
            raise VideoError(self.path, f"decoding stopped at frame {expected} of {stop}")

    def sample(self, indices: Iterable[int]) -> Iterator[tuple[int, np.ndarray]]:
        """(index, frame) for each of ``indices``, in order. Decoding runs on from one sample to the
        next and seeks only when a keyframe lies between them, so a sparse sample of a long video costs
        about half a keyframe interval per frame, and a dense one no more than a single pass."""
        decoded: Iterator[tuple[int, av.VideoFrame]] | None = None
        position = -1
        for wanted in sorted(set(indices)):
            if decoded is None or self._keyframes[bisect.bisect_right(self._keyframes, wanted) - 1] > position:
                decoded = self._decoded_from(wanted)
            for position, frame in decoded:
                if position == wanted:
                    yield position, self._to_array(frame).copy()
                    break
            else:
                raise VideoError(self.path, f"frame {wanted} could not be decoded")

    def batches(self, batch_size: int = BATCH_SIZE, start: int = 0, stop: int | None = None,
                pool: FramePool | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """(first index, stacked frames) in batches of ``batch_size``, each frame copied into its batch
        as it comes out of the decoder.

        Without ``pool`` every batch is a new array, the caller's to keep. With one, batch arrays come
        from ``pool`` and the caller hands each back (``pool.give_back(batch)``) once done with it: memory
        stays the batches in use, and no array is allocated, and zeroed by the kernel, for every batch.
        """
        take = pool.take if pool is not None else lambda shape, dtype: np.empty(shape, dtype)
        batch, filled, first = None, 0, start
        try:
            for index, image in self.frames(start, stop):
                if batch is None:
                    batch, filled, first = take((batch_size, *image.shape), image.dtype), 0, index
                batch[filled] = image
                filled += 1
                if filled == batch_size:
                    full, batch = batch, None
                    yield first, full
            if batch is not None:
                last, batch = batch[:filled], None
                yield first, last
        finally:
            # a batch being filled when decoding failed or the caller stopped was never the caller's
            if batch is not None and pool is not None:
                pool.give_back(batch)

    def __getitem__(self, index: int) -> np.ndarray:
        """The frame at ``index`` (negative counts from the end), exact whatever the keyframe layout."""
        n = self.info.n_frames
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"{self.path}: frame {index} out of range (0..{n - 1})")
        return next(self.frames(index, index + 1))[1]

    def __len__(self) -> int:
        return self.info.n_frames

    @property
    def keyframes(self) -> list[int]:
        """Indices of the frames that decode on their own."""
        return list(self._keyframes)

    def close(self) -> None:
        if self._listening and self._container.streams.video:
            # FFmpeg frees a decoder holding the interpreter lock, waiting for its threads, and a thread
            # that reports then waits for that lock: let them finish first (a flush leaves the lock free)
            self._container.streams.video[0].codec_context.flush_buffers()
        self._container.close()
        self._stop_listening.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def probe(path: str | Path) -> VideoInfo:
    """Size, rate and exact frame count of a video, without decoding it."""
    with VideoReader(path, strict=False) as reader:
        return reader.info


def usable_cores() -> int:
    """The CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def prefetched(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """``items`` produced on a background thread, up to ``depth`` ahead: decoding (which releases the
    GIL) overlaps with whatever the caller does with each item, and memory stays ``depth`` items."""
    import queue

    done = object()
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                ready.put(item)
        except BaseException as err:  # noqa: BLE001 - handed to the consumer, raised there
            ready.put(err)
            return
        ready.put(done)

    worker = threading.Thread(target=produce, daemon=True)
    worker.start()
    try:
        while (item := ready.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            try:
                ready.get_nowait()
            except queue.Empty:
                worker.join(0.05)
