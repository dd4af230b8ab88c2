"""Upload-to-results time of the demo's "find music for a video" against a 10,000-track catalog.

What a visitor waits for once the upload has arrived (transfer excluded): hashing the file for the
query cache, probing it, sampling frames (1 fps), the CNN, the bundle's model, and the search; the
query cache is cold on every run (each run queries a fresh copy of the clip, as each upload is).
The catalog is a copy of the bundle's with synthetic unit embeddings added to its music side.

    python bench/bench_demo_query.py [--bundle DIR] [--tracks 10000] [--runs 5] [--seconds 30]

Prints the median of ``--runs`` end-to-end runs, the stage breakdown (medians) and the load average.
Targets: at most 3 s (issue 5), then 1.2 s median including the first query after start (issue 17),
for a 30-s 1280×720 clip on the 2-core machine. Run 1 is that first query: the context is opened
and warmed (``handlers.warm_up``) exactly as the app does before it serves.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from demo import handlers
from demo.query_cache import QueryCache
from vmnet_core.bundle.catalog import CatalogItem
from vmnet_core.bundle.files import load_bundle
from vmnet_testkit.bench_clip import make_clip

ROOT = Path(__file__).resolve().parents[1]

OUT = ROOT / "bench" / "out"


def bundle_with_tracks(bundle_dir: Path, tracks: int, into: Path) -> Path:
    """A copy of the bundle whose music catalog holds ``tracks`` items (the real ones + synthetic)."""
    copy = Path(shutil.copytree(bundle_dir, into, ignore=shutil.ignore_patterns("ablation", "training")))
    bundle = load_bundle(copy)
    missing = max(0, tracks - bundle.catalog.size("music"))
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(missing, bundle.catalog.dim)).astype(np.float32)
    items = [CatalogItem(id=f"synthetic-{i:05d}", title=f"synthetic {i}", duration_s=180.0) for i in range(missing)]
    bundle.catalog.add("music", vectors, items)
    bundle.save_catalog()
    return copy


def one_run(ctx: handlers.DemoContext, clip: Path, scratch: Path, run: int) -> dict[str, float]:
    """End-to-end time of one cold query, split at the handler's progress steps."""
    upload = scratch / f"upload-{run}" / clip.name  # a fresh path, as each upload gets
    upload.parent.mkdir(parents=True)
    shutil.copyfile(clip, upload)
    ctx.cache = QueryCache(scratch / f"cache-{run}", "bench")  # cold: same bytes would hit the cache
    marks: list[tuple[str, float]] = []
    cpu_before = cpu_seconds()
    started = time.perf_counter()
    result = handlers.music_for_video(ctx, upload, 10, on_step=lambda f, text: marks.append((text, time.perf_counter())))
    total = time.perf_counter() - started
    cpu = cpu_seconds() - cpu_before
    assert not result.from_cache and len(result.hits) == 10
    at = {text: t for text, t in marks}
    return {
        "total": total,
        "cpu": cpu,
        "hash": at["Checking the file"] - started,
        "probe": at["Reading frames and looking at them (CNN)"] - at["Checking the file"],
        "frames+CNN": at["Embedding"] - at["Reading frames and looking at them (CNN)"],
        "model": next(t for text, t in marks if text.startswith("Searching")) - at["Embedding"],
        "search+format": started + total - next(t for text, t in marks if text.startswith("Searching")),
    }


def split_decode_and_cnn(ctx: handlers.DemoContext, clip: Path) -> dict[str, float]:
    """The frames+CNN stage timed in its two parts (same settings as the handler)."""
    from vmnet_core.features.video_descriptor import INPUT_SIZE
    from vmnet_core.media import sample_frames

    fresh = clip.with_name(f"{clip.stem}-split.mp4")  # probe results are cached per path and mtime
    shutil.copyfile(clip, fresh)
    cpu0, started = cpu_seconds(), time.perf_counter()
    frames = sample_frames(fresh, fps=1.0, max_frames=360, size=INPUT_SIZE)
    cpu1, decoded = cpu_seconds(), time.perf_counter()
    ctx.retriever.encoder.encode(frames)
    cpu2, done = cpu_seconds(), time.perf_counter()
    fresh.unlink()
    return {"decode": decoded - started, "CNN": done - decoded, "frames": float(len(frames)),
            "decode_cpu": cpu1 - cpu0, "CNN_cpu": cpu2 - cpu1}


def cpu_seconds() -> float:
    """CPU seconds used so far by this process (all threads) and its finished children (ffmpeg)."""
    import resource

    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=None, help="bundle directory (default: the starter bundle)")
    parser.add_argument("--tracks", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the machine has 2 cores)")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    if args.bundle is None:
        from app import default_bundle

        args.bundle = default_bundle()
    width, height = (int(v) for v in args.size.split("x"))
    OUT.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    clip = make_clip(args.seconds, width, height, OUT)
    with tempfile.TemporaryDirectory(prefix="bench-demo-") as tmp:
        scratch = Path(tmp)
        bundle_dir = bundle_with_tracks(args.bundle, args.tracks, scratch / "bundle")
        ctx = handlers.open_demo(bundle_dir, scratch / "work")
        handlers.warm_up(ctx)
        runs = [one_run(ctx, clip, scratch, i) for i in range(args.runs)]
        parts = [split_decode_and_cnn(ctx, clip) for _ in range(args.runs)]
        tracks = ctx.catalog.size("music")
        query = np.random.default_rng(1).normal(size=ctx.catalog.dim).astype(np.float32)
        search_times = []
        for _ in range(20):
            t0 = time.perf_counter()
            ctx.catalog.search(query, side="music", k=10)
            search_times.append(time.perf_counter() - t0)
    load_after = os.getloadavg()

    def median(key: str, rows: list[dict[str, float]]) -> float:
        return statistics.median(r[key] for r in rows)

    print(f"demo query: {args.seconds:g}-s {width}x{height} clip → top 10 of {tracks} tracks, "
          f"{args.runs} cold runs, torch threads {args.threads}, cpu cores {os.cpu_count()}")
    print(f"  end to end (upload arrived → results): median {median('total', runs):.2f} s "
          f"(min {min(r['total'] for r in runs):.2f}, max {max(r['total'] for r in runs):.2f})")
    print(f"    first query after start (the model warmed as the app warms it): {runs[0]['total']:.2f} s; "
          f"target ≤ 1.2 s median (issue 17)")
    print(f"    CPU time used per query: median {median('cpu', runs):.2f} CPU-s (all threads and ffmpeg; on an idle "
          f"2-core machine the wall time lies between CPU-s / 2 and CPU-s)")
    for key in ("hash", "probe", "frames+CNN", "model", "search+format"):
        print(f"    {key:<14} {median(key, runs) * 1000:8.0f} ms")
    print(f"  frames+CNN split ({int(parts[0]['frames'])} frames): decode {median('decode', parts) * 1000:.0f} ms, "
          f"CNN {median('CNN', parts) * 1000:.0f} ms; CPU time: decode {median('decode_cpu', parts):.2f} CPU-s, "
          f"CNN {median('CNN_cpu', parts):.2f} CPU-s")
    print(f"  music side: none (catalog tracks are embedded at index time); search alone over {tracks} tracks: "
          f"{statistics.median(search_times) * 1000:.2f} ms")
    print(f"  load average before {load_before[0]:.2f} / after {load_after[0]:.2f} (1-min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
