"""Exposure balancing: per-item offsets that keep any item from taking more than its cap of a bank's top-k lists.

A hub is an item in far more top-k lists than its share ``k / N``, whatever the query. Given a
**bank** of queries like the ones a deployment expects (a few dozen of its users' own videos, or
the batch a user is scoring), this fits one offset per item such that, over the bank, no item is
in the top ``k`` of more than :data:`BALANCE_CAP` of the lists; the offsets are then added to the
ranking scores. Only items above the cap are lowered (offsets ≤ 0, every other item keeps 0), so
the order among the rest is untouched. This is the query-bank idea of QB-Norm (Bogolin et al., CVPR
2022) with the exposure itself as the target: a dual-softmax or CSLS rescaling only shrinks a
hub's pull, this caps it.

The cap only holds for queries like the bank's. Offsets fitted on clips unlike a deployment's
footage can make a hub worse (docs/cues.md measures both cases), and lowering a hub costs some of
the ranking's agreement with the query's tempo.
"""

from __future__ import annotations

import numpy as np

BALANCE_CAP = 0.20  # the share of a bank's top-k lists one item may keep: the hub line 0.25, less a margin
BALANCE_TEMPERATURE = 0.3  # width (ranking-score units) of the soft top-k the offsets are fitted on
BALANCE_STEPS = 600
BALANCE_RATE = 0.5


def soft_top_k_shares(scores: np.ndarray, k: int, temperature: float = BALANCE_TEMPERATURE) -> np.ndarray:
    """``(N,)`` float: each item's smoothed share of the ``k``-best lists of a ``(Q, N)`` score matrix:
    the mean over queries of a sigmoid of its score less the midpoint between the query's ``k``-th
    and ``k+1``-th best score, ``temperature`` wide (``-inf`` scores count as never in)."""
    ordered = -np.sort(-scores, axis=1)
    threshold = (ordered[:, k - 1] + ordered[:, k]) / 2.0
    with np.errstate(over="ignore", invalid="ignore"):
        inside = 1.0 / (1.0 + np.exp(-(scores - threshold[:, None]) / temperature))
    return np.nan_to_num(inside, nan=0.0).mean(axis=0)


def effective_cap(k: int, n_items: int, cap: float = BALANCE_CAP) -> float:
    """The share of the top-``k`` lists over ``n_items`` items that balancing holds each item to:
    ``cap``, or the fair share ``k / n_items`` when the cap is below it."""
    return max(cap, k / n_items)


def balance_offsets(scores: np.ndarray, k: int = 5, cap: float = BALANCE_CAP, temperature: float = BALANCE_TEMPERATURE,
                    steps: int = BALANCE_STEPS, rate: float = BALANCE_RATE) -> np.ndarray:
    """``(N,)`` float64 offsets ≤ 0 for the ``(Q, N)`` ranking scores of a bank of ``Q`` queries over
    ``N`` items (``-inf`` where an item is not a candidate): with them added, no item's smoothed
    top-``k`` share (:func:`soft_top_k_shares`) is above ``max(cap, k / N)`` (the fair share when the
    cap is below it); items at or under the cap keep 0. Gradient-free fixed-point steps: an item
    above the cap is lowered by ``rate`` × the excess, a lowered one under it raised back towards 0.
    Needs ``N > k`` and at least one query; raises ``ValueError`` otherwise."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[0] < 1 or scores.shape[1] <= k:
        raise ValueError(f"balancing needs scores of at least 1 query over more than k={k} items, not {scores.shape}")
    limit = effective_cap(k, scores.shape[1], cap)
    offsets = np.zeros(scores.shape[1])
    for _ in range(steps):
        offsets = np.minimum(0.0, offsets - rate * (soft_top_k_shares(scores + offsets, k, temperature) - limit))
    return offsets
