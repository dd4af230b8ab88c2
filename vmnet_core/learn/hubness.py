"""Hubness of a retrieval side: how often each item turns up in the queries' top K.

A hub is an item in the top K of many different queries (Radovanović et al. 2010); issue 14's
target: no track in the top 5 of more than a quarter of varied queries.
"""

from __future__ import annotations

import numpy as np
import scipy.stats

from vmnet_core.errors import VmnetError


def hubness(sim: np.ndarray, k: int = 5) -> dict[str, float | list[float]]:
    """K-occurrence statistics of similarities ``sim`` ``(Q, G)`` (queries × catalog items).

    Returns ``{"k", "share_in_top_k" (G,) list: share of queries whose top k holds item g,
    "max_share", "k_occurrence_skewness"}`` (skewness of the per-item counts; 0 for none).
    """
    sim = np.asarray(sim, np.float64)
    if sim.ndim != 2 or sim.shape[0] == 0 or sim.shape[1] == 0:
        raise VmnetError(f"Similarities must be a non-empty (queries, items) matrix, not shape {sim.shape}.")
    k = min(k, sim.shape[1])
    top = np.argpartition(-sim, k - 1, axis=1)[:, :k]                # (Q, k)
    counts = np.bincount(top.ravel(), minlength=sim.shape[1])        # (G,)
    share = counts / sim.shape[0]
    skew = float(scipy.stats.skew(counts)) if counts.std() > 0 else 0.0
    return {"k": k, "share_in_top_k": share.tolist(), "max_share": float(share.max()),
            "k_occurrence_skewness": skew}
