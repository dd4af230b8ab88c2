"""The procedural starter corpus: real mp4s, a manifest of hidden factors, reproducibility, and
factors that really show in the decoded sound and picture (directions, never exact values)."""

from __future__ import annotations

import numpy as np
import pytest

from vmnet_core.errors import VmnetError
from vmnet_core.features.store import SPLITS, read_manifest
from vmnet_core.media import decode_audio, probe, sample_frames
from vmnet_core.starter.audio_synth import _chord_plan, synthesize_music
from vmnet_core.starter.corpus import clip_id, generate_clip, generate_corpus
from vmnet_core.starter.factors import (
    FACTOR_COLUMNS,
    NUISANCE_COLUMNS,
    TIMBRES,
    ClipFactors,
    clip_from_row,
    clip_rngs,
    extreme_factors,
    extreme_pair,
    nuisance_from_seed,
    sample_factors,
)
from vmnet_core.starter.visuals import render_frames

SR = 22050
SIZE = (96, 96)


def _factors(**changes) -> ClipFactors:
    base = {"tempo_bpm": 120.0, "mode": "major", "valence": 0.5, "energy": 0.6, "timbre": "piano", "register": 0.5}
    return ClipFactors(**{**base, **changes})


def _frames(factors: ClipFactors, seed: int, seconds: float = 3.0, fps: float = 8.0) -> np.ndarray:
    """(T, H, W, 3) float32 in [0, 1], rendered without encoding."""
    return np.stack(list(render_frames(factors, nuisance_from_seed(seed), seconds, fps, SIZE))) / 255.0


def _colour_stats(frames: np.ndarray) -> tuple[float, float, float]:
    """Mean lightness, yellow–blue warmth ((R+G)/2 − B) and saturation (max − min channel)."""
    warmth = (frames[..., 0] + frames[..., 1]) / 2 - frames[..., 2]
    return float(frames.mean()), float(warmth.mean()), float((frames.max(-1) - frames.min(-1)).mean())


def _onsets_per_second(y: np.ndarray, sr: int) -> float:
    import librosa

    return len(librosa.onset.onset_detect(y=y, sr=sr, units="time")) / (y.size / sr)


def _spectral_centroid_hz(y: np.ndarray, sr: int) -> float:
    import librosa

    return float(librosa.feature.spectral_centroid(y=y, sr=sr).mean())


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    generate_corpus(out, clips=6, seconds=3.0, seed=11, workers=1, fps=8.0, size=SIZE)
    return out


def test_tiny_corpus_writes_playable_h264_aac_clips_and_a_manifest_of_factors(tiny_corpus):
    rows = read_manifest(tiny_corpus / "manifest.csv")
    assert [row["id"] for row in rows] == [clip_id(i) for i in range(6)]
    assert list(rows[0])[:6] == ["id", "path", "duration_s", "split", "status", "error"]
    assert set(FACTOR_COLUMNS + NUISANCE_COLUMNS) <= set(rows[0])
    for row in rows:
        assert row["status"] == "ok" and row["error"] == ""
        assert row["split"] in SPLITS
        info = probe(row["path"])
        assert (info.video_codec, info.audio_codec) == ("h264", "aac")
        assert (info.width, info.height) == SIZE
        assert info.duration_s == pytest.approx(3.0, abs=0.25)
        assert float(row["duration_s"]) == pytest.approx(3.0)
        factors, nuisance = clip_from_row(row)
        assert factors.timbre in TIMBRES and 60 <= factors.tempo_bpm <= 180
        assert nuisance.key_root in range(12)
    assert len({row["tempo_bpm"] for row in rows}) == 6  # factors vary from clip to clip


def test_same_seed_gives_the_same_corpus_whatever_the_workers(tiny_corpus, tmp_path):
    generate_corpus(tmp_path, clips=3, seconds=3.0, seed=11, workers=2, fps=8.0, size=SIZE)
    first = read_manifest(tiny_corpus / "manifest.csv")[:3]  # clip i depends only on (seed, i)
    again = read_manifest(tmp_path / "manifest.csv")
    assert [{k: v for k, v in row.items() if k != "path"} for row in first] == \
           [{k: v for k, v in row.items() if k != "path"} for row in again]
    audio_a, audio_b = (decode_audio(rows[2]["path"], sr=SR) for rows in (first, again))
    np.testing.assert_allclose(audio_a, audio_b, atol=1e-3)
    frames_a, frames_b = (sample_frames(rows[2]["path"], fps=2, size=64).astype(int) for rows in (first, again))
    assert np.abs(frames_a - frames_b).max() <= 2

    other = tmp_path / "other"
    generate_corpus(other, clips=1, seconds=1.0, seed=12, fps=8.0, size=SIZE)
    assert read_manifest(other / "manifest.csv")[0]["tempo_bpm"] != first[0]["tempo_bpm"]


