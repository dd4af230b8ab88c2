"""Media I/O over the ffmpeg binary shipped by ``imageio-ffmpeg``.

No ffprobe ships with imageio-ffmpeg, so :func:`probe` reads the stream summary ffmpeg prints for
``ffmpeg -i`` and then checks that the file really holds packets up to its stated end (a cheap
demux-only pass over the last seconds, no decoding); for MP4/MOV it first walks the top-level box
headers, so a file cut short (even right after its header) is called incomplete. Every failure a
user can cause is raised as :class:`vmnet_core.errors.VmnetError` with one sentence naming the
file; ffmpeg's own output only goes to the ``vmnet_core.media`` debug log. Every subprocess has a timeout, and every file this module writes is
written under a temporary name and renamed into place on success.

Frame sampling decodes once, keeps one frame per 1/fps s in ffmpeg's ``fps`` filter before any
scaling (frame k is the one on screen at start + k/fps), and skips decoding frames that no other
frame references (``-skip_frame noref``: a sampled frame may be the nearest *reference* frame, a
frame or two from the exact time; about a quarter less CPU on typical H.264). When the frames are
shrunk at least 3× (720p and up to 224 px), it also skips the deblocking filter (``-skip_loop_filter
all``: another 20-35 % less decode CPU; the block edges it would smooth vanish in the downscale, and
pooled EfficientNet features keep a cosine above 0.995 with those of a filtered decode even at
x264 crf 36; at 480p and below they may not, so smaller videos are filtered as usual). For
sparse sampling of MP4/MOV files, seeking to each sample time (first frame at or after it) is used
instead when the keyframe index says it decodes fewer frames. :func:`iter_frame_batches` hands the
frames over while ffmpeg is still decoding, so a consumer (the CNN) can work alongside it.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import queue
import re
import shutil
import subprocess
import tempfile
import threading
import wave
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from vmnet_core.atomic_io import atomic_path
from vmnet_core.errors import VmnetError

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 30.0
"""Wall-clock limit for reading a file's header or its last seconds."""
TAIL_CHECK_S = 2.0
"""How many seconds before the stated end :func:`probe` reads packets from, to catch truncation."""
EXACT_AUDIO_SEEK_S = 300.0
"""Audio excerpts starting up to this many seconds in are cut after decoding (sample-exact);
later ones seek to this many seconds before the excerpt first."""
VIDEO_DECODE_ARGS = ("-skip_frame", "noref")
"""Decoder options for every frame read here: skip frames no other frame needs (none is damaged)."""
SKIP_DEBLOCKING_ARGS = ("-skip_loop_filter", "all")
"""Decoder options that skip the in-loop deblocking filter (H.264 and others that honour it)."""
SKIP_DEBLOCKING_MIN_DOWNSCALE = 3.0
"""Sampled frames skip deblocking when the video's short side is at least this many times their size."""
_SEEK_MIN_INTERVAL_S = 2.0
_SEEK_CONTAINERS = ("mov,mp4",)
_SEEK_SPAWN_COST_FRAMES = 15.0
_STILL_IMAGE_CONTAINERS = ("image2", "_pipe")


@lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """Path to the ffmpeg binary bundled with imageio-ffmpeg."""
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError) as err:
        raise VmnetError("ffmpeg is not available; install the imageio-ffmpeg package "
                         "(pip install imageio-ffmpeg).") from err


@dataclass(frozen=True)
class MediaInfo:
    """What :func:`probe` found in a media file.

    ``duration_s`` is the container's duration in seconds, checked against the packets actually
    present. Video fields are ``None`` for audio-only files; cover art attached to an audio file
    does not count as video.
    """

    path: Path
    duration_s: float
    has_video: bool
    has_audio: bool
    width: int | None
    height: int | None
    fps: float | None
    video_codec: str | None
    audio_codec: str | None
    container: str
    pix_fmt: str | None = None
    sample_rate: int | None = None
    channels: int | None = None


# --------------------------------------------------------------------------------------------------
# running ffmpeg


def _quoted(path: Path) -> str:
    """The file name in quotes, printable as UTF-8 (undecodable bytes become U+FFFD)."""
    name = path.name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return f"'{name}'"


def _input(path: Path, start_s: float = 0.0, duration_s: float | None = None) -> list[str]:
    """Input options for one local file: no network, no protocol tricks in the name."""
    args = ["-protocol_whitelist", "file"]
    if start_s > 0:
        args += ["-ss", f"{start_s:.6f}"]
    if duration_s is not None:
        args += ["-t", f"{duration_s:.6f}"]
    return args + ["-i", f"file:{path}"]


