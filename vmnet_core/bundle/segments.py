"""The segment rows of one catalog side: several embeddings per item, each with its time span.

A long track (or video) is described by overlapping windows (:mod:`vmnet_core.features.windows`);
each window is one *segment* row: a unit embedding ``(D,)``, the catalog row of its item, and its
``[start_s, end_s]`` in the item's media. Segments are kept sorted by item row, so an item's
segments are one contiguous block and "the best segment of every item" is one
``np.maximum.reduceat`` over the score row. An item indexed without windows has one segment, its
own embedding, with an unknown span (``NaN``).

Search ranks *items* by their best segment: exact (:meth:`SegmentTable.top_items`) or from an
approximate index's segment candidates (:func:`items_from_candidates`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vmnet_core.bundle.exact_search import top_k_of_scores


@dataclass(frozen=True)
class ItemSegments:
    """The windows of one item: ``embeddings`` ``(W, D)``, ``starts`` / ``ends`` ``(W,)`` seconds."""

    embeddings: np.ndarray
    starts: np.ndarray
    ends: np.ndarray

    def __post_init__(self) -> None:
        emb = np.atleast_2d(np.asarray(self.embeddings, dtype=np.float32))
        starts = np.asarray(self.starts, dtype=np.float32).reshape(-1)
        ends = np.asarray(self.ends, dtype=np.float32).reshape(-1)
        if emb.ndim != 2 or not len(emb) == len(starts) == len(ends):
            raise ValueError(f"segments need as many starts and ends as embeddings; got {emb.shape}, "
                             f"{starts.shape}, {ends.shape}")
        object.__setattr__(self, "embeddings", emb)
        object.__setattr__(self, "starts", starts)
        object.__setattr__(self, "ends", ends)


@dataclass(frozen=True)
class SegmentMatch:
    """An item's best segment for a query: its score and span (``None`` when the span is unknown)."""

    score: float
    start_s: float | None
    end_s: float | None


def _span(value: float) -> float | None:
    return None if not np.isfinite(value) else round(float(value), 3)


