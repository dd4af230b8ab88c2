"""Time 1-fps frame sampling from a generated 30-s 1280x720 H.264 clip (median of 5 runs).

Usage: python bench/bench_media.py [--runs 5] [--seconds 30]

The clip is ffmpeg's ``testsrc2`` pattern with light moving noise, 30 fps, about 3 Mbit/s (a
typical 720p web video), with a 44.1-kHz AAC tone; it is written to a temporary folder and deleted.
Each run clears the probe cache, so the figure includes probing the file. Wall time depends on how
busy the machine is; the CPU seconds spent in ffmpeg (user + system, all threads) barely do, so
both are printed.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from vmnet_core import media
from vmnet_core.media import probing as media_probing


def make_clip(path: Path, seconds: float) -> Path:
    """A 1280x720, 30-fps H.264/AAC mp4 of ``seconds`` seconds at about 3 Mbit/s."""
    subprocess.run([media.ffmpeg_exe(), "-y", "-loglevel", "error",
                    "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30,noise=alls=12:allf=t",
                    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100", "-t", str(seconds),
                    "-c:v", "libx264", "-preset", "veryfast", "-b:v", "3M", "-maxrate", "4M", "-bufsize", "8M",
                    "-pix_fmt", "yuv420p", "-c:a", "aac", "-movflags", "+faststart", str(path)], check=True)
    return path


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def median_seconds(fn, runs: int) -> tuple[float, float]:
    """Median wall seconds and median ffmpeg CPU seconds of ``runs`` calls."""
    walls, cpus = [], []
    for _ in range(runs):
        media_probing._probe_file.cache_clear()
        cpu, start = _children_cpu_s(), time.perf_counter()
        fn()
        walls.append(time.perf_counter() - start)
        cpus.append(_children_cpu_s() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        clip = make_clip(Path(tmp) / "clip.mp4", args.seconds)
        frames = media.sample_frames(clip)
        print(f"clip: {args.seconds:g} s 1280x720 30 fps H.264, {clip.stat().st_size / 1e6:.1f} MB; "
              f"sample_frames -> {frames.shape}")
        figures = {
            "probe": lambda: media.probe(clip),
            "sample_frames fps=1 size=224": lambda: media.sample_frames(clip, fps=1.0),
            "decode_audio sr=12000": lambda: media.decode_audio(clip, 12000),
        }
        for name, fn in figures.items():
            wall, cpu = median_seconds(fn, args.runs)
            print(f"{name:30s} median of {args.runs}: {wall:.3f} s wall, {cpu:.3f} s ffmpeg CPU")


if __name__ == "__main__":
    main()