_FAILURE_SENTENCES: tuple[tuple[str, str], ...] = (
    ("moov atom not found", "is incomplete or not a valid MP4/MOV file (its index is missing, as when a "
                            "download or export was cut short); re-export or re-download it"),
    ("detected only with low score", "could not be read as audio or video; it may be corrupt or not a "
                                     "media file at all"),
    ("partial file", "appears truncated (its data ends before its stated length); re-export or "
                     "re-download it"),
    ("file ended prematurely", "appears truncated (its data ends before its stated length); re-export or "
                               "re-download it"),
    ("permission denied", "cannot be read (permission denied); check the file's permissions"),
    ("no such file", "does not exist; check the path"),
    ("is a directory", "is a folder, not a media file; pass a file inside it"),
    ("decoder (codec", "uses a codec this ffmpeg cannot decode; convert it to an H.264/AAC mp4 first"),
    ("invalid data found", "could not be read as audio or video; it may be corrupt or not a media "
                           "file at all"),
)


def _looks_like_mp4(path: Path) -> bool:
    """Whether the file starts like an ISO-BMFF (mp4/mov/m4a) file: a box type at bytes 4-8."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError:
        return False
    return head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip")


_MP4_MAX_TOP_LEVEL_BOXES = 4096
"""How many top-level boxes :func:`_mp4_declared_end` walks before it stops looking."""


def _is_box_type(code: bytes) -> bool:
    """Whether 4 bytes can be an ISO-BMFF box type (printable ASCII, or © as in ``©nam``)."""
    return len(code) == 4 and all(0x20 <= b <= 0x7E or b == 0xA9 for b in code)


def _mp4_declared_end(path: Path) -> int | None:
    """Where an ISO-BMFF file's top-level boxes say it ends, in bytes, when that is past its real end.

    Walks the box headers only (size, type; 64-bit sizes and size 0, "to the end", included).
    Returns ``None`` when every box fits in the file (or the walk gives up on odd bytes).
    """
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            offset = 0
            for _ in range(_MP4_MAX_TOP_LEVEL_BOXES):
                if offset + 8 > size:
                    return None
                f.seek(offset)
                head = f.read(16)
                box_size = int.from_bytes(head[:4], "big")
                if box_size == 1 and len(head) == 16:
                    box_size = int.from_bytes(head[8:16], "big")
                elif box_size == 0:
                    return None
                if box_size < 8:
                    return None
                if offset + box_size > size:  # a real box cut short, not trailing junk read as one
                    return offset + box_size if _is_box_type(head[4:8]) else None
                offset += box_size
    except OSError:
        return None
    return None


def _incomplete_mp4_sentence(path: Path) -> str | None:
    """The sentence for an MP4/MOV file whose boxes run past its end, else ``None``."""
    declared_end = _mp4_declared_end(path) if _looks_like_mp4(path) else None
    if declared_end is None:
        return None
    return (f"The file {_quoted(path)} is incomplete: it was truncated or never finished writing (it "
            f"stops at {path.stat().st_size:,} bytes but its MP4/MOV structure runs to {declared_end:,}); "
            "re-export or re-download it.")


def _failure_sentence(stderr: str, path: Path, doing: str) -> str:
    """One plain sentence for an ffmpeg failure; the raw output goes to the debug log only."""
    log.debug("ffmpeg failed while %s %s:\n%s", doing, path, stderr)
    lowered = stderr.lower()
    if "moov atom not found" in lowered and not _looks_like_mp4(path):
        return (f"The file {_quoted(path)} is not a media file ffmpeg can read (its name says MP4/MOV but "
                "its contents do not); check that it is the right file or re-export it.")
    for needle, sentence in _FAILURE_SENTENCES:
        if needle in lowered:
            return f"The file {_quoted(path)} {sentence}."
    return (f"ffmpeg could not finish {doing} {_quoted(path)}; the file may be damaged, so try "
            "re-encoding it to an H.264/AAC mp4.")


def _run(cmd: Sequence[str], path: Path, doing: str, timeout_s: float,
         check: bool = True) -> subprocess.CompletedProcess[bytes]:
    """Run ffmpeg with a timeout; raise :class:`VmnetError` with one sentence if it fails."""
    full = [ffmpeg_exe(), "-nostdin", "-hide_banner", *cmd]
    try:
        proc = subprocess.run(full, capture_output=True, timeout=timeout_s, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as err:
        raise VmnetError(f"Gave up {doing} {_quoted(path)} after {timeout_s:.0f} s; the file may be "
                         "damaged or very long, so trim or re-encode it and try again.") from err
    except OSError as err:
        raise VmnetError(f"Could not start ffmpeg while {doing} {_quoted(path)}: {err.strerror}; "
                         "reinstall imageio-ffmpeg.") from err
    if check and proc.returncode != 0:
        raise VmnetError(_failure_sentence(proc.stderr.decode(errors="replace"), path, doing))
    return proc


def _decode_timeout_s(seconds_of_media: float) -> float:
    """Generous limit for a decode covering ``seconds_of_media`` (contended machines included)."""
    return 60.0 + 4.0 * max(seconds_of_media, 0.0)


# --------------------------------------------------------------------------------------------------
# probing


def _existing_file(path: str | Path) -> Path:
    """The path as an absolute :class:`Path`, after the checks ffmpeg would report badly."""
    p = Path(path).expanduser()
    if not p.exists():
        raise VmnetError(f"The file {_quoted(p)} does not exist; check the path.")
    if p.is_dir():
        raise VmnetError(f"{_quoted(p)} is a folder, not a media file; pass a file inside it.")
    if not os.access(p, os.R_OK):
        raise VmnetError(f"The file {_quoted(p)} cannot be read (permission denied); check its permissions.")
    if p.stat().st_size == 0:
        raise VmnetError(f"The file {_quoted(p)} is empty (0 bytes); re-export or re-download it.")
    return p.resolve()


def _split_top_level(text: str) -> list[str]:
    """Split ffmpeg's stream description on commas that are not inside parentheses."""
    parts, depth, current = [], 0, []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth = max(depth - 1, 0)
        if char == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    parts.append("".join(current).strip())
    return parts


