"""Approximate nearest-neighbour search for large catalog sides: faiss IVF-Flat on inner product.

Exact search reads the whole ``(N, 512)`` float32 matrix per query (200K tracks = 410 MB), so its
latency is bounded below by memory bandwidth (about 30 ms at 13 GB/s on the reference machine).
An inverted-file index clusters the rows into ``nlist`` k-means cells and scans only the
``nprobe`` cells whose centroids are closest to the query: far less memory per query, at the price
of sometimes missing a true neighbour. That price is *measured*, never assumed: :func:`build_ivf`
picks the smallest ``nprobe`` whose recall@k against exact search, on a sample of the catalog's own
rows as queries, reaches a target, and records the figure with the index.

Rows keep their catalog row number as faiss id, so appended rows are added without retraining and
replaced rows are swapped in place; removing rows renumbers them, which needs a rebuild.
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vmnet_core.atomic_io import read_json_file, write_file_atomic
from vmnet_core.bundle.exact_search import top_k_inner_product
from vmnet_core.errors import VmnetError

MIN_ROWS = 10_000  # below this exact search is fast (< 2 ms) and k-means has too little to learn from
POINTS_PER_CELL = 39  # faiss's minimum of training points per k-means centroid
TRAIN_SAMPLE_MAX = 100_000  # rows sampled for k-means (more buys little, costs time)


def _faiss() -> Any:
    """The faiss module, imported on first use: loading it costs about a second and only approximate
    search needs it (every catalog imports this module)."""
    import faiss

    return faiss


@dataclass(frozen=True)
class IvfStats:
    """What was built and what it measured (stored next to the index as JSON)."""

    rows: int  # catalog rows indexed at build time
    nlist: int  # k-means cells
    nprobe: int  # cells scanned per query
    target_recall: float  # asked-for recall@k
    recall: float  # measured recall@k at ``nprobe`` (self-matches excluded)
    k: int  # the k of recall@k
    sample_queries: int  # catalog rows used as queries for the measurement
    seed: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> IvfStats:
        try:
            return cls(**{name: record[name] for name in cls.__dataclass_fields__})
        except (KeyError, TypeError) as exc:
            raise VmnetError(f"The approximate-index description lacks a field ({exc}); rebuild the index "
                             "with `vmnet index --bundle B --approximate`.") from None


class IvfIndex:
    """A trained faiss ``IndexIVFFlat`` (inner product) whose ids are catalog row numbers."""

    def __init__(self, index: Any, stats: IvfStats) -> None:
        self.index = index
        self.stats = stats
        self.index.nprobe = stats.nprobe

    @property
    def size(self) -> int:
        return int(self.index.ntotal)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Approximate top-``k`` by inner product: ``(Q, k)`` float32 scores and int64 rows, best first.

        ``queries`` is ``(Q, D)`` float32, unit rows. Rows the probed cells do not reach come back
        as ``-1``; callers drop them.
        """
        scores, rows = self.index.search(np.ascontiguousarray(queries, dtype=np.float32), int(k))
        return scores, rows

    def append(self, embeddings: np.ndarray, rows: np.ndarray) -> None:
        """Add new rows ``(n, D)`` with their catalog row numbers ``(n,)`` (no retraining)."""
        self.index.add_with_ids(np.ascontiguousarray(embeddings, dtype=np.float32),
                                np.asarray(rows, dtype=np.int64))

    def replace(self, embeddings: np.ndarray, rows: np.ndarray) -> None:
        """Swap the vectors of existing catalog rows ``(n,)`` for ``embeddings`` ``(n, D)``."""
        faiss = _faiss()
        ids = np.asarray(rows, dtype=np.int64)
        self.index.remove_ids(faiss.IDSelectorBatch(ids))
        self.append(embeddings, ids)

    def to_bytes(self) -> bytes:
        """The faiss index serialised (faiss's own format, not pickle)."""
        faiss = _faiss()
        return faiss.serialize_index(self.index).tobytes()

    @classmethod
    def from_bytes(cls, payload: bytes, stats: IvfStats, dim: int) -> IvfIndex:
        """Rebuild from :meth:`to_bytes`; raises :class:`VmnetError` when it does not fit ``dim``."""
        faiss = _faiss()
        try:
            index = faiss.deserialize_index(np.frombuffer(payload, dtype=np.uint8))
        except RuntimeError as exc:
            raise VmnetError(f"The approximate index cannot be read ({str(exc).splitlines()[0]}); rebuild it "
                             "with `vmnet index --bundle B --approximate`.") from None
        if index.d != dim or not isinstance(index, faiss.IndexIVFFlat):
            raise VmnetError(f"The approximate index is not a {dim}-d IVF-Flat index; rebuild it "
                             "with `vmnet index --bundle B --approximate`.")
        return cls(index, stats)


