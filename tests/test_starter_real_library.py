"""Sensible on the real library: clips at the extremes of the starter's factors (fast, bright, warm,
busy versus slow, dark, cool, calm) should pull the real immich-memories-music tracks the right way.

The tiny bundle is trained on procedural clips only; here its video branch meets new generated
clips (seeds unrelated to its corpus), ranked against (a) the 28 real tracks it never saw and
(b) the corpus's own tracks. Two things make (a) work, both documented in docs/starter-corpus.md
("Sensible on the real library?"): the corpus couples tempo and energy through one arousal level,
as real music does, and real music files are centred on the training music's mean (the bundle's
media-music offset, ``Preprocessor.set_media_music_offset``), so they no longer sit in one far-off cluster where a few hub
tracks win whatever the query.
"""

from __future__ import annotations

import numpy as np
import pytest

from vmnet_core.bundle.files import load_bundle
from vmnet_core.starter.factors import extreme_pair
from vmnet_core.starter.probe import AROUSED_MOODS, CALM_MOODS, library_embeddings, probe_library

PAIRS = 8


@pytest.fixture(scope="module")
def probes(tiny_bundle, tmp_path_factory):
    """Top-5 tracks for PAIRS matched 'high'/'low' clips (pictures only): each pair shares timbre,
    register and nuisance seed, so it differs only along the fast-bright-warm-busy axis."""
    bundle = load_bundle(tiny_bundle)
    rng = np.random.default_rng(2024)
    pairs = [extreme_pair(rng) for _ in range(PAIRS)]
    out = tmp_path_factory.mktemp("probes")
    return {pole: probe_library(bundle, [pair[side] for pair in pairs], out / pole, k=5, seed=500)
            for side, pole in enumerate(("high", "low"))}


def _mean_share(results, moods) -> float:
    return float(np.mean([r.mood_share(moods) for r in results]))


def test_the_probe_ranks_the_28_library_tracks_apart_from_the_corpus(tiny_bundle, probes):
    _, items = library_embeddings(load_bundle(tiny_bundle))
    assert len(items) == 28
    for result in probes["high"] + probes["low"]:
        assert len(result.top) == 5 and all(item.id.startswith("library-") for item in result.top)
        assert len(result.corpus_top) == 5 and all(item.id.startswith("starter-") for item in result.corpus_top)


def test_the_real_tracks_are_indexed_apart_not_as_one_cluster(tiny_bundle):
    """Centred on the training music's mean, the real tracks' embeddings spread out (raw, they sit
    in one tight cluster: mean pairwise cosine about 0.6)."""
    embeddings, _ = library_embeddings(load_bundle(tiny_bundle))
    cosines = embeddings @ embeddings.T
    assert cosines[np.triu_indices(len(cosines), 1)].mean() < 0.3


def test_on_its_own_corpus_tracks_fast_bright_clips_get_energetic_fast_music(probes):
    """The model learned the corpus's mapping: the in-distribution version of the checks below."""
    for factor in ("energy", "valence", "tempo_bpm"):
        high = np.mean([r.corpus_mean(factor) for r in probes["high"]])
        low = np.mean([r.corpus_mean(factor) for r in probes["low"]])
        assert high > low, f"mean {factor} of the top-5 corpus tracks: high clips {high:.2f}, low clips {low:.2f}"


def test_energetic_and_happy_real_tracks_lean_to_fast_bright_clips(probes):
    high, low = _mean_share(probes["high"], AROUSED_MOODS), _mean_share(probes["low"], AROUSED_MOODS)
    assert high > low, f"energetic/happy share of the top-5: high clips {high:.2f}, low clips {low:.2f}"


def test_calm_tender_nostalgic_real_tracks_lean_to_slow_dark_clips(probes):
    high, low = _mean_share(probes["high"], CALM_MOODS), _mean_share(probes["low"], CALM_MOODS)
    assert low > high, f"calm/tender/nostalgic share of the top-5: low clips {low:.2f}, high clips {high:.2f}"


def test_fast_clips_get_faster_labelled_real_tracks(probes):
    high = np.mean([r.mean_tempo_bpm for r in probes["high"]])
    low = np.mean([r.mean_tempo_bpm for r in probes["low"]])
    assert high > low, f"mean labelled tempo of the top-5: high clips {high:.0f} BPM, low clips {low:.0f} BPM"
