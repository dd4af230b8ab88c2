"""Seconds per clip for the video descriptor, end to end: 1-fps frames → EfficientNet-Lite0 → WPCA → mean.

The clip (default 30 s, 1280×720, 25 fps H.264) pans across scikit-image's photos, so the decoder
and the CNN see real picture content; it compresses to 0.2 Mbit/s, so it decodes far more cheaply than
camera footage. ``--content camera`` times a clip that decodes like phone footage instead (moving
pattern under per-frame sensor noise, about 3 Mbit/s at 720p30). It is written once into a temporary folder. After one
warm-up run (oneDNN builds its kernels on the first batch of each shape), every run times:

- decode: ``sample_frames(path, fps=1, size=224)`` (ffmpeg seeks or filters, scales, crops);
- cnn:    ``FrameEncoder.encode`` (T, 1280);
- pool:   whitening PCA to 1024-d (fitted beforehand on random vectors) and the mean over time;
- total:  the three above, one after the other;
- streamed: what the product runs, ``video_frame_features`` (the CNN encodes each batch while ffmpeg
  decodes the next, one torch thread fewer) plus the pooling.

Wall seconds (median over ``--runs``) and CPU seconds (this process plus ffmpeg children) per stage
are printed with the load average, because the machine may be shared. With several ``--engines``
(the CNN's: ``torch`` eager, the reference, and ``onnx``, ONNX Runtime) the runs interleave the
engines and the ratio of each streamed median to the first engine's is printed, with the per-clip
cosine of the pooled descriptors against the first engine's. ``--reference-tree DIR`` (an older
checkout, ``git worktree add DIR REV``) adds that code's streamed path, run in a worker process
between our runs (vmnet_testkit/reference_video_path.py), as the reference of every ratio and cosine:
issue 17 measures against the streamed path of the day it was filed (7afafd3).

    python bench/bench_video_descriptor.py                  # all cores, 5 runs
    python bench/bench_video_descriptor.py --threads 1 --runs 3 --clip my_clip.mp4
    python bench/bench_video_descriptor.py --engines torch,onnx --runs 7   # reference vs candidate
    git worktree add /tmp/ref17 7afafd3
    python bench/bench_video_descriptor.py --engines torch,onnx --reference-tree /tmp/ref17 --runs 7
    python bench/bench_video_descriptor.py --engines onnx --reference-tree /tmp/ref17 --content camera --source-fps 30

Target: ≤ 2 s per 30-s 1280×720 clip on 2 CPU cores. Record results in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import resource
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from vmnet_core.features.video_descriptor import (
    FrameEncoder,
    WhiteningPCA,
    pool_frames,
    video_frame_features,
)
from vmnet_core.media import sample_frames, write_video
from vmnet_testkit.bench_clip import make_camera_like_clip
from vmnet_testkit.reference_video_path import ReferenceVideoPath

STAGES = ("decode", "cnn", "pool", "total", "streamed")
REFERENCE = "reference"


def _cpu_seconds() -> float:
    """CPU seconds used so far by this process and its finished children (ffmpeg)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _photo_strip(height: int) -> np.ndarray:
    """(height, W, 3) uint8: scikit-image's cat, coffee, rocket and astronaut side by side, scaled to ``height``."""
    from PIL import Image
    from skimage import data

    tiles = []
    for image in (data.chelsea(), data.coffee(), data.rocket(), data.astronaut()):
        width = round(image.shape[1] * height / image.shape[0])
        tiles.append(np.asarray(Image.fromarray(image).resize((width, height), Image.BILINEAR)))
    return np.concatenate(tiles, axis=1)


def panning_frames(seconds: float, fps: float, width: int, height: int) -> Iterator[np.ndarray]:
    """Yield (height, width, 3) uint8 frames of a camera panning across the photo strip."""
    strip = _photo_strip(height)
    count = int(round(seconds * fps))
    travel = strip.shape[1] - width
    for i in range(count):
        left = round(travel * i / max(count - 1, 1))
        yield np.ascontiguousarray(strip[:, left:left + width])


