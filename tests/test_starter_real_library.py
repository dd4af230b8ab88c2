"""Sensible on the real library: clips at the extremes of the starter's factors (fast, bright, warm,
busy versus slow, dark, cool, calm) pull the real immich-memories-music tracks the right way.

The tiny bundle is trained on procedural clips only; here its video branch meets new generated
clips and its music catalog holds 28 real tracks it never saw. The directions asserted are the
ones the starter corpus encodes (docs/starter-corpus.md): arousal and valence of the pictures ↔
the tracks' labelled mood and tempo.
"""

from __future__ import annotations

import numpy as np
import pytest

from vmnet_core.bundle import load_bundle
from vmnet_core.starter.factors import extreme_factors
from vmnet_core.starter.probe import AROUSED_MOODS, CALM_MOODS, library_embeddings, probe_library

CLIPS_PER_POLE = 6


@pytest.fixture(scope="module")
def probes(tiny_bundle, tmp_path_factory):
    """Top-5 real tracks for CLIPS_PER_POLE 'high' and as many 'low' clips (pictures only)."""
    bundle = load_bundle(tiny_bundle)
    rng = np.random.default_rng(2024)
    factors = {pole: [extreme_factors(pole, rng) for _ in range(CLIPS_PER_POLE)] for pole in ("high", "low")}
    out = tmp_path_factory.mktemp("probes")
    return {pole: probe_library(bundle, factors[pole], out / pole, k=5, seed=500 if pole == "high" else 900)
            for pole in ("high", "low")}


def _mean_share(results, moods) -> float:
    return float(np.mean([r.mood_share(moods) for r in results]))


def test_the_probe_ranks_only_the_28_library_tracks(tiny_bundle, probes):
    _, items = library_embeddings(load_bundle(tiny_bundle))
    assert len(items) == 28
    for result in probes["high"] + probes["low"]:
        assert len(result.top) == 5 and all(item.id.startswith("library-") for item in result.top)


def test_energetic_and_happy_tracks_lean_to_fast_bright_clips(probes):
    high, low = _mean_share(probes["high"], AROUSED_MOODS), _mean_share(probes["low"], AROUSED_MOODS)
    assert high > low, f"energetic/happy share of the top-5: high clips {high:.2f}, low clips {low:.2f}"


def test_calm_tender_nostalgic_tracks_lean_to_slow_dark_clips(probes):
    high, low = _mean_share(probes["high"], CALM_MOODS), _mean_share(probes["low"], CALM_MOODS)
    assert low > high, f"calm/tender/nostalgic share of the top-5: low clips {low:.2f}, high clips {high:.2f}"


def test_fast_clips_get_faster_labelled_tracks(probes):
    high = np.mean([r.mean_tempo_bpm for r in probes["high"]])
    low = np.mean([r.mean_tempo_bpm for r in probes["low"]])
    assert high > low, f"mean labelled tempo of the top-5: high clips {high:.0f} BPM, low clips {low:.0f} BPM"
