"""Query latency of catalog search versus catalog size: exact numpy, faiss IndexFlatIP, approximate IVF.

L2-normalised 512-d embeddings (what VM-NET produces), ``--data clustered`` (points around 2,000
random unit centres, neighbours share a centre, like trained embeddings) or ``uniform`` (no
structure: the worst case for any partitioning index). For every size the script times one query
per call (what a user waits for: median and p95 over ``--queries`` queries, top-``--k``), the
amortised per-query time of one batched call, and recall@k of each searcher against exact numpy:

- ``Catalog exact`` — :class:`vmnet_core.bundle.catalog.Catalog`'s default (numpy matrix product);
- ``faiss IndexFlatIP`` — faiss's exact search over its own copy, as a reference;
- ``Catalog IVF`` — the catalog's approximate mode (``Catalog.make_approximate``, what
  ``vmnet index --approximate`` builds), ``nprobe`` tuned to ``--target-recall`` (sizes ≥ 10K).

    python bench/bench_query.py                       # 1K, 10K, 100K, 200K; 200 queries; clustered
    python bench/bench_query.py --sizes 200000 --data uniform
    python bench/bench_query.py --sizes 1000 10000 --queries 50 --threads 1

Target (issue 3): a 200K-track query under 10 ms. Record results in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import numpy as np
from bench_catalog_scale import DIM, synthetic_embeddings, unit_centres

from vmnet_core.bundle.ann_index import MIN_ROWS
from vmnet_core.bundle.catalog import Catalog
from vmnet_core.errors import VmnetError

CENTRES = 2_000
SPREAD = 1.0  # a point is about 45° from its centre


class FlatIP:
    """faiss ``IndexFlatIP`` behind the ``search(q, side, k)`` face the timers use."""

    def __init__(self, embeddings: np.ndarray) -> None:
        import faiss

        self.index = faiss.IndexFlatIP(embeddings.shape[1])
        self.index.add(embeddings)

    def search(self, queries: np.ndarray, side: str = "music", k: int = 10) -> list[list[int]] | list[int]:
        q = np.atleast_2d(queries).astype(np.float32)
        rows = self.index.search(q, k)[1].tolist()
        return rows[0] if np.ndim(queries) == 1 else rows


def time_single_queries(searcher, queries: np.ndarray, k: int) -> tuple[list[float], list[float], list[list[str]]]:
    """Per-query wall and CPU times (ms, this thread) and the ranked rows, one ``search`` call per query.

    With one thread the CPU time is what the query would take on an idle core, which makes it the
    figure to compare when other processes compete for the machine.
    """
    wall, cpu, ranked = [], [], []
    for q in queries:
        start, start_cpu = time.perf_counter(), time.thread_time()
        hits = searcher.search(q, "music", k=k)
        wall.append((time.perf_counter() - start) * 1e3)
        cpu.append((time.thread_time() - start_cpu) * 1e3)
        ranked.append([h if isinstance(h, int) else int(h.id[1:]) for h in hits])
    return wall, cpu, ranked


def time_batch(searcher, queries: np.ndarray, k: int) -> float:
    """Amortised ms per query of one batched ``search`` call."""
    start = time.perf_counter()
    searcher.search(queries, "music", k=k)
    return (time.perf_counter() - start) * 1e3 / len(queries)


def recall(found: list[list[int]], truth: list[list[int]]) -> float:
    """Mean fraction of each exact top-k found."""
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)]))


def searchers(embeddings: np.ndarray, target_recall: float):
    """(name, setting, build seconds, searcher) for each back end, built one after another."""
    items = [{"id": f"t{i}"} for i in range(len(embeddings))]
    exact = Catalog()
    exact.add("music", embeddings, items, normalise=False)
    yield "Catalog exact", "numpy", 0.0, exact
    start = time.perf_counter()
    flat = FlatIP(embeddings)
    yield "faiss IndexFlatIP", "reference", time.perf_counter() - start, flat
    del flat
    if len(embeddings) >= MIN_ROWS:
        start = time.perf_counter()
        try:
            stats = exact.make_approximate("music", target_recall=target_recall)
        except VmnetError as exc:  # the catalog refuses an index that cannot beat exact search
            yield "Catalog IVF", f"refused: {str(exc).split(':')[0]}", time.perf_counter() - start, None
            return
        setting = f"nlist {stats.nlist}, nprobe {stats.nprobe} (tuned: {stats.recall:.3f})"
        yield "Catalog IVF", setting, time.perf_counter() - start, exact


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000, 200_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--data", choices=("clustered", "uniform"), default="clustered")
    parser.add_argument("--target-recall", type=float, default=0.95, help="for the IVF's nprobe tuning")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="BLAS and faiss threads (default: all cores)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import faiss
    from threadpoolctl import threadpool_limits

    faiss.omp_set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    centres = unit_centres(CENTRES, rng)
    queries = synthetic_embeddings(args.queries, rng, args.data, centres, SPREAD)
    print(f"# catalog search latency: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"{args.threads} threads, numpy {np.__version__}, faiss {faiss.__version__}, "
          f"{args.queries} queries, top-{args.k}, {DIM}-d float32, {args.data} data")
    print(f"# load average at start: {os.getloadavg()[0]:.2f}")
    print()
    print("| catalog | search | setting | median ms | p95 ms | median CPU ms (1 thread) | batched ms/query "
          "| build s | recall@k vs exact |")
    print("|---:|---|---|---:|---:|---:|---:|---:|---:|")
    with threadpool_limits(limits=args.threads):
        for size in args.sizes:
            embeddings = synthetic_embeddings(size, rng, args.data, centres, SPREAD)
            truth: list[list[int]] | None = None
            for name, setting, build_s, searcher in searchers(embeddings, args.target_recall):
                if searcher is None:
                    print(f"| {size:,} | {name} | {setting} | – | – | – | – | {build_s:.1f} | – |", flush=True)
                    continue
                time_single_queries(searcher, queries[:5], args.k)  # warm-up
                wall, cpu, ranked = time_single_queries(searcher, queries, args.k)
                batched = time_batch(searcher, queries, args.k)
                truth = truth or ranked
                cpu_text = f"{statistics.median(cpu):.2f}" if args.threads == 1 else "–"
                print(f"| {size:,} | {name} | {setting} | {statistics.median(wall):.2f} | "
                      f"{np.percentile(wall, 95):.2f} | {cpu_text} | {batched:.3f} | {build_s:.1f} | "
                      f"{recall(ranked, truth):.3f} |", flush=True)
            del embeddings
    return 0


if __name__ == "__main__":
    sys.exit(main())
