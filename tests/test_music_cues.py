"""Music cues on synthesised click tracks and chord progressions."""

from __future__ import annotations

import numpy as np
import pytest

from vmnet_core.features.music_cues import estimate_key, music_cues

SR = 22050


def clicks(bpm: float, seconds: float = 20.0) -> np.ndarray:
    y = np.zeros(int(seconds * SR), np.float32)
    t = np.arange(int(0.03 * SR)) / SR
    click = (np.sin(2 * np.pi * 1500 * t) * np.exp(-t * 150)).astype(np.float32)
    for start in np.arange(0, seconds - 0.05, 60.0 / bpm):
        i = int(start * SR)
        y[i:i + click.size] += 0.8 * click
    return y


def chords(roots_and_thirds: list[tuple[int, int]], seconds_each: float = 2.0) -> np.ndarray:
    """Triads (root MIDI note, third in semitones) with harmonics, one after another."""
    t = np.arange(int(seconds_each * SR)) / SR
    out = []
    for root, third in roots_and_thirds:
        tone = sum(np.sin(2 * np.pi * 440 * 2 ** ((n - 69) / 12) * h * t) / h
                   for n in (root, root + third, root + 7) for h in (1, 2, 3))
        out.append(0.1 * tone * np.exp(-t))
    return np.concatenate(out * 2).astype(np.float32)


@pytest.mark.parametrize("bpm", [90.0, 120.0])
def test_a_click_track_reads_its_tempo(bpm):
    cues = music_cues(clicks(bpm), SR)
    assert cues.tempo_bpm == pytest.approx(bpm, rel=0.04)
    assert cues.onset_rate == pytest.approx(bpm / 60.0, rel=0.15)


def test_major_and_minor_progressions_read_major_and_minor():
    major = music_cues(chords([(60, 4), (65, 4), (67, 4), (60, 4)]), SR)   # C F G C
    minor = music_cues(chords([(57, 3), (62, 3), (64, 3), (57, 3)]), SR)   # Am Dm Em Am
    assert (major.mode, minor.mode) == ("major", "minor")
    assert major.key == "C major" and minor.key == "A minor"


def test_louder_and_brighter_read_so():
    y = clicks(100.0, 8.0)
    assert music_cues(y, SR).loudness_db > music_cues(0.1 * y, SR).loudness_db + 15
    low = chords([(48, 4)] * 2)
    assert music_cues(clicks(100.0, 8.0), SR).brightness_hz > music_cues(low, SR).brightness_hz


def test_flat_chroma_has_no_key():
    assert estimate_key(np.ones(12)) == ("", "", 0.0)
