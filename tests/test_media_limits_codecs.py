"""The demo's decode limits (``vmnet_core.media.decode_limits``, tests/test_media_limits.py) attacked
with what an H.264 file does not show: other codecs, files with several video streams, and packets
that hold several frames. Every file is made by the real ffmpeg (:mod:`vmnet_testkit.decode_bombs`).

What was found (2026-12-07, docs/security.md, "Decode limits"): a few bytes of JPEG 2000, PNG, FFV1
or VVC cost 6-20 times an H.264 frame of the same size to decode; VP9 superframes and AV1 temporal
units decoded 8 or 16 frames per packet counted; cover art stored before the tracks was analysed
instead of the video; a metadata key could make ``ffmpeg -i`` describe a stream that is not there;
and opening a file decoded a picture of every stream, so copies of one huge keyframe took gigabytes
before any limit was checked.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vmnet_core.errors import VmnetError
from vmnet_core.media import (
    check_frame_rate,
    check_picture_limits,
    ffmpeg_exe,
    iter_frame_batches,
    mux_music_onto_video,
    probe,
    sample_frames,
)
from vmnet_core.media.ffmpeg import MAX_STREAMS
from vmnet_testkit.decode_bombs import (
    copies_of_stream,
    cover_first_mp4,
    encoders,
    frames_per_packet,
    grown_video,
    misdescribed_mp4,
    plain_video,
    skip_bomb,
)

X265 = ["-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error"]
AOM = ["-c:v", "libaom-av1", "-cpu-used", "8", "-usage", "realtime"]
VPX8 = ["-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8"]
VPX9 = ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8"]
MJPEG = ["-c:v", "mjpeg", "-pix_fmt", "yuvj420p"]
PRORES = ["-c:v", "prores_ks", "-profile:v", "0"]


def _needs(encoder_args: list[str]) -> None:
    """Skip when this ffmpeg build lacks the encoder ``encoder_args`` name (``-c:v NAME``)."""
    name = encoder_args[encoder_args.index("-c:v") + 1]
    if name not in encoders():
        pytest.skip(f"this ffmpeg build has no {name} encoder, so no such file can be made")


def _ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", *args], check=True, capture_output=True)


# ---------------------------------------------------------------------------------------- other codecs

@pytest.mark.parametrize(("codec", "encoder_args", "ext", "width", "height"), [
    ("mjpeg", MJPEG, "avi", 4097, 2000), ("mjpeg", MJPEG, "mkv", 3072, 3074), ("prores", PRORES, "mov", 4098, 2000),
    ("mpeg4", ["-c:v", "mpeg4"], "avi", 4097, 2000), ("mpeg2video", ["-c:v", "mpeg2video"], "mkv", 4097, 2000),
    ("hevc", X265, "mp4", 4098, 2000), ("hevc", X265, "mkv", 2000, 4098), ("av1", AOM, "webm", 4097, 2000),
    ("vp9", VPX9, "webm", 4098, 2000), ("vp8", VPX8, "webm", 4097, 2000)])
def test_a_picture_just_over_the_limits_is_refused_in_every_codec(tmp_path, codec, encoder_args, ext, width, height):
    _needs(encoder_args)
    over = plain_video(tmp_path / f"over.{ext}", width, height, encoder_args)
    info = probe(over)
    assert (info.video_codec, info.width, info.height) == (codec, width, height)
    with pytest.raises(VmnetError, match=rf"'over.{ext}' is {width}×{height} pixels, larger than this demo accepts"):
        check_picture_limits(info)


@pytest.mark.parametrize(("codec", "encoder_args", "ext", "raw_format"), [
    ("mjpeg", MJPEG, "avi", None), ("mjpeg", MJPEG, "mkv", None), ("prores", PRORES, "mov", None),
    ("mpeg4", ["-c:v", "mpeg4"], "avi", None), ("mpeg2video", ["-c:v", "mpeg2video"], "mkv", None),
    ("hevc", X265, "mp4", "hevc"), ("vp8", VPX8, "webm", None), ("av1", AOM, "mkv", "obu")])
def test_a_stream_that_grows_past_its_header_is_not_decoded_in_any_codec(tmp_path, codec, encoder_args, ext, raw_format):
    """Black 320×240 for 1 s, then white 4800×4800 (over the decoder's 4096×2304 cap): the checks pass
    (the header is small) and the decoder refuses the big pictures, and every codec says so in a sentence
    (AV1 too: libdav1d logs its own words, "Frame size 4800x4800 exceeds limit", and the frames after the
    change went missing without one until a fifth audit, 2026-12-07)."""
    _needs(encoder_args)
    grown = grown_video(tmp_path / f"grown.{ext}", encoder_args, raw_format)
    info = probe(grown)
    assert (info.video_codec, info.width, info.height) == (codec, 320, 240)
    check_picture_limits(info)
    check_frame_rate(info, 600)
    seen: list[np.ndarray] = []
    with pytest.raises(VmnetError, match=rf"'grown.{ext}' changes part-way through to a much larger picture"):
        for batch in iter_frame_batches(grown, fps=10, max_frames=12, size=32):  # samples at 1.0 and 1.1 s are white
            seen.extend(batch)
    assert seen and max(float(frame.mean()) for frame in seen) < 60, "a 4800×4800 picture was decoded"


@pytest.mark.parametrize(("codec", "encoder_args", "ext"), [
    ("jpeg2000", ["-c:v", "jpeg2000"], "mov"), ("png", ["-c:v", "png"], "mov"), ("ffv1", ["-c:v", "ffv1"], "mkv"),
    ("snow", ["-c:v", "snow"], "avi"), ("vvc", ["-c:v", "libvvenc", "-preset", "faster"], "mp4")])
def test_codecs_that_cost_many_times_more_to_decode_are_refused(tmp_path, codec, encoder_args, ext):
    """At 4096×2304 and 60 fps, flat JPEG 2000 frames of 285 bytes took 208 ms each to decode, PNG 115,
    FFV1 77, VVC 64, Snow 28 ms (H.264: 5-10 ms): refused before any decode, whatever the size."""
    _needs(encoder_args)
    info = probe(plain_video(tmp_path / f"small.{ext}", 128, 96, encoder_args))
    assert info.video_codec == codec
    with pytest.raises(VmnetError, match=rf"'small.{ext}' is encoded as {codec}, which costs this demo far more to "
                                         r"decode than common formats; re-encode it to H.264"):
        check_picture_limits(info)


@pytest.mark.parametrize(("codec", "encoder_args", "ext"), [
    ("h264", ["-c:v", "libx264", "-preset", "ultrafast"], "mp4"), ("hevc", X265, "mov"), ("vp9", VPX9, "webm"),
    ("vp8", VPX8, "webm"), ("av1", AOM, "mp4"), ("mpeg4", ["-c:v", "mpeg4"], "avi"), ("mjpeg", MJPEG, "avi"),
    ("prores", PRORES, "mov"), ("mpeg2video", ["-c:v", "mpeg2video"], "mkv")])
def test_the_codecs_phones_cameras_and_the_web_deliver_are_accepted(tmp_path, codec, encoder_args, ext):
    """Both checks pass, the second reading the stream's codec and size back from the demux pass."""
    _needs(encoder_args)
    info = probe(plain_video(tmp_path / f"clip.{ext}", 640, 360, encoder_args, seconds=1.0))
    assert (info.video_codec, info.width, info.height) == (codec, 640, 360)
    check_picture_limits(info)
    check_frame_rate(info, 600)


@pytest.mark.parametrize(("encoder_args", "width", "height", "pix_fmt", "refused"), [
    (["-pix_fmt", "yuv444p"], 4096, 2304, "yuv444p", True), (["-pix_fmt", "yuv444p10le"], 3840, 2160, "yuv444p10le", True),
    (["-pix_fmt", "yuv444p"], 2560, 1440, "yuv444p", False), (["-pix_fmt", "yuv422p10le"], 4096, 2304, "yuv422p10le", False),
    (["-pix_fmt", "yuv420p10le"], 4096, 2304, "yuv420p10le", False),
    ([*X265[2:], "-pix_fmt", "yuv422p12le"], 3840, 2160, "yuv422p12le", True)])
def test_full_colour_detail_at_4k_is_refused_and_ordinary_formats_pass(tmp_path, encoder_args, width, height, pix_fmt,
                                                                       refused):
    """Decode work grows with samples, not pixels: 4:4:4 12-bit 4K at 60 fps took 1.5 CPU-s per second of video
    in HEVC and 2.1 in VP9 (385 kB/s), 4× an honest 4K60 H.264 clip (0.54). 4:4:4 is refused at 4K (accepted up
    to 2560×1440), and so is 12-bit 4:2:2 (VP9: 1.6 CPU-s per second); 8- and 10-bit 4:2:2 and 4:2:0 4K, what
    cameras and HDR phones deliver, pass."""
    codec = "hevc" if "-x265-params" in encoder_args else "h264"
    encoder = X265[:2] if codec == "hevc" else ["-c:v", "libx264", "-preset", "ultrafast"]
    _needs(encoder)
    clip = plain_video(tmp_path / "clip.mp4", width, height, [*encoder, *encoder_args])
    info = probe(clip)
    assert (info.video_codec, info.width, info.height, info.pix_fmt) == (codec, width, height, pix_fmt)
    with pytest.raises(VmnetError, match=rf"'clip.mp4' is {width}×{height} pixels stored with extra colour detail "
                                         rf"\({pix_fmt}\), which costs this demo far more to decode") \
            if refused else contextlib.nullcontext():
        check_picture_limits(info)


# ------------------------------------------------------------------------------- several video streams

@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("streams")
    red = plain_video(folder / "red.mp4", 320, 240, ["-c:v", "libx264", "-preset", "ultrafast"], 3.0, color="red")
    cover = folder / "cover.jpg"
    _ffmpeg("-f", "lavfi", "-i", "color=c=blue:s=200x200", "-frames:v", "1", "-update", "1", str(cover))
    return {"red": red, "cover": cover, "dense": skip_bomb(folder / "dense.mp4", 64, 64, 300, 2)}


def _with_cover(video: Path, cover: Path, out: Path) -> Path:
    """``video`` with ``cover`` as its cover art (an attached picture), stored before the tracks."""
    tagged = out.with_name(f"tagged-{out.name}")
    _ffmpeg("-i", str(video), "-i", str(cover), "-map", "0", "-map", "1", "-c", "copy",
            "-disposition:v:1", "attached_pic", str(tagged))
    return cover_first_mp4(tagged, out)


def _stream_lines(path: Path) -> list[str]:
    summary = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True).stderr
    return [line.strip() for line in summary.splitlines() if line.strip().startswith("Stream #0:")]


