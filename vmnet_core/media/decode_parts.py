"""Cutting one sequential decode into keyframe-aligned parts that separate ffmpeg runs decode side by side.

One H.264 decode keeps about 1.3 cores busy at best: its frame threads wait on the frames they
reference. A part that starts at a keyframe needs no frame before it, so cutting the sampled
window at keyframes gives parts that run as independent single-threaded ffmpeg processes, one per
core, with no frame decoded twice. Each later part seeks to its keyframe (``-noaccurate_seek``:
decoding starts there and nothing is trimmed), keeps the file's timestamps (``-copyts``) and starts
its ``fps`` grid at its first sample's time, so every sample is the frame the single pass gives, the
last one at the end of the file included (bit-identical: tests/test_decode_parts.py checks several
frame rates, B-frames and both samplings). A cut is made only in files that start at time 0 and
where every time involved is a whole number of both microseconds (ffmpeg's ``-ss``) and stream
ticks, so no rounding can move a sample onto a neighbouring frame; elsewhere the video is one pass.

Parts pay only when the decode outweighs what consumes the frames: beside a CNN that needs as much
CPU per frame as the decoder (a low-bitrate 720p pan), one single-threaded decoder and the CNN on the
other core finish first; beside real footage (3 Mbit/s 720p and up), parts do. :func:`choose_decode`
estimates the decode's CPU from the pixel rate and the bitrate and decides (docs/benchmarks.md has
the measurements). :func:`plan_parts` is pure arithmetic on the keyframe index; :func:`frames_in_order`
and :func:`joined_frames` put the parts' frames back in time order.
"""

from __future__ import annotations

import itertools
import math
import os
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import numpy as np

from vmnet_core.media.ffmpeg import _input, _run
from vmnet_core.media.probing import PROBE_TIMEOUT_S, MediaInfo

MIN_PART_S = 3.0
"""A part spans at least about this much video; shorter ones cost more in start-up than they save."""
MAX_DECODE_PARTS = 8
"""At most this many parts per decode, and at most one per core (1: always one pass)."""
DECODE_CPU_S_PER_PIXEL = 4e-10
"""One core's seconds per decoded pixel (H.264, no non-reference frames, no deblocking; 2026 x86)."""
DECODE_CPU_S_PER_BIT = 6e-9
"""One core's seconds per compressed bit (entropy decoding grows with the bitrate)."""
PARTS_OVER_CONSUMER = 1.5
"""Parts are used when the estimated decode CPU is at least this many times the consumer's."""
PARTS_MIN_DECODE_S = 0.3
"""... and at least this many CPU seconds: below it, starting more ffmpeg runs costs more than it saves."""

_MICROSECOND = Fraction(1, 10**6)


@dataclass(frozen=True)
class DecodePart:
    """One ffmpeg run's share of a sampled window.

    ``seek_s``: where the run starts reading, in s from the video's start (0: the start itself, a
    plain pass; otherwise a whole number of µs and stream ticks just past a keyframe, less than half
    a frame later). ``firsts[i]`` / ``counts[i]``: the first index and the number of samples of
    sampling ``i`` that this part decodes.
    """

    seek_s: Fraction
    firsts: tuple[int, ...]
    counts: tuple[int, ...]

    def grid_start_s(self, fps: Fraction, sampling: int) -> Fraction:
        """Where sampling ``sampling``'s ``fps`` grid starts, in s of the video's own time (a part
        after the first keeps the file's timestamps, ``-copyts``: nothing is shifted or rounded)."""
        return Fraction(self.firsts[sampling]) / fps

    def window_s(self, fps_list: Sequence[Fraction]) -> float:
        """Seconds this run reads after ``seek_s``: past its last sample by one sample interval."""
        end = max((first + count) / fps for first, count, fps in zip(self.firsts, self.counts, fps_list, strict=True))
        return float(end - self.seek_s + max(1 / fps for fps in fps_list))


