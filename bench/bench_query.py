"""Query latency of catalog search versus catalog size: numpy exact vs faiss IndexFlatIP.

Synthetic L2-normalised 512-d embeddings (what VM-NET produces); each query is a random unit
vector. For every size the script times ``Catalog.search`` one query at a time (what a user
waits for: median and p95 over ``--queries`` queries, top-``--k``), the amortised per-query time
of one batched call with all queries, and checks that both back ends return the same ranking.

    python bench/bench_query.py                       # 1K, 10K, 100K, 200K; 200 queries
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
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vmnet_core.catalog import Catalog  # noqa: E402

DIM = 512


def unit_rows(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, DIM) float32 rows of unit length."""
    x = rng.standard_normal((n, DIM), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def time_single_queries(catalog: Catalog, queries: np.ndarray, k: int
                        ) -> tuple[list[float], list[float], list[list[str]]]:
    """Per-query wall and CPU times (ms, this thread) and the ranked ids, one ``search`` call per query.

    With one thread the CPU time is what the query would take on an idle core, which makes it the
    figure to compare when other processes compete for the machine.
    """
    wall, cpu, ranked = [], [], []
    for q in queries:
        start, start_cpu = time.perf_counter(), time.thread_time()
        hits = catalog.search(q, side="music", k=k)
        wall.append((time.perf_counter() - start) * 1e3)
        cpu.append((time.thread_time() - start_cpu) * 1e3)
        ranked.append([h.id for h in hits])
    return wall, cpu, ranked


def time_batch(catalog: Catalog, queries: np.ndarray, k: int) -> float:
    """Amortised ms per query of one batched ``search`` call."""
    start = time.perf_counter()
    catalog.search(queries, side="music", k=k)
    return (time.perf_counter() - start) * 1e3 / len(queries)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000, 200_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="BLAS and faiss threads (default: all cores)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import faiss
    from threadpoolctl import threadpool_limits

    faiss.omp_set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    queries = unit_rows(args.queries, rng)
    print(f"# catalog search latency: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"{args.threads} threads, numpy {np.__version__}, faiss {faiss.__version__}, "
          f"{args.queries} queries, top-{args.k}, {DIM}-d float32")
    try:
        load = os.getloadavg()[0]
        print(f"# load average at start: {load:.2f}")
    except OSError:
        pass
    print()
    print("| catalog | search | median ms | p95 ms | median CPU ms (1 thread) | batched ms/query "
          "| index build s | same top-k as numpy |")
    print("|---:|---|---:|---:|---:|---:|---:|:---:|")
    with threadpool_limits(limits=args.threads):
        for size in args.sizes:
            embeddings = unit_rows(size, rng)
            items = [{"id": f"t{i}"} for i in range(size)]
            backends = {"numpy": Catalog(faiss_threshold=size + 1), "faiss IndexFlatIP": Catalog(faiss_threshold=0)}
            reference: list[list[str]] | None = None
            for name, catalog in backends.items():
                catalog.add("music", embeddings, items)
                start = time.perf_counter()
                catalog.search(queries[0], side="music", k=args.k)  # builds the faiss index
                build_s = time.perf_counter() - start if catalog.uses_faiss("music") else 0.0
                time_single_queries(catalog, queries[:5], args.k)  # warm-up
                wall, cpu, ranked = time_single_queries(catalog, queries, args.k)
                batched = time_batch(catalog, queries, args.k)
                reference = reference or ranked
                same = sum(a == b for a, b in zip(reference, ranked, strict=True))
                cpu_text = f"{statistics.median(cpu):.2f}" if args.threads == 1 else "–"
                print(f"| {size:,} | {name} | {statistics.median(wall):.2f} | {percentile(wall, 95):.2f} "
                      f"| {cpu_text} | {batched:.3f} | {build_s:.2f} | {same}/{len(queries)} |", flush=True)
                backends[name] = None  # free the matrix (and the faiss copy) before the next one
            del embeddings
    return 0


if __name__ == "__main__":
    sys.exit(main())
