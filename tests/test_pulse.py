"""The pulse cue: cuts on the beat, on real encoded media (ffmpeg-decoded slideshows and tracks)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from vmnet_core.bundle.cue_match import cue_fit, mood_fit, pulse_fits, standardised
from vmnet_core.bundle.explain import explain_match
from vmnet_core.bundle.track_cues import cues_of_file
from vmnet_core.features.pulse import onset_periodicity, pulse_fit, pulse_lags_s
from vmnet_core.features.video_cues import cut_period_s, shot_unit_s
from vmnet_core.media import write_video
from vmnet_testkit.cue_media import PHOTOS, SR, clicks
from vmnet_testkit.real_content_media import slideshow

SHOT_S = 4 * 60.0 / 90.0   # four beats at 90 BPM: 2.67 s
SHORT_SHOT_S = 2 * 60.0 / 110.0  # two beats at 110 BPM: 1.09 s, which 12-fps video sampled at 8 fps cannot tile evenly


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("pulse")
    paths = {"clip": write_video(slideshow(PHOTOS, shot_s=SHOT_S, seconds=16.0, fps=20), folder / "clip.mp4", fps=20),
             "short_shots": write_video(slideshow(PHOTOS, shot_s=SHORT_SHOT_S, seconds=12.0, fps=12),
                                        folder / "short_shots.mp4", fps=12)}
    for bpm in (90, 120):  # the same clicks (same loudness, timbre, onset density per beat): only the beat differs
        sf.write(folder / f"clicks{bpm}.wav", clicks(bpm, 30.0), SR)
        paths[f"clicks{bpm}"] = folder / f"clicks{bpm}.wav"
    return paths


@pytest.fixture(scope="module")
def cues(files) -> dict[str, dict]:
    videos = ("clip", "short_shots")
    return {**{name: cues_of_file(files[name], "video") for name in videos},
            **{name: cues_of_file(path, "music") for name, path in files.items() if name not in videos}}


def test_a_click_track_repeats_at_its_beat_and_its_multiples_not_between():
    frame_rate = 100.0
    envelope = np.zeros(3000)
    envelope[::50] = 1.0                       # a click every 0.5 s: 120 BPM
    profile = np.asarray(onset_periodicity(envelope, frame_rate))
    lags = pulse_lags_s()
    assert profile.shape == lags.shape and lags[0] == pytest.approx(0.25) and lags[-1] <= 8.0
    on_beat = np.abs(np.log(lags / 1.0)) < 0.01
    between = np.abs(np.log(lags / 0.75)) < 0.01
    assert profile[on_beat].max() > 2.0 > 0.0 > profile[between].max()
    assert pulse_fit(2.0, profile) > 2.0       # a cut every 4 beats
    assert pulse_fit(2.0 * 4 / 3, profile) < 0.5
    assert pulse_fit(0.0, profile) is None and pulse_fit(2.0, None) is None and pulse_fit(2.0, []) is None
    assert not any(onset_periodicity(np.zeros(500), frame_rate))   # silence: no periodicity anywhere
    noise = np.random.default_rng(0).random(3000)  # onsets that never repeat: no lag looks like a beat
    assert np.abs(onset_periodicity(noise, frame_rate)).max() < 1.0   # a clear beat reads 2–4


def test_the_cut_period_is_refined_from_the_cut_times_beyond_the_frame_grid():
    fps, period = 8.0, 0.9                     # 0.9 s shots sampled at 8 fps: cuts 7 or 8 frames apart
    cuts = np.floor(np.arange(0.9, 12.0, period) * fps).astype(int) - 1
    assert cut_period_s(cuts, fps, 7 / fps) == pytest.approx(period, rel=0.01)
    assert cut_period_s(cuts[:2], fps, 7 / fps) == 7 / fps   # too few cuts: the rough period stands


def test_a_cut_train_that_repeats_exactly_only_every_few_shots_is_timed_by_its_shot():
    fps, shot = 8.0, SHORT_SHOT_S              # cuts 9, 9, 8, 9, 9, 8 ... frames apart: exact every 3 shots
    cuts = np.floor(np.arange(shot, 12.0, shot) * fps).astype(int) - 1
    assert cut_period_s(cuts, fps, 26 / fps) == pytest.approx(shot, rel=0.01)
    assert cut_period_s(cuts, fps, 17 / fps) == pytest.approx(shot, rel=0.01)
    gaps = np.full(5, 2.0)                     # every shot 2 s: no finer unit, whatever it divides into
    assert shot_unit_s(gaps, fps, 2.0) == 2.0
    assert shot_unit_s(np.array([1.0, 2.0, 1.0, 1.0, 2.0]), fps, 2.0) == 1.0   # shots of 1 and 2 units
    assert shot_unit_s(np.array([1.3, 2.0, 0.7, 1.1]), fps, 2.0) == 2.0        # an irregular edit: left as is


def test_a_real_clip_with_short_shots_reads_its_shot_length_not_a_multiple(cues):
    assert 60.0 / cues["short_shots"]["rhythm_bpm"] == pytest.approx(SHORT_SHOT_S, rel=0.03)


def test_a_clip_cut_every_four_beats_fits_the_track_at_that_tempo(cues):
    clip = cues["clip"]
    assert 60.0 / clip["rhythm_bpm"] == pytest.approx(SHOT_S, rel=0.02)
    profiles = {name: cues[name]["pulse_profile"] for name in ("clicks90", "clicks120")}
    assert all(len(p) == len(pulse_lags_s()) for p in profiles.values())
    assert pulse_fit(SHOT_S, profiles["clicks90"]) > pulse_fit(SHOT_S, profiles["clicks120"]) + 1.0


def test_the_pulse_decides_between_tracks_of_the_same_mood_in_both_directions(cues):
    tracks = [cues["clicks120"], cues["clicks90"]]
    moods = mood_fit(cues["clip"], "video", tracks)
    assert abs(moods[0] - moods[1]) < 0.5       # the mood axes cannot tell the two apart
    assert cue_fit(cues["clip"], "video", tracks).argmax() == 1
    # music → video: the 90-BPM track fits the clip cut on its beat better than a clip with no rhythm,
    # which has no opinion and takes the others' mean
    still = {**cues["clip"], "rhythm_strength": 0.0}
    fits = pulse_fits(cues["clicks90"], "music", [cues["clip"], still])
    assert fits[0] == pytest.approx(pulse_fit(60.0 / cues["clip"]["rhythm_bpm"], cues["clicks90"]["pulse_profile"]))
    assert fits[1] == fits[0]
    assert pulse_fits(cues["clicks90"], "music", [cues["clip"]])[0] > pulse_fits(cues["clicks120"], "music",
                                                                                 [cues["clip"]])[0]


def test_cues_stored_before_the_pulse_keep_the_mood_order(cues):
    old = [{k: v for k, v in c.items() if k != "pulse_profile"} for c in (cues["clicks120"], cues["clicks90"])]
    assert not pulse_fits(cues["clip"], "video", old).any()
    assert np.allclose(cue_fit(cues["clip"], "video", old), standardised(mood_fit(cues["clip"], "video", old)))



def test_why_this_track_names_the_beat_only_for_the_track_the_cuts_land_on(cues):
    def pulse_phrases(track: str) -> list[str]:
        return [r.phrase for r in explain_match(cues["clip"], cues[track]) if r.dimension == "pulse"]

    on_beat = pulse_phrases("clicks90")
    assert len(on_beat) == 1
    said = re.fullmatch(r"cuts every ([\d.]+) s ↔ (\d+ BPM|its beat)", on_beat[0])
    assert said and float(said[1]) == pytest.approx(SHOT_S, rel=0.05)
    assert pulse_phrases("clicks120") == []
