"""Exact top-k search by inner product in numpy: the catalog's default and the index's yardstick."""

from __future__ import annotations

import numpy as np


def top_k_inner_product(embeddings: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` rows of ``embeddings`` by inner product with each query, with numpy.

    Parameters
    ----------
    embeddings : (N, D) float32
    queries : (Q, D) float32
    k : int, 1 <= k <= N

    Returns
    -------
    scores : (Q, k) float32, descending per row (ties broken by lower row index)
    rows : (Q, k) int64 row indices into ``embeddings``
    """
    return top_k_of_scores(queries @ embeddings.T, k)  # (Q, N) scores


def top_k_of_scores(sims: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` highest entries of each row of ``sims`` ``(Q, N)``: ``(Q, k)`` scores and int64
    columns, descending per row (ties broken by lower column), ``1 <= k <= N``."""
    n = sims.shape[1]
    if k < n:
        part = np.argpartition(-sims, k - 1, axis=1)[:, :k]  # (Q, k) unordered top-k
    else:
        part = np.broadcast_to(np.arange(n), sims.shape).copy()
    part_scores = np.take_along_axis(sims, part, axis=1)
    order = np.lexsort((part, -part_scores), axis=1)  # primary: score desc, secondary: row asc
    rows = np.take_along_axis(part, order, axis=1).astype(np.int64)
    return np.take_along_axis(sims, rows, axis=1), rows