def default_nlist(rows: int) -> int:
    """Cells for ``rows`` vectors: about 4·√N (faiss's guidance), a power of two, and few enough
    that the k-means sample (at most ``TRAIN_SAMPLE_MAX`` rows) has ``POINTS_PER_CELL`` per cell."""
    nlist = 2 ** round(math.log2(4 * math.sqrt(rows)))
    trainable = 2 ** int(math.log2(max(1, min(rows, TRAIN_SAMPLE_MAX) // POINTS_PER_CELL)))
    return max(16, min(nlist, trainable))


def build_ivf(embeddings: np.ndarray, target_recall: float = 0.95, k: int = 10, nlist: int | None = None,
              sample_queries: int = 200, seed: int = 0) -> IvfIndex:
    """Train and fill an IVF-Flat index over ``embeddings`` ``(N, D)`` (unit rows), tune ``nprobe``.

    ``nprobe`` is the smallest power of two whose recall@``k`` (fraction of the exact top-``k``
    found, each sampled row's own match excluded) reaches ``target_recall``; if none does below
    ``nlist``, it is ``nlist`` (exact up to ties). The measured recall is kept in :attr:`IvfIndex.stats`.
    """
    faiss = _faiss()
    x = np.ascontiguousarray(embeddings, dtype=np.float32)
    rows, dim = x.shape
    if rows < MIN_ROWS:
        raise VmnetError(f"Approximate search needs at least {MIN_ROWS:,} items; this side has {rows:,}, "
                         "and exact search is already fast at that size.")
    if not 0.0 < target_recall <= 1.0:
        raise VmnetError(f"The target recall must be in (0, 1]; got {target_recall}.")
    nlist = default_nlist(rows) if nlist is None else int(nlist)
    if nlist < 1 or rows < nlist * POINTS_PER_CELL:
        raise VmnetError(f"nlist={nlist} needs at least {nlist * POINTS_PER_CELL:,} rows to train; "
                         f"there are {rows:,}.")
    rng = np.random.default_rng(seed)
    train_n = min(rows, max(min(TRAIN_SAMPLE_MAX, nlist * 64), nlist * POINTS_PER_CELL))
    train = x[np.sort(rng.choice(rows, size=train_n, replace=False))]
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = seed
    index.train(train)
    index.add_with_ids(x, np.arange(rows, dtype=np.int64))

    probe_rows = np.sort(rng.choice(rows, size=min(sample_queries, rows), replace=False))
    queries = x[probe_rows]
    truth = _exact_neighbours(x, queries, probe_rows, k)
    nprobe, recall = nlist, 1.0
    for candidate in _powers_of_two_up_to(nlist):
        index.nprobe = candidate
        _, found = index.search(queries, k + 1)
        recall = _recall(found, truth, probe_rows, k)
        if recall >= target_recall:
            nprobe = candidate
            break
    stats = IvfStats(rows=rows, nlist=nlist, nprobe=nprobe, target_recall=float(target_recall),
                     recall=round(float(recall), 4), k=k, sample_queries=len(probe_rows), seed=seed)
    return IvfIndex(index, stats)


def _powers_of_two_up_to(limit: int) -> list[int]:
    values = [2 ** i for i in range(int(math.log2(limit)) + 1)]
    return values if values[-1] == limit else [*values, limit]


def _exact_neighbours(x: np.ndarray, queries: np.ndarray, self_rows: np.ndarray, k: int) -> np.ndarray:
    """``(Q, k)`` exact top-``k`` rows per query, the query's own row excluded."""

    _, rows = top_k_inner_product(x, queries, k + 1)
    return np.stack([_drop_self(r, s, k) for r, s in zip(rows, self_rows, strict=True)])


def _drop_self(rows: np.ndarray, self_row: int, k: int) -> np.ndarray:
    return rows[rows != self_row][:k]


def _recall(found: np.ndarray, truth: np.ndarray, self_rows: np.ndarray, k: int) -> float:
    """Mean fraction of each ``truth`` row's ids among the ``found`` ones (own row excluded)."""
    hits = [len(set(_drop_self(f, s, k).tolist()) & set(t.tolist())) / k
            for f, t, s in zip(found, truth, self_rows, strict=True)]
    return float(np.mean(hits))


def payload_digest(payload: bytes) -> str:
    """sha256 of a serialised index, checked before faiss parses the bytes."""
    return hashlib.sha256(payload).hexdigest()


def stats_json(stats: IvfStats, revision: str, payload: bytes) -> str:
    """The JSON stored next to an index: its stats, the catalog write it belongs to, its digest."""
    record = {**stats.to_dict(), "revision": revision, "index_sha256": payload_digest(payload)}
    return json.dumps(record, indent=2) + "\n"


# --------------------------------------------------------------------------- files beside a catalog side


def _ann_paths(directory: Path, side: str) -> tuple[Path, Path]:
    return directory / f"{side}.ivf", directory / f"{side}.ivf.json"


def save_ann(directory: Path, side: str, ann: IvfIndex | None, revision: str) -> None:
    """Write ``side``'s approximate index tied to ``revision``, or remove a left-over one."""
    index_path, stats_path = _ann_paths(directory, side)
    if ann is None:
        stats_path.unlink(missing_ok=True)
        index_path.unlink(missing_ok=True)
        return
    payload = ann.to_bytes()
    write_file_atomic(index_path, payload)
    write_file_atomic(stats_path, stats_json(ann.stats, revision, payload))


def load_ann(directory: Path, side: str, revision: str | None, dim: int,
              rows: int) -> tuple[float | None, IvfIndex | None]:
    """``(target_recall, index)`` of ``side``: ``(None, None)`` when exact, ``(t, None)`` when stale."""
    index_path, stats_path = _ann_paths(directory, side)
    if not stats_path.exists():
        return None, None
    record = read_json_file(stats_path, f"{side} approximate-index description")
    stats = IvfStats.from_dict(record)
    payload = index_path.read_bytes() if index_path.is_file() else b""
    problem = None
    if record.get("revision") != revision:
        problem = "was built for another version of the catalog (an interrupted save?)"
    elif record.get("index_sha256") != payload_digest(payload):
        problem = "is missing or damaged"
    if problem is None:
        ann = IvfIndex.from_bytes(payload, stats, dim)
        if ann.size == rows:
            return stats.target_recall, ann
        problem = f"holds {ann.size} rows, the catalog {rows}"
    warnings.warn(f"The approximate {side} index in {directory} {problem}; searching exactly until the next "
                  "`vmnet index` rebuilds it.", stacklevel=3)
    return stats.target_recall, None