def test_cover_art_listed_before_the_video_is_not_what_is_analysed(clips, tmp_path):
    """ffmpeg lists cover art stored before the tracks as stream 0; the probe skips it, and the decoders
    read ``0:V:0`` (not ``0:v:0``), so they decode the video the probe described, not the cover
    (before: one blue frame instead of three red ones)."""
    tagged = _with_cover(clips["red"], clips["cover"], tmp_path / "tagged.mp4")
    assert "(attached pic)" in _stream_lines(tagged)[0]
    info = probe(tagged)
    assert (info.video_codec, info.width, info.height) == ("h264", 320, 240)
    frames = sample_frames(tagged, fps=1, max_frames=5, size=16)
    assert len(frames) == 3 and np.all(frames[:, 8, 8, 0] > 200) and np.all(frames[:, 8, 8, 2] < 60)


def test_the_frames_counted_are_those_of_the_video_behind_the_cover(clips, tmp_path):
    """A 300-fps video behind cover art stored first, its header made to state 30 fps: the demux pass
    counts the video's packets, not the cover's one (before: 1 packet, and the check passed)."""
    tagged = _with_cover(clips["dense"], clips["cover"], tmp_path / "dense-tagged.mp4")
    lying = dataclasses.replace(probe(tagged), fps=30.0)  # as a header that states 30 fps would
    check_picture_limits(lying)
    with pytest.raises(VmnetError, match=r"'dense-tagged.mp4' plays 300 frames per second, more than this demo"):
        check_frame_rate(lying, 600)