_LAYOUT_CHANNELS = {"mono": 1, "stereo": 2, "downmix": 2, "2.1": 3, "3.0": 3, "3.0(back)": 3, "4.0": 4,
                    "quad": 4, "quad(side)": 4, "3.1": 4, "5.0": 5, "5.0(side)": 5, "4.1": 5, "5.1": 6,
                    "5.1(side)": 6, "6.0": 6, "6.0(front)": 6, "hexagonal": 6, "6.1": 7, "6.1(back)": 7,
                    "6.1(front)": 7, "7.0": 7, "7.0(front)": 7, "7.1": 8, "7.1(wide)": 8,
                    "7.1(wide-side)": 8, "octagonal": 8}
_STREAM_RE = re.compile(r"^\s*Stream #0:\d+\S*: (?P<kind>Video|Audio): (?P<desc>.*)$", re.M)
_INPUT_RE = re.compile(r"^Input #0, (?P<container>.+?), from '", re.M)
_DURATION_RE = re.compile(r"^\s*Duration: (?:(?P<h>\d+):(?P<m>\d+):(?P<s>\d+(?:\.\d+)?)|N/A)", re.M)
_SIZE_RE = re.compile(r"^(\d{1,5})x(\d{1,5})\b")
_RATE_RE = re.compile(r"^(\d+(?:\.\d+)?)(k?) (fps|tbr)\b")


def _parse_rate(items: list[str], unit: str) -> float | None:
    for item in items:
        match = _RATE_RE.match(item)
        if match and match.group(3) == unit:
            return float(match.group(1)) * (1000.0 if match.group(2) else 1.0)
    return None


def _parse_header(stderr: str) -> dict:
    """Container, duration and the first real video/audio stream from ``ffmpeg -i`` output."""
    container = _INPUT_RE.search(stderr)
    duration = _DURATION_RE.search(stderr)
    found: dict = {"container": container.group("container") if container else None, "duration_s": None,
                   "video": None, "audio": None}
    if duration and duration.group("h") is not None:
        found["duration_s"] = (int(duration.group("h")) * 3600 + int(duration.group("m")) * 60
                               + float(duration.group("s")))
    for stream in _STREAM_RE.finditer(stderr):
        kind, desc = stream.group("kind").lower(), stream.group("desc")
        if found[kind] is not None or "(attached pic)" in desc or "(thumbnail)" in desc:
            continue
        items = _split_top_level(desc)
        codec = items[0].split()[0] if items and items[0] else "none"
        if kind == "video":
            size = next((m for m in map(_SIZE_RE.match, items[1:]) if m), None)
            pix_fmt = items[1].split("(")[0] if len(items) > 1 and not _SIZE_RE.match(items[1]) else None
            found["video"] = {"codec": codec, "pix_fmt": pix_fmt,
                              "width": int(size.group(1)) if size else None,
                              "height": int(size.group(2)) if size else None,
                              "fps": _parse_rate(items, "fps") or _parse_rate(items, "tbr")}
        else:
            rate = next((int(m.group(1)) for m in (re.match(r"^(\d+) Hz$", i) for i in items) if m), None)
            layout = items[2] if len(items) > 2 else ""
            channels = _LAYOUT_CHANNELS.get(layout)
            if channels is None and (m := re.match(r"^(\d+) channels", layout)):
                channels = int(m.group(1))
            found["audio"] = {"codec": codec, "sample_rate": rate, "channels": channels}
    return found


