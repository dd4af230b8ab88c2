"""Sharded extraction with a killed shard: figures for docs/reliability.md (issue 7).

For each shard count N, ``vmnet_testkit/sharded_extraction.run_kill_and_rerun`` writes real clips, runs
``vmnet extract --shard i/N`` as N processes at once (each its own ``--out``), SIGKILLs the shard
with the most items once half of its items are done, reruns it with the same command, merges with
``vmnet merge-stores`` and extracts the same list in one process for reference. Printed per N:
clips, items per shard, parts at the kill, the rerun's own summary (items already done /
extracted), items redone after the kill (0 expected), stray temporary files, whether the merged
store has the reference's ids, the largest relative row difference of each array, the wall times
and the load average before and after.

    python bench/bench_sharded_extract.py                          # videos, N = 2 and 3
    python bench/bench_sharded_extract.py --modality music --clips 8 --shards 2

Exits 1 if any run redid work or merged into something other than the reference store.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from vmnet_testkit.sharded_extraction import run_kill_and_rerun

ROOT = Path(__file__).resolve().parents[1]

MAX_RELATIVE_DIFF = 1e-4
"""Merged vs reference store, per row: float sums in another order, nothing more."""


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each clip")
    parser.add_argument("--shards", default="2,3", help="comma-separated shard counts")
    parser.add_argument("--modality", choices=("both", "music"), default="both")
    parser.add_argument("--threads", type=int, default=1, help="torch/BLAS threads per extract process")
    parser.add_argument("--work-dir", type=Path, default=None, help="keep the clips and stores here")
    args = parser.parse_args(argv)

    ok = True
    with tempfile.TemporaryDirectory(prefix="bench-sharded-") as scratch:
        work_root = args.work_dir or Path(scratch)
        for shards in (int(n) for n in args.shards.split(",")):
            load_before, started = _load(), time.perf_counter()
            report = run_kill_and_rerun(work_root / f"n{shards}", clips=args.clips, shards=shards,
                                        modality=args.modality, seconds=args.seconds, threads=args.threads)
            figures = {**report.as_dict(), "load_before": load_before, "load_after": _load(),
                       "cores": len(os.sched_getaffinity(0)), "total_wall_s": time.perf_counter() - started,
                       "same_ids_as_single_process": report.merged_ids == report.single_ids}
            del figures["merged_ids"], figures["single_ids"]
            print(json.dumps(figures), flush=True)
            ok &= (report.redone_after_kill == 0 and figures["same_ids_as_single_process"]
                   and report.rerun_summary["already_done"] == report.parts_when_killed
                   and max(report.relative_diff.values()) <= MAX_RELATIVE_DIFF)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
