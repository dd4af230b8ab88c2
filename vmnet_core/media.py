"""Media I/O over the ffmpeg binary shipped by ``imageio-ffmpeg``.

Every failure a user can cause is raised as :class:`vmnet_core.errors.VmnetError` with one sentence.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import numpy as np

from vmnet_core.errors import VmnetError


@lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """Path to the ffmpeg binary bundled with imageio-ffmpeg."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def write_video(
    frames: Iterable[np.ndarray],
    path: str | Path,
    fps: float,
    audio: np.ndarray | None = None,
    sr: int = 44100,
    crf: int = 23,
) -> Path:
    """Encode RGB frames (each (H, W, 3) uint8, H and W even) and optional mono audio
    ((S,) float32 in [-1, 1] at ``sr`` Hz) into a browser-ready H.264/AAC mp4 with faststart.

    Audio is handed to ffmpeg through a temporary WAV beside ``path``; frames stream through a pipe.
    """
    import tempfile
    import wave

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = iter(frames)
    first = next(frames)
    height, width = first.shape[:2]
    cmd = [ffmpeg_exe(), "-y", "-loglevel", "error",
           "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", str(fps), "-i", "-"]
    wav_path = None
    if audio is not None:
        fd, wav_name = tempfile.mkstemp(suffix=".wav", dir=path.parent)
        import os

        os.close(fd)
        wav_path = Path(wav_name)
        pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2")
        with wave.open(str(wav_path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(sr)
            w.writeframes(pcm.tobytes())
        cmd += ["-i", str(wav_path), "-c:a", "aac", "-b:a", "128k", "-shortest"]
    cmd += ["-c:v", "libx264", "-preset", "veryfast", "-crf", str(crf), "-pix_fmt", "yuv420p",
            "-movflags", "+faststart", str(path)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdin is not None
        proc.stdin.write(np.ascontiguousarray(first, dtype=np.uint8).tobytes())
        for frame in frames:
            proc.stdin.write(np.ascontiguousarray(frame, dtype=np.uint8).tobytes())
        proc.stdin.close()
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        if proc.wait() != 0:
            raise VmnetError(f"Could not write the video {path.name}: ffmpeg said {err.strip()[:200]}")
    finally:
        if wav_path is not None:
            wav_path.unlink(missing_ok=True)
    return path