_TRUNCATION_MARKS = ("partial file", "file ended prematurely", "moov atom not found",
                     "invalid data found when processing input")


def _packets_end_s(path: Path, start_s: float) -> tuple[float | None, bool]:
    """Read (not decode) every audio/video packet from ``start_s`` on.

    Returns (end time of the last packet in seconds or ``None`` if none was read, whether the
    demuxer reported missing or damaged data).
    """
    proc = _run(["-v", "error", *_input(path, start_s), "-map", "0:v?", "-map", "0:a?", "-c", "copy",
                 "-f", "null", "-progress", "pipe:1", "-nostats", "-"],
                path, "reading", PROBE_TIMEOUT_S + 0.01 * path.stat().st_size / 1e6, check=False)
    stderr = proc.stderr.decode(errors="replace")
    damaged = proc.returncode != 0 or any(mark in stderr.lower() for mark in _TRUNCATION_MARKS)
    if damaged:
        log.debug("demux check of %s from %.2f s:\n%s", path, start_s, stderr)
    times = re.findall(r"^out_time_us=(-?\d+)\s*$", proc.stdout.decode(errors="replace"), re.M)
    end = start_s + int(times[-1]) / 1e6 if times else None
    return end, damaged


def probe(path: str | Path, max_duration_s: float | None = None) -> MediaInfo:
    """Describe a media file and check that it is whole.

    Parameters
    ----------
    path : a local audio or video file.
    max_duration_s : reject files longer than this many seconds (``None``: no limit).

    Raises
    ------
    VmnetError : missing, empty, unreadable, truncated or non-media files, still images, files
        without any audio or video stream, zero duration, or duration above ``max_duration_s``.

    Results are cached per (path, size, modification time), so probing again is free.
    """
    p = _existing_file(path)
    stat = p.stat()
    info = _probe_file(p, stat.st_size, stat.st_mtime_ns)
    if max_duration_s is not None and info.duration_s > max_duration_s:
        raise VmnetError(f"The file {_quoted(p)} is {info.duration_s:.0f} s long, above the limit of "
                         f"{max_duration_s:.0f} s; trim it or raise the limit.")
    return info


@lru_cache(maxsize=512)
def _probe_file(p: Path, size: int, mtime_ns: int) -> MediaInfo:
    """:func:`probe` without the length limit, cached per (path, size, modification time)."""
    proc = _run(_input(p), p, "reading", PROBE_TIMEOUT_S, check=False)
    stderr = proc.stderr.decode(errors="replace")
    header = _parse_header(stderr)
    lowered = stderr.lower()
    guessed = "detected only with low score" in lowered and "could not find codec parameters" in lowered
    if header["container"] is None or guessed:
        raise VmnetError(_failure_sentence(stderr, p, "reading"))
    if (incomplete := _incomplete_mp4_sentence(p)) is not None:
        raise VmnetError(incomplete)
    video, audio = header["video"], header["audio"]
    if video is None and audio is None:
        raise VmnetError(f"The file {_quoted(p)} contains no audio or video stream; pass a video "
                         "(mp4, mov, mkv, webm, avi) or an audio file (mp3, wav, ogg, opus, flac, m4a).")
    container = header["container"]
    if audio is None and header["duration_s"] is None and container.endswith(_STILL_IMAGE_CONTAINERS):
        raise VmnetError(f"The file {_quoted(p)} is a still image, not a video; pass a video file.")

    duration = header["duration_s"]
    if duration is not None and duration > 0:
        tail_start = max(duration - TAIL_CHECK_S, 0.0)
        end, damaged = _packets_end_s(p, tail_start)
        if damaged:
            raise VmnetError(f"The file {_quoted(p)} appears truncated or damaged (its data ends before "
                             "its stated length); re-export or re-download it.")
        if end is None or end < duration - max(0.5, 0.02 * duration):
            duration = None  # the stated length is wrong (estimated or stale): measure it below
    if duration is None or duration <= 0:
        end, damaged = _packets_end_s(p, 0.0)
        if damaged:
            raise VmnetError(f"The file {_quoted(p)} appears truncated or damaged; re-export or "
                             "re-download it.")
        duration = end
    if duration is None or duration <= 0:
        raise VmnetError(f"The file {_quoted(p)} has zero duration (it holds no audio or video data); "
                         "re-export it.")
    return MediaInfo(
        path=p, duration_s=float(duration), has_video=video is not None, has_audio=audio is not None,
        width=video and video["width"], height=video and video["height"], fps=video and video["fps"],
        video_codec=video and video["codec"], audio_codec=audio and audio["codec"], container=container,
        pix_fmt=video and video["pix_fmt"], sample_rate=audio and audio["sample_rate"],
        channels=audio and audio["channels"],
    )