def test_rendering_is_exactly_reproducible_for_a_seed():
    factors = _factors(timbre="lead", energy=0.9)
    assert np.array_equal(synthesize_music(factors, nuisance_from_seed(5), 2.0, SR),
                          synthesize_music(factors, nuisance_from_seed(5), 2.0, SR))
    assert np.array_equal(_frames(factors, 5, 1.0), _frames(factors, 5, 1.0))
    assert not np.array_equal(synthesize_music(factors, nuisance_from_seed(5), 2.0, SR),
                              synthesize_music(factors, nuisance_from_seed(6), 2.0, SR))


def test_a_second_run_keeps_the_clips_already_written(tiny_corpus):
    clip = tiny_corpus / "clips" / f"{clip_id(0)}.mp4"
    before = clip.stat().st_mtime_ns
    generate_corpus(tiny_corpus, clips=6, seconds=3.0, seed=11, fps=8.0, size=SIZE)
    assert clip.stat().st_mtime_ns == before


def test_bright_warm_clips_decode_lighter_warmer_and_more_saturated_than_dark_cool_ones(tmp_path):
    rng = np.random.default_rng(0)
    stats = {}
    for pole in ("high", "low"):
        values = []
        for i in range(3):
            path = generate_clip(extreme_factors(pole, rng), tmp_path / f"{pole}{i}.mp4", 3.0, seed=i,
                                 fps=8.0, size=SIZE)
            values.append(_colour_stats(sample_frames(path, fps=2, size=64) / 255.0))
        stats[pole] = np.array(values)
    assert stats["high"][:, 0].min() > stats["low"][:, 0].max()  # every bright clip lighter than every dark one
    assert stats["high"][:, 1].min() > stats["low"][:, 1].max()  # and yellower
    assert stats["high"][:, 2].mean() > stats["low"][:, 2].mean()
    assert stats["low"][:, 1].mean() < 0 < stats["high"][:, 1].mean()  # blue-ish versus yellow-ish


def test_fast_tempo_decodes_to_more_onsets_and_more_motion_than_slow(tmp_path):
    onset_rates, motion = {}, {}
    for tempo in (70.0, 170.0):
        rates, diffs = [], []
        for seed, timbre in enumerate(("piano", "pluck")):
            path = generate_clip(_factors(tempo_bpm=tempo, timbre=timbre), tmp_path / f"{tempo}-{seed}.mp4",
                                 4.0, seed=seed, fps=8.0, size=SIZE)
            rates.append(_onsets_per_second(decode_audio(path, sr=SR), SR))
            frames = sample_frames(path, fps=8, size=64).astype(np.float32)
            diffs.append(float(np.abs(np.diff(frames, axis=0)).mean()))
        onset_rates[tempo], motion[tempo] = rates, diffs
    assert min(onset_rates[170.0]) > max(onset_rates[70.0])
    assert min(motion[170.0]) > max(motion[70.0])


def test_energy_brightens_the_sound_and_saturates_and_contrasts_the_picture():
    calm, busy = _factors(energy=0.05), _factors(energy=0.95)
    for seed in (1, 2):
        y_calm = synthesize_music(calm, nuisance_from_seed(seed), 4.0, SR)
        y_busy = synthesize_music(busy, nuisance_from_seed(seed), 4.0, SR)
        assert _spectral_centroid_hz(y_busy, SR) > _spectral_centroid_hz(y_calm, SR)
        assert _onsets_per_second(y_busy, SR) > _onsets_per_second(y_calm, SR)
        frames_calm, frames_busy = _frames(calm, seed), _frames(busy, seed)
        assert _colour_stats(frames_busy)[2] > _colour_stats(frames_calm)[2]  # saturation
        assert frames_busy.mean(-1).std() > frames_calm.mean(-1).std()  # lightness contrast


def _foreground_rows(frames: np.ndarray) -> np.ndarray:
    """(H,) share of each row's pixels that differ clearly from the frame's median colour."""
    median = np.median(frames.reshape(len(frames), -1, 3), axis=1)[:, None, None, :]
    moved = np.abs(frames - median).sum(-1) > 0.12
    return moved.mean(axis=(0, 2))


