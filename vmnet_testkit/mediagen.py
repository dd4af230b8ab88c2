"""Generate small real media files for tests (through the real ffmpeg); nothing is committed."""

from __future__ import annotations

import subprocess
from fractions import Fraction
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


INDEX_BITS = 8


def indexed_frames(count: int, size: tuple[int, int] = (128, 128)):
    """Yield ``count`` (H, W, 3) uint8 frames whose index (< 256) is written as 8 black/white bars,
    left bar = lowest bit; :func:`frame_index` reads it back after lossy coding and resizing."""
    width, height = size
    edges = np.linspace(0, width, INDEX_BITS + 1).astype(int)
    for i in range(count):
        frame = np.zeros((height, width, 3), np.uint8)
        for bit in range(INDEX_BITS):
            if (i >> bit) & 1:
                frame[:, edges[bit]:edges[bit + 1]] = 255
        yield frame


def frame_index(frame: np.ndarray) -> int:
    """The index :func:`indexed_frames` wrote into ``frame`` ((H, W, 3), resized to any size with the
    same aspect ratio: the bars are read along the middle row)."""
    height, width = frame.shape[:2]
    row = frame[height // 2].mean(axis=-1)
    centres = ((np.arange(INDEX_BITS) + 0.5) * width / INDEX_BITS).astype(int)
    return int(sum(1 << bit for bit, x in enumerate(centres) if row[x] > 127))


def make_indexed_video(path: str | Path, seconds: float, fps: float = 10, keyint: int | None = None,
                       size: tuple[int, int] = (128, 128)) -> Path:
    """Write an H.264 mp4 (no audio) of :func:`indexed_frames`; ``keyint`` sets the keyframe interval
    in frames (``None``: x264's default)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = size
    gop = [] if keyint is None else ["-g", str(keyint), "-keyint_min", str(keyint), "-sc_threshold", "0"]
    raw = b"".join(f.tobytes() for f in indexed_frames(int(round(seconds * fps)), size))
    subprocess.run([ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
                    "-s", f"{width}x{height}", "-r", str(fps), "-i", "-", "-c:v", "libx264",
                    "-preset", "ultrafast", *gop, "-pix_fmt", "yuv420p", str(path)], input=raw, check=True)
    return path


def make_bframe_video(path: str | Path, seconds: float, rate: str = "25", keyint_s: float = 2.0,
                      size: tuple[int, int] = (320, 180)) -> Path:
    """Write an H.264 mp4 (no audio) with B-frames (x264 veryfast: 3, pyramid) of ffmpeg's moving
    test pattern at an exact frame ``rate`` (e.g. ``"30000/1001"``), a keyframe every ``keyint_s``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    keyint = max(1, round(keyint_s * float(Fraction(rate))))
    subprocess.run([ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "lavfi",
                    "-i", f"testsrc2=size={size[0]}x{size[1]}:rate={rate}", "-t", f"{seconds:g}", "-c:v", "libx264",
                    "-preset", "veryfast", "-bf", "3", "-g", str(keyint), "-pix_fmt", "yuv420p", str(path)], check=True)
    return path


def make_stereo_wav(path: str | Path, left: float, right: float, seconds: float = 1.0, sr: int = 8000) -> Path:
    """Write a 16-bit stereo WAV holding the constant values ``left`` and ``right`` (in [-1, 1])."""
    import wave

    path = Path(path)
    frames = np.empty((int(seconds * sr), 2), "<i2")
    frames[:, 0], frames[:, 1] = round(left * 32767), round(right * 32767)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(frames.tobytes())
    return path


def attach_cover_art(src: str | Path, dst: str | Path) -> Path:
    """Copy the audio file ``src`` to ``dst`` (mp3) with a small JPEG cover picture attached."""
    subprocess.run([ffmpeg_exe(), "-y", "-loglevel", "error", "-i", str(src), "-f", "lavfi",
                    "-i", "color=c=blue:s=64x64:d=0.04", "-map", "0:a", "-map", "1:v", "-c:a", "libmp3lame",
                    "-c:v", "mjpeg", "-disposition:v", "attached_pic", str(dst)], check=True)
    return Path(dst)


def remux_moov_at_end(src: str | Path, dst: str | Path) -> Path:
    """Copy the mp4 ``src`` to ``dst`` with its index (moov box) after the media data, as cameras and
    non-faststart exports write it."""
    subprocess.run([ffmpeg_exe(), "-y", "-loglevel", "error", "-i", str(src), "-c", "copy",
                    "-movflags", "-faststart", "-f", "mp4", str(dst)], check=True)
    return Path(dst)


def make_image(path: str | Path, size: tuple[int, int] = (32, 32)) -> Path:
    """Write a single red PNG picture to ``path`` whatever its suffix (to fake a misnamed video)."""
    width, height = size
    subprocess.run([ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "lavfi", "-i",
                    f"color=c=red:s={width}x{height}", "-frames:v", "1", "-c:v", "png", "-f", "image2",
                    str(path)], check=True)
    return Path(path)
