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


HUB_SHARE = 0.25  # issue 14's line: an item in the top k of more than this share of queries is a hub


def hubness_report(em: np.ndarray, ev: np.ndarray, k: int = 5) -> dict[str, object]:
    """Hubness of both retrieval directions over paired ``(N, E)`` music and video embeddings.

    Returns ``{"k", "queries": N, "hub_share": 0.25, "video_to_music": {"max_share",
    "k_occurrence_skewness", "hubs"}, "music_to_video": {...}}`` where ``hubs`` counts gallery
    items in the top ``k`` of more than ``hub_share`` of the queries (the metrics.json block).
    """
    em, ev = np.asarray(em, np.float64), np.asarray(ev, np.float64)
    report: dict[str, object] = {"k": min(k, em.shape[0]), "queries": int(em.shape[0]), "hub_share": HUB_SHARE}
    for direction, sim in (("video_to_music", ev @ em.T), ("music_to_video", em @ ev.T)):
        stats = hubness(sim, k)
        report[direction] = {"max_share": stats["max_share"], "k_occurrence_skewness": stats["k_occurrence_skewness"],
                             "hubs": int(sum(share > HUB_SHARE for share in stats["share_in_top_k"]))}
    return report


def hubness_line(report: dict | None) -> str | None:
    """One Markdown/text line for a model card or ``vmnet evaluate`` (``None`` without a report)."""
    if not report:
        return None
    parts = [f"{direction.replace('_to_', ' → ')}: most frequent item in {100 * report[direction]['max_share']:.0f}% "
             f"of top-{report['k']} lists, {report[direction]['hubs']} hub(s), "
             f"skewness {report[direction]['k_occurrence_skewness']:.2f}"
             for direction in ("video_to_music", "music_to_video")]
    return (f"hubness over {report['queries']} test queries (a hub: in more than "
            f"{100 * report['hub_share']:.0f}% of top-{report['k']} lists): " + "; ".join(parts))