class SegmentTable:
    """Sorted segment rows: ``embeddings`` (S, D) unit float32, ``rows`` (S,) int64 item rows,
    ``starts`` / ``ends`` (S,) float32 seconds (NaN: unknown)."""

    def __init__(self, embeddings: np.ndarray, rows: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> None:
        self.embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
        self.rows = np.asarray(rows, dtype=np.int64)
        self.starts = np.asarray(starts, dtype=np.float32)
        self.ends = np.asarray(ends, dtype=np.float32)
        self._sort()

    @classmethod
    def one_per_row(cls, embeddings: np.ndarray) -> SegmentTable:
        """Each item row its own single segment with an unknown span."""
        n = len(embeddings)
        nan = np.full(n, np.nan, np.float32)
        return cls(np.array(embeddings, dtype=np.float32), np.arange(n), nan, nan.copy())

    def __len__(self) -> int:
        return len(self.rows)

    def _sort(self) -> None:
        if len(self.rows) > 1 and np.any(np.diff(self.rows) < 0):
            order = np.argsort(self.rows, kind="stable")
            self.embeddings, self.rows = self.embeddings[order], self.rows[order]
            self.starts, self.ends = self.starts[order], self.ends[order]
        self._bounds = np.flatnonzero(np.r_[True, self.rows[1:] != self.rows[:-1]]) if len(self.rows) else \
            np.zeros(0, np.int64)

    def check_covers(self, n_rows: int) -> bool:
        """Whether every item row ``0 … n_rows − 1`` has at least one segment and no other row appears."""
        return len(self._bounds) == n_rows and bool(np.array_equal(self.rows[self._bounds], np.arange(n_rows)))

    # ---- changes
    def append(self, first_row: int, segments: list[ItemSegments]) -> tuple[np.ndarray, np.ndarray]:
        """Add the segments of new item rows ``first_row, first_row + 1, …`` (after every existing row).

        Returns the new block ``(n, D)`` and its segment numbers ``(n,)`` (for an approximate index).
        """
        block = np.concatenate([s.embeddings for s in segments])
        rows = np.concatenate([np.full(len(s.starts), first_row + i) for i, s in enumerate(segments)])
        numbers = np.arange(len(self.rows), len(self.rows) + len(block))
        self.embeddings = np.concatenate([self.embeddings, block])
        self.rows = np.concatenate([self.rows, rows])
        self.starts = np.concatenate([self.starts, *[s.starts for s in segments]])
        self.ends = np.concatenate([self.ends, *[s.ends for s in segments]])
        self._sort()
        return block, numbers

    def replace_rows(self, replaced: dict[int, ItemSegments]) -> None:
        """Swap the segments of existing item rows for new ones."""
        keep = ~np.isin(self.rows, np.fromiter(replaced, dtype=np.int64))
        parts = list(replaced.items())
        self.embeddings = np.concatenate([self.embeddings[keep], *[s.embeddings for _, s in parts]])
        self.rows = np.concatenate([self.rows[keep], *[np.full(len(s.starts), r) for r, s in parts]])
        self.starts = np.concatenate([self.starts[keep], *[s.starts for _, s in parts]])
        self.ends = np.concatenate([self.ends[keep], *[s.ends for _, s in parts]])
        self._sort()

    def remove_rows(self, kept_rows: np.ndarray, n_rows: int) -> None:
        """Keep only the segments of the item rows ``kept_rows`` (old numbers, increasing), renumbered 0…"""
        new_number = np.full(n_rows, -1, np.int64)
        new_number[kept_rows] = np.arange(len(kept_rows))
        mapped = new_number[self.rows]
        keep = mapped >= 0
        self.embeddings, self.rows = self.embeddings[keep], mapped[keep]
        self.starts, self.ends = self.starts[keep], self.ends[keep]
        self._sort()

    # ---- search
    def item_scores(self, sims: np.ndarray) -> np.ndarray:
        """``(Q, S)`` segment scores → ``(Q, N)`` each item's best segment score."""
        return np.maximum.reduceat(sims, self._bounds, axis=1)

    def best_segment(self, sims_row: np.ndarray, row: int) -> int:
        """The segment number of item ``row`` with the highest score in ``sims_row`` ``(S,)``."""
        lo = self._bounds[row]
        hi = self._bounds[row + 1] if row + 1 < len(self._bounds) else len(self.rows)
        return int(lo + np.argmax(sims_row[lo:hi]))

    def top_items(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Exact top-``k`` items by best segment for ``queries`` ``(Q, D)`` unit rows.

        Returns ``(Q, k)`` float32 scores, int64 item rows and int64 segment numbers, best first.
        """
        sims = queries @ self.embeddings.T  # (Q, S)
        scores, rows = top_k_of_scores(self.item_scores(sims), k)
        segments = np.array([[self.best_segment(sims[q], r) for r in rows[q]] for q in range(len(rows))],
                            dtype=np.int64).reshape(rows.shape)
        return scores, rows, segments

    def match(self, segment: int) -> tuple[float | None, float | None]:
        """``(start_s, end_s)`` of a segment number (``None`` when unknown)."""
        return _span(self.starts[segment]), _span(self.ends[segment])

    def best_match(self, query: np.ndarray, row: int) -> SegmentMatch:
        """The best segment of item ``row`` for one ``(D,)`` unit query."""
        sims = self.embeddings @ np.asarray(query, dtype=np.float32)  # (S,)
        best = self.best_segment(sims, row)
        return SegmentMatch(float(sims[best]), *self.match(best))


def items_from_candidates(scores: np.ndarray, segments: np.ndarray, segment_rows: np.ndarray,
                          k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best-first segment candidates of one query → its top-``k`` items (first = best segment of each).

    ``scores`` / ``segments`` ``(M,)`` as an approximate index returns them (``-1``: none).
    Returns ``(n,)`` scores, item rows and segment numbers with ``n ≤ k`` distinct items.
    """
    seen: dict[int, int] = {}
    for position, segment in enumerate(segments.tolist()):
        if segment < 0:
            continue
        row = int(segment_rows[segment])
        if row not in seen:
            seen[row] = position
            if len(seen) == k:
                break
    picked = np.fromiter(seen.values(), dtype=np.int64, count=len(seen))
    return (scores[picked].astype(np.float32), np.fromiter(seen.keys(), dtype=np.int64, count=len(seen)),
            segments[picked].astype(np.int64))