def test_register_raises_pitch_and_lifts_and_shrinks_the_shapes():
    low, high = _factors(register=0.05, energy=0.8), _factors(register=0.95, energy=0.8)
    for seed in (1, 2):
        assert _spectral_centroid_hz(synthesize_music(high, nuisance_from_seed(seed), 4.0, SR), SR) > \
               _spectral_centroid_hz(synthesize_music(low, nuisance_from_seed(seed), 4.0, SR), SR)
        rows_low, rows_high = _foreground_rows(_frames(low, seed)), _foreground_rows(_frames(high, seed))
        centre = np.arange(SIZE[1])
        assert (rows_high * centre).sum() / rows_high.sum() < (rows_low * centre).sum() / rows_low.sum()


def test_timbre_families_have_distinct_textures():
    def edge_density(timbre: str) -> float:
        frames = _frames(_factors(timbre=timbre, energy=0.8), seed=3).mean(-1)
        return float(np.abs(np.diff(frames, axis=2)).mean() + np.abs(np.diff(frames, axis=1)).mean())

    assert edge_density("lead") > edge_density("pad")  # jagged stars are sharper than soft blobs


def test_extreme_factors_sit_at_the_poles():
    rng = np.random.default_rng(1)
    high, low = extreme_factors("high", rng), extreme_factors("low", rng)
    assert high.tempo_bpm >= 160 and high.mode == "major" and min(high.valence, high.energy) >= 0.85
    assert low.tempo_bpm <= 75 and low.mode == "minor" and max(low.valence, low.energy) <= 0.15
    assert high.emotional_tone > 0.9 > 0.1 > low.emotional_tone
    both = [extreme_factors(pole, rng) for _ in range(40) for pole in ("high", "low")]
    assert {f.timbre for f in both} == set(TIMBRES)  # timbre is not part of the axis: drawn for both poles
    high, low = extreme_pair(rng)
    assert (high.timbre, high.register) == (low.timbre, low.register)
    assert high.tempo_bpm >= 160 and low.tempo_bpm <= 75 and high.mode == "major" and low.mode == "minor"
    with pytest.raises(VmnetError):
        extreme_factors("middle", rng)  # type: ignore[arg-type]


def test_tempo_and_energy_share_one_arousal_level_and_valence_stays_independent():
    drawn = [sample_factors(clip_rngs(3, i)[0]) for i in range(1500)]
    tempo, energy, valence = (np.array([getattr(f, name) for f in drawn]) for name in ("tempo_bpm", "energy", "valence"))
    correlation = np.corrcoef([tempo, energy, valence])
    assert correlation[0, 1] > 0.6, f"tempo–energy correlation {correlation[0, 1]:.2f}"
    assert max(abs(correlation[0, 2]), abs(correlation[1, 2])) < 0.1, f"valence correlations {correlation[:2, 2]}"
    for values, low, high in ((tempo, 60, 180), (energy, 0, 1)):  # reflected, not clipped: no pile-up at the ends
        assert low <= values.min() and values.max() <= high
        assert np.mean(values <= low + 0.02 * (high - low)) < 0.05


def test_clashing_tones_mark_tense_music_not_sad_calm_music():
    def chord_sizes(**changes) -> list[int]:
        return [len(classes) for _, classes in _chord_plan(_factors(mode="minor", **changes), nuisance_from_seed(4), 40)]

    plain = chord_sizes(valence=1.0, energy=1.0)  # happy: never an added tone
    assert chord_sizes(valence=0.0, energy=0.0) == plain  # sad and calm: consonant
    added = sum(tense - base for tense, base in zip(chord_sizes(valence=0.0, energy=1.0), plain, strict=True))
    assert added > 20, f"{added} clashing tones in 40 bars of unpleasant, energetic music"


def test_bad_requests_raise_one_plain_sentence(tmp_path):
    with pytest.raises(VmnetError, match="tempo"):
        _factors(tempo_bpm=300.0)
    with pytest.raises(VmnetError, match="timbre"):
        _factors(timbre="kazoo")
    with pytest.raises(VmnetError, match="at least one clip"):
        generate_corpus(tmp_path, clips=0, seconds=1.0, seed=0)
    with pytest.raises(VmnetError, match="positive length"):
        generate_corpus(tmp_path, clips=1, seconds=0.0, seed=0)
    with pytest.raises(VmnetError, match="even"):
        generate_clip(_factors(), tmp_path / "odd.mp4", 1.0, seed=0, size=(95, 96))
    with pytest.raises(VmnetError, match="valid starter factors"):
        clip_from_row({"tempo_bpm": "fast"})
