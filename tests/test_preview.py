"""The aligned preview: a downbeat on the video's cut, the video's length, the audio from the chosen offset."""

from __future__ import annotations

import numpy as np
import pytest

from vmnet_core.bundle.preview import make_preview
from vmnet_core.datasets.music_library import load_music_library
from vmnet_core.errors import VmnetError
from vmnet_core.features.beat_alignment import aligned_start, beat_grid_near, video_event_s
from vmnet_core.media import decode_audio, probe
from vmnet_testkit.long_tracks import SR, click_track, cut_video

CUT_S = 1.5


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    root = tmp_path_factory.mktemp("preview")
    clicks, beats, downbeats = click_track(root / "clicks.wav", bpm=120.0, seconds=40.0, first_beat_s=0.3)
    return {"video": cut_video(root / "cut.mp4", seconds=6.0, cut_s=CUT_S), "clicks": clicks,
            "beats": beats, "downbeats": downbeats, "root": root}


def test_aligned_start_puts_the_nearest_downbeat_on_the_event():
    downbeats = np.array([0.3, 2.3, 4.3, 6.3, 8.3, 10.3, 12.3])
    assert aligned_start(10.0, downbeats, 1.5) == (pytest.approx(10.8), pytest.approx(12.3))
    assert aligned_start(0.0, downbeats, 1.5) == (pytest.approx(0.8), pytest.approx(2.3))  # never before 0
    assert aligned_start(5.0, downbeats, None) == (pytest.approx(4.3), pytest.approx(4.3))  # a downbeat at 0
    assert aligned_start(5.0, np.zeros(0), 1.5) == (5.0, None)


def test_the_cut_and_the_downbeats_are_found(media):
    assert video_event_s(media["video"]) == pytest.approx(CUT_S, abs=0.08)
    grid = beat_grid_near(media["clicks"], 10.0)
    assert grid.tempo_bpm == pytest.approx(120.0, rel=0.04)
    true = media["downbeats"]
    found = grid.downbeats[(grid.downbeats > 8.0) & (grid.downbeats < 20.0)]
    assert len(found) >= 2
    assert np.all(np.min(np.abs(found[:, None] - true[None, :]), axis=1) < 0.05)  # each on a true downbeat


def test_preview_lands_a_downbeat_on_the_cut_and_lasts_as_long_as_the_video(media):
    out = media["root"] / "aligned.mp4"
    alignment = make_preview(media["video"], media["clicks"], out, start_s=10.0)
    assert abs(alignment.music_start_s - 10.0) <= 2.0  # moved by less than one 2-s bar
    assert np.min(np.abs(media["downbeats"] - (alignment.music_start_s + CUT_S))) < 0.06
    assert probe(out).duration_s == pytest.approx(probe(media["video"]).duration_s, abs=0.05)
    y = decode_audio(out, sr=SR)
    near = y[int((CUT_S - 0.4) * SR):int((CUT_S + 0.4) * SR)]
    loudest_s = CUT_S - 0.4 + int(np.argmax(np.abs(near))) / SR
    assert loudest_s == pytest.approx(CUT_S, abs=0.06)  # the accented click sounds at the cut
    assert np.abs(y[:int(0.02 * SR)]).max() < 0.5 * np.abs(y).max()  # faded in


def test_preview_audio_starts_at_the_chosen_offset(media):
    track = load_music_library()[8].path  # a real track, not periodic like the clicks
    out = media["root"] / "offset.mp4"
    make_preview(media["video"], track, out, start_s=7.3, align=False)
    y = decode_audio(out, sr=SR)[int(1.0 * SR):int(4.0 * SR)]  # past the fade-in
    source = decode_audio(track, sr=SR, offset_s=5.0, duration_s=8.0)
    corr = np.correlate(source, y, mode="valid")  # lag l: y matches source[l:]
    lag_s = 5.0 + int(np.argmax(corr)) / SR - 1.0
    assert lag_s == pytest.approx(7.3, abs=0.02)


def test_a_start_outside_the_track_is_one_sentence(media):
    with pytest.raises(VmnetError, match="outside the track"):
        make_preview(media["video"], media["clicks"], media["root"] / "x.mp4", start_s=400.0)


def test_a_preview_keeps_only_the_first_seconds_of_a_long_video(media):
    """A small file can declare a long video (here 300 s at 0.5 fps); with ``keep_first_s`` the
    preview, and the work behind it, covers only its start."""
    from vmnet_testkit.mediagen import make_video

    long_video = make_video(media["root"] / "long.mp4", seconds=300.0, size=(64, 48), fps=0.5, audio=False)
    assert probe(long_video).duration_s > 290
    out = media["root"] / "long-preview.mp4"
    make_preview(long_video, media["clicks"], out, start_s=0.0, align=False, keep_first_s=20.0)
    assert probe(out).duration_s == pytest.approx(20.0, abs=0.6)


def test_a_preview_that_must_be_re_encoded_is_brought_down_to_a_modest_picture(media):
    """Re-encoding costs with the pixels: a wide, 60-fps picture in another codec comes out at most
    1280 px wide and 30 fps, its aspect kept."""
    from vmnet_testkit.mediagen import make_video

    wide = make_video(media["root"] / "wide.avi", seconds=2.0, size=(1600, 200), fps=60, audio=False)
    source = probe(wide)
    assert source.video_codec != "h264" and source.width == 1600 and source.fps > 50
    out = media["root"] / "wide-preview.mp4"
    make_preview(wide, media["clicks"], out, start_s=0.0, align=False)
    made = probe(out)
    assert made.width == 1280 and made.height == 160 and made.fps <= 30.5