def _require_video(info: MediaInfo) -> None:
    if not info.has_video:
        raise VmnetError(f"The file {_quoted(info.path)} has no video track; pass a video file "
                         "(mp4, mov, mkv, webm, avi).")


def _require_audio(info: MediaInfo) -> None:
    if not info.has_audio:
        raise VmnetError(f"The file {_quoted(info.path)} has no audio track; pass a file with sound.")


def _check_start(info: MediaInfo, start_s: float, what: str) -> None:
    if start_s < 0:
        raise VmnetError(f"The {what} start must be 0 s or later, not {start_s:g} s.")
    if start_s >= info.duration_s:
        raise VmnetError(f"The {what} start {start_s:g} s is past the end of {_quoted(info.path)} "
                         f"({info.duration_s:.2f} s long); choose an earlier start.")


# --------------------------------------------------------------------------------------------------
# audio


def _mono_filter(info: MediaInfo) -> list[str]:
    """Downmix to mono: the mean of both channels for stereo (as librosa does), ffmpeg's standard
    surround downmix for more channels."""
    if info.channels == 1:
        return []
    if info.channels == 2:
        return ["-af", "pan=mono|c0=0.5*c0+0.5*c1"]
    return ["-ac", "1"]


def decode_audio(path: str | Path, sr: int, offset_s: float = 0.0, duration_s: float | None = None,
                 max_duration_s: float | None = None) -> np.ndarray:
    """Decode the first audio stream of any audio or video file to mono.

    Parameters
    ----------
    path : audio or video file (mp4, mov, mkv, webm, avi, mp3, wav, ogg, opus, flac, m4a, ...).
    sr : output sample rate in Hz.
    offset_s, duration_s : the excerpt to decode, in seconds (``duration_s=None``: to the end).
    max_duration_s : reject files longer than this (see :func:`probe`).

    Returns
    -------
    y : (S,) float32 in [-1, 1], S ≈ sr × excerpt length.
    """
    if sr <= 0:
        raise VmnetError(f"The sample rate must be a positive number of Hz, not {sr}.")
    if duration_s is not None and duration_s <= 0:
        raise VmnetError(f"The audio excerpt length must be positive, not {duration_s:g} s.")
    info = probe(path, max_duration_s)
    _require_audio(info)
    _check_start(info, offset_s, "audio")
    span = info.duration_s - offset_s if duration_s is None else min(duration_s, info.duration_s - offset_s)
    # Cutting after decoding is sample-exact in every container (input seeking is off by up to
    # ~10 ms in m4a/webm/avi); far into long files, seek to a little before the excerpt first.
    seek = max(offset_s - EXACT_AUDIO_SEEK_S, 0.0)
    excerpt = ["-ss", f"{offset_s - seek:.6f}"] if offset_s > seek else []
    if duration_s is not None:
        excerpt += ["-t", f"{duration_s:.6f}"]
    proc = _run(["-v", "error", *_input(info.path, seek), "-map", "0:a:0", "-vn", "-sn", "-dn",
                 *_mono_filter(info), "-ac", "1", "-ar", str(int(sr)), *excerpt, "-f", "f32le", "pipe:1"],
                info.path, "decoding the audio of", _decode_timeout_s(span + offset_s - seek))
    y = np.frombuffer(proc.stdout, dtype="<f4")
    if y.size == 0:
        raise VmnetError(f"No audio could be decoded from {_quoted(info.path)}; the file may be damaged, "
                         "so re-export it.")
    return np.clip(y, -1.0, 1.0).astype(np.float32)


# --------------------------------------------------------------------------------------------------
# frames


def _square_filter(size: int) -> str:
    """Show non-square pixels at their display shape, resize the short side to ``size``, centre-crop."""
    return (f"scale=iw*sar:ih,setsar=1,scale={size}:{size}:force_original_aspect_ratio=increase"
            f":flags=bilinear,crop={size}:{size}")


def _fps_filter(fps: float) -> str:
    """Frame k is the one on screen at k/fps s (the last frame at or before it); frames before the
    first one repeat it."""
    return f"fps={fps:.9g}:round=up:start_time=0"


def _frame_count(info: MediaInfo, fps: float, max_frames: int, start_s: float) -> int:
    """Sample times start_s + k/fps that fall inside the file, capped at ``max_frames``."""
    return max(1, min(max_frames, math.ceil((info.duration_s - start_s) * fps - 1e-6)))


