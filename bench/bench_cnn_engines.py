"""The frame CNN alone, engine by engine: eager torch, ``torch.compile`` (inductor) and ONNX Runtime.

Issue 17 asks for the engine to be chosen by measurement; this times the candidate the earlier
runs left out (``torch.compile``) beside the two that ship, on the same 30 real frames (1 fps
from the benchmarks' 30-s 1280×720 clip), interleaved, batch 16, every core:

    python bench/bench_cnn_engines.py [--runs 5] [--modes eager,compile,onnx]

Prints, per engine: one-off cost (compile / session), median wall and CPU seconds for the 30
frames, ms per frame, the ratio to eager, and the per-frame cosine against eager (min).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time
from pathlib import Path

import numpy as np

from vmnet_core.features.lite0 import INPUT_SIZE, lite0_weights_path
from vmnet_core.features.lite0_torch import TorchFrameNet
from vmnet_core.features.onnx_frames import onnx_frame_net
from vmnet_core.media import sample_frames
from vmnet_testkit.bench_clip import make_clip

OUT = Path(__file__).resolve().parent / "out"


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--modes", default="eager,compile,onnx")
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args(argv)
    import torch

    threads = len(os.sched_getaffinity(0))
    frames = sample_frames(make_clip(30.0, 1280, 720, OUT), fps=1.0, size=INPUT_SIZE)  # (30, 224, 224, 3)
    net = TorchFrameNet("cpu", threads)
    x = net.numpy_input(frames)  # (30, 3, 224, 224) float32 in [-1, 1]
    pooled = lambda model, t: model.extract_features(t).mean(dim=(2, 3))  # noqa: E731

    def batched(run_batch):
        return np.concatenate([run_batch(x[i:i + args.batch]) for i in range(0, len(x), args.batch)])

    runners, setup_s = {}, {}
    for mode in args.modes.split(","):
        start = time.perf_counter()
        if mode == "eager":
            def run_eager(b):
                with torch.inference_mode():
                    return pooled(net.model, torch.from_numpy(b).contiguous(memory_format=torch.channels_last)).numpy()
            runners[mode] = run_eager
        elif mode == "compile":
            compiled = torch.compile(net.model.extract_features, mode="max-autotune-no-cudagraphs", dynamic=False)

            def run_compiled(b, compiled=compiled):
                with torch.inference_mode():
                    return compiled(torch.from_numpy(b).contiguous(memory_format=torch.channels_last)).mean(dim=(2, 3)).numpy()
            runners[mode] = run_compiled
        elif mode == "onnx":
            session = onnx_frame_net(lambda: net.model, lite0_weights_path(), INPUT_SIZE)
            runners[mode] = session.run
        else:
            raise SystemExit(f"unknown mode {mode}")
        batched(runners[mode])  # warm-up (and, for compile, the compilation of both batch shapes)
        setup_s[mode] = time.perf_counter() - start

    walls: dict[str, list[float]] = {m: [] for m in runners}
    cpus: dict[str, list[float]] = {m: [] for m in runners}
    outputs = {}
    load_before = os.getloadavg()[0]
    for _ in range(args.runs):
        for mode, run in runners.items():
            started, cpu = time.perf_counter(), _cpu_s()
            outputs[mode] = batched(run)
            walls[mode].append(time.perf_counter() - started)
            cpus[mode].append(_cpu_s() - cpu)
    print(f"CNN only: {len(x)} frames of 224 px, batch {args.batch}, {threads} threads, {args.runs} interleaved runs; "
          f"torch {torch.__version__}; load {load_before:.1f} → {os.getloadavg()[0]:.1f}")
    eager = statistics.median(walls[next(iter(walls))])
    for mode in runners:
        wall = statistics.median(walls[mode])
        a, b = outputs[mode], outputs[next(iter(outputs))]
        cosine = float(np.min(np.sum(a * b, 1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)))
        print(f"  {mode:<8} one-off {setup_s[mode]:6.1f} s | {wall:.3f} s wall, {statistics.median(cpus[mode]):.3f} CPU-s "
              f"for {len(x)} frames ({1e3 * wall / len(x):.1f} ms/frame) | {eager / wall:.2f}× the first | "
              f"frame cosine ≥ {cosine:.6f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