def test_the_first_stream_is_the_one_checked_and_decoded_and_a_huge_second_one_is_not_decoded(clips, tmp_path):
    """Stream 0 small and red, stream 1 larger: the checks and the decode both read stream 0. When
    stream 1 is an 8000×8000 bomb, ffmpeg's look at every stream while opening the file meets the
    decoder's cap: refused (with the grown-picture sentence), never decoded at full size."""
    grey = plain_video(tmp_path / "grey.mp4", 1280, 720, ["-c:v", "libx264", "-preset", "ultrafast"], 3.0)
    for second, name in ((grey, "grey"), (skip_bomb(tmp_path / "big.mp4", 8000, 8000, 30, 1), "bomb")):
        both = tmp_path / f"red-and-{name}.mp4"
        _ffmpeg("-i", str(clips["red"]), "-i", str(second), "-map", "0:v", "-map", "1:v", "-c", "copy", str(both))
        info = probe(both)
        assert (info.width, info.height) == (320, 240)
        check_picture_limits(info)
        check_frame_rate(info, 600)
        if name == "grey":
            assert np.all(sample_frames(both, fps=1, max_frames=5, size=16)[:, 8, 8, 0] > 200)  # red: stream 0
        else:
            with pytest.raises(VmnetError, match=r"'red-and-bomb.mp4' changes part-way through to a much larger"):
                sample_frames(both, fps=1, max_frames=5, size=16)


