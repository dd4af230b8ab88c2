"""Wall time of ``vmnet query --video CLIP --json`` from a fresh process (issue 17: ≤ 1.5 s).

What a script that calls the command once per file pays: interpreter start, imports, loading the
bundle, decoding the 30-s 1280×720 clip at 1 fps, the CNN, the model and the search. Each run is a
new process with a fresh copy of the clip; ``--help`` (start-up alone) is timed the same way, and
a batch call over ``--runs`` copies shows what one start-up shared by many files costs per file.

    python bench/bench_cli_query.py [--bundle DIR] [--runs 5] [--seconds 30] [--size 1280x720]

Prints medians (wall seconds, and CPU seconds of the process and its children) and the load.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from vmnet_testkit.bench_clip import make_clip  # the same real H.264 clip as the demo benchmark

OUT = Path(__file__).resolve().parent / "out"


def timed(command: list[str]) -> tuple[float, float]:
    """(wall s, CPU s of the child and its children) of one run of ``command``; raises on failure."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=None, help="bundle directory (default: the starter bundle)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--size", default="1280x720")
    args = parser.parse_args(argv)
    if args.bundle is None:
        from app import default_bundle

        args.bundle = default_bundle()
    width, height = (int(v) for v in args.size.split("x"))
    clip = make_clip(args.seconds, width, height, OUT)
    vmnet = [sys.executable, "-m", "vmnet_core.cli.main"]
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        copies = []
        for i in range(args.runs):  # a fresh path per run: nothing may be cached by path
            copies.append(Path(tmp) / f"clip-{i}.mp4")
            shutil.copyfile(clip, copies[-1])
        timed(vmnet + ["query", "--bundle", str(args.bundle), "--video", str(copies[0]), "--json"])  # page cache
        helps = [timed(vmnet + ["query", "--help"]) for _ in range(args.runs)]
        singles = [timed(vmnet + ["query", "--bundle", str(args.bundle), "--video", str(c), "--json"])
                   for c in copies]
        listing = Path(tmp) / "list.txt"
        listing.write_text("".join(f"{c}\n" for c in copies), encoding="utf-8")
        batch = timed(vmnet + ["query", "--bundle", str(args.bundle), "--video", str(listing), "--json"])
    load_after = os.getloadavg()

    def line(name: str, rows: list[tuple[float, float]]) -> str:
        walls = [w for w, _ in rows]
        return (f"  {name:<34} median {statistics.median(walls):.2f} s (min {min(walls):.2f}, max {max(walls):.2f}); "
                f"CPU {statistics.median(c for _, c in rows):.2f} s")

    print(f"vmnet query from a fresh process: {args.seconds:g}-s {width}x{height} clip, bundle {args.bundle}, "
          f"{args.runs} runs, cpu cores {os.cpu_count()}")
    print(line("query --help (start-up only)", helps))
    print(line("query --video CLIP --json", singles) + "; target ≤ 1.5 s")
    print(f"  batch: {args.runs} clips in one call {batch[0]:.2f} s → {batch[0] / args.runs:.2f} s per clip")
    print(f"  load average before {load_before[0]:.2f} / after {load_after[0]:.2f} (1-min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
