"""How well items' named cues fit a query's, as one number per item, and its fusion with the network.

The cues are placed on the two axes of :mod:`vmnet_core.bundle.explain` (arousal: cut rate, motion,
visual rhythm ↔ tempo, onset rate, loudness; valence: brightness, warmth, colourfulness ↔ mode,
spectral brightness), each side's lean on an axis being the mean of its cue scores (−1 … +1).
Each axis of the items' leans is standardised over the items being ranked (so a catalog whose
tracks all read "loud" on the fixed anchors still spreads from least to most aroused), and the fit
of an item is the mean over the axes of the query's lean times the item's standardised lean: a
fast, bright video fits the catalog's fastest, most major tracks, a slow, dark one its slowest,
most minor ones. (Two other forms were tried on the tuning set of the real-content check and
followed tempo and mood less: the plain product of leans, and one minus their squared gap;
docs/cues.md.) These links are fixed by the research the starter corpus follows (docs/cues.md),
not learned, so they hold on footage the model never saw; the network's score carries everything
else. :func:`fuse` adds the two after standardising each over the candidates, so neither scale dominates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from vmnet_core.bundle.explain import side_scores

AXES = ("arousal", "valence")


def axis_leans(cues: Mapping[str, Any] | None, side: str) -> np.ndarray:
    """``(2,)`` float: the side's lean on arousal and valence (−1 … +1; 0 for a missing axis or cues)."""
    if not cues:
        return np.zeros(len(AXES))
    scores = side_scores(cues, side)
    return np.array([float(np.mean(list(scores[axis].values()))) if scores[axis] else 0.0 for axis in AXES])


def cue_fit(query_cues: Mapping[str, Any] | None, query_side: str,
            item_cues: Sequence[Mapping[str, Any] | None]) -> np.ndarray:
    """``(N,)`` float: how well each item's cues fit the query's (higher fits better).

    ``query_side`` is ``"video"`` (items are tracks) or ``"music"`` (items are videos). Without query
    cues every fit is 0; an item without cues gets the mean fit of the others (no opinion).
    """
    item_side = "music" if query_side == "video" else "video"
    known = np.array([bool(cues) for cues in item_cues], dtype=bool)
    if not known.any() or not query_cues:
        return np.zeros(len(item_cues))
    items = np.stack([axis_leans(cues, item_side) for cues, ok in zip(item_cues, known, strict=True) if ok])
    spread = items.std(axis=0)
    items = (items - items.mean(axis=0)) / np.where(spread > 1e-9, spread, 1.0)  # (M, 2) standardised
    fits = np.zeros(len(item_cues))
    fits[known] = items @ axis_leans(query_cues, query_side) / len(AXES)
    return fits


def _standardised(x: np.ndarray) -> np.ndarray:
    spread = float(x.std())
    return (x - x.mean()) / spread if spread > 1e-12 else np.zeros_like(x)


def fuse(network_scores: np.ndarray, cue_scores: np.ndarray, cue_weight: float) -> np.ndarray:
    """``(N,)`` fused score: the network's scores and ``cue_weight`` × the cue fits, each standardised
    over the N candidates (``cue_weight`` 0 gives the network's order unchanged)."""
    network_scores = np.asarray(network_scores, dtype=np.float64)
    if cue_weight == 0.0 or len(network_scores) < 2:
        return network_scores
    return _standardised(network_scores) + cue_weight * _standardised(np.asarray(cue_scores, dtype=np.float64))