def test_a_file_with_more_streams_than_ffmpeg_may_open_is_refused_with_a_sentence(clips, tmp_path):
    assert MAX_STREAMS == 16  # the sentence below names it
    probe(copies_of_stream(clips["red"], tmp_path / "sixteen.mp4", MAX_STREAMS))
    with pytest.raises(VmnetError, match=r"'seventeen.mp4' holds more than 16 streams \(video, audio, subtitle and "
                                         r"data tracks\), more than this program opens; keep the ones you need"):
        probe(copies_of_stream(clips["red"], tmp_path / "seventeen.mp4", MAX_STREAMS + 1))


def test_opening_a_file_of_many_huge_keyframes_takes_no_gigabytes(tmp_path):
    """ffmpeg decodes a picture of every video stream to describe a file, before any limit is checked:
    8 copies of one 8000×8000 keyframe (1.5 MB) took 1.4 GB in the probe (20: 3 GB; a 5-MB file holds
    hundreds). Now no picture over 8K is decoded while opening a file, and at most 16 streams are opened."""
    many = copies_of_stream(skip_bomb(tmp_path / "one.mp4", 8000, 8000, 30, 0.1), tmp_path / "many.mp4", 8)
    measure = ("import resource, sys\nfrom vmnet_core.media import probe\ninfo = probe(sys.argv[1])\n"
               "print(info.width, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", measure, str(many)], capture_output=True, text=True, check=True, cwd=root)
    width, peak_kb = map(int, done.stdout.split())
    assert width == 8000  # still described (and refused by the demo's limits)
    assert peak_kb < 500_000, f"opening the file took {peak_kb / 1e3:.0f} MB"


def test_a_summary_that_describes_another_stream_is_refused(tmp_path):
    """A metadata key with newlines makes ``ffmpeg -i`` print a 16×16, 1-fps stream above the real
    640×480 one; the probe reads the first, and the demux pass, which reads the stream itself, refuses."""
    spoofed = misdescribed_mp4(tmp_path / "spoofed.mp4")
    info = probe(spoofed)
    assert (info.width, info.height, info.fps) == (16, 16, 1.0)  # the lie the text tells
    check_picture_limits(info)
    with pytest.raises(VmnetError, match=r"'spoofed.mp4' could not be checked: its video stream reads as h264 "
                                         r"640×480, not the h264 16×16 its header describes; re-export it"):
        check_frame_rate(info, 600)


# ------------------------------------------------------------------------- several frames per packet

def _ivf(tmp_path: Path, name: str, encoder_args: list[str], frames: int, size: str = "128x72") -> Path:
    out = tmp_path / f"{name}.ivf"
    _ffmpeg("-f", "lavfi", "-i", f"testsrc2=s={size}:r=60", "-frames:v", str(frames), *encoder_args,
            "-lag-in-frames", "0", "-f", "ivf", str(out))
    return out


@pytest.mark.parametrize("codec, per_packet, container", [("vp9", 8, "webm"), ("av1", 4, "mp4")])
def test_frames_packed_several_to_a_packet_are_counted_frame_by_frame(tmp_path, codec, per_packet, container):
    """A VP9 superframe holds up to 8 shown frames, an AV1 temporal unit any number, and the decoder
    decodes them all: 60 packets a second of 8 (VP9) or 4 (AV1) frames decode 480 or 240 frames a
    second (before, 60 packets were counted and the check passed; the first AV1 unit is not marked
    as a keyframe either, and the stream copy that counted dropped every packet before one)."""
    encoder = [*VPX9, "-auto-alt-ref", "0"] if codec == "vp9" else AOM
    _needs(VPX9 if codec == "vp9" else AOM)
    shown = 60 * per_packet
    packed = frames_per_packet(_ivf(tmp_path, codec, encoder, shown), tmp_path / f"packed.{container}", per_packet, 60)
    info = probe(packed)
    assert (info.video_codec, info.fps) == (codec, 60.0)
    check_picture_limits(info)
    with pytest.raises(VmnetError, match=rf"'packed.{container}' plays {shown} frames per second, more than this demo"):
        check_frame_rate(info, 600)


def test_honest_60_fps_av1_with_hidden_frames_is_accepted(tmp_path):
    """AV1 encoders decode frames they show later (1.5 frames per frame shown from SVT-AV1, libaom and
    rav1e): a 60-fps stream counts 90 frames a second and is accepted."""
    encoder = (["-c:v", "libsvtav1", "-preset", "12"] if "libsvtav1" in encoders()
               else ["-c:v", "libaom-av1", "-cpu-used", "8"])
    _needs(encoder)
    clip = tmp_path / "honest.mkv"
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=s=160x90:r=60", "-t", "4", *encoder, str(clip))
    check_frame_rate(probe(clip), 600)


