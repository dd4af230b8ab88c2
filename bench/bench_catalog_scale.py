"""A 1,000,000-track catalog: build time, memory and query latency, exact and approximate (issue 7).

Synthetic L2-normalised 512-d float32 embeddings (2.05 GB for 1M rows). By default they are
clustered (points scattered around 2,000 random unit centres, as trained embeddings are);
``--structure uniform`` draws them uniformly on the sphere, the hardest case for approximate
indexes. Queries are fresh points drawn the same way (not catalog rows).

Rows of the table:

- ``Catalog`` — ``vmnet_core.bundle.catalog.Catalog`` as the product uses it: ``add`` of 1M items with
  their metadata, then ``search`` one query at a time, exact (numpy); then its approximate mode
  (``make_approximate``: IVF-Flat with ``nprobe`` tuned to ``--target-recall``).
- ``faiss Flat`` — ``IndexFlatIP`` on its own: exact; its top-k is the ground truth.
- ``faiss IVF-Flat`` — inverted lists over ``--nlist`` k-means cells (trained on a sample),
  searched at several ``nprobe``.
- ``faiss HNSW`` — ``IndexHNSWFlat`` (M = ``--hnsw-m``), searched at several ``efSearch``.

For each: build seconds, memory added (RSS after minus before, and the peak during the build,
from /proc/self/status), single-query latency p50/p95 in ms (one query per call, as a user
waits), and recall@k against the exact top-k. Phases run one after another and free their index,
(the index is freed when its phase function returns), so the peak stays near
two copies of the matrix.

    python bench/bench_catalog_scale.py                          # 1M, 200 queries, all indexes
    python bench/bench_catalog_scale.py --n 100000 --indexes flat ivf   # a quick look

Record results (with the command and the load average) in docs/reliability.md.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

DIM = 512
CHUNK = 100_000
INDEX_CHOICES = ("catalog", "flat", "ivf", "hnsw")


# ------------------------------------------------------------------------------------------ memory
def _status_mb(field_name: str) -> float:
    """A memory line of /proc/self/status (VmRSS: current, VmHWM: peak) in MB."""
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) * 1024 / 1e6
    return float("nan")


def rss_mb() -> float:
    """Resident memory of this process now, MB."""
    return _status_mb("VmRSS")


def reset_peak_rss() -> None:
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS, when the kernel allows it."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")
    except OSError:
        pass


def peak_rss_mb() -> float:
    """Peak resident memory since the last :func:`reset_peak_rss`, MB."""
    return _status_mb("VmHWM")


# ------------------------------------------------------------------------------------------ data
def synthetic_embeddings(n: int, rng: np.random.Generator, structure: str, centres: np.ndarray | None,
                         spread: float) -> np.ndarray:
    """(n, DIM) float32 unit rows, made in chunks so no float64 copy of the whole matrix exists."""
    out = np.empty((n, DIM), np.float32)
    for start in range(0, n, CHUNK):
        stop = min(start + CHUNK, n)
        block = rng.standard_normal((stop - start, DIM), dtype=np.float32)
        if structure == "clustered":
            assert centres is not None
            block *= spread / np.sqrt(DIM)
            block += centres[rng.integers(0, len(centres), stop - start)]
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start:stop] = block
    return out


def unit_centres(count: int, rng: np.random.Generator) -> np.ndarray:
    centres = rng.standard_normal((count, DIM), dtype=np.float32)
    return centres / np.linalg.norm(centres, axis=1, keepdims=True)


# ------------------------------------------------------------------------------------------ timing
@dataclass
class Row:
    """One line of the result table."""

    index: str
    setting: str
    build_s: float | None
    rss_added_mb: float | None
    build_peak_mb: float | None
    p50_ms: float
    p95_ms: float
    recall: float | None
    notes: list[str] = field(default_factory=list)


def single_query_latencies(search_one: Callable[[np.ndarray], np.ndarray], queries: np.ndarray
                           ) -> tuple[list[float], np.ndarray]:
    """Wall ms per query (one call each) and the (Q, k) row ids returned."""
    times, found = [], []
    for q in queries:
        start = time.perf_counter()
        rows = search_one(q[None, :])
        times.append((time.perf_counter() - start) * 1e3)
        found.append(np.asarray(rows).reshape(-1))
    return times, np.stack(found)


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean fraction of the exact top-k rows that the index returned in its top-k."""
    return float(np.mean([len(set(f.tolist()) & set(t.tolist())) / len(t) for f, t in zip(found, truth, strict=True)]))


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


