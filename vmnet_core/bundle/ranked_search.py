"""The search every front end uses: the network's cosine, optionally fused with the named-cue fit.

With ``cue_weight`` 0 (the paper's ranking, and every bundle made before issue 14) this is
:func:`~vmnet_core.bundle.filtered_search.search_visible`. With a positive weight and known query
cues, the network's best :data:`CUE_POOL` visible items are re-ordered by
:func:`~vmnet_core.bundle.cue_match.fuse` (both scores standardised over that pool) plus each
item's ``exposure_offset`` (0 unless the catalog was balanced on a query bank,
:mod:`vmnet_core.bundle.exposure`); a hit's ``score`` stays its cosine, only the order changes.
Items without stored cues get a neutral fit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from vmnet_core.bundle.catalog import Catalog, CatalogItem, Hit
from vmnet_core.bundle.cue_match import cue_fit, fuse
from vmnet_core.bundle.filtered_search import search_visible
from vmnet_core.bundle.track_cues import QUERY_SIDE

CUE_POOL = 500  # network candidates the cue fit may re-order (the whole catalog up to this size)


def ranked_search(catalog: Catalog, query: np.ndarray, side: str, k: int, *,
                  hidden: Callable[[CatalogItem], bool] | None = None, exact: bool = False,
                  query_cues: Mapping[str, Any] | None = None, cue_weight: float = 0.0) -> list[Hit]:
    """The ``k`` best visible hits of ``side`` for one ``(dim,)`` query embedding, best first.

    ``query_cues``: the query's named cues (the other side's, ``track_cues.cues_of_file``);
    ``cue_weight``: the bundle's ``ranking.cue_weight`` (0: cosine order only).
    """
    fused = cue_weight > 0 and bool(query_cues)
    if not fused:
        return search_visible(catalog, query, side, k, hidden, exact=exact)
    pool, scores = fused_pool(catalog, query, side, hidden=hidden, exact=exact, query_cues=query_cues,
                              cue_weight=cue_weight, pool_size=max(k, CUE_POOL))
    order = np.argsort(-scores, kind="stable")[:k]
    return [dataclasses.replace(pool[i], rank=rank) for rank, i in enumerate(order, start=1)]


def fused_pool(catalog: Catalog, query: np.ndarray, side: str, *, query_cues: Mapping[str, Any],
               cue_weight: float, hidden: Callable[[CatalogItem], bool] | None = None, exact: bool = False,
               pool_size: int = CUE_POOL, with_offsets: bool = True) -> tuple[list[Hit], np.ndarray]:
    """The network's best ``pool_size`` visible hits of ``side`` (cosine order) and their ``(P,)``
    fused ranking scores: :func:`~vmnet_core.bundle.cue_match.fuse` of cosine and cue fit, plus each
    item's ``exposure_offset`` unless ``with_offsets`` is False (what balancing fits them on)."""
    pool = search_visible(catalog, query, side, pool_size, hidden, exact=exact)
    if len(pool) < 2:
        return pool, np.array([hit.score for hit in pool], dtype=np.float64)
    items = [catalog.item(side, hit.id) for hit in pool]
    fits = cue_fit(query_cues, QUERY_SIDE[side], [item.cues for item in items])
    scores = fuse(np.array([hit.score for hit in pool]), fits, cue_weight)
    if with_offsets:
        scores = scores + np.array([item.exposure_offset for item in items])
    return pool, scores
