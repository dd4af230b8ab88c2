"""Hubness statistics and the "why this track" phrases (pure functions)."""

from __future__ import annotations

import numpy as np
import pytest

from vmnet_core.bundle.explain import explain_match, explain_phrases
from vmnet_core.errors import VmnetError
from vmnet_core.learn.hubness import hubness, hubness_line, hubness_report


def test_a_hub_is_found_and_a_balanced_catalog_is_not():
    rng = np.random.default_rng(0)
    sim = rng.normal(size=(100, 50))
    sim[:, 7] += 5.0  # item 7 is everyone's favourite
    stats = hubness(sim, k=5)
    assert stats["share_in_top_k"][7] == 1.0 and stats["max_share"] == 1.0
    assert stats["k_occurrence_skewness"] > 3
    balanced = hubness(np.eye(50), k=1)
    assert balanced["max_share"] == pytest.approx(1 / 50) and balanced["k_occurrence_skewness"] == 0.0


def test_hubness_rejects_an_empty_matrix():
    with pytest.raises(VmnetError, match=r"^[A-Z].*\.$"):
        hubness(np.zeros((0, 3)))


FAST_DARK = {"cut_rate": 40.0, "motion_energy": 0.3, "rhythm_bpm": 0.0, "rhythm_strength": 0.0,
             "brightness": 0.2, "warmth": -0.1, "colourfulness": 20.0}
FAST_MINOR = {"tempo_bpm": 132.0, "onset_rate": 5.0, "loudness_db": -10.0, "mode": "minor", "brightness_hz": 1000.0}
SLOW_MAJOR = {"tempo_bpm": 70.0, "onset_rate": 1.0, "loudness_db": -30.0, "mode": "major", "brightness_hz": 3000.0}


def test_matching_cues_are_named_on_both_axes():
    phrases = explain_phrases(FAST_DARK, FAST_MINOR)
    assert any("fast cuts" in p and "132 BPM" in p for p in phrases)
    assert any("dark" in p and "cold" in p and "minor key" in p for p in phrases)
    assert {r.dimension for r in explain_match(FAST_DARK, FAST_MINOR)} == {"arousal", "valence"}


def test_contradicting_cues_give_no_reason():
    assert explain_phrases(FAST_DARK, SLOW_MAJOR) == []


def test_a_cut_pulse_on_the_beat_is_named():
    video = {**FAST_DARK, "cut_rate": 120.0, "rhythm_bpm": 120.0, "rhythm_strength": 0.8}
    reasons = explain_match(video, {**FAST_MINOR, "tempo_bpm": 121.0})
    assert reasons[0].dimension == "pulse" and reasons[0].phrase == "cuts every 0.5 s ↔ 121 BPM"


def test_the_hubness_report_counts_hubs_in_both_directions():
    def unit(x):
        return x / np.linalg.norm(x, axis=-1, keepdims=True)

    rng = np.random.default_rng(0)
    ev = unit(rng.normal(size=(40, 64)))
    em = unit(ev + 0.1 * rng.normal(size=(40, 64)))   # each video's own track is its nearest
    balanced = hubness_report(em, ev)
    assert balanced["queries"] == 40 and balanced["k"] == 5
    assert balanced["video_to_music"]["hubs"] == 0 and balanced["video_to_music"]["max_share"] <= 0.25
    em[3] = np.eye(64)[0]                              # track 3 sits on a direction ...
    skewed = hubness_report(em, unit(ev + np.eye(64)[0]))  # ... that every video shares
    assert skewed["video_to_music"]["hubs"] >= 1 and skewed["video_to_music"]["max_share"] > 0.9
    line = hubness_line(skewed)
    assert line.startswith("hubness over 40 test queries") and "video → music" in line and "music → video" in line
    assert hubness_line(None) is None