def _frames_from_pipe(raw: bytes, size: int) -> np.ndarray:
    frame_bytes = size * size * 3
    usable = len(raw) - len(raw) % frame_bytes
    return np.frombuffer(raw[:usable], np.uint8).reshape(-1, size, size, 3)


def _stream_frames(cmd: Sequence[str], path: Path, doing: str, timeout_s: float, size: int,
                   count: int) -> Iterator[np.ndarray]:
    """Run ffmpeg writing raw RGB frames to stdout; yield each (size, size, 3) frame as it arrives.

    Like :func:`_run` (timeout, one-sentence :class:`VmnetError` on failure, raised after the frames
    that did arrive), but streaming. Closing the generator early stops ffmpeg.
    """
    frame_bytes = size * size * 3
    full = [ffmpeg_exe(), "-nostdin", "-hide_banner", *cmd]
    with tempfile.TemporaryFile() as stderr:
        try:
            proc = subprocess.Popen(full, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr)
        except OSError as err:
            raise VmnetError(f"Could not start ffmpeg while {doing} {_quoted(path)}: {err.strerror}; "
                             "reinstall imageio-ffmpeg.") from err
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
        finally:
            timer.cancel()
            if proc.poll() is None:  # closed early by the consumer, or an error
                proc.kill()
                proc.wait()
        if timed_out.is_set():
            raise VmnetError(f"Gave up {doing} {_quoted(path)} after {timeout_s:.0f} s; the file may be "
                             "damaged or very long, so trim or re-encode it and try again.")
        if returncode != 0:
            stderr.seek(0)
            raise VmnetError(_failure_sentence(stderr.read().decode(errors="replace"), path, doing))


def _sampling_decode_args(info: MediaInfo, size: int) -> tuple[str, ...]:
    """Decoder options for frames sampled at ``size`` px: no deblocking when they are shrunk enough."""
    short_side = min(info.width or 0, info.height or 0)
    if short_side >= SKIP_DEBLOCKING_MIN_DOWNSCALE * size:
        return (*VIDEO_DECODE_ARGS, *SKIP_DEBLOCKING_ARGS)
    return VIDEO_DECODE_ARGS


def _frames_by_filter(info: MediaInfo, fps: float, count: int, size: int, start_s: float) -> Iterator[np.ndarray]:
    """One sequential decode; the ``fps`` filter keeps a frame per 1/fps s before any scaling."""
    window = count / fps
    return _stream_frames(
        ["-v", "error", *_sampling_decode_args(info, size), *_input(info.path, start_s, window + 1.0 / fps),
         "-map", "0:v:0", "-an", "-sn", "-dn", "-vf", f"{_fps_filter(fps)},{_square_filter(size)}",
         "-frames:v", str(count), "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"],
        info.path, "decoding frames of", _decode_timeout_s(window), size, count)


def _keyframe_times(info: MediaInfo, end_s: float) -> np.ndarray:
    """Seconds of the video keyframes up to ``end_s``, from the packet index (nothing decoded)."""
    proc = _run(["-v", "error", *_input(info.path, 0.0, end_s), "-map", "0:v:0", "-c", "copy",
                 "-f", "framecrc", "pipe:1"], info.path, "indexing", PROBE_TIMEOUT_S, check=False)
    text = proc.stdout.decode(errors="replace")
    tb = re.search(r"^#tb 0: (\d+)/(\d+)", text, re.M)
    if proc.returncode != 0 or tb is None:
        return np.zeros(0)
    keys = []
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        fields = [f.strip() for f in line.split(",")]
        flags = next((f for f in fields[6:] if f.startswith("F=")), "F=0x1")
        if len(fields) >= 6 and int(flags[2:], 16) & 1:
            keys.append(int(fields[2]))
    return np.sort(np.array(keys, dtype=np.float64)) * int(tb.group(1)) / int(tb.group(2))


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
        proc = _run(["-v", "error", "-threads", "1", *_sampling_decode_args(info, size), *_input(info.path, t),
                     "-map", "0:v:0", "-an", "-sn", "-dn", "-vf", _square_filter(size), "-frames:v", "1",
                     "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"],
                    info.path, "decoding frames of", _decode_timeout_s(_SEEK_MIN_INTERVAL_S * 10))
        return _frames_from_pipe(proc.stdout, size)[:1]

    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
        for frame in pool.map(one_frame, (float(t) for t in times)):
            yield from frame


