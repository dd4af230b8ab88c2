"""Full-length tracks made from the real library, so the "right" part of a long track is known.

The library (``immich-memories-music``) holds 28 tracks of about 30 s. :func:`join_tracks` plays
several of them back to back into one WAV and returns where each part starts; a clip cut from part
``k`` must be found at part ``k``'s start. :func:`click_track` is a metronome with accented
downbeats (known beat times) and :func:`cut_video` a clip with one hard cut at a known time, for
the beat-alignment checks.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from vmnet_core.media import decode_audio, write_video

SR = 22050


def write_wav(path: Path, y: np.ndarray, sr: int = SR) -> Path:
    """Mono 16-bit PCM WAV of ``y`` ``(S,)`` float in [-1, 1]."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(sr)
        handle.writeframes((np.clip(y, -1.0, 1.0) * 32767).astype("<i2").tobytes())
    return path


def join_tracks(paths: list[Path], out: Path, sr: int = SR) -> tuple[Path, list[float]]:
    """Play ``paths`` back to back into the WAV ``out``; returns it and each part's start (s)."""
    parts = [decode_audio(p, sr=sr) for p in paths]
    starts = np.cumsum([0, *[len(p) for p in parts[:-1]]]) / sr
    return write_wav(out, np.concatenate(parts), sr), [float(s) for s in starts]


def click_track(out: Path, bpm: float = 120.0, seconds: float = 60.0, first_beat_s: float = 0.3,
                sr: int = SR) -> tuple[Path, np.ndarray, np.ndarray]:
    """A metronome: short 1 kHz clicks, every fourth (from the first) louder and lower (a downbeat).

    Returns the WAV, the beat times ``(B,)`` and the downbeat times ``(D,)`` in seconds.
    """
    y = np.zeros(int(seconds * sr), np.float32)
    period = 60.0 / bpm
    beats = np.arange(first_beat_s, seconds - 0.1, period)
    t = np.arange(int(0.04 * sr)) / sr
    for i, beat in enumerate(beats):
        down = i % 4 == 0
        click = (0.9 if down else 0.3) * np.sin(2 * np.pi * (500 if down else 1000) * t) * np.exp(-t / 0.01)
        start = int(round(beat * sr))
        y[start:start + len(click)] += click[:len(y) - start]
    return write_wav(out, y, sr), beats, beats[::4]


def cut_video(out: Path, seconds: float = 6.0, cut_s: float = 1.5, fps: int = 25, size: int = 96,
              seed: int = 0) -> Path:
    """A clip of two textured shots (dark blue, then bright orange) with one hard cut at ``cut_s``."""
    rng = np.random.default_rng(seed)
    shots = [np.array([20, 30, 120], np.float32), np.array([240, 150, 40], np.float32)]
    frames = []
    for i in range(int(round(seconds * fps))):
        base = shots[0] if i / fps < cut_s else shots[1]
        noise = rng.normal(0, 12, (size, size, 1)).astype(np.float32)
        frames.append(np.clip(base + noise, 0, 255).astype(np.uint8))
    return write_video(frames, out, fps=fps)
