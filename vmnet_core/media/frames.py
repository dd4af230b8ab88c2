"""Sampling video frames: one decode (or one seek per sample), handed over by a background reader.

Frame sampling decodes once, keeps one frame per 1/fps s in ffmpeg's ``fps`` filter before any
scaling (frame k is the one on screen at start + k/fps), and skips decoding frames that no other
frame references (``-skip_frame noref``: a sampled frame may be the nearest *reference* frame, a
frame or two from the exact time; about a quarter less CPU on typical H.264). When the frames are
shrunk at least 3× (720p and up to 224 px), it also skips the deblocking filter (``-skip_loop_filter
all``: another 20-35 % less decode CPU; the block edges it would smooth vanish in the downscale, and
pooled EfficientNet features keep a cosine above 0.995 with those of a filtered decode even at
x264 crf 36; at 480p and below they may not, so smaller videos are filtered as usual). For
sparse sampling of MP4/MOV files, seeking to each sample time (first frame at or after it) is used
instead when the keyframe index says it decodes fewer frames. A long decode of an MP4/MOV from its
start is cut at keyframes into parts that separate ffmpeg runs decode side by side, when the decode
outweighs its consumer (:mod:`vmnet_core.media.decode_parts`; the frames are bit-identical to one
pass). :func:`iter_frame_batches` hands the frames over while ffmpeg is still decoding, so a
consumer (the CNN) can work alongside it; :func:`iter_frame_batches_beside` also samples the same
video a second way (e.g. the cues' 8 fps at 64 px) from that one decode, through a second pipe.
"""

from __future__ import annotations

import math
import os
import queue
import re
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from functools import partial
from pathlib import Path

import numpy as np

from vmnet_core.errors import VmnetError
from vmnet_core.media.decode_limits import decode_pixel_cap
from vmnet_core.media.decode_parts import (
    DecodePart,
    choose_decode,
    frames_in_order,
    joined_frames,
    keyframe_index,
)
from vmnet_core.media.ffmpeg import _decode_timeout_s, _input, _run, ffmpeg_exe, not_started
from vmnet_core.media.messages import _failure_sentence, _quoted
from vmnet_core.media.probing import MediaInfo, check_start, probe, require_video

VIDEO_DECODE_ARGS = ("-skip_frame", "noref")
"""Decoder options for every frame read here: skip frames no other frame needs (none is damaged)."""
SKIP_DEBLOCKING_ARGS = ("-skip_loop_filter", "all")
"""Decoder options that skip the in-loop deblocking filter (H.264 and others that honour it)."""
SKIP_DEBLOCKING_MIN_DOWNSCALE = 3.0
"""Sampled frames skip deblocking when the video's short side is at least this many times their size."""
_SEEK_MIN_INTERVAL_S = 2.0
_SEEK_CONTAINERS = ("mov,mp4",)
_SEEK_SPAWN_COST_FRAMES = 15.0


def _square_filter(size: int) -> str:
    """Show non-square pixels at their display shape, resize the short side to ``size``, centre-crop."""
    return (f"scale=iw*sar:ih,setsar=1,scale={size}:{size}:force_original_aspect_ratio=increase"
            f":flags=bilinear,crop={size}:{size}")


def _fps_filter(fps: float, start_s: float = 0.0) -> str:
    """Frame k is the one on screen at start_s + k/fps s of the run's time (the last frame at or
    before it); frames before the first one repeat it."""
    return f"fps={fps:.9g}:round=up:start_time={start_s:.6f}"


def _frame_count(info: MediaInfo, fps: float, max_frames: int, start_s: float) -> int:
    """Sample times start_s + k/fps that fall inside the file, capped at ``max_frames``."""
    return max(1, min(max_frames, math.ceil((info.duration_s - start_s) * fps - 1e-6)))


def _frames_from_pipe(raw: bytes, size: int) -> np.ndarray:
    frame_bytes = size * size * 3
    usable = len(raw) - len(raw) % frame_bytes
    return np.frombuffer(raw[:usable], np.uint8).reshape(-1, size, size, 3)


@dataclass(frozen=True)
class FrameSampling:
    """One way of sampling a video's frames: ``fps`` per second, at most ``max_frames``, ``size`` px squares."""

    fps: float
    max_frames: int
    size: int