def _frame_source(path: str | Path, fps: float, max_frames: int, size: int, start_s: float,
                  max_duration_s: float | None) -> tuple[MediaInfo, Iterator[np.ndarray]]:
    """Check the request and the file now; return the file's info and a lazy iterator of frames."""
    if fps <= 0 or max_frames < 1 or size < 1:
        raise VmnetError(f"Frame sampling needs fps > 0, max_frames ≥ 1 and size ≥ 1 (got fps={fps:g}, "
                         f"max_frames={max_frames}, size={size}).")
    info = probe(path, max_duration_s)
    _require_video(info)
    _check_start(info, start_s, "video")
    count = _frame_count(info, fps, max_frames, start_s)
    times = start_s + np.arange(count) / fps
    if _seeking_is_cheaper(info, times):
        return info, _frames_by_seeking(info, times, size)
    return info, _frames_by_filter(info, fps, count, size, start_s)


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
                       batch_frames: int = 8) -> Iterator[np.ndarray]:
    """The frames of :func:`sample_frames`, in time order, handed over while ffmpeg still decodes.

    The request and the file are checked (and probed) when this is called; decoding starts then,
    in ffmpeg plus one reader thread, and runs ahead of the consumer by up to a few batches.

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
    info, frames = _frame_source(path, fps, max_frames, size, start_s, max_duration_s)
    return _batches_in_background(frames, int(batch_frames), info)


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
    info, source = _frame_source(path, fps, max_frames, size, start_s, max_duration_s)
    frames = list(source)
    if not frames:
        raise _no_frame(info)
    return np.stack(frames)


# --------------------------------------------------------------------------------------------------
# writing


def _scratch_sibling(path: Path, suffix: str) -> Path:
    """An unused scratch file name next to ``path``; the caller removes it."""
    fd, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".partial{suffix}", dir=path.parent)
    os.close(fd)
    return Path(name)


def split_music_video(path: str | Path, out_dir: str | Path, sr: int = 12000, fps: float = 1.0,
                      max_frames: int | None = 360) -> tuple[Path, Path]:
    """Split a music video into mono audio and still frames, as the paper did with ffmpeg.

    Writes ``out_dir/audio.wav`` (mono 16-bit PCM at ``sr`` Hz) and ``out_dir/frames/000001.jpg…``
    (one full-resolution JPEG per 1/fps s, at most ``max_frames``; ``None``: no cap), replacing
    earlier ones. Nothing is written on failure.

    Returns
    -------
    (audio_path, frames_dir)
    """
    info = probe(path)
    _require_video(info)
    _require_audio(info)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".split-", dir=out))
    try:
        (work / "frames").mkdir()
        cap = [] if max_frames is None else ["-frames:v", str(max_frames)]
        _run(["-v", "error", *VIDEO_DECODE_ARGS, *_input(info.path),
              "-map", "0:a:0", "-vn", "-sn", "-dn", *_mono_filter(info), "-ac", "1", "-ar", str(int(sr)),
              "-c:a", "pcm_s16le", "-f", "wav", f"file:{work / 'audio.wav'}",
              "-map", "0:v:0", "-an", "-sn", "-dn", "-vf", f"{_fps_filter(fps)},scale=iw*sar:ih,setsar=1",
              *cap, "-q:v", "2", "-start_number", "1", "-f", "image2",
              f"file:{work / 'frames' / '%06d.jpg'}"],
             info.path, "splitting", _decode_timeout_s(info.duration_s))
        if not any((work / "frames").iterdir()):
            raise VmnetError(f"No video frame could be decoded from {_quoted(info.path)}; the file may be "
                             "damaged, so re-export it.")
        audio_path, frames_dir = out / "audio.wav", out / "frames"
        if frames_dir.exists():
            shutil.rmtree(frames_dir)
        os.replace(work / "frames", frames_dir)
        os.replace(work / "audio.wav", audio_path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return audio_path, frames_dir


def _music_filter(length_s: float, fade_s: float, loudness_lufs: float) -> str:
    """Loudness-normalise (single-pass loudnorm), pad with silence to the video's length, fade out."""
    chain = [f"loudnorm=I={loudness_lufs:g}:TP=-1.5:LRA=11", "aresample=48000",
             f"apad=whole_dur={length_s:.6f}", f"atrim=end={length_s:.6f}"]
    fade = min(max(fade_s, 0.0), length_s)
    if fade > 0:
        chain.append(f"afade=t=out:st={length_s - fade:.6f}:d={fade:.6f}")
    return ",".join(chain)