# ------------------------------------------------------------------------------------------ phases
def bench_catalog(x: np.ndarray, queries: np.ndarray, k: int, truth: np.ndarray | None,
                  target_recall: float) -> list[Row]:
    """``vmnet_core.bundle.catalog.Catalog``: add 1M items with metadata, exact queries, then its IVF mode."""
    from vmnet_core.bundle.catalog import Catalog, CatalogItem
    from vmnet_core.errors import VmnetError

    gc.collect()
    before = rss_mb()
    reset_peak_rss()
    start = time.perf_counter()
    items = [CatalogItem(id=f"track{i:07d}", title=f"Track {i}", path=f"/music/track{i:07d}.opus",
                         duration_s=180.0) for i in range(len(x))]
    catalog = Catalog(dim=DIM)
    catalog.add("music", x, items)
    del items
    build_s = time.perf_counter() - start
    added, peak = rss_mb() - before, peak_rss_mb() - before
    row_of = {item_id: i for i, item_id in enumerate(catalog.ids("music"))}

    def ranked(q: np.ndarray) -> list[int]:
        return [row_of[hit.id] for hit in catalog.search(q[0], side="music", k=k)]

    times, found = single_query_latencies(ranked, queries)
    rows = [Row("Catalog (vmnet_core)", "exact (numpy)", build_s, added, peak, percentile(times, 50),
                percentile(times, 95), recall_at_k(found, truth) if truth is not None else None, [])]
    reset_peak_rss()
    before = rss_mb()
    start = time.perf_counter()
    try:
        stats = catalog.make_approximate("music", target_recall=target_recall)
    except VmnetError as exc:  # the catalog refuses an index that cannot beat exact search
        rows.append(Row("Catalog (vmnet_core)", "approximate: refused", time.perf_counter() - start, None, None,
                        float("nan"), float("nan"), None, [str(exc)]))
        return rows
    build_s = time.perf_counter() - start
    added, peak = rss_mb() - before, peak_rss_mb() - before
    times, found = single_query_latencies(ranked, queries)
    rows.append(Row("Catalog (vmnet_core)", f"approximate: IVF nlist {stats.nlist}, nprobe {stats.nprobe}",
                    build_s, added, peak, percentile(times, 50), percentile(times, 95),
                    recall_at_k(found, truth) if truth is not None else None,
                    [f"tuned to recall {stats.recall:.3f} on its own rows (target {target_recall})"]))
    return rows


