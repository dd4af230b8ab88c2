"""Does the demo server's memory level off? RSS of a launched ``python app.py --no-study`` over a
stream of distinct video queries (each a fresh upload through gradio_client, so nothing comes
from the query cache).

    python bench/bench_server_memory.py --bundle DIR [--warm-up 5] [--queries 50] [--seconds 20]

Prints the server's RSS after start, after the warm-up queries and after every 10 more, and the
growth from warm-up to the end. Target (issue 12): at most 100 MB over 50 queries after warm-up.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from vmnet_testkit.demo_server import running_app
from vmnet_testkit.mediagen import make_video
from vmnet_testkit.processes import app_pid

ROOT = Path(__file__).resolve().parents[1]


def rss_mb(pid: int) -> float:
    """Resident set size of ``pid`` and its children, in MB (from /proc)."""
    total = 0
    for p in [pid, *_children(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def _children(pid: int) -> list[int]:
    try:
        kids = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []
    return kids + [g for k in kids for g in _children(k)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--warm-up", type=int, default=5)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each query video")
    args = parser.parse_args()
    from gradio_client import Client, handle_file

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        with running_app(args.bundle, tmp / "cache") as url:
            pid = app_pid(url)
            client = Client(url, verbose=False)
            print(f"after start: {rss_mb(pid):.0f} MB  (load {os.getloadavg()[0]:.1f})", flush=True)
            started = time.perf_counter()
            for i in range(args.warm_up + args.queries):
                clip = make_video(tmp / f"q{i}.mp4", seconds=args.seconds, size=(320, 240), seed=1000 + i)
                client.predict(handle_file(str(clip)), 5, api_name="/music_for_video")
                clip.unlink()
                done = i + 1 - args.warm_up
                if done == 0:
                    base = rss_mb(pid)
                    print(f"after {args.warm_up} warm-up queries: {base:.0f} MB", flush=True)
                elif done > 0 and done % 10 == 0:
                    print(f"after {done} more: {rss_mb(pid):.0f} MB", flush=True)
            end = rss_mb(pid)
            print(f"growth over {args.queries} distinct queries after warm-up: {end - base:+.0f} MB "
                  f"({(time.perf_counter() - started):.0f} s; load {os.getloadavg()[0]:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
