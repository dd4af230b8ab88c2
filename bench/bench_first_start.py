"""First start of ``python app.py``: build the default starter bundle, then the time a later start takes.

Run: python bench/bench_first_start.py [--clips N --steps S ...] [--keep DIR] [--no-serve] [--warm-numba]

Prints each step's wall and CPU seconds (as recorded in ``metrics.json["starter"]``), the total,
the load average before and after, and the held-out R@K. CPU seconds include worker processes and
ffmpeg, so on a shared machine ``CPU / cores`` estimates what the step costs on an idle one (a
lower bound: a single-process step cannot use both cores). By default numba's compile cache is
pointed at an empty folder, as on a fresh clone. With ``--serve`` (default) it then measures a
later start in a fresh process: import ``app``, load the bundle and build the server (twice: the
first also prepares the default study's stimuli).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_SERVE_SNIPPET = """
import os, sys, time
started = time.perf_counter()
import app  # the repository's app.py: the process runs in ROOT
args = app.parse_args(["--bundle", {bundle!r}, "--admin-password", "bench"])
app.build_server(args, args.bundle)
print(f"{{time.perf_counter() - started:.1f}}", flush=True)
os._exit(0)  # skip interpreter teardown, where a native library thread may abort the process
"""


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def measure_later_start(bundle: Path, cache: Path) -> float:
    """Seconds for a fresh interpreter to import app, load ``bundle`` and build the server."""
    env = {**os.environ, "VMNET_CACHE": str(cache)}
    done = subprocess.run([sys.executable, "-c", _SERVE_SNIPPET.format(bundle=str(bundle))],
                          cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not done.stdout.strip():
        raise SystemExit(f"building the server failed:\n{done.stderr[-3000:]}")
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    from vmnet_core.starter.pipeline import StarterSettings, build_starter_bundle, usable_cores

    defaults = StarterSettings()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=defaults.clips)
    parser.add_argument("--seconds", type=float, default=defaults.seconds)
    parser.add_argument("--steps", type=int, default=defaults.max_steps)
    parser.add_argument("--val-every", type=int, default=defaults.val_every)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--keep", type=Path, help="build here and keep it (default: a temporary folder)")
    parser.add_argument("--no-serve", action="store_true", help="skip the later-start measurement")
    parser.add_argument("--warm-numba", action="store_true", help="use numba's usual cache (not a fresh clone)")
    parser.add_argument("--quiet", action="store_true", help="no progress output from the build")
    args = parser.parse_args()

    settings = StarterSettings(clips=args.clips, seconds=args.seconds, max_steps=args.steps,
                               val_every=args.val_every, workers=args.workers)
    with tempfile.TemporaryDirectory(prefix="vmnet-first-start-") as tmp:
        root = args.keep or Path(tmp)
        if not args.warm_numba:
            os.environ["NUMBA_CACHE_DIR"] = str(Path(tmp) / "numba-cache")  # spawned workers inherit it
        print(f"settings: {settings}")
        print(f"cores: {usable_cores()}, load average before: {_load()}", flush=True)
        started = time.perf_counter()
        bundle = build_starter_bundle(root / "bundle", settings, progress=not args.quiet)
        wall = time.perf_counter() - started
        metrics = json.loads((bundle / "metrics.json").read_text(encoding="utf-8"))
        record = metrics["starter"]
        print(f"load average after: {_load()}")
        print(f"{'step':10} {'wall s':>8} {'CPU s':>8} {'CPU/cores':>10}")
        cores = record.get("cores", usable_cores())
        for name, seconds in record["build_seconds"].items():
            cpu = record["build_cpu_seconds"].get(name, float("nan"))
            print(f"{name:10} {seconds:8.1f} {cpu:8.1f} {cpu / cores:10.1f}")
        print(f"build_starter_bundle wall: {wall:.1f} s (budget 360 s)")
        evaluation = record["evaluation"]
        print(f"test gallery: {evaluation['gallery']} pairs")
        for name, block in evaluation.get("compare", {}).items():
            cells = [f"{d[:1].upper()}→{d.split('_to_')[1][:1].upper()} R@1 {block[d]['R@1']:.3f} "
                     f"R@10 {block[d].get('R@10', float('nan')):.3f} med {block[d]['median_rank']:g}"
                     for d in ("video_to_music", "music_to_video")]
            print(f"  {name:13} " + " | ".join(cells))
        print(f"best step: {metrics.get('best_step')} of {metrics.get('steps')}")
        if not args.no_serve:
            cache = Path(tmp) / "cache"
            first = measure_later_start(bundle, cache)
            second = measure_later_start(bundle, cache)
            print(f"later start (import app, load bundle, build server): first {first:.1f} s "
                  f"(prepares the study), then {second:.1f} s (budget 20 s); load {_load()}")


if __name__ == "__main__":
    main()