def exact_top_k(x: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """(Q, k) exact top-k rows by inner product: one batched IndexFlatIP search (the ground truth)."""
    import faiss

    index = faiss.IndexFlatIP(DIM)
    index.add(x)
    return index.search(queries, k)[1]


def bench_flat(x: np.ndarray, queries: np.ndarray, k: int) -> list[Row]:
    """faiss IndexFlatIP on its own: exact."""
    import faiss

    gc.collect()
    before = rss_mb()
    reset_peak_rss()
    start = time.perf_counter()
    index = faiss.IndexFlatIP(DIM)
    index.add(x)
    build_s = time.perf_counter() - start
    added, peak = rss_mb() - before, peak_rss_mb() - before
    times, _ = single_query_latencies(lambda q: index.search(q, k)[1], queries)
    start = time.perf_counter()
    index.search(queries, k)
    batch_ms = (time.perf_counter() - start) * 1e3 / len(queries)
    return [Row("faiss Flat (IndexFlatIP)", "exact", build_s, added, peak, percentile(times, 50),
                percentile(times, 95), 1.0, [f"batched: {batch_ms:.1f} ms/query"])]


def bench_ivf(x: np.ndarray, queries: np.ndarray, k: int, truth: np.ndarray, nlist: int, train_n: int,
              nprobes: list[int], rng: np.random.Generator) -> list[Row]:
    """faiss IndexIVFFlat (inner product), k-means on ``train_n`` sampled rows."""
    import faiss

    gc.collect()
    before = rss_mb()
    reset_peak_rss()
    start = time.perf_counter()
    quantizer = faiss.IndexFlatIP(DIM)
    index = faiss.IndexIVFFlat(quantizer, DIM, nlist, faiss.METRIC_INNER_PRODUCT)
    sample = x[np.sort(rng.choice(len(x), size=min(train_n, len(x)), replace=False))]
    index.train(sample)
    train_s = time.perf_counter() - start
    del sample
    index.add(x)
    build_s = time.perf_counter() - start
    added, peak = rss_mb() - before, peak_rss_mb() - before
    rows = []
    for nprobe in nprobes:
        index.nprobe = nprobe
        times, found = single_query_latencies(lambda q: index.search(q, k)[1], queries)
        rows.append(Row("faiss IVF-Flat", f"nlist={nlist}, nprobe={nprobe}", build_s, added, peak,
                        percentile(times, 50), percentile(times, 95), recall_at_k(found, truth),
                        [f"k-means on {min(train_n, len(x)):,} rows: {train_s:.0f} s"]))
    return rows


def bench_hnsw(x: np.ndarray, queries: np.ndarray, k: int, truth: np.ndarray, m: int, ef_construction: int,
               ef_searches: list[int]) -> list[Row]:
    """faiss IndexHNSWFlat (inner product)."""
    import faiss

    gc.collect()
    before = rss_mb()
    reset_peak_rss()
    start = time.perf_counter()
    index = faiss.IndexHNSWFlat(DIM, m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = ef_construction
    index.add(x)
    build_s = time.perf_counter() - start
    added, peak = rss_mb() - before, peak_rss_mb() - before
    rows = []
    for ef in ef_searches:
        index.hnsw.efSearch = max(ef, k)
        times, found = single_query_latencies(lambda q: index.search(q, k)[1], queries)
        rows.append(Row("faiss HNSW", f"M={m}, efC={ef_construction}, efSearch={ef}", build_s, added, peak,
                        percentile(times, 50), percentile(times, 95), recall_at_k(found, truth)))
    return rows


# ------------------------------------------------------------------------------------------ output
def format_table(rows: list[Row], k: int) -> str:
    header = (f"| index | setting | build s | RSS added MB | build peak MB | p50 ms | p95 ms | recall@{k} | notes |\n"
              "|---|---|---:|---:|---:|---:|---:|---:|---|")
    lines = [header]
    for r in rows:
        def num(v: float | None, fmt: str) -> str:
            return "—" if v is None else format(v, fmt)
        lines.append(f"| {r.index} | {r.setting} | {num(r.build_s, '.1f')} | {num(r.rss_added_mb, ',.0f')} | "
                     f"{num(r.build_peak_mb, ',.0f')} | {r.p50_ms:.2f} | {r.p95_ms:.2f} | {num(r.recall, '.3f')} | "
                     f"{'; '.join(r.notes)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="catalog rows (default 1,000,000)")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--indexes", nargs="+", choices=INDEX_CHOICES, default=list(INDEX_CHOICES))
    parser.add_argument("--structure", choices=("clustered", "uniform"), default="clustered")
    parser.add_argument("--clusters", type=int, default=2000, help="centres of the clustered data")
    parser.add_argument("--spread", type=float, default=1.0,
                        help="noise norm around a centre (1.0: a point is ~45° from its centre)")
    parser.add_argument("--target-recall", type=float, default=0.95, help="for the Catalog's approximate mode")
    parser.add_argument("--nlist", type=int, default=1024, help="IVF cells")
    parser.add_argument("--train", type=int, default=65_536, help="rows sampled for IVF k-means (≥ 39·nlist)")
    parser.add_argument("--nprobe", type=int, nargs="+", default=[4, 8, 16, 32, 64])
    parser.add_argument("--hnsw-m", type=int, default=32)
    parser.add_argument("--ef-construction", type=int, default=40)
    parser.add_argument("--ef-search", type=int, nargs="+", default=[16, 32, 64, 128])
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1), help="faiss OpenMP threads")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import faiss

    faiss.omp_set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load average "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}; faiss {faiss.__version__}, {args.threads} threads")
    start = time.perf_counter()
    base = rss_mb()
    centres = unit_centres(args.clusters, rng) if args.structure == "clustered" else None
    x = synthetic_embeddings(args.n, rng, args.structure, centres, args.spread)
    queries = synthetic_embeddings(args.queries, rng, args.structure, centres, args.spread)
    print(f"# {args.n:,} × {DIM} float32 {args.structure} embeddings ({x.nbytes / 1e9:.2f} GB, RSS +"
          f"{rss_mb() - base:,.0f} MB) made in {time.perf_counter() - start:.1f} s; {args.queries} queries, "
          f"k={args.k}")

    rows: list[Row] = []
    start_truth = time.perf_counter()
    truth = exact_top_k(x, queries, args.k)
    print(f"# exact top-{args.k} of every query (batched IndexFlatIP): {time.perf_counter() - start_truth:.1f} s",
          flush=True)
    gc.collect()
    if "flat" in args.indexes:
        rows += bench_flat(x, queries, args.k)
        print(format_table(rows[-1:], args.k).splitlines()[-1], flush=True)
    if "catalog" in args.indexes:
        rows += bench_catalog(x, queries, args.k, truth, args.target_recall)
        print("\n".join(format_table(rows[-2:], args.k).splitlines()[2:]), flush=True)
    if "ivf" in args.indexes:
        rows += bench_ivf(x, queries, args.k, truth, args.nlist, args.train, args.nprobe, rng)
        print("\n".join(format_table(rows[-len(args.nprobe):], args.k).splitlines()[2:]), flush=True)
    if "hnsw" in args.indexes:
        rows += bench_hnsw(x, queries, args.k, truth, args.hnsw_m, args.ef_construction, args.ef_search)
        print("\n".join(format_table(rows[-len(args.ef_search):], args.k).splitlines()[2:]), flush=True)
    print()
    print(format_table(rows, args.k))
    print(f"\n# total {time.perf_counter() - start:.0f} s; load average now "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
