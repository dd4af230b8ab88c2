"""Describing a media file (:func:`probe`) and the checks every reader makes of what it found.

No ffprobe ships with imageio-ffmpeg, so :func:`probe` reads the stream summary ffmpeg prints for
``ffmpeg -i`` and then checks that the file really holds packets up to its stated end (a cheap
demux-only pass over the last seconds, no decoding); for MP4/MOV it first walks the top-level box
headers, so a file cut short (even right after its header) is called incomplete.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from vmnet_core.errors import VmnetError
from vmnet_core.media.ffmpeg import _input, _run
from vmnet_core.media.messages import _TRUNCATION_MARKS, _failure_sentence, _parse_header, _quoted
from vmnet_core.media.mp4 import (
    MAX_MP4_EDITS,
    MAX_MP4_SAMPLES,
    _looks_like_mp4,
    _mp4_declared_end,
    _mp4_edits,
    _mp4_samples,
)

log = logging.getLogger("vmnet_core.media")

PROBE_TIMEOUT_S = 30.0
"""Wall-clock limit for reading a file's header or its last seconds."""
TAIL_CHECK_S = 2.0
"""How many seconds before the stated end :func:`probe` reads packets from, to catch truncation."""
_STILL_IMAGE_CONTAINERS = ("image2", "_pipe")


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
    start_s: float | None = None
    """The container's start time in s (what ffmpeg subtracts from every timestamp; usually 0)."""




def _incomplete_mp4_sentence(path: Path) -> str | None:
    """The sentence for an MP4/MOV file whose boxes run past its end, else ``None``."""
    declared_end = _mp4_declared_end(path) if _looks_like_mp4(path) else None
    if declared_end is None:
        return None
    return (f"The file {_quoted(path)} is incomplete: it was truncated or never finished writing (it "
            f"stops at {path.stat().st_size:,} bytes but its MP4/MOV structure runs to {declared_end:,}); "
            "re-export or re-download it.")


def _too_many_edits_sentence(path: Path) -> str | None:
    """The sentence for an MP4/MOV file ffmpeg should not open because of its edit list
    (:data:`~vmnet_core.media.mp4.MAX_MP4_EDITS`) or the samples its tables declare
    (:data:`~vmnet_core.media.mp4.MAX_MP4_SAMPLES`), else ``None``."""
    edits = _mp4_edits(path)  # whatever its first box: ffmpeg opens a file of MOV boxes as MOV
    if edits is None:
        return (f"The file {_quoted(path)} has a compressed index (an old QuickTime format) that this program "
                "does not open; re-export it (H.264 in an .mp4 is safest) and try again.")
    if edits > MAX_MP4_EDITS:
        return (f"The file {_quoted(path)} is put together from {edits:,} edits (pieces of its tracks played in "
                f"another order), more than this program opens (at most {MAX_MP4_EDITS}); export it from your "
                "editor as one continuous video (H.264 in an .mp4 is safest) and try again.")
    samples = _mp4_samples(path)
    if samples > MAX_MP4_SAMPLES:
        return (f"The file {_quoted(path)} declares {samples:,} frames and sound packets, more than this program "
                f"opens (at most {MAX_MP4_SAMPLES:,}, about 11 hours of 60-fps video); re-export it (H.264 in an "
                ".mp4 is safest) and try again.")
    return None


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
    if (edited := _too_many_edits_sentence(p)) is not None:  # before ffmpeg opens it: see MAX_MP4_EDITS
        raise VmnetError(edited)
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
        channels=audio and audio["channels"], start_s=header["start_s"],
    )


VIDEO_ADVICE = "pass a video file (mp4, mov, mkv, webm, avi)"
AUDIO_ADVICE = "pass a file with sound"


def require_video(info: MediaInfo, advice: str = VIDEO_ADVICE) -> None:
    """Raise "The file … has no video track; <advice>." when ``info`` has no video stream."""
    if not info.has_video:
        raise VmnetError(f"The file {_quoted(info.path)} has no video track; {advice}.")


def require_audio(info: MediaInfo, advice: str = AUDIO_ADVICE) -> None:
    """Raise "The file … has no audio track; <advice>." when ``info`` has no audio stream."""
    if not info.has_audio:
        raise VmnetError(f"The file {_quoted(info.path)} has no audio track; {advice}.")


def check_start(info: MediaInfo, start_s: float, what: str) -> None:
    """Raise when ``start_s`` (seconds) is negative or past the end of the file; ``what`` names it."""
    if start_s < 0:
        raise VmnetError(f"The {what} start must be 0 s or later, not {start_s:g} s.")
    if start_s >= info.duration_s:
        raise VmnetError(f"The {what} start {start_s:g} s is past the end of {_quoted(info.path)} "
                         f"({info.duration_s:.2f} s long); choose an earlier start.")


# --------------------------------------------------------------------------------------------------
# audio