# ------------------------------------------------------------------------------------------- the preview

def test_laying_music_under_a_grown_stream_decodes_no_large_picture(tmp_path):
    """The preview re-encodes a video that is not H.264: its decode passes the pixel cap too, so the
    white 4800×4800 pictures after the first second never reach the encoder."""
    grown = grown_video(tmp_path / "grown.avi", ["-c:v", "mpeg4"])
    music = tmp_path / "music.wav"
    _ffmpeg("-f", "lavfi", "-i", "sine=f=440:d=2", str(music))
    out = mux_music_onto_video(grown, music, tmp_path / "preview.mp4", fade_s=0.0, max_width_px=320)
    frames = sample_frames(out, fps=10, max_frames=20, size=16)
    assert len(frames) and float(frames.mean(axis=(1, 2, 3)).max()) < 60, "a 4800×4800 picture was decoded"


# ------------------------------------------------------------------------------- Motion JPEG scans

def _jpeg_segments(data: bytes) -> list[bytes]:
    """The marker segments of one JPEG, a start-of-scan segment with its entropy-coded data, EOI last."""
    segments, i = [data[:2]], 2
    while data[i + 1] != 0xD9:
        end = i + 2 + int.from_bytes(data[i + 2:i + 4], "big")
        if data[i + 1] == 0xDA:  # entropy-coded data runs to the next marker that is not FF00 or a restart
            while data[end] != 0xFF or data[end + 1] == 0 or 0xD0 <= data[end + 1] <= 0xD7:
                end += 1
        segments.append(data[i:end])
        i = end
    return [*segments, data[i:i + 2]]


def _jpeg(progressive: bool, extra_scans: int = 0, size: tuple[int, int] = (256, 144)) -> bytes:
    """A grey JPEG from Pillow (progressive: libjpeg's 10 scans), its last scan repeated ``extra_scans`` times."""
    out = io.BytesIO()
    Image.new("RGB", size, (120, 130, 140)).save(out, "JPEG", quality=90, progressive=progressive)
    segments = _jpeg_segments(out.getvalue())
    last_scan = next(s for s in reversed(segments) if s[1] == 0xDA)
    return b"".join(segments[:-1]) + last_scan * extra_scans + segments[-1]


def _mjpeg(out: Path, *pictures: bytes, frames: int = 30, fps: int = 30) -> Path:
    """``frames`` JPEGs (``pictures`` in turn) muxed as Motion JPEG without re-encoding (``-c copy``)."""
    for k in range(frames):
        (out.parent / f"{out.stem}-{k:03d}.jpg").write_bytes(pictures[k % len(pictures)])
    _ffmpeg("-framerate", str(fps), "-i", str(out.parent / f"{out.stem}-%03d.jpg"), "-c", "copy", str(out))
    return out


def test_motion_jpeg_pictures_stored_in_many_scans_are_refused(tmp_path):
    """Each scan of a progressive JPEG is a pass over every block of the picture, a few bytes each: flat
    4K frames of 1000 extra scans (69 kB) took 0.5 s each, 32 CPU-s a second of 60-fps video (a fifth
    audit, 2026-12-07). Pictures stored in more than 16 scans on average are refused with a sentence;
    baseline and ordinary progressive ones (10 scans) are accepted and decode."""
    for name, picture in (("baseline.avi", _jpeg(False)), ("progressive.mov", _jpeg(True)),
                          ("sixteen.mkv", _jpeg(True, 6))):
        clip = _mjpeg(tmp_path / name, picture)
        info = probe(clip)
        assert info.video_codec == "mjpeg"
        check_picture_limits(info)
        check_frame_rate(info, 600)
        assert len(sample_frames(clip, fps=10, max_frames=5, size=32)) == 5
    many = _mjpeg(tmp_path / "many.avi", _jpeg(True, 7))  # 17 scans
    info = probe(many)
    check_picture_limits(info)
    with pytest.raises(VmnetError, match=r"'many.avi' is Motion JPEG whose pictures are each stored in 17 or more "
                                         r"passes \(scans\), far more than cameras write \(at most 16"):
        check_frame_rate(info, 600)
    with pytest.raises(VmnetError, match="'one.avi' is Motion JPEG"):  # one picture of many scans among plain ones
        check_frame_rate(probe(_mjpeg(tmp_path / "one.avi", _jpeg(True, 30 * 16), *[_jpeg(False)] * 29)), 600)