def mux_music_onto_video(video: str | Path, music: str | Path, out: str | Path, fade_s: float = 2.0,
                         loudness_lufs: float = -16.0, music_offset_s: float = 0.0,
                         max_duration_s: float | None = None) -> Path:
    """Lay a music track under a video: a browser-ready H.264/AAC mp4 with ``+faststart``.

    The music starts at ``music_offset_s`` into the track, is cut to the video's length,
    loudness-normalised to ``loudness_lufs`` LUFS (ffmpeg ``loudnorm``, one pass) and faded out over
    the last ``fade_s`` seconds. Music shorter than the video is padded with silence (never looped).
    The video stream is copied when it is already H.264 yuv420p, re-encoded otherwise; the video's
    own sound is dropped. The result is written under a temporary name and renamed on success.
    """
    video_info = probe(video, max_duration_s)
    _require_video(video_info)
    music_info = probe(music)
    _require_audio(music_info)
    _check_start(music_info, music_offset_s, "music")
    length = video_info.duration_s
    out_path = Path(out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    copy_video = video_info.video_codec == "h264" and video_info.pix_fmt == "yuv420p"
    video_codec = (["-c:v", "copy"] if copy_video else
                   ["-vf", "scale=trunc(iw*sar/2)*2:trunc(ih/2)*2,setsar=1", "-c:v", "libx264",
                    "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p"])
    with atomic_path(out_path, suffix=".partial.mp4") as partial:
        _run(["-v", "error", "-y", *_input(video_info.path),
              *_input(music_info.path, music_offset_s, length),
              "-map", "0:v:0", "-map", "1:a:0", "-sn", "-dn", *video_codec,
              "-af", _music_filter(length, fade_s, loudness_lufs), "-c:a", "aac", "-b:a", "192k", "-ac", "2",
              "-t", f"{length:.6f}", "-movflags", "+faststart", "-f", "mp4", f"file:{partial}"],
             video_info.path, "laying music under", _decode_timeout_s(length))
    return out_path


def _encode_frames(cmd: list[str], frames: Iterable[np.ndarray]) -> tuple[int, str]:
    """Pipe RGB uint8 frames into the ffmpeg command ``cmd``; returns its exit code and stderr text."""
    with tempfile.TemporaryFile() as stderr:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=stderr)
        assert proc.stdin is not None
        try:
            for frame in frames:
                proc.stdin.write(np.ascontiguousarray(frame, dtype=np.uint8).tobytes())
            proc.stdin.close()
        except BrokenPipeError:
            pass
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        try:
            returncode = proc.wait(timeout=_decode_timeout_s(0))
        except subprocess.TimeoutExpired:
            proc.kill()
            returncode = proc.wait()
        stderr.seek(0)
        return returncode, stderr.read().decode(errors="replace")


def write_video(
    frames: Iterable[np.ndarray],
    path: str | Path,
    fps: float,
    audio: np.ndarray | None = None,
    sr: int = 44100,
    crf: int = 23,
    *,
    preset: str = "veryfast",
) -> Path:
    """Encode RGB frames (each (H, W, 3) uint8, H and W even) and optional mono audio
    ((S,) float32 in [-1, 1] at ``sr`` Hz) into a browser-ready H.264/AAC mp4 with faststart.
    ``preset`` is the x264 speed preset (``"ultrafast"`` … ``"veryslow"``).

    Audio is handed to ffmpeg through a temporary WAV beside ``path``; frames stream through a pipe.
    The mp4 is written under a temporary name and renamed on success.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        raise VmnetError(f"No frames were given for the video {_quoted(path)}; pass at least one frame.")
    height, width = first.shape[:2]
    wav_path = None
    cmd = [ffmpeg_exe(), "-nostdin", "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
           "-s", f"{width}x{height}", "-r", str(fps), "-i", "pipe:0"]
    try:
        with atomic_path(path, suffix=".partial.mp4") as partial:
            if audio is not None:
                wav_path = _scratch_sibling(path, ".wav")
                pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2")
                with wave.open(str(wav_path), "wb") as w:
                    w.setnchannels(1)
                    w.setsampwidth(2)
                    w.setframerate(sr)
                    w.writeframes(pcm.tobytes())
                cmd += ["-i", f"file:{wav_path}", "-c:a", "aac", "-aac_coder", "fast", "-b:a", "128k", "-shortest"]
            cmd += ["-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-pix_fmt", "yuv420p",
                    "-movflags", "+faststart", "-f", "mp4", f"file:{partial}"]
            returncode, message = _encode_frames(cmd, itertools.chain([first], frames))
            if returncode != 0:
                log.debug("ffmpeg failed while writing %s:\n%s", path, message)
                raise VmnetError(f"Could not write the video {_quoted(path)}; check that every frame is "
                                 f"{width}x{height} RGB uint8 with even sides and that the disk has room.")
    finally:
        if wav_path is not None:
            wav_path.unlink(missing_ok=True)
    return path
