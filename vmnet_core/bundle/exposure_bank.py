"""Balance a catalog's music on a bank of the videos a deployment expects (``vmnet index --balance-with``).

Each bank video is ranked against the visible music exactly as a query would be
(:func:`~vmnet_core.bundle.ranked_search.fused_pool`, without the old offsets), the offsets that give
every track its share of the bank's top-``k`` lists are fitted
(:func:`~vmnet_core.bundle.exposure.balance_offsets`) and stored on the items, so every later
fused search adds them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vmnet_core.bundle.exposure import balance_offsets
from vmnet_core.bundle.ranked_search import CUE_POOL, fused_pool
from vmnet_core.bundle.track_cues import cues_of_file
from vmnet_core.errors import VmnetError
from vmnet_core.learn.hubness import hubness

MIN_BANK = 10  # usable bank videos below which offsets would follow a handful of clips


@dataclass(frozen=True)
class BalanceResult:
    """What a balance did: over ``bank`` videos and ``tracks`` visible tracks, the largest share of
    the bank's top-``k`` lists one track took before and after, and the offsets' range."""

    bank: int
    tracks: int
    k: int
    max_share_before: float
    max_share_after: float
    offset_range: tuple[float, float]


def balance_music(retriever: Any, videos: Sequence[Path], *, k: int = 5,
                  hidden: Callable[[Any], bool] | None = None,
                  on_error: Callable[[str, str], None] | None = None) -> BalanceResult:
    """Fit and store exposure offsets for the retriever's visible music from ``videos`` (paths);
    hidden tracks, and visible ones outside a query's cue pool, count as not in its list.

    Needs a fused ranking (``retriever.cue_weight`` > 0; the offsets are in its units) and at least
    :data:`MIN_BANK` videos that give an embedding and cues; a video that does not is reported to
    ``on_error(path, sentence)`` and left out. The catalog is changed in memory; the caller saves it.
    """
    if retriever.cue_weight <= 0:
        raise VmnetError("Balancing adjusts the cue-fused order, but this bundle ranks by cosine alone "
                         "(cue weight 0); set one with --cue-weight W first.")
    catalog = retriever.bundle.catalog
    visible = [item.id for item in catalog.items("music") if hidden is None or not hidden(item)]
    if len(visible) <= k:
        raise VmnetError(f"Balancing needs more than {k} visible tracks; the catalog shows {len(visible)}.")
    column = {item_id: j for j, item_id in enumerate(visible)}
    rows = []
    for path in videos:
        try:
            embedding, cues = retriever.embed_video_file(path), cues_of_file(path, "video")
        except VmnetError as exc:
            if on_error:
                on_error(str(path), str(exc))
            continue
        pool, scores = fused_pool(catalog, embedding, "music", query_cues=cues, cue_weight=retriever.cue_weight,
                                  hidden=hidden, pool_size=CUE_POOL, with_offsets=False)
        row = np.full(len(visible), -np.inf)
        row[[column[hit.id] for hit in pool]] = scores
        rows.append(row)
    if len(rows) < MIN_BANK:
        raise VmnetError(f"Balancing needs at least {MIN_BANK} usable videos like the ones this catalog will be "
                         f"asked about; {len(rows)} of {len(videos)} gave an embedding and cues.")
    bank = np.stack(rows)                                   # (Q, N)
    offsets = balance_offsets(bank, k)
    catalog.set_exposure_offsets("music", dict(zip(visible, offsets.tolist(), strict=True)))
    return BalanceResult(len(rows), len(visible), k, hubness(bank, k)["max_share"],
                         hubness(bank + offsets, k)["max_share"], (float(offsets.min()), float(offsets.max())))
