"""Hubness of a retrieval side: how often each item turns up in the queries' top K.

A hub is an item in the top K of many different queries (Radovanović et al. 2010); issue 14's
line: no track in the top 5 of more than a quarter of varied queries. On a small gallery that line
is below chance: lists with no hub at all, each query's K items drawn at random, put their most
frequent item in more than a quarter of 60 lists over 28 items 86 % of the time
(:func:`chance_max_share`). An item is therefore counted as a hub only above both lines.
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


HUB_SHARE = 0.25        # issue 14's line: an item in the top k of more than this share of queries is a hub
CHANCE_QUANTILE = 0.95  # ... and in more than hub-free random lists put their most frequent item this often


def chance_max_share(n_queries: int, n_items: int, k: int = 5, quantile: float = CHANCE_QUANTILE) -> float:
    """The largest top-``k`` share that lists with no hub reach: the ``quantile`` of the most
    frequent item's share when each of ``n_queries`` lists holds ``k`` of ``n_items`` items at random.

    Each item's count is then Binomial(n_queries, k / n_items); the largest of ``n_items`` such
    counts is taken as if they were independent (their fixed total makes the true largest a
    little smaller, so this errs towards a higher line). E.g. 60 queries, 28 items, k = 5: 0.333
    (20 lists) at 0.95, 0.283 at 0.5.
    """
    if n_queries < 1 or n_items < 1 or k < 1 or not 0.0 < quantile < 1.0:
        raise VmnetError(f"Chance hubness needs queries, items and k ≥ 1 and a quantile in (0, 1), not "
                         f"{n_queries}, {n_items}, {k}, {quantile}.")
    counts = np.arange(n_queries + 1)
    largest_cdf = scipy.stats.binom.cdf(counts, n_queries, min(k, n_items) / n_items) ** n_items  # P(max ≤ c)
    return int(np.searchsorted(largest_cdf, quantile)) / n_queries


def hubness_report(em: np.ndarray, ev: np.ndarray, k: int = 5) -> dict[str, object]:
    """Hubness of both retrieval directions over paired ``(N, E)`` music and video embeddings.

    Returns ``{"k", "queries": N, "chance_max_share", "hub_share", "video_to_music": {"max_share",
    "k_occurrence_skewness", "hubs"}, "music_to_video": {...}}`` (the metrics.json block):
    ``chance_max_share`` is :func:`chance_max_share` for N × N, ``hub_share`` the larger of it and
    :data:`HUB_SHARE`, and ``hubs`` counts gallery items in the top ``k`` of more than ``hub_share``
    of the queries.
    """
    em, ev = np.asarray(em, np.float64), np.asarray(ev, np.float64)
    stats = {direction: hubness(sim, k) for direction, sim in (("video_to_music", ev @ em.T),
                                                                ("music_to_video", em @ ev.T))}
    n = int(em.shape[0])
    chance = chance_max_share(n, n, k)
    report: dict[str, object] = {"k": min(k, n), "queries": n, "chance_max_share": chance,
                                 "hub_share": max(HUB_SHARE, chance)}
    for direction, found in stats.items():
        report[direction] = {"max_share": found["max_share"], "k_occurrence_skewness": found["k_occurrence_skewness"],
                             "hubs": int(sum(share > report["hub_share"] for share in found["share_in_top_k"]))}
    return report


def hubness_line(report: dict | None) -> str | None:
    """One Markdown/text line for a model card or ``vmnet evaluate`` (``None`` without a report)."""
    if not report:
        return None
    parts = [f"{direction.replace('_to_', ' → ')}: most frequent item in {100 * report[direction]['max_share']:.0f}% "
             f"of top-{report['k']} lists, {report[direction]['hubs']} hub(s), "
             f"skewness {report[direction]['k_occurrence_skewness']:.2f}"
             for direction in ("video_to_music", "music_to_video")]
    rule = f"{100 * report['hub_share']:.0f}% of top-{report['k']} lists"
    if "chance_max_share" in report:  # reports written before the chance line have only the 25 %
        rule += (f": the larger of 25% and the {100 * report['chance_max_share']:.0f}% that lists with no hub "
                 f"pass 1 time in 20")
    return f"hubness over {report['queries']} test queries (a hub: in more than {rule}): " + "; ".join(parts)
