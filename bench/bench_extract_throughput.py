"""Extraction throughput of ``vmnet extract`` (issue 17): videos per hour per core, and what 200K take.

Writes ``--clips`` copies of a real 30-s 1280×720 H.264/AAC clip (the demo benchmark's), then runs
``vmnet extract --input DIR --out STORE --workers W`` (both modalities: the paper's music
descriptor of the soundtrack and the 1-fps EfficientNet-Lite0 video features) in a fresh process
for each worker count, and prints the wall time, videos per hour, videos per hour per core, and the
projection for the paper's 200K videos on one such machine and on a cluster of ``--cluster-cores``
cores running ``vmnet extract --shard i/N`` (docs/cluster.md; shards share nothing, so throughput
adds up per core, the merge of 200K small part files aside).

    python bench/bench_extract_throughput.py [--clips 8] [--workers 1,2] [--cluster-cores 512]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from vmnet_testkit.bench_clip import make_clip  # the same real H.264 clip as the demo benchmark

PAPER_VIDEOS = 200_000


OUT = Path(__file__).resolve().parent / "out"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--workers", default="1,2", help="worker counts to run, comma-separated")
    parser.add_argument("--cluster-cores", type=int, default=512, help="cores of the projected cluster")
    args = parser.parse_args(argv)
    clip = make_clip(30.0, 1280, 720, OUT)
    print(f"vmnet extract throughput: {args.clips} × 30-s 1280×720 clips, both modalities, cpu cores {os.cpu_count()}")
    for workers in (int(w) for w in args.workers.split(",")):
        with tempfile.TemporaryDirectory(prefix="bench-extract-") as tmp:
            media = Path(tmp) / "media"
            media.mkdir()
            for i in range(args.clips):
                shutil.copyfile(clip, media / f"clip-{i:03d}.mp4")
            load = os.getloadavg()[0]
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "vmnet_core.cli.main", "extract", "--input", str(media),
                            "--out", str(Path(tmp) / "store"), "--workers", str(workers), "--quiet"], check=True)
            wall = time.perf_counter() - started
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        per_hour = 3600 * args.clips / wall
        per_core_hour = per_hour / workers
        cpu_per_video = cpu / args.clips
        print(f"  workers {workers}: {wall:.1f} s wall ({wall / args.clips:.2f} s/video), {cpu_per_video:.2f} CPU-s/video, "
              f"{per_hour:,.0f} videos/h = {per_core_hour:,.0f} videos/h per core; load at start {load:.2f}")
        print(f"    200K videos: {PAPER_VIDEOS / per_hour:,.1f} h on this machine; "
              f"{PAPER_VIDEOS / (per_core_hour * args.cluster_cores):,.1f} h on {args.cluster_cores} cores "
              f"({args.cluster_cores} shards of one worker); by CPU-s: "
              f"{PAPER_VIDEOS * cpu_per_video / 3600 / args.cluster_cores:,.1f} h")
    return 0


if __name__ == "__main__":
    sys.exit(main())
