"""Time to evaluate a 1,000-pair gallery: embed both sides with the paper network, then Recall@K.

Reports separately (a) embedding 1,000 preprocessed music and video vectors with the paper's
architecture in eval mode, (b) ``metrics.evaluate_embeddings`` (R@{1,10,25,50,100,1000}, median
and mean rank, both directions) and (c) ``metrics.structure_report`` (the rank-correlation measure
``--compare`` adds per model). Inputs are random; the cost does not depend on their values.

    python bench/bench_evaluate.py
    python bench/bench_evaluate.py --gallery 4000 --threads 1

Target (issue 3): evaluating a 1,000-pair gallery under 1 s. Record results in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from vmnet_core.learn.metrics import evaluate_embeddings, structure_report
from vmnet_core.learn.model import ModelConfig, VMNet, embed_arrays


def timed(fn, repeats: int) -> tuple[float, object]:
    out = fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gallery", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = VMNet(ModelConfig()).eval()
    music = rng.standard_normal((args.gallery, model.config.music_dim)).astype(np.float32)
    video = rng.standard_normal((args.gallery, model.config.video_dim)).astype(np.float32)

    t_embed, (em, ev) = timed(lambda: embed_arrays(model, music, video), args.repeats)
    t_metrics, result = timed(lambda: evaluate_embeddings(em, ev), args.repeats)
    t_structure, _ = timed(lambda: structure_report(music, video, em, ev), args.repeats)
    print(f"gallery: {result['gallery']} pairs, torch threads {torch.get_num_threads()}, "
          f"median of {args.repeats} runs")
    print(f"embed both sides (paper network, CPU): {1000 * t_embed:8.1f} ms")
    print(f"Recall@K + ranks, both directions:     {1000 * t_metrics:8.1f} ms")
    print(f"structure report (both modalities):    {1000 * t_structure:8.1f} ms")
    print(f"total evaluate (embed + metrics):      {1000 * (t_embed + t_metrics):8.1f} ms")
    print(f"with --compare's structure measure:    {1000 * (t_embed + t_metrics + t_structure):8.1f} ms")


if __name__ == "__main__":
    main()
