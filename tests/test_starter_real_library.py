"""Sensible on the real library: clips at the extremes of the starter's factors (fast, bright, warm,
busy versus slow, dark, cool, calm) should pull the real immich-memories-music tracks the right way.

The tiny bundle is trained on procedural clips only; here its video branch meets new generated
clips, ranked against (a) the 28 real tracks it never saw and (b) the corpus's own tracks. On (b)
the direction holds: the model learned the corpus's cross-modal mapping. On (a) it does not hold
today, and the tests say so (xfail) instead of hiding it: the music branch maps the real
recordings into one tight cluster (mean pairwise cosine about 0.65, against about 0.1 for corpus
tracks), so which real track wins barely depends on the query. Measured figures and the analysis
are in docs/starter-corpus.md ("Sensible on the real library?").
"""

from __future__ import annotations

import numpy as np
import pytest

from vmnet_core.bundle import load_bundle
from vmnet_core.starter.factors import extreme_factors
from vmnet_core.starter.probe import AROUSED_MOODS, CALM_MOODS, library_embeddings, probe_library

CLIPS_PER_POLE = 6
NOT_YET = pytest.mark.xfail(
    strict=False,
    reason="Measured: tiny bundle, energetic/happy share of the top-5 real tracks 0.27 for 'high' clips "
           "vs 0.37 for 'low' ones, mean labelled tempo 93 vs 98 BPM; default bundle 0.44 vs 0.42, "
           "104 vs 100 BPM (10 + 10 clips). Synthetic training music does not transfer to real "
           "recordings yet.")


@pytest.fixture(scope="module")
def probes(tiny_bundle, tmp_path_factory):
    """Top-5 tracks for CLIPS_PER_POLE 'high' and as many 'low' clips (pictures only)."""
    bundle = load_bundle(tiny_bundle)
    rng = np.random.default_rng(2024)
    factors = {pole: [extreme_factors(pole, rng) for _ in range(CLIPS_PER_POLE)] for pole in ("high", "low")}
    out = tmp_path_factory.mktemp("probes")
    return {pole: probe_library(bundle, factors[pole], out / pole, k=5, seed=500 if pole == "high" else 900)
            for pole in ("high", "low")}


def _mean_share(results, moods) -> float:
    return float(np.mean([r.mood_share(moods) for r in results]))


def test_the_probe_ranks_the_28_library_tracks_apart_from_the_corpus(tiny_bundle, probes):
    _, items = library_embeddings(load_bundle(tiny_bundle))
    assert len(items) == 28
    for result in probes["high"] + probes["low"]:
        assert len(result.top) == 5 and all(item.id.startswith("library-") for item in result.top)
        assert len(result.corpus_top) == 5 and all(item.id.startswith("starter-") for item in result.corpus_top)


def test_on_its_own_corpus_tracks_fast_bright_clips_get_energetic_fast_music(probes):
    """The model learned the corpus's mapping: the in-distribution version of the check below."""
    for factor in ("energy", "valence", "tempo_bpm"):
        high = np.mean([r.corpus_mean(factor) for r in probes["high"]])
        low = np.mean([r.corpus_mean(factor) for r in probes["low"]])
        assert high > low, f"mean {factor} of the top-5 corpus tracks: high clips {high:.2f}, low clips {low:.2f}"


@NOT_YET
def test_energetic_and_happy_real_tracks_lean_to_fast_bright_clips(probes):
    high, low = _mean_share(probes["high"], AROUSED_MOODS), _mean_share(probes["low"], AROUSED_MOODS)
    assert high > low, f"energetic/happy share of the top-5: high clips {high:.2f}, low clips {low:.2f}"


@NOT_YET
def test_calm_tender_nostalgic_real_tracks_lean_to_slow_dark_clips(probes):
    high, low = _mean_share(probes["high"], CALM_MOODS), _mean_share(probes["low"], CALM_MOODS)
    assert low > high, f"calm/tender/nostalgic share of the top-5: low clips {low:.2f}, high clips {high:.2f}"


@NOT_YET
def test_fast_clips_get_faster_labelled_real_tracks(probes):
    high = np.mean([r.mean_tempo_bpm for r in probes["high"]])
    low = np.mean([r.mean_tempo_bpm for r in probes["low"]])
    assert high > low, f"mean labelled tempo of the top-5: high clips {high:.0f} BPM, low clips {low:.0f} BPM"
