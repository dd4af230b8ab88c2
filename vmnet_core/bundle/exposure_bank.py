"""Exposure balancing against a bank of queries: stored on a catalog (``vmnet index --balance-with``)
or fitted on a batch itself (``vmnet query --video DIR --spread``).

Each bank query is ranked against the visible items exactly as a query would be
(:func:`~vmnet_core.bundle.ranked_search.fused_pool`, without the stored offsets), then the offsets
that keep any item from more than its cap of the bank's top-``k`` lists are fitted
(:func:`~vmnet_core.bundle.exposure.balance_offsets`): stored on the items, so every later fused
search adds them, or added to the batch's own rankings.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vmnet_core.bundle.catalog import Catalog, Hit
from vmnet_core.bundle.exposure import balance_offsets, effective_cap
from vmnet_core.bundle.ranked_search import CUE_POOL, fused_pool
from vmnet_core.bundle.track_cues import cues_of_file
from vmnet_core.errors import VmnetError
from vmnet_core.learn.hubness import hubness

MIN_BANK = 10  # usable bank queries below which offsets would follow a handful of clips
BALANCE_K = 5  # the list length balanced: the hub share's top 5

Query = tuple[np.ndarray, Mapping[str, Any]]  # a (512,) embedding and the query's named cues


@dataclass(frozen=True)
class BalanceResult:
    """What a balance did: over ``bank`` videos and ``tracks`` visible tracks, the share of the bank's
    top-``k`` lists each track was held to (``cap``), the largest share one track took before and
    after, how many tracks were lowered and the lowest offset (≤ 0)."""

    bank: int
    tracks: int
    k: int
    cap: float
    max_share_before: float
    max_share_after: float
    lowered: int
    lowest_offset: float


@dataclass(frozen=True)
class BankScores:
    """A bank ranked against one side's N visible items: each query's cue pool (``pools``, network
    order) with its hits' columns among the N (``columns``, ``(P,)`` int each) and the ``(Q, N)``
    fused ``scores`` without offsets (``-inf`` for an item outside a query's pool)."""

    pools: list[list[Hit]]
    columns: list[np.ndarray]
    scores: np.ndarray


def require_balanceable(retriever: Any) -> None:
    """Raise a :class:`VmnetError` when the retriever ranks by cosine alone (offsets are in fused units)."""
    if retriever.cue_weight <= 0:
        raise VmnetError("Balancing adjusts the cue-fused order, but this bundle ranks by cosine alone "
                         "(cue weight 0); set one with --cue-weight W first.")


def visible_ids(catalog: Catalog, side: str, hidden: Callable[[Any], bool] | None, k: int = BALANCE_K) -> list[str]:
    """The ids of ``side``'s items not ``hidden``; a :class:`VmnetError` when there are ``k`` or fewer."""
    ids = [item.id for item in catalog.items(side) if hidden is None or not hidden(item)]
    if len(ids) <= k:
        raise VmnetError(f"Sharing out the top-{k} lists needs more than {k} visible {side} items; the catalog "
                         f"shows {len(ids)}.")
    return ids


def rank_bank(retriever: Any, side: str, queries: Sequence[Query], ids: list[str], *,
              hidden: Callable[[Any], bool] | None = None, exact: bool = False, pool_size: int = CUE_POOL
              ) -> BankScores:
    """Each of ``queries`` ranked against ``side``'s visible items ``ids`` as a fused search ranks it
    (``exact``: exact search even where the catalog side is approximate)."""
    catalog = retriever.bundle.catalog
    column = {item_id: j for j, item_id in enumerate(ids)}
    pools, columns, rows = [], [], []
    for embedding, cues in queries:
        pool, scores = fused_pool(catalog, embedding, side, query_cues=cues, cue_weight=retriever.cue_weight,
                                  hidden=hidden, exact=exact, pool_size=pool_size, with_offsets=False)
        where = np.array([column[hit.id] for hit in pool], dtype=np.int64)
        row = np.full(len(ids), -np.inf)
        row[where] = scores
        pools.append(pool)
        columns.append(where)
        rows.append(row)
    return BankScores(pools, columns, np.stack(rows))


def require_bank_size(usable: int, given: int, what: str) -> None:
    """A :class:`VmnetError` when fewer than :data:`MIN_BANK` of ``given`` files were usable."""
    if usable < MIN_BANK:
        raise VmnetError(f"{what} needs at least {MIN_BANK} usable files, so that it does not follow a handful of "
                         f"clips; {usable} of {given} gave an embedding and named cues.")


def balance_music(retriever: Any, videos: Sequence[Path], *, hidden: Callable[[Any], bool] | None = None,
                  on_error: Callable[[str, str], None] | None = None) -> BalanceResult:
    """Fit and store exposure offsets for the retriever's visible music from ``videos`` (paths);
    hidden tracks, and visible ones outside a query's cue pool, count as not in its list.

    Needs a fused ranking (``retriever.cue_weight`` > 0; the offsets are in its units) and at least
    :data:`MIN_BANK` videos that give an embedding and cues; a video that does not is reported to
    ``on_error(path, sentence)`` and left out. The catalog is changed in memory; the caller saves it.
    """
    require_balanceable(retriever)
    ids = visible_ids(retriever.bundle.catalog, "music", hidden)
    queries = []
    for path in videos:
        try:
            queries.append((retriever.embed_video_file(path), cues_of_file(path, "video")))
        except VmnetError as exc:
            if on_error:
                on_error(str(path), str(exc))
    require_bank_size(len(queries), len(videos), "Balancing")
    bank = rank_bank(retriever, "music", queries, ids, hidden=hidden).scores  # (Q, N)
    offsets = balance_offsets(bank, BALANCE_K)
    retriever.bundle.catalog.set_exposure_offsets("music", dict(zip(ids, offsets.tolist(), strict=True)))
    return BalanceResult(len(queries), len(ids), BALANCE_K, effective_cap(BALANCE_K, len(ids)),
                         hubness(bank, BALANCE_K)["max_share"],
                         hubness(bank + offsets, BALANCE_K)["max_share"], int((offsets < 0).sum()),
                         float(offsets.min()))


def spread_over_batch(retriever: Any, side: str, queries: Sequence[Query], top: int, *, given: int | None = None,
                      hidden: Callable[[Any], bool] | None = None, exact: bool = False) -> list[list[Hit]]:
    """Per query (same order), its ``top`` best visible hits of ``side``, with exposure offsets fitted
    on the batch itself in place of any stored ones: no item in more than
    :data:`~vmnet_core.bundle.exposure.BALANCE_CAP` of the batch's top-5 lists. Needs a fused ranking
    and at least :data:`MIN_BANK` queries (of ``given`` files, for the message)."""
    require_balanceable(retriever)
    require_bank_size(len(queries), given or len(queries), "--spread")
    ids = visible_ids(retriever.bundle.catalog, side, hidden)
    bank = rank_bank(retriever, side, queries, ids, hidden=hidden, exact=exact, pool_size=max(top, CUE_POOL))
    spread = bank.scores + balance_offsets(bank.scores, BALANCE_K)
    ranked = []
    for pool, where, row in zip(bank.pools, bank.columns, spread, strict=True):
        order = np.argsort(-row[where], kind="stable")[:top]
        ranked.append([dataclasses.replace(pool[i], rank=rank) for rank, i in enumerate(order, start=1)])
    return ranked
