"""What hiding server folders costs per answer (docs/security.md): ``PathMask.mask`` over a page
config of ``--components`` file values (about 110 KB at 600, the size of the demo's ``/config``
plus headroom) and ``unmask`` of the result, with the folder list ``app.hidden_folders`` makes.

    python bench/bench_path_mask.py --components 600 --runs 50

Record results in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from webguard import PathMask

FOLDERS = ["/tmp/gradio", "/srv/vmnet/cache/work/study/media", "/srv/vmnet/bundles/starter", "/srv/vmnet/bundles",
           "/srv/vmnet/cache", "/srv/music", "/tmp", "/srv/vmnet/app", str(Path.home())]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--components", type=int, default=600)
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    mask = PathMask(FOLDERS)
    body = json.dumps({"components": [{"id": i, "props": {"label": "x" * 40, "value": {
        "path": f"/tmp/gradio/{i:064x}/clip.mp4", "url": f"/gradio_api/file=/tmp/gradio/{i:064x}/clip.mp4"}}}
        for i in range(args.components)]}).encode()
    masked = mask.mask(body)
    for name, fn, data in (("mask", mask.mask, body), ("unmask", mask.unmask, masked)):
        times = []
        for _ in range(args.runs):
            started = time.perf_counter()
            fn(data)
            times.append(time.perf_counter() - started)
        print(f"{name}: median {statistics.median(times) * 1e3:.2f} ms over {len(data) / 1e3:.0f} KB "
              f"({args.runs} runs)")
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
