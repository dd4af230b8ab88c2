"""Audio that costs far more to decode than music needs (docs/security.md, decode limits): real files
made by the real ffmpeg, through :func:`vmnet_core.media.audio.decode_audio` as the music search calls it."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from vmnet_core.errors import VmnetError
from vmnet_core.media import decode_audio, ffmpeg_exe


def _silence(path: Path, rate: int, layout: str, seconds: float, codec: str) -> Path:
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", f"anullsrc=r={rate}:cl={layout}",
                    "-t", str(seconds), "-c:a", codec, "-strict", "-2", str(path)], check=True)
    return path


@pytest.mark.parametrize("rate, layout, codec, suffix", [
    (655_350, "7.1", "flac", "flac"),    # 800 s of it: 18 MB, 29 CPU-s to search with (honest FLAC: 1.6)
    (384_000, "7.1", "flac", "flac"),    # 800 s: 11 MB, 17 CPU-s
    (384_000, "22.2", "wavpack", "wv"),  # a layout the probe cannot count
])
def test_audio_with_too_many_samples_a_second_is_refused_before_decoding(tmp_path, rate, layout, codec, suffix):
    bomb = _silence(tmp_path / f"bomb.{suffix}", rate, layout, 1, codec)
    started = time.perf_counter()
    with pytest.raises(VmnetError, match="re-export it as stereo at 48 kHz"):
        decode_audio(bomb, 22050, offset_s=0.2, duration_s=0.5)
    assert time.perf_counter() - started < 5


@pytest.mark.parametrize("rate, layout", [(44_100, "stereo"), (96_000, "stereo"), (192_000, "7.1"), (48_000, "5.1")])
def test_honest_music_formats_still_decode(tmp_path, rate, layout):
    y = decode_audio(_silence(tmp_path / "honest.flac", rate, layout, 1, "flac"), 22050)
    assert abs(y.size - 22050) < 50
