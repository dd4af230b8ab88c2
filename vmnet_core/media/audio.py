"""Decoding the first audio stream of any audio or video file to mono float samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vmnet_core.errors import VmnetError
from vmnet_core.media.decode_limits import check_audio_limits
from vmnet_core.media.ffmpeg import _decode_timeout_s, _input, _run
from vmnet_core.media.messages import _quoted
from vmnet_core.media.probing import MediaInfo, check_start, probe, require_audio

EXACT_AUDIO_SEEK_S = 300.0
"""Audio excerpts starting up to this many seconds in are cut after decoding (sample-exact);
later ones seek to this many seconds before the excerpt first."""


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
    require_audio(info)
    check_audio_limits(info)  # samples a second, before any decode
    check_start(info, offset_s, "audio")
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

