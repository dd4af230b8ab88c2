"""The picture limits the demo applies to a stranger's video before decoding it
(``vmnet_core.media.check_picture_limits`` / ``check_frame_rate``), and the decoder's pixel cap that
stops a stream whose picture grows past what its header says (tests/security/test_decode_bombs.py
attacks the launched demo with the same files)."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import numpy as np
import pytest

from vmnet_core.errors import VmnetError
from vmnet_core.media import (
    MAX_VIDEO_FPS,
    MAX_VIDEO_PIXELS,
    MAX_VIDEO_SIDE_PX,
    MediaInfo,
    check_frame_rate,
    check_picture_limits,
    ffmpeg_exe,
    frames,
    iter_frame_batches,
    probe,
    sample_frames,
)
from vmnet_core.media.decode_limits import decode_pixel_cap
from vmnet_testkit.decode_bombs import skip_bomb


def _video(width: int | None, height: int | None, fps: float | None = 30.0, has_video: bool = True) -> MediaInfo:
    return MediaInfo(path=Path("/uploads/holiday.mp4"), duration_s=10.0, has_video=has_video, has_audio=True,
                     width=width, height=height, fps=fps, video_codec="h264" if has_video else None,
                     audio_codec="aac", container="mov,mp4,m4a,3gp,3g2,mj2")


def test_the_limits_are_4k_and_60_frames_per_second():
    assert (MAX_VIDEO_SIDE_PX, MAX_VIDEO_PIXELS, MAX_VIDEO_FPS) == (4096, 4096 * 2304, 60.0)


@pytest.mark.parametrize(("width", "height", "fps"), [
    (4096, 2304, 30), (2304, 4096, 30), (3840, 2160, 60), (4096, 2160, 59.94), (4096, 2304, 60),
    (1920, 1080, 60), (320, 240, 60), (4096, 100, 30), (3072, 3072, 25), (640, 480, None)])
def test_pictures_up_to_the_limits_pass(width, height, fps):
    check_picture_limits(_video(width, height, fps))


def test_audio_only_files_pass():
    check_picture_limits(_video(None, None, None, has_video=False))
    check_frame_rate(_video(None, None, None, has_video=False), 600)


@pytest.mark.parametrize(("width", "height"), [(4097, 2000), (2000, 4097), (4096, 2305), (3072, 3073), (16000, 16000)])
def test_pictures_just_over_the_limits_are_refused(width, height):
    with pytest.raises(VmnetError, match=rf"'holiday.mp4' is {width}×{height} pixels, larger than this demo accepts "
                                         r"\(at most 4096 pixels on a side and 4096×2304 in all: 4K fits\); scale it "
                                         r"down, e.g. to 1920×1080, and upload it again\."):
        check_picture_limits(_video(width, height))


@pytest.mark.parametrize(("width", "height", "fps"), [(320, 240, 60.5), (64, 64, 1000), (4096, 2304, 60.5),
                                                      (1920, 1080, 120), (1920, 1080, 240)])
def test_frame_rates_just_over_the_limit_are_refused_whatever_the_size(width, height, fps):
    """At any header size: the stream may grow to the decoder's 4K cap mid-way (a 320×240 header at
    240 fps grew to 4096×2304 and was analysed, 4× the work of 4K at 60)."""
    with pytest.raises(VmnetError, match=rf"plays {fps:.4g} frames per second, more than this demo accepts "
                                         r"\(at most 60\); re-encode it at 30 frames per second"):
        check_picture_limits(_video(width, height, fps))


def test_a_picture_whose_size_cannot_be_read_is_refused():
    with pytest.raises(VmnetError, match="size of the picture in 'holiday.mp4' could not be read"):
        check_picture_limits(_video(None, None))


def test_the_decoder_cap_covers_the_reported_size_and_4k():
    assert decode_pixel_cap(_video(320, 240)) == MAX_VIDEO_PIXELS
    assert decode_pixel_cap(_video(4096, 2304)) == MAX_VIDEO_PIXELS
    assert decode_pixel_cap(_video(4094, 2302)) == MAX_VIDEO_PIXELS  # aligned up, still 4096×2304
    assert decode_pixel_cap(_video(7680, 4320)) == 7680 * 4320  # a shell user's 8K file decodes as before
    assert decode_pixel_cap(_video(5000, 5000)) == 5120 * 5024


@pytest.fixture(scope="module")
def bombs(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bombs")
    return {"dense": skip_bomb(folder / "dense.mp4", 64, 64, 300, 4),
            "at-limit": skip_bomb(folder / "at-limit.mp4", 64, 64, 60, 4),
            "4k": skip_bomb(folder / "4k.mp4", 4096, 2304, 30, 1),
            "liar": skip_bomb(folder / "liar.mp4", 6000, 6000, 30, 10, decoy=(320, 240), keyframe_every_s=2)}


def test_frames_packed_closer_than_the_header_says_are_counted(bombs):
    check_frame_rate(probe(bombs["at-limit"]), 600)
    lying = dataclasses.replace(probe(bombs["dense"]), fps=30.0)  # as a header that states 30 fps would
    check_picture_limits(lying)
    with pytest.raises(VmnetError, match=r"'dense.mp4' plays 300 frames per second, more"):
        check_frame_rate(lying, 600)
    check_frame_rate(lying, 0.004)  # the span counted is the analysed one: one frame here


def test_a_4k_picture_at_the_limit_decodes_under_the_cap(bombs):
    assert sample_frames(bombs["4k"], fps=2, max_frames=2, size=32).shape == (2, 32, 32, 3)


def test_a_picture_that_grows_past_its_header_is_not_decoded(bombs):
    info = probe(bombs["liar"])
    assert (info.width, info.height) == (320, 240)  # what the header, and ffmpeg -i, say
    check_picture_limits(info)
    assert frames._seeking_is_cheaper(info, np.array([0.0, 5.0]))  # the second call below seeks
    with pytest.raises(VmnetError, match=r"'liar.mp4' changes part-way through to a much larger picture than its "
                                         r"header says, which is not decoded; re-encode it at one size"):
        for _ in iter_frame_batches(bombs["liar"], fps=1.0, max_frames=10, size=224):
            pass
    with pytest.raises(VmnetError, match="changes part-way through"):
        sample_frames(bombs["liar"], fps=0.2, max_frames=2, size=224)  # one seek per frame


def test_a_vp9_stream_that_grows_past_its_header_is_not_decoded_either(tmp_path):
    """VP9 may change its picture size at any keyframe, with no new header: the decoder's pixel cap
    (a generic ffmpeg codec option, not H.264's) stops it too."""
    ffmpeg = ffmpeg_exe()
    for name, size, seconds in (("small", "320x240", 2), ("big", "5000x5000", 0.1)):
        subprocess.run([ffmpeg, "-v", "error", "-y", "-f", "lavfi", "-i", f"color=gray:s={size}:r=30", "-t", str(seconds),
                        "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "100k",
                        str(tmp_path / f"{name}.webm")], check=True)
    (tmp_path / "parts.txt").write_text("file small.webm\nfile big.webm\n")
    grown = tmp_path / "grown.webm"
    subprocess.run([ffmpeg, "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(tmp_path / "parts.txt"),
                    "-c", "copy", str(grown)], check=True)
    info = probe(grown)
    assert (info.width, info.height) == (320, 240)
    check_picture_limits(info)
    with pytest.raises(VmnetError, match="'grown.webm' changes part-way through to a much larger picture"):
        for _ in iter_frame_batches(grown, fps=1.0, max_frames=10, size=224):
            pass
