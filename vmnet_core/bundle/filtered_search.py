"""Catalog search that leaves some items out (e.g. the starter corpus's synthetic training tracks).

The catalog is searched for ``k`` plus the number of hidden items, so the first ``k`` visible
hits are exactly the best ``k`` among the visible items; their ranks are renumbered 1 … k.
A catalog without hidden items costs one ordinary search.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from vmnet_core.bundle.catalog import Catalog, CatalogItem, Hit


def search_visible(catalog: Catalog, query: np.ndarray, side: str, k: int,
                   hidden: Callable[[CatalogItem], bool] | None = None, exact: bool = False) -> list[Hit]:
    """The ``k`` best hits of ``side`` for one ``(dim,)`` query among items for which ``hidden`` is false.

    ``hidden=None`` hides nothing (a plain :meth:`Catalog.search`); ``exact`` skips an approximate index.
    """
    if hidden is None:
        return catalog.search(query, side=side, k=k, exact=exact)
    hidden_ids = {item.id for item in catalog.items(side) if hidden(item)}
    visible = catalog.size(side) - len(hidden_ids)
    if visible <= 0:
        return []
    hits = catalog.search(query, side=side, k=min(catalog.size(side), k + len(hidden_ids)), exact=exact)
    kept = [hit for hit in hits if hit.id not in hidden_ids][:k]
    return [dataclasses.replace(hit, rank=rank) for rank, hit in enumerate(kept, start=1)]


def count_visible(catalog: Catalog, side: str, hidden: Callable[[CatalogItem], bool] | None = None) -> int:
    """How many items of ``side`` a :func:`search_visible` with ``hidden`` can return."""
    if hidden is None:
        return catalog.size(side)
    return sum(1 for item in catalog.items(side) if not hidden(item))
