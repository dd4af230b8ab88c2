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
else.

Beside the two axes, the **pulse** (:mod:`vmnet_core.features.pulse`): does the music repeat at
the video's cut period (a shot of 1, 2 or 4 beats)? It tells apart tracks of the same mood at
different tempi, which the axes cannot, and so spreads clips of different tempi over different
tracks (on the real-content check's tuning set the largest top-5 share fell from 0.53 to 0.33).
:func:`cue_fit` is the standardised mood fit plus :data:`PULSE_SHARE` × the centred pulse fit;
:func:`fuse` adds the standardised network score and ``cue_weight`` × that, so with the default
weight 2 the network, the mood axes and the pulse count 1 : 2 : 4 (chosen on the tuning set,
docs/cues.md). Cues stored before the pulse have no profile: the pulse then has no opinion and
the fit is the mood fit alone, as before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from vmnet_core.bundle.explain import rhythm_period_s, side_scores
from vmnet_core.features.pulse import pulse_fit

AXES = ("arousal", "valence")
PULSE_SHARE = 2.0  # weight of the centred pulse fit beside the standardised mood fit in cue_fit


def axis_leans(cues: Mapping[str, Any] | None, side: str) -> np.ndarray:
    """``(2,)`` float: the side's lean on arousal and valence (−1 … +1; 0 for a missing axis or cues)."""
    if not cues:
        return np.zeros(len(AXES))
    scores = side_scores(cues, side)
    return np.array([float(np.mean(list(scores[axis].values()))) if scores[axis] else 0.0 for axis in AXES])


def mood_fit(query_cues: Mapping[str, Any] | None, query_side: str,
             item_cues: Sequence[Mapping[str, Any] | None]) -> np.ndarray:
    """``(N,)`` float: how well each item's leans on the two axes fit the query's (higher fits better).

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


def pulse_fits(query_cues: Mapping[str, Any] | None, query_side: str,
               item_cues: Sequence[Mapping[str, Any] | None]) -> np.ndarray:
    """``(N,)`` float: :func:`~vmnet_core.features.pulse.pulse_fit` of each (video, music) pair, the
    query being either side. Items with no opinion (no profile or no rhythm) get the mean of the
    others; all zeros when none has one (or the query has none)."""
    if not query_cues:
        return np.zeros(len(item_cues))
    if query_side == "video":
        period = rhythm_period_s(query_cues)
        raw = [pulse_fit(period, cues.get("pulse_profile")) if cues and period else None for cues in item_cues]
    else:
        profile = query_cues.get("pulse_profile")
        raw = [pulse_fit(rhythm_period_s(cues), profile) if profile else None for cues in item_cues]
    known = [value for value in raw if value is not None]
    if not known:
        return np.zeros(len(item_cues))
    typical = float(np.mean(known))
    return np.array([typical if value is None else value for value in raw])


def cue_fit(query_cues: Mapping[str, Any] | None, query_side: str,
            item_cues: Sequence[Mapping[str, Any] | None]) -> np.ndarray:
    """``(N,)`` float in standard units: the standardised :func:`mood_fit` plus :data:`PULSE_SHARE` ×
    the :func:`pulse_fits` less their mean over the ``N`` items (higher fits better; all 0 without
    query cues). The pulse is centred, not rescaled: its values already have a fixed scale (the
    music's own periodicity in standard deviations), so candidates none of which is on the beat
    differ little and leave the order to the mood, however few they are."""
    pulses = pulse_fits(query_cues, query_side, item_cues)
    return standardised(mood_fit(query_cues, query_side, item_cues)) + PULSE_SHARE * (pulses - pulses.mean())


def standardised(x: np.ndarray) -> np.ndarray:
    """``x`` ``(N,)`` less its mean, over its standard deviation (all zeros when it is flat)."""
    spread = float(x.std())
    return (x - x.mean()) / spread if spread > 1e-12 else np.zeros_like(x)


def fuse(network_scores: np.ndarray, cue_scores: np.ndarray, cue_weight: float) -> np.ndarray:
    """``(N,)`` fused score: the network's scores standardised over the N candidates plus
    ``cue_weight`` × :func:`cue_fit`'s (already in standard units; ``cue_weight`` 0 gives the
    network's order unchanged)."""
    network_scores = np.asarray(network_scores, dtype=np.float64)
    if cue_weight == 0.0 or len(network_scores) < 2:
        return network_scores
    return standardised(network_scores) + cue_weight * np.asarray(cue_scores, dtype=np.float64)
