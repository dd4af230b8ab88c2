"""The real-content check, small, through the product's own path (issue 14): music videos cut from
real photographs on the beat of excerpts of the real library's tracks, embedded and cued as
`vmnet query` does, ranked as the default bundle ranks. docs/cues.md reports the full 60-clip check."""

from __future__ import annotations

import numpy as np
import pytest

from vmnet_core.bundle.cue_match import cue_fit, mood_fit, standardised
from vmnet_core.bundle.files import load_bundle
from vmnet_core.bundle.retrieval import Retriever
from vmnet_core.bundle.track_cues import cues_of_file
from vmnet_core.datasets.music_library import load_music_library
from vmnet_core.learn.hubness import chance_max_share
from vmnet_testkit.real_content_check import (
    check_clips,
    cue_scores,
    fused_scores,
    label_oracle_scores,
    measure,
    off_label_share,
    with_true_tempo_and_mode,
    write_check_clip,
)

CLIPS = 24


@pytest.fixture(scope="module")
def check(tiny_bundle, tmp_path_factory) -> dict:
    """The clips, the network's and the cues' inputs for them, and the library as the bundle holds it."""
    clips = check_clips(CLIPS, 12.0, seed=2)  # neither the reported set (0) nor the tuning set (1)
    folder = tmp_path_factory.mktemp("real_content")
    paths = [write_check_clip(clip, folder, 12.0) for clip in clips]
    retriever = Retriever(load_bundle(tiny_bundle))
    catalog = retriever.bundle.catalog
    library = load_music_library()
    tracks = [catalog.item("music", f"library-{track.title}") for track in library]
    return {
        "clips": clips, "library": library, "cue_weight": retriever.bundle.config.ranking.cue_weight,
        "video": np.stack([retriever.embed_video_file(p) for p in paths]),
        "soundtrack": np.stack([retriever.embed_music_file(p) for p in paths]),
        "tracks": np.stack([catalog.embedding("music", item.id) for item in tracks]),
        "video_cues": [cues_of_file(p, "video") for p in paths],
        "soundtrack_cues": [cues_of_file(p, "music") for p in paths],
        "track_cues": [item.cues for item in tracks],
    }


def _ranked(check: dict, fit) -> tuple[np.ndarray, np.ndarray]:
    """(paired (n, n), library (n, 28)) scores: the network fused with ``fit`` at the bundle's weight."""
    def side(items: str, item_cues: str) -> np.ndarray:
        return fused_scores(check["video"] @ check[items].T, cue_scores(fit, check["video_cues"], check[item_cues]),
                            check["cue_weight"])
    return side("soundtrack", "soundtrack_cues"), side("tracks", "track_cues")


def _top3(paired: np.ndarray) -> float:
    own = np.diag(paired)[:, None]
    return float(np.mean((paired > own).sum(axis=1) < 3))


def test_the_default_ranking_finds_the_clips_own_music_and_follows_their_tempo(check):
    assert check["cue_weight"] > 0 and all(cues and cues.get("pulse_profile") for cues in check["track_cues"])
    paired, library = _ranked(check, cue_fit)
    mood_paired, mood_library = _ranked(check, lambda *a: standardised(mood_fit(*a)))
    result = measure(check["clips"], paired, library, check["library"], n_shuffles=200)
    before = measure(check["clips"], mood_paired, mood_library, check["library"], n_shuffles=200)

    chance = 3 / CLIPS
    assert _top3(paired) >= 3 * chance                    # its own soundtrack among the best 3 of 24
    assert _top3(paired) >= _top3(mood_paired) + 0.15     # the pulse is what finds it
    assert result.rho_tempo >= 0.5 and result.rho_tempo > result.control_p95["rho_tempo"]
    assert result.top5_max_share <= before.top5_max_share
    assert result.off_label_max_share <= before.off_label_max_share   # fewer lists the labels do not explain


def test_the_off_label_share_counts_only_the_lists_a_tracks_labels_do_not_explain():
    clips, library = check_clips(56, 12.0, seed=2), load_music_library()
    oracle = label_oracle_scores(clips, library)
    assert oracle.shape == (56, 28) and off_label_share(oracle, oracle) == 0.0   # the labels' own lists
    hub = oracle.copy()
    hub[:, 0] = oracle.max() + 1.0             # one track first in every list, whatever the clip
    assert off_label_share(hub, oracle) == 1.0
    result = measure(clips, oracle[:, [library.index(c.track) for c in clips]], oracle, library, n_shuffles=10)
    assert result.top5_max_share == result.oracle_max_share > 0.2   # the library's 5-track calm cluster
    assert result.chance_max_share == chance_max_share(56, 28) > 0.25  # lists with no hub pass the quarter
    assert result.off_label_max_share == 0.0 and result.rho_tempo > 0.95


def test_true_tempo_and_mode_replace_only_the_estimates():
    track = load_music_library()[1]                       # calm_acoustic_s411: 68 BPM, C major
    read = {"tempo_bpm": 136.0, "key": "A minor", "mode": "minor", "onset_rate": 3.1, "pulse_profile": (0.5, 1.0)}
    labelled = with_true_tempo_and_mode(read, track)
    assert labelled == {**read, "tempo_bpm": 68.0, "key": "C major", "mode": "major"}
    assert read["tempo_bpm"] == 136.0                     # the estimates themselves are left alone