def describe_clip(path: Path, encoder: FrameEncoder, pca: WhiteningPCA) -> tuple[dict, dict, int, np.ndarray]:
    """One end-to-end run: wall and CPU seconds per stage, the number of frames, the streamed descriptor."""
    wall, cpu = {}, {}
    t0, c0 = time.perf_counter(), _cpu_seconds()
    frames = sample_frames(path, fps=1.0, max_frames=360, size=224)
    t1, c1 = time.perf_counter(), _cpu_seconds()
    features = encoder.encode(frames)  # (T, 1280)
    t2, c2 = time.perf_counter(), _cpu_seconds()
    descriptor = pool_frames(pca.transform(features), how="mean")  # (1024,)
    t3, c3 = time.perf_counter(), _cpu_seconds()
    assert descriptor.shape == (pca.n_components_,) and np.isfinite(descriptor).all()
    streamed = pool_frames(pca.transform(video_frame_features(path, encoder=encoder)), how="mean")
    t4, c4 = time.perf_counter(), _cpu_seconds()
    assert streamed.shape == descriptor.shape
    wall.update(decode=t1 - t0, cnn=t2 - t1, pool=t3 - t2, total=t3 - t0, streamed=t4 - t3)
    cpu.update(decode=c1 - c0, cnn=c2 - c1, pool=c3 - c2, total=c3 - c0, streamed=c4 - c3)
    return wall, cpu, len(frames), streamed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--source-fps", type=float, default=25.0)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: every core)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--clip", type=Path, default=None, help="time this video instead of a generated one")
    parser.add_argument("--content", choices=("pan", "camera"), default="pan",
                        help="generated clip: a pan across photos (cheap to decode) or camera-like noisy footage")
    parser.add_argument("--engines", default="auto", help="comma-separated CNN engines, the first is the reference")
    parser.add_argument("--reference-tree", type=Path, default=None,
                        help="an older checkout whose streamed path is the reference (e.g. 7afafd3 for issue 17)")
    args = parser.parse_args()

    import torch

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"torch {torch.__version__}; load average at start {os.getloadavg()}")
    with tempfile.TemporaryDirectory(prefix="bench-video-") as tmp, contextlib.ExitStack() as stack:
        if args.clip is not None:
            path = args.clip
            print(f"clip: {path} ({path.stat().st_size / 1e6:.1f} MB)")
        else:
            path = Path(tmp) / "clip.mp4"
            start = time.perf_counter()
            if args.content == "camera":
                make_camera_like_clip(path, args.seconds, args.width, args.height, round(args.source_fps))
            else:
                write_video(panning_frames(args.seconds, args.source_fps, args.width, args.height), path,
                            fps=args.source_fps)
            print(f"clip: {args.content}, {args.seconds:g} s {args.width}x{args.height} at {args.source_fps:g} fps, "
                  f"{path.stat().st_size / 1e6:.1f} MB, written in {time.perf_counter() - start:.1f} s")

        engines = args.engines.split(",")
        encoders = {}
        for engine in engines:
            start = time.perf_counter()
            encoders[engine] = FrameEncoder(batch_size=args.batch_size, num_threads=args.threads, engine=engine)
            print(f"encoder {engine} ({encoders[engine].engine}): loaded in {time.perf_counter() - start:.2f} s, "
                  f"threads {encoders[engine].num_threads}, batch {args.batch_size}")
        pca = WhiteningPCA(n_components=1024).fit(np.random.default_rng(0).normal(size=(1500, 1280)))

        reference = stack.enter_context(ReferenceVideoPath(args.reference_tree)) if args.reference_tree else None
        descriptors = {}
        for engine, encoder in encoders.items():
            warm_wall, _, frames, descriptors[engine] = describe_clip(path, encoder, pca)
            print(f"warm-up run {engine}: {warm_wall['total']:.2f} s for {frames} frames")
        reference_runs = []
        if reference is not None:
            features, wall, _ = reference.features(path)
            descriptors[REFERENCE] = pool_frames(pca.transform(features), how="mean")
            print(f"warm-up run {REFERENCE} ({reference.tree}): {wall:.2f} s for {len(features)} frames")
        walls, cpus = {e: [] for e in engines}, {e: [] for e in engines}
        for _ in range(args.runs):
            for engine, encoder in encoders.items():
                wall, cpu, _, _ = describe_clip(path, encoder, pca)
                walls[engine].append(wall)
                cpus[engine].append(cpu)
            if reference is not None:
                reference_runs.append(reference.features(path)[1:])

    if reference_runs:
        base_name = REFERENCE
        base_wall = statistics.median(w for w, _ in reference_runs)
        base_cpu = statistics.median(c for _, c in reference_runs)
        print(f"\nreference streamed path ({args.reference_tree}): wall median {base_wall:.3f} s "
              f"(min {min(w for w, _ in reference_runs):.3f}), cpu median {base_cpu:.3f} s")
    else:
        base_name = engines[0]
        base_wall = statistics.median(w["streamed"] for w in walls[engines[0]])
        base_cpu = statistics.median(c["streamed"] for c in cpus[engines[0]])
    for engine in engines:
        print(f"\nengine {engine}\n{'stage':<8}{'wall median s':>14}{'wall min s':>12}{'cpu median s':>14}")
        for stage in STAGES:
            values = [w[stage] for w in walls[engine]]
            print(f"{stage:<8}{statistics.median(values):>14.3f}{min(values):>12.3f}"
                  f"{statistics.median(c[stage] for c in cpus[engine]):>14.3f}")
        total = statistics.median(w["streamed"] for w in walls[engine])
        cpu_total = statistics.median(c["streamed"] for c in cpus[engine])
        a, b = descriptors[engine], descriptors[base_name]
        cosine = float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
        print(f"seconds per clip, streamed (median of {args.runs}): {total:.2f} "
              f"({frames} frames; {1e3 * statistics.median(w['cnn'] for w in walls[engine]) / frames:.0f} ms/frame CNN); "
              f"speed-up vs {base_name}: {base_wall / total:.2f}x wall, {base_cpu / cpu_total:.2f}x CPU; "
              f"descriptor cosine vs {base_name}: {cosine:.6f}")
    print(f"load average at end {os.getloadavg()}")


if __name__ == "__main__":
    main()
