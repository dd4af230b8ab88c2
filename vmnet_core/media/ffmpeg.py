"""Locating the ffmpeg binary shipped by ``imageio-ffmpeg`` and running it with a timeout."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from vmnet_core.errors import VmnetError
from vmnet_core.media.messages import _failure_sentence, _quoted


@lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """Path to the ffmpeg binary bundled with imageio-ffmpeg."""
    try:
        import imageio_ffmpeg  # here, so a missing package becomes the sentence below

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError) as err:
        raise VmnetError("ffmpeg is not available; install the imageio-ffmpeg package "
                         "(pip install imageio-ffmpeg).") from err



MAX_STREAMS = 16
"""Most streams (audio, video, subtitles, data) a file may hold: ffmpeg refuses to open one with more.
Opening a file decodes a picture of every video stream to describe it (before any limit can be checked),
so 20 copies of one 8000×8000 keyframe in a 260-kB mp4 took 3 GB in ``ffmpeg -i`` (found 2026-12-07)."""
PROBE_MAX_PIXELS = 8192 * 4352
"""Largest picture ffmpeg decodes while opening a file (8K: DCI 8192×4320 aligned); ``_input``'s default."""


def _input(path: Path, start_s: float = 0.0, duration_s: float | None = None,
           max_pixels: int = PROBE_MAX_PIXELS) -> list[str]:
    """Input options for one local file: no network, no protocol tricks in the name, at most
    :data:`MAX_STREAMS` streams, and no picture over ``max_pixels`` decoded, including the pictures
    ffmpeg decodes of every stream to describe it (a run that decodes frames passes its own cap)."""
    args = ["-protocol_whitelist", "file", "-max_streams", str(MAX_STREAMS), "-max_pixels", str(int(max_pixels))]
    if start_s > 0:
        args += ["-ss", f"{start_s:.6f}"]
    if duration_s is not None:
        args += ["-t", f"{duration_s:.6f}"]
    return args + ["-i", f"file:{path}"]


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
        raise not_started(err, doing, path) from err
    if check and proc.returncode != 0:
        raise VmnetError(_failure_sentence(proc.stderr.decode(errors="replace"), path, doing))
    return proc


def not_started(err: OSError, doing: str, path: Path) -> VmnetError:
    """The sentence for an ffmpeg process that could not be started (``doing``: "reading", ...)."""
    return VmnetError(f"Could not start ffmpeg while {doing} {_quoted(path)}: {err.strerror}; "
                      "reinstall imageio-ffmpeg.")


def _decode_timeout_s(seconds_of_media: float) -> float:
    """Generous limit for a decode covering ``seconds_of_media`` (contended machines included)."""
    return 60.0 + 4.0 * max(seconds_of_media, 0.0)