def _exact_step(tick: Fraction) -> Fraction:
    """The shortest time that is a whole number of both microseconds and stream ticks."""
    return Fraction(math.lcm(tick.numerator, _MICROSECOND.numerator), math.gcd(tick.denominator, _MICROSECOND.denominator))


def _is_multiple(value: Fraction, step: Fraction) -> bool:
    return (value / step).denominator == 1


def _seek_point(key_s: Fraction, tick: Fraction, frame_s: Fraction | None) -> Fraction | None:
    """The first exact time at or after keyframe ``key_s`` that still lands on it (``None``: none close enough)."""
    step = _exact_step(tick)
    seek = math.ceil(key_s / step) * step
    if seek == key_s or (frame_s is not None and seek - key_s < frame_s / 2):
        return seek
    return None


def _first_sample_at_or_after(time_s: Fraction, fps: Fraction) -> int:
    return math.ceil(time_s * fps)


def plan_parts(keyframes_s: Sequence[Fraction], tick: Fraction, samplings: Sequence[tuple[Fraction, int]],
               frame_s: Fraction | None, max_parts: int, min_part_s: float = MIN_PART_S) -> list[DecodePart]:
    """Cut the window of ``samplings`` (each ``(fps, count)``, samples at k/fps from 0) at keyframes.

    Parameters
    ----------
    keyframes_s : the video's keyframe times in s from its start (exact), any order.
    tick : the video stream's time base in s (exact).
    frame_s : one frame's duration in s (``None`` if unknown: then only exact keyframe times cut).
    max_parts : at most this many parts (e.g. one per core); 1 → one pass.

    Returns
    -------
    parts : in time order, together covering every sample of every sampling exactly once; one
        part (a plain pass) when no cut is worth it or exact.
    """
    fps_list = [Fraction(fps) for fps, _ in samplings]
    counts = [int(count) for _, count in samplings]
    whole = [DecodePart(Fraction(0), tuple(0 for _ in counts), tuple(counts))]
    if any(not _is_multiple(1 / fps, _MICROSECOND) or not _is_multiple(1 / fps, tick) for fps in fps_list):
        return whole  # sample times would need rounding
    end_s = max((count - 1) / fps for fps, count in zip(fps_list, counts, strict=True))
    wanted = min(int(max_parts), int(end_s // Fraction(min_part_s)))
    if wanted < 2:
        return whole
    keys = sorted(k for k in set(keyframes_s) if 0 < k <= end_s)
    cuts: list[tuple[Fraction, Fraction]] = []  # (keyframe, seek point)
    for i in range(1, wanted):
        if not keys:
            break
        target = end_s * i / wanted
        key = min(keys, key=lambda k: abs(k - target))
        seek = _seek_point(key, tick, frame_s)
        previous = cuts[-1][0] if cuts else Fraction(0)
        if seek is not None and key - previous >= min_part_s / 2 and end_s - key >= min_part_s / 2:
            cuts.append((key, seek))
    bounds = [(Fraction(0), Fraction(0)), *cuts]
    parts = []
    for (key, seek), (next_key, _) in zip(bounds, [*cuts, (None, None)], strict=True):
        firsts = tuple(_first_sample_at_or_after(key, fps) for fps in fps_list)
        ends = tuple(count if next_key is None else min(count, _first_sample_at_or_after(next_key, fps))
                     for fps, count in zip(fps_list, counts, strict=True))
        parts.append(DecodePart(seek, firsts, tuple(e - f for f, e in zip(firsts, ends, strict=True))))
    if any(count < 1 for part in parts for count in part.counts):
        return whole  # a part without a sample of some sampling: keep it simple
    return parts


def frames_in_order(parts: Sequence[Iterator[np.ndarray]], counts: Sequence[int],
                    one_pass: Callable[[], Iterator[np.ndarray]]) -> Iterator[np.ndarray]:
    """The frames of consecutive ``parts`` (``counts[i]`` planned for part i): the first streams, the
    later ones decode at the same time into memory (one reader thread each) and follow in order.

    A part before the last that gives fewer frames than planned (a file whose timestamps or
    keyframes are not what its index says) would shift every later sample, so the rest comes from
    ``one_pass()`` (the frames of a single pass, from the first) instead, while the other parts
    still finish (their side outputs settle). An error of a part is
    raised where its frames would be, after every frame before it. Closing this generator early
    stops every part (each within one frame).
    """
    stop = threading.Event()
    later = [_drained(part, stop) for part in parts[1:]]
    given = 0
    try:
        for i, part in enumerate(parts):
            frames = part if i == 0 else later[i - 1].result()
            before = given
            for frame in frames:
                given += 1
                yield frame
            if i < len(parts) - 1 and given - before < counts[i]:
                yield from itertools.islice(one_pass(), given, None)
                return
    finally:
        stop.set()
        for frames in later:
            frames.exception()  # wait: no ffmpeg outlives the generator


def _drained(frames: Iterator[np.ndarray], stop: threading.Event) -> Future[list[np.ndarray]]:
    """Read ``frames`` in a new thread into a list (closing them early when ``stop`` is set)."""
    result: Future[list[np.ndarray]] = Future()

    def drain() -> None:
        kept: list[np.ndarray] = []
        try:
            for frame in frames:
                if stop.is_set():
                    break
                kept.append(frame)
        except BaseException as err:  # handed to the reader of the result
            result.set_exception(err)
            return
        finally:
            frames.close()  # type: ignore[attr-defined]  # stops ffmpeg if we left early
        result.set_result(kept)

    threading.Thread(target=drain, name="vmnet-decode-part", daemon=True).start()
    return result


def joined_frames(parts: Sequence[Future[np.ndarray]], counts: Sequence[int],
                  one_pass: Callable[[], np.ndarray]) -> Future[np.ndarray]:
    """A Future of the parts' (T_i, H, W, 3) frames joined in order, or of the first part's error.

    When a part before the last has fewer frames than its planned ``counts[i]``, the result is
    ``one_pass()`` (run in a new thread) instead, as in :func:`frames_in_order`.
    """
    joined: Future[np.ndarray] = Future()
    left = [len(parts)]
    lock = threading.Lock()

    def settle(make: Callable[[], np.ndarray]) -> None:
        try:
            joined.set_result(make())
        except BaseException as err:  # handed to the reader of the result
            joined.set_exception(err)

    def one_done(_: Future[np.ndarray]) -> None:
        with lock:
            left[0] -= 1
            if left[0]:
                return
        for i, (part, count) in enumerate(zip(parts, counts, strict=True)):  # the first thing amiss decides
            if part.exception() is not None:
                joined.set_exception(part.exception())
                return
            if i < len(parts) - 1 and len(part.result()) < count:
                threading.Thread(target=settle, args=(one_pass,), name="vmnet-decode-part", daemon=True).start()
                return
        settle(lambda: np.concatenate([part.result() for part in parts]))

    for part in parts:
        part.add_done_callback(one_done)
    return joined


def keyframe_index(info: MediaInfo, end_s: float) -> tuple[tuple[Fraction, ...], Fraction] | None:
    """``(keyframe times in s, the stream's tick in s)``, both exact, up to ``end_s``, from the
    packet index (nothing decoded); ``None`` when the index cannot be read. Cached per (file, size,
    modification time, ``end_s``): the seek plan and the part plan of one sampling ask alike."""
    stat = info.path.stat()
    return _keyframe_index(info.path, stat.st_size, stat.st_mtime_ns, float(end_s))


@lru_cache(maxsize=64)
def _keyframe_index(path: Path, size: int, mtime_ns: int, end_s: float
                    ) -> tuple[tuple[Fraction, ...], Fraction] | None:
    proc = _run(["-v", "error", *_input(path, 0.0, end_s), "-map", "0:V:0", "-c", "copy",
                 "-f", "framecrc", "pipe:1"], path, "indexing", PROBE_TIMEOUT_S, check=False)
    text = proc.stdout.decode(errors="replace")
    tb = re.search(r"^#tb 0: (\d+)/(\d+)", text, re.M)
    if proc.returncode != 0 or tb is None or int(tb.group(2)) == 0:
        return None
    tick = Fraction(int(tb.group(1)), int(tb.group(2)))
    keys = []
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        fields = [f.strip() for f in line.split(",")]
        flags = next((f for f in fields[6:] if f.startswith("F=")), "F=0x1")
        if len(fields) >= 6 and int(flags[2:], 16) & 1:
            keys.append(int(fields[2]) * tick)
    return tuple(sorted(keys)), tick


def decode_cpu_estimate_s(info: MediaInfo, window_s: float) -> float:
    """One core's seconds to decode ``window_s`` of ``info``'s video, from its pixel rate and bitrate."""
    try:
        bits_per_s = info.path.stat().st_size * 8 / max(info.duration_s, 1e-3)
    except OSError:
        bits_per_s = 0.0
    pixels_per_s = (info.width or 0) * (info.height or 0) * (info.fps or 25.0)
    return window_s * (DECODE_CPU_S_PER_PIXEL * pixels_per_s + DECODE_CPU_S_PER_BIT * bits_per_s)


def usable_cores() -> int:
    """CPU cores this process may run on (respects affinity masks, e.g. in containers, unlike
    ``os.cpu_count``); shared by the decoder, the CNN and the starter build."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def choose_decode(info: MediaInfo, fps_list: Sequence[Fraction], counts: Sequence[int], consumer_s_per_frame: float,
                  containers: tuple[str, ...], parts_allowed: bool = True) -> tuple[list[DecodePart], tuple[str, ...]]:
    """How to decode samplings at ``fps_list`` (``counts`` samples each, from the start) of ``info``.

    ``consumer_s_per_frame``: CPU seconds whoever takes the first sampling's frames spends on each
    (e.g. a CNN; 0 when nothing runs beside the decode). ``containers``: formats whose keyframe
    index and seeking are trusted (e.g. ``("mov,mp4",)``). ``parts_allowed=False``: one pass.

    Returns
    -------
    parts : keyframe-aligned parts (one: a single pass)
    thread_args : ffmpeg decoder thread options for every part's run
    """
    whole = [DecodePart(Fraction(0), tuple(0 for _ in counts), tuple(int(c) for c in counts))]
    cores = usable_cores()
    end_s = max((count - 1) / fps for fps, count in zip(fps_list, counts, strict=True))
    decode_s = decode_cpu_estimate_s(info, float(end_s))
    consumer_s = consumer_s_per_frame * counts[0]
    cheap = decode_s < max(PARTS_MIN_DECODE_S, PARTS_OVER_CONSUMER * consumer_s)
    one_pass_threads = ("-threads", str(max(1, cores - 1))) if consumer_s > 0 and cheap else ()
    if (cheap or not parts_allowed or cores < 2 or MAX_DECODE_PARTS < 2 or end_s < 2 * MIN_PART_S or info.start_s != 0
            or not info.container.startswith(containers)):
        return whole, one_pass_threads
    index = keyframe_index(info, float(end_s) + 1.0)
    if index is None:
        return whole, one_pass_threads
    keys, tick = index
    frame_s = Fraction(1) / Fraction(info.fps).limit_denominator(100_000) if info.fps else None
    parts = plan_parts(keys, tick, list(zip(fps_list, counts, strict=True)), frame_s, min(MAX_DECODE_PARTS, cores))
    if len(parts) == 1:
        return whole, one_pass_threads
    return parts, ("-threads", str(max(1, cores // len(parts))))
