"""Generate small real media files for tests (through the real ffmpeg); nothing is committed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from vmnet_core.media import ffmpeg_exe, write_video


def moving_frames(seconds: float, fps: float, size: tuple[int, int] = (160, 120), seed: int = 0):
    """Yield (H, W, 3) uint8 frames of a coloured square moving over a gradient."""
    width, height = size
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, size=3)
    yy, xx = np.mgrid[0:height, 0:width]
    for i in range(int(round(seconds * fps))):
        frame = np.empty((height, width, 3), np.uint8)
        frame[..., 0] = (xx * 255 // max(width - 1, 1) + base[0]) % 256
        frame[..., 1] = (yy * 255 // max(height - 1, 1) + base[1]) % 256
        frame[..., 2] = (base[2] + 3 * i) % 256
        x0 = (i * 7) % max(width - 20, 1)
        frame[20:40, x0:x0 + 20] = 255
        yield frame


def tone(seconds: float, sr: int = 44100, freq: float = 440.0, seed: int = 0) -> np.ndarray:
    """(S,) float32 mono: a decaying tone on every half second plus a little noise."""
    t = np.arange(int(seconds * sr)) / sr
    env = np.exp(-4 * (t % 0.5))
    noise = np.random.default_rng(seed).normal(0, 0.01, t.size)
    return (0.4 * env * np.sin(2 * np.pi * freq * t) + noise).astype(np.float32)


def make_video(path: str | Path, seconds: float = 3.0, size: tuple[int, int] = (160, 120), fps: float = 10,
               audio: bool = True, seed: int = 0) -> Path:
    """Write a real video file; the container follows the suffix (.mp4 direct, others via ffmpeg)."""
    path = Path(path)
    mp4 = path if path.suffix == ".mp4" else path.with_suffix(".tmp.mp4")
    write_video(moving_frames(seconds, fps, size, seed), mp4, fps=fps,
                audio=tone(seconds, seed=seed) if audio else None, sr=44100)
    if mp4 != path:
        convert(mp4, path)
        mp4.unlink()
    return path


def make_audio(path: str | Path, seconds: float = 3.0, sr: int = 44100, freq: float = 440.0, seed: int = 0) -> Path:
    """Write an audio file in the format its suffix names (wav, mp3, ogg, opus, flac, m4a)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    y = tone(seconds, sr, freq, seed)
    pcm = (y * 32767).astype("<i2").tobytes()
    subprocess.run([ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "s16le", "-ar", str(sr), "-ac", "1",
                    "-i", "-", str(path)], input=pcm, check=True)
    return path


def convert(src: str | Path, dst: str | Path) -> Path:
    """Re-encode ``src`` into the container ``dst``'s suffix names (ffmpeg picks default codecs)."""
    subprocess.run([ffmpeg_exe(), "-y", "-loglevel", "error", "-i", str(src), str(dst)], check=True)
    return Path(dst)
