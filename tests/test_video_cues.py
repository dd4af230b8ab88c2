"""Video cues on real encoded slideshows of real photographs (scikit-image's), through ffmpeg."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vmnet_core.errors import VmnetError
from vmnet_core.features.video_cues import (
    colour_statistics,
    detect_cuts,
    frame_changes,
    video_cues,
    video_cues_from_file,
    visual_rhythm,
)
from vmnet_core.media import write_video
from vmnet_testkit.real_content_media import grade, photo, slideshow

PHOTOS = ["astronaut", "coffee", "chelsea", "rocket"]
FPS = 20


def encode(path: Path, **slideshow_args) -> Path:
    seconds = slideshow_args.pop("seconds", 24.0)
    return write_video(slideshow(PHOTOS, seconds=seconds, fps=FPS, **slideshow_args), path, fps=FPS)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("cues")
    return {
        "cut_2s": encode(folder / "cut_2s.mp4", shot_s=2.0),
        "cut_half_s": encode(folder / "cut_half_s.mp4", shot_s=0.5),
        "one_shot_still": encode(folder / "still.mp4", shot_s=30.0, zoom=1.0, pan=0.0, seconds=12.0),
        "dark_cold": encode(folder / "dark_cold.mp4", shot_s=4.0, exposure=0.5, warmth=-0.8, saturation=0.6),
        "bright_warm": encode(folder / "bright_warm.mp4", shot_s=4.0, exposure=1.3, warmth=0.8, saturation=1.4),
    }


@pytest.fixture(scope="module")
def cues(clips):
    return {name: video_cues_from_file(path) for name, path in clips.items()}


def test_a_cut_every_two_seconds_reads_about_thirty_cuts_a_minute(cues):
    # 24 s with a cut every 2 s: 11 cuts inside the clip → 27.5 per minute
    assert 25.0 <= cues["cut_2s"].cut_rate <= 31.0
    assert cues["cut_2s"].rhythm_bpm == pytest.approx(30.0, rel=0.1)
    assert cues["cut_2s"].rhythm_strength > 0.5


def test_faster_cutting_reads_faster(cues):
    # a cut every 0.5 s: 47 cuts in 24 s → 117.5 per minute, a visual pulse of 120 per minute
    assert 105.0 <= cues["cut_half_s"].cut_rate <= 125.0
    assert cues["cut_half_s"].rhythm_bpm == pytest.approx(120.0, rel=0.1)
    assert cues["cut_half_s"].motion_energy > cues["cut_2s"].motion_energy


def test_a_still_shot_has_no_cuts_and_no_motion(cues):
    still = cues["one_shot_still"]
    assert still.cut_rate == 0.0
    assert still.motion_energy < 0.01 < cues["cut_2s"].motion_energy
    assert still.rhythm_bpm == 0.0 and still.rhythm_strength == 0.0
    assert still.duration_s == pytest.approx(12.0, abs=0.2)


def test_grading_reads_as_light_and_colour(cues):
    dark, bright = cues["dark_cold"], cues["bright_warm"]
    assert bright.brightness > dark.brightness + 0.2
    assert bright.warmth > dark.warmth + 0.2
    assert bright.saturation > dark.saturation + 0.1
    assert bright.colourfulness > 1.5 * dark.colourfulness
    assert dark.cut_rate == pytest.approx(bright.cut_rate)  # grading does not look like cutting


def test_colour_statistics_have_their_documented_extremes():
    grey = np.full((2, 8, 8, 3), 128, np.uint8)
    stats = colour_statistics(grey)
    assert stats["saturation"] == 0.0 and stats["colourfulness"] == 0.0 and stats["warmth"] == 0.0
    assert stats["brightness"] == pytest.approx(128 / 255, abs=1e-3)
    red = np.zeros((1, 8, 8, 3), np.uint8)
    red[..., 0] = 255
    assert colour_statistics(red)["warmth"] == pytest.approx(1.0)
    assert colour_statistics(red)["saturation"] == pytest.approx(1.0)
    photo_stats = colour_statistics(photo("coffee")[None])
    assert photo_stats["colourfulness"] > 20  # a real photograph is clearly colourful


def test_grade_changes_the_photo_the_way_it_says():
    image = photo("chelsea")
    warm, cold = colour_statistics(grade(image, warmth=0.8)[None]), colour_statistics(grade(image, warmth=-0.8)[None])
    assert warm["warmth"] > cold["warmth"]


def test_cut_detection_and_rhythm_on_frame_arrays():
    rng = np.random.default_rng(0)
    shots = [rng.integers(0, 256, size=(1, 16, 16, 3), dtype=np.uint8).repeat(5, axis=0) for _ in range(12)]
    frames = np.concatenate(shots)  # a new random picture every 5 frames
    pixel, histogram = frame_changes(frames)
    assert pixel.shape == histogram.shape == (59,)
    np.testing.assert_array_equal(detect_cuts(pixel, histogram), np.arange(4, 59, 5))
    cues = video_cues(frames, fps=10.0)  # a cut every 0.5 s
    assert cues.rhythm_bpm == pytest.approx(120.0)
    assert visual_rhythm(np.zeros(40), fps=10.0) == (0.0, 0.0)


@pytest.mark.parametrize("frames", [np.zeros((0, 4, 4, 3), np.uint8), np.zeros((2, 4, 4), np.uint8),
                                    np.zeros((2, 4, 4, 3), np.float32)], ids=["empty", "grey", "float"])
def test_bad_frames_raise_a_plain_sentence(frames):
    with pytest.raises(VmnetError, match=r"^[A-Z].*\.$"):
        video_cues(frames, fps=8.0)


def test_a_file_without_video_raises(tmp_path):
    from vmnet_testkit.mediagen import make_audio

    with pytest.raises(VmnetError):
        video_cues_from_file(make_audio(tmp_path / "a.wav", seconds=1.0))