class _SidePipe:
    """A second rawvideo output of the same ffmpeg run, read whole by a thread into a Future.

    The Future's result is (T, size, size, 3) uint8; it holds a :class:`VmnetError` when ffmpeg
    fails, is stopped early or gives no frame.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.frames: Future[np.ndarray] = Future()
        self._read_fd, self.write_fd = os.pipe()
        self._chunks: list[bytes] = []
        self._reader = threading.Thread(target=self._read, name="vmnet-side-frames", daemon=True)

    def _read(self) -> None:
        with os.fdopen(self._read_fd, "rb") as pipe:
            while chunk := pipe.read(1 << 20):
                self._chunks.append(chunk)

    def started(self) -> None:
        """The child holds the write end now: close ours (so EOF comes) and start reading."""
        os.close(self.write_fd)
        self._reader.start()

    def failed_to_start(self) -> None:
        os.close(self.write_fd)
        os.close(self._read_fd)

    def finish(self, error: BaseException | None, path: Path) -> None:
        """Settle the Future once ffmpeg has ended: the frames, or ``error`` (or "no frame")."""
        self._reader.join()
        if error is not None:
            self.frames.set_exception(error)
            return
        frames = _frames_from_pipe(b"".join(self._chunks), self.size)
        self.frames.set_result(frames) if len(frames) else self.frames.set_exception(
            VmnetError(f"No video frame could be decoded from {_quoted(path)}; the file may be damaged, so re-export it."))


def _stream_frames(cmd: Sequence[str], path: Path, doing: str, timeout_s: float, size: int,
                   count: int, side: _SidePipe | None = None) -> Iterator[np.ndarray]:
    """Run ffmpeg writing raw RGB frames to stdout; yield each (size, size, 3) frame as it arrives.

    Like :func:`_run` (timeout, one-sentence :class:`VmnetError` on failure, raised after the frames
    that did arrive), but streaming. Closing the generator early stops ffmpeg. With ``side``, the
    command also writes a second output to ``pipe:{side.write_fd}``, settled when ffmpeg ends.
    """
    frame_bytes = size * size * 3
    full = [ffmpeg_exe(), "-nostdin", "-hide_banner", *cmd]
    with tempfile.TemporaryFile() as stderr:
        try:
            proc = subprocess.Popen(full, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr,
                                    pass_fds=() if side is None else (side.write_fd,))
        except OSError as err:
            if side is not None:
                side.failed_to_start()
            raise not_started(err, doing, path) from err
        if side is not None:
            side.started()
        error: BaseException | None = VmnetError(f"Stopped {doing} {_quoted(path)} before the end.")
        timed_out = threading.Event()

        def give_up() -> None:
            timed_out.set()
            proc.kill()

        timer = threading.Timer(timeout_s, give_up)
        timer.daemon = True
        timer.start()
        try:
            assert proc.stdout is not None
            for _ in range(count):
                raw = proc.stdout.read(frame_bytes)
                if len(raw) < frame_bytes:
                    break
                yield np.frombuffer(raw, np.uint8).reshape(size, size, 3)
            proc.stdout.close()
            returncode = proc.wait()
            error = None
            if timed_out.is_set():
                error = VmnetError(f"Gave up {doing} {_quoted(path)} after {timeout_s:.0f} s; the file may be "
                                   "damaged or very long, so trim or re-encode it and try again.")
            elif returncode != 0:  # a grown picture first: a decoder may fail on it (or on what follows)
                stderr.seek(0)
                text = stderr.read().decode(errors="replace")
                error = _grown_picture(text[:1 << 20], path) or VmnetError(_failure_sentence(text, path, doing))
            else:  # the first message of a grown picture comes early; the log may hold one per frame
                stderr.seek(0)
                error = _grown_picture(stderr.read(1 << 20).decode(errors="replace"), path)
        finally:
            timer.cancel()
            if proc.poll() is None:  # closed early by the consumer, or an error
                proc.kill()
                proc.wait()
            if side is not None:
                side.finish(error, path)
        if error is not None:
            raise error


def _sampling_decode_args(info: MediaInfo, size: int) -> tuple[str, ...]:
    """Decoder options for frames sampled at ``size`` px: no deblocking when they are shrunk enough.
    (No picture larger than the probe reported is decoded either: :func:`_video_input` passes the cap.)"""
    short_side = min(info.width or 0, info.height or 0)
    if short_side >= SKIP_DEBLOCKING_MIN_DOWNSCALE * size:
        return (*VIDEO_DECODE_ARGS, *SKIP_DEBLOCKING_ARGS)
    return VIDEO_DECODE_ARGS


def _video_input(info: MediaInfo, start_s: float = 0.0, duration_s: float | None = None) -> list[str]:
    """Input options of a frame decode of ``info``'s video: no picture larger than the probe reported
    (:func:`~vmnet_core.media.decode_limits.decode_pixel_cap`, ffmpeg's ``-max_pixels``). Every decode
    maps ``0:V:0``, the first video stream that is not cover art: the one :func:`probe` describes."""
    return _input(info.path, start_s, duration_s, max_pixels=decode_pixel_cap(info))


_PIXEL_CAP_MARK = re.compile(r"exceeds specified max pixel count|Frame size \d+x\d+ exceeds limit")
"""What ffmpeg logs when a picture is over ``-max_pixels`` (then it skips that picture, without failing);
the second form is libdav1d's (AV1), which then reports the frame as damaged."""


def _grown_picture(stderr_head: str, path: Path) -> VmnetError | None:
    """The sentence for a stream whose picture outgrew the decoder's pixel cap, else ``None``."""
    if not _PIXEL_CAP_MARK.search(stderr_head):
        return None
    return VmnetError(f"The video {_quoted(path)} changes part-way through to a much larger picture than its "
                      "header says, which is not decoded; re-encode it at one size (e.g. 1920×1080) and try again.")


def _frames_by_filter(info: MediaInfo, fps: float, count: int, size: int, start_s: float,
                      consumer_s_per_frame: float = 0.0, parts_allowed: bool = True) -> Iterator[np.ndarray]:
    """One sequential decode, cut into keyframe-aligned parts decoded side by side where that is
    exact and worth it (from the start only); the ``fps`` filter keeps a frame per 1/fps s before any scaling."""
    if start_s > 0:
        window = count / fps
        return _stream_frames(
            ["-v", "error", *_sampling_decode_args(info, size), *_video_input(info, start_s, window + 1.0 / fps),
             "-map", "0:V:0", "-an", "-sn", "-dn", "-vf", f"{_fps_filter(fps)},{_square_filter(size)}",
             "-frames:v", str(count), "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"],
            info.path, "decoding frames of", _decode_timeout_s(window), size, count)
    fps_list = [Fraction(fps)]
    parts, threads = choose_decode(info, fps_list, [count], consumer_s_per_frame, _SEEK_CONTAINERS, parts_allowed)
    runs = [_stream_frames(
        ["-v", "error", *threads, *_sampling_decode_args(info, size), *_part_input(info, part, fps_list),
         "-filter_complex", f"[0:V:0]{_fps_filter(fps, float(part.grid_start_s(fps_list[0], 0)))},{_square_filter(size)}[main]",
         *_rawvideo_output("[main]", part.counts[0], "pipe:1")],
        info.path, "decoding frames of", _decode_timeout_s(part.window_s(fps_list)), size, part.counts[0])
        for part in parts]
    if len(runs) == 1:
        return runs[0]
    one_pass = partial(_frames_by_filter, info, fps, count, size, 0.0, consumer_s_per_frame, False)
    return frames_in_order(runs, [part.counts[0] for part in parts], one_pass)


def _part_input(info: MediaInfo, part: DecodePart, fps_list: list[Fraction]) -> list[str]:
    """Input options of one part: the start, or its keyframe with nothing trimmed and the file's timestamps."""
    if part.seek_s == 0:
        return _video_input(info, 0.0, part.window_s(fps_list))
    return ["-noaccurate_seek", "-copyts", *_video_input(info, float(part.seek_s), part.window_s(fps_list))]


def _rawvideo_output(label: str, count: int, target: str) -> list[str]:
    """Raw RGB frames of filter output ``label`` as they leave the graph (the ``fps`` filter has
    sampled them: the muxer must not add or drop any, e.g. before a part's shifted first sample)."""
    return ["-map", label, "-fps_mode", "passthrough", "-frames:v", str(count), "-f", "rawvideo", "-pix_fmt", "rgb24",
            target]


def _frames_by_filter_beside(info: MediaInfo, main: FrameSampling, count: int, side: FrameSampling,
                             side_count: int, consumer_s_per_frame: float
                             ) -> tuple[Iterator[np.ndarray], Future[np.ndarray]]:
    """:func:`_frames_by_filter` for ``main`` that also writes ``side``'s frames to a second pipe:
    one decode (in keyframe-aligned parts where that pays), split before each sampling's own
    ``fps`` and square filters (so each gets exactly the frames of its own decode).

    Returns the main frames and a Future of all the side frames."""
    fps_list = [Fraction(main.fps), Fraction(side.fps)]
    parts, threads = choose_decode(info, fps_list, [count, side_count], consumer_s_per_frame, _SEEK_CONTAINERS)
    runs, pipes = [], []
    for part in parts:
        pipe = _SidePipe(side.size)
        graph = (f"[0:V:0]split=2[a][b];[a]{_fps_filter(main.fps, float(part.grid_start_s(fps_list[0], 0)))},"
                 f"{_square_filter(main.size)}[main];"
                 f"[b]{_fps_filter(side.fps, float(part.grid_start_s(fps_list[1], 1)))},{_square_filter(side.size)}[side]")
        runs.append(_stream_frames(
            ["-v", "error", *threads, *_sampling_decode_args(info, main.size),
             *_part_input(info, part, fps_list), "-filter_complex", graph,
             *_rawvideo_output("[main]", part.counts[0], "pipe:1"),
             *_rawvideo_output("[side]", part.counts[1], f"pipe:{pipe.write_fd}")],
            info.path, "decoding frames of", _decode_timeout_s(part.window_s(fps_list)), main.size, part.counts[0],
            side=pipe))
        pipes.append(pipe)
    if len(runs) == 1:
        return runs[0], pipes[0].frames
    main_one_pass = partial(_frames_by_filter, info, main.fps, count, main.size, 0.0, consumer_s_per_frame, False)

    def side_one_pass() -> np.ndarray:
        return _all_frames(info, _frames_by_filter(info, side.fps, side_count, side.size, 0.0, 0.0, False))

    return (frames_in_order(runs, [part.counts[0] for part in parts], main_one_pass),
            joined_frames([pipe.frames for pipe in pipes], [part.counts[1] for part in parts], side_one_pass))


def _keyframe_times(info: MediaInfo, end_s: float) -> np.ndarray:
    """Seconds of the video keyframes up to ``end_s``, from the packet index (nothing decoded)."""
    index = keyframe_index(info, end_s)
    return np.zeros(0) if index is None else np.array([float(key) for key in index[0]])


def _seeking_is_cheaper(info: MediaInfo, times: np.ndarray) -> bool:
    """True when decoding from the keyframe before each sample beats one pass over the window."""
    if (len(times) < 2 or times[1] - times[0] < _SEEK_MIN_INTERVAL_S or not info.fps
            or not info.container.startswith(_SEEK_CONTAINERS)):
        return False
    keys = _keyframe_times(info, float(times[-1]) + 1.0)
    if keys.size == 0:
        return False
    before = keys[np.clip(np.searchsorted(keys, times, side="right") - 1, 0, None)]
    seek_cost = float(np.sum(times - before)) * info.fps + _SEEK_SPAWN_COST_FRAMES * len(times)
    pass_cost = float(times[-1] - before[0]) * info.fps
    return seek_cost < pass_cost


def _frames_by_seeking(info: MediaInfo, times: np.ndarray, size: int) -> Iterator[np.ndarray]:
    """One short decode per sample time (input seeking), a few at a time; frames in time order."""
    def one_frame(t: float) -> np.ndarray:
        proc = _run(["-v", "error", "-threads", "1", *_sampling_decode_args(info, size), *_video_input(info, t),
                     "-map", "0:V:0", "-an", "-sn", "-dn", "-vf", _square_filter(size), "-frames:v", "1",
                     "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"],
                    info.path, "decoding frames of", _decode_timeout_s(_SEEK_MIN_INTERVAL_S * 10))
        if (grown := _grown_picture(proc.stderr.decode(errors="replace"), info.path)) is not None:
            raise grown
        return _frames_from_pipe(proc.stdout, size)[:1]

    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
        for frame in pool.map(one_frame, (float(t) for t in times)):
            yield from frame


def _checked_video(path: str | Path, start_s: float, max_duration_s: float | None) -> MediaInfo:
    """Probe ``path`` and check it has pictures from ``start_s`` on (one-sentence VmnetError if not)."""
    info = probe(path, max_duration_s)
    require_video(info)
    check_start(info, start_s, "video")
    return info


def _check_request(fps: float, max_frames: int, size: int) -> None:
    if fps <= 0 or max_frames < 1 or size < 1:
        raise VmnetError(f"Frame sampling needs fps > 0, max_frames ≥ 1 and size ≥ 1 (got fps={fps:g}, "
                         f"max_frames={max_frames}, size={size}).")


def _sample_plan(info: MediaInfo, fps: float, max_frames: int, size: int, start_s: float) -> tuple[np.ndarray, bool]:
    """``(sample times in s, whether seeking to each beats one pass)`` for one sampling of ``info``."""
    _check_request(fps, max_frames, size)
    times = start_s + np.arange(_frame_count(info, fps, max_frames, start_s)) / fps
    return times, _seeking_is_cheaper(info, times)


def _frame_source(path: str | Path, fps: float, max_frames: int, size: int, start_s: float,
                  max_duration_s: float | None, consumer_s_per_frame: float = 0.0
                  ) -> tuple[MediaInfo, Iterator[np.ndarray]]:
    """Check the request and the file now; return the file's info and a lazy iterator of frames."""
    _check_request(fps, max_frames, size)  # before probing: a bad request fails first
    info = _checked_video(path, start_s, max_duration_s)
    return info, _planned_frames(info, fps, max_frames, size, start_s, consumer_s_per_frame)


def _planned_frames(info: MediaInfo, fps: float, max_frames: int, size: int, start_s: float,
                    consumer_s_per_frame: float = 0.0) -> Iterator[np.ndarray]:
    times, seek = _sample_plan(info, fps, max_frames, size, start_s)
    if seek:
        return _frames_by_seeking(info, times, size)
    return _frames_by_filter(info, fps, len(times), size, start_s, consumer_s_per_frame)


def _no_frame(info: MediaInfo) -> VmnetError:
    return VmnetError(f"No video frame could be decoded from {_quoted(info.path)}; the file may be "
                      "damaged, so re-export it.")


def _batches_in_background(frames: Iterator[np.ndarray], batch_frames: int, info: MediaInfo
                           ) -> Iterator[np.ndarray]:
    """Pull ``frames`` in a reader thread (so ffmpeg never waits on a full pipe); yield stacked
    batches of every frame ready, at least one and at most ``batch_frames``."""
    ready: queue.Queue = queue.Queue(maxsize=max(4 * batch_frames, 32))
    stop = threading.Event()
    done = object()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for frame in frames:
                if not put(frame):
                    break
        except BaseException as err:  # handed to the consumer below
            put(err)
        finally:
            frames.close()  # type: ignore[attr-defined]  # stops ffmpeg if we left early
        put(done)

    reader = threading.Thread(target=read, name="vmnet-frame-reader", daemon=True)
    reader.start()
    yielded = 0
    try:
        while True:
            batch, item = [], ready.get()
            while item is not done and not isinstance(item, BaseException):
                batch.append(item)
                if len(batch) == batch_frames:
                    break
                try:
                    item = ready.get_nowait()
                except queue.Empty:
                    break
            if batch:
                yielded += len(batch)
                yield np.stack(batch)
            if isinstance(item, BaseException):
                raise item
            if item is done:
                break
        if yielded == 0:
            raise _no_frame(info)
    finally:
        stop.set()
        reader.join(timeout=5.0)


def iter_frame_batches(path: str | Path, fps: float = 1.0, max_frames: int = 360, size: int = 224,
                       start_s: float = 0.0, max_duration_s: float | None = None,
                       batch_frames: int = 8, consumer_s_per_frame: float = 0.0) -> Iterator[np.ndarray]:
    """The frames of :func:`sample_frames`, in time order, handed over while ffmpeg still decodes.

    The request and the file are checked (and probed) when this is called; decoding starts then,
    in ffmpeg plus one reader thread, and runs ahead of the consumer by up to a few batches.
    ``consumer_s_per_frame`` (CPU seconds the consumer spends per frame, e.g. a CNN's) decides how
    the decode shares the cores with it (see :mod:`vmnet_core.media.decode_parts`).

    Yields
    ------
    batch : (B, size, size, 3) uint8 RGB, 1 ≤ B ≤ ``batch_frames``: every frame decoded since the
        last batch was taken (so a slow consumer gets full batches, a fast one gets frames early).

    Raises
    ------
    VmnetError : as :func:`sample_frames` (after the batches that were decoded, when ffmpeg fails
        part-way), including when no frame decodes at all.
    """
    if batch_frames < 1:
        raise VmnetError(f"batch_frames must be at least 1 (got {batch_frames}).")
    info, frames = _frame_source(path, fps, max_frames, size, start_s, max_duration_s, consumer_s_per_frame)
    return _batches_in_background(frames, int(batch_frames), info)


def iter_frame_batches_beside(path: str | Path, main: FrameSampling, side: FrameSampling,
                              max_duration_s: float | None = None, batch_frames: int = 8,
                              consumer_s_per_frame: float = 0.0) -> tuple[Iterator[np.ndarray], Future[np.ndarray]]:
    """:func:`iter_frame_batches` for ``main`` and, beside it, the frames of ``side``, from the start.

    When both samplings decode the file the same way (one sequential pass with the same decoder
    options: e.g. a 720p video sampled at 224 and at 64 px), ffmpeg decodes it once and writes both;
    otherwise ``side`` is sampled by its own :func:`sample_frames` in a thread. Either way each gets
    exactly the frames its own :func:`sample_frames` call would.

    Returns
    -------
    batches : as :func:`iter_frame_batches` for ``main`` (consume them: the side frames of a shared
        decode are complete only when the main ones are)
    side_frames : Future of (T, side.size, side.size, 3) uint8; its exception is the
        :class:`VmnetError` of a file it cannot sample
    """
    if batch_frames < 1:
        raise VmnetError(f"batch_frames must be at least 1 (got {batch_frames}).")
    _check_request(main.fps, main.max_frames, main.size)
    _check_request(side.fps, side.max_frames, side.size)
    info = _checked_video(path, 0.0, max_duration_s)
    times, seek = _sample_plan(info, main.fps, main.max_frames, main.size, 0.0)
    side_times, side_seek = _sample_plan(info, side.fps, side.max_frames, side.size, 0.0)
    if seek or side_seek or _sampling_decode_args(info, main.size) != _sampling_decode_args(info, side.size):
        own = ThreadPoolExecutor(1, thread_name_prefix="vmnet-side-frames")
        side_frames = own.submit(_all_frames, info, _planned_frames(info, side.fps, side.max_frames, side.size, 0.0))
        own.shutdown(wait=False)
        main_frames = _planned_frames(info, main.fps, main.max_frames, main.size, 0.0, consumer_s_per_frame)
        return _batches_in_background(main_frames, int(batch_frames), info), side_frames
    frames, side_frames = _frames_by_filter_beside(info, main, len(times), side, len(side_times), consumer_s_per_frame)
    return _batches_in_background(frames, int(batch_frames), info), side_frames


def sample_frames(path: str | Path, fps: float = 1.0, max_frames: int = 360, size: int = 224,
                  start_s: float = 0.0, max_duration_s: float | None = None) -> np.ndarray:
    """Frames at ``fps`` per second from ``start_s`` on (YouTube-8M style: 1 fps, up to 360).

    Frame k is the one on screen at ``start_s + k / fps`` (within a frame or two, see the module
    notes). Each frame is resized so its short side is ``size`` (non-square pixels corrected) and
    centre-cropped to a square, all inside ffmpeg; only sampled frames are ever scaled.

    Returns
    -------
    frames : (T, size, size, 3) uint8 RGB, T = min(max_frames, ceil((duration - start_s) × fps)),
        fewer only if the video stream ends before the file does.
    """
    return _all_frames(*_frame_source(path, fps, max_frames, size, start_s, max_duration_s))


def _all_frames(info: MediaInfo, source: Iterator[np.ndarray]) -> np.ndarray:
    frames = list(source)
    if not frames:
        raise _no_frame(info)
    return np.stack(frames)


# --------------------------------------------------------------------------------------------------
