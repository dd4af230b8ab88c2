"""The search every front end uses: the network's cosine, optionally fused with the named-cue fit.

With ``cue_weight`` 0 (the paper's ranking, and every bundle made before issue 14) this is
:func:`~vmnet_core.bundle.filtered_search.search_visible`. With a positive weight and known query
cues, the network's best :data:`CUE_POOL` visible items are re-ordered by
:func:`~vmnet_core.bundle.cue_match.fuse` (both scores standardised over that pool); a hit's
``score`` stays its cosine, only the order changes. Items without stored cues get a neutral fit.
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
    pool = search_visible(catalog, query, side, max(k, CUE_POOL) if fused else k, hidden, exact=exact)
    if not fused or len(pool) < 2:
        return pool[:k]
    fits = cue_fit(query_cues, QUERY_SIDE[side], [catalog.item(side, hit.id).cues for hit in pool])
    order = np.argsort(-fuse(np.array([hit.score for hit in pool]), fits, cue_weight), kind="stable")[:k]
    return [dataclasses.replace(pool[i], rank=rank) for rank, i in enumerate(order, start=1)]
