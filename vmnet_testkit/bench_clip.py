"""The benchmarks' query clip: a real H.264/AAC mp4 of a moving, cut scene (demo, CLI, extraction)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def clip_frames(seconds: float, fps: int, width: int, height: int):
    """(H, W, 3) uint8 frames: a gradient scene with a moving block and a cut every 5 s."""
    yy, xx = np.mgrid[0:height, 0:width]
    for i in range(int(seconds * fps)):
        scene = i // (5 * fps)
        frame = np.empty((height, width, 3), np.uint8)
        frame[..., 0] = (xx * 255 // width + 40 * scene) % 256
        frame[..., 1] = (yy * 255 // height + 70 * scene) % 256
        frame[..., 2] = (3 * i) % 256
        x0 = (i * 11) % (width - 160)
        frame[200:360, x0:x0 + 160] = 255
        yield frame


def make_clip(seconds: float, width: int, height: int, out_dir: Path, fps: int = 25) -> Path:
    """A real H.264/AAC mp4 of ``seconds`` at ``width``×``height`` (kept in ``out_dir`` for reuse)."""
    from vmnet_core.media import write_video

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"clip-{seconds:g}s-{width}x{height}.mp4"
    if not path.exists():
        t = np.arange(int(seconds * 44100)) / 44100
        audio = (0.3 * np.sin(2 * np.pi * 220 * t) * np.exp(-3 * (t % 0.5))).astype(np.float32)
        write_video(clip_frames(seconds, fps, width, height), path, fps=fps, audio=audio, preset="veryfast")
    return path


def make_camera_like_clip(path: Path, seconds: float, width: int, height: int, fps: int = 30) -> Path:
    """An H.264 mp4 that decodes like phone footage: ffmpeg's moving test pattern under sensor-like
    noise that changes every frame, x264 ``fast`` at CRF 23 (about 3 Mbit/s at 720p30, 6.5 at 1080p30)."""
    import subprocess

    from vmnet_core.media import ffmpeg_exe

    subprocess.run([ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "lavfi",
                    "-i", f"testsrc2=size={width}x{height}:rate={fps},noise=alls=3:allf=t", "-t", f"{seconds:g}",
                    "-c:v", "libx264", "-preset", "fast", "-crf", "23", "-pix_fmt", "yuv420p", str(path)], check=True)
    return path
