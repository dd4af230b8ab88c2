"""vmnet_core.media on real files made by the real ffmpeg: every container, every bad-input kind,
frame sampling semantics (fps, max_frames, start, the seeking path), splitting, and muxing."""

from __future__ import annotations

import struct
import threading
import wave
from pathlib import Path

import numpy as np
import pytest

from vmnet_core import media
from vmnet_core.atomic_io import FILE_MODE
from vmnet_core.errors import VmnetError
from vmnet_core.media import frames as media_frames
from vmnet_testkit.mediagen import (
    attach_cover_art,
    convert,
    frame_index,
    make_audio,
    make_image,
    make_indexed_video,
    make_stereo_wav,
    make_video,
    remux_moov_at_end,
)
from vmnet_testkit.processes import live_children

VIDEO_CONTAINERS = ["mp4", "mov", "mkv", "webm", "avi"]
AUDIO_CONTAINERS = ["mp3", "wav", "ogg", "opus", "flac", "m4a"]
SECONDS = 3.0
TONE_HZ = 440.0


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory) -> Path:
    """One 3-s file per container: videos 160x120 at 10 fps with a 440-Hz tone, audio tones."""
    root = tmp_path_factory.mktemp("media")
    make_video(root / "clip.mp4", seconds=SECONDS)
    for ext in VIDEO_CONTAINERS[1:]:
        convert(root / "clip.mp4", root / f"clip.{ext}")
    for ext in AUDIO_CONTAINERS:
        make_audio(root / f"tone.{ext}", seconds=SECONDS, freq=TONE_HZ)
    make_video(root / "silent.mp4", seconds=SECONDS, audio=False)
    make_indexed_video(root / "indexed.mp4", seconds=12, fps=10)
    return root


def _dominant_hz(y: np.ndarray, sr: int) -> float:
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    return float(np.fft.rfftfreq(len(y), 1 / sr)[np.argmax(spectrum)])


def _assert_plain_sentence(err: pytest.ExceptionInfo, name: str) -> None:
    message = str(err.value)
    assert name in message, message
    assert "\n" not in message and len(message) < 300, message
    for dump in ("Stream #", "[in#", "ffmpeg version", "Input #0", "Traceback", "0x"):
        assert dump not in message, message


# ----------------------------------------------------------------------------- round trips

@pytest.mark.parametrize("ext", VIDEO_CONTAINERS + AUDIO_CONTAINERS)
def test_audio_decodes_at_the_requested_rate_in_every_container(media_dir, ext):
    path = media_dir / (f"clip.{ext}" if ext in VIDEO_CONTAINERS else f"tone.{ext}")
    sr = 12000
    y = media.decode_audio(path, sr)
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(len(y) - SECONDS * sr) <= 0.05 * sr  # mp3-in-avi keeps ~30 ms of encoder delay
    assert np.abs(y).max() <= 1.0 and np.abs(y).max() > 0.1
    assert abs(_dominant_hz(y, sr) - TONE_HZ) < 3  # a wrong rate would move the tone


@pytest.mark.parametrize("ext", VIDEO_CONTAINERS)
def test_frames_and_probe_in_every_video_container(media_dir, ext):
    path = media_dir / f"clip.{ext}"
    info = media.probe(path)
    assert info.has_video and info.has_audio
    assert (info.width, info.height) == (160, 120)
    assert info.fps == pytest.approx(10)
    assert info.duration_s == pytest.approx(SECONDS, abs=0.15)
    frames = media.sample_frames(path, fps=1.0, size=64)
    expected = 4 if info.duration_s > 3.05 else 3  # ffmpeg's avi muxer adds a frame at 3.0 s
    assert frames.shape == (expected, 64, 64, 3) and frames.dtype == np.uint8
    assert frames.std() > 5  # real pictures, not blank buffers


@pytest.mark.parametrize("ext", AUDIO_CONTAINERS)
def test_audio_files_probe_as_audio_only_and_refuse_frames(media_dir, ext):
    path = media_dir / f"tone.{ext}"
    info = media.probe(path)
    assert info.has_audio and not info.has_video and info.width is None
    assert info.duration_s == pytest.approx(SECONDS, abs=0.1)
    with pytest.raises(VmnetError, match="no video track") as err:
        media.sample_frames(path)
    _assert_plain_sentence(err, path.name)


def test_probe_reports_codecs_and_container(media_dir):
    info = media.probe(media_dir / "clip.mp4")
    assert (info.video_codec, info.audio_codec, info.pix_fmt) == ("h264", "aac", "yuv420p")
    assert "mp4" in info.container and info.sample_rate == 44100 and info.channels == 1
    webm = media.probe(media_dir / "clip.webm")
    assert webm.video_codec in ("vp8", "vp9") and "webm" in webm.container


def test_cover_art_does_not_count_as_video(media_dir, tmp_path):
    path = attach_cover_art(media_dir / "tone.wav", tmp_path / "with_cover.mp3")
    info = media.probe(path)
    assert info.has_audio and not info.has_video


@pytest.mark.parametrize("ext", ["m4a", "webm", "avi", "mp3"])
def test_audio_excerpt_is_sample_exact(media_dir, ext):
    path = media_dir / (f"clip.{ext}" if ext in VIDEO_CONTAINERS else f"tone.{ext}")
    full = media.decode_audio(path, 16000)
    part = media.decode_audio(path, 16000, offset_s=1.0, duration_s=1.5)
    assert len(part) == 24000
    np.testing.assert_allclose(part, full[16000:40000], atol=1e-6)


def test_stereo_is_averaged_to_mono(tmp_path):
    y = media.decode_audio(make_stereo_wav(tmp_path / "lr.wav", 0.5, 0.3), 8000)
    assert np.median(y) == pytest.approx(0.4, abs=1e-3)


# ----------------------------------------------------------------------------- frame sampling

def test_sample_frames_respects_fps_and_max_frames(media_dir):
    path = media_dir / "indexed.mp4"  # 12 s at 10 fps, frame i shows the number i
    assert len(media.sample_frames(path, fps=1.0, size=32)) == 12
    assert len(media.sample_frames(path, fps=2.0, size=32)) == 24
    assert len(media.sample_frames(path, fps=0.5, size=32)) == 6
    capped = media.sample_frames(path, fps=2.0, max_frames=5, size=32)
    assert capped.shape == (5, 32, 32, 3)


@pytest.mark.parametrize("fps", [1.0, 2.0])
def test_frame_k_is_the_one_on_screen_at_k_over_fps(media_dir, fps):
    frames = media.sample_frames(media_dir / "indexed.mp4", fps=fps, size=64)
    shown = np.array([frame_index(f) for f in frames])
    wanted = np.arange(len(frames)) * 10 / fps
    assert np.all(np.abs(shown - wanted) <= 2), shown  # non-reference frames are skipped, so ±2


def test_start_offset_and_end(media_dir):
    frames = media.sample_frames(media_dir / "indexed.mp4", fps=1.0, size=64, start_s=2.5)
    shown = [frame_index(f) for f in frames]
    assert len(frames) == 10  # 2.5, 3.5, ..., 11.5
    assert abs(shown[0] - 25) <= 2 and abs(shown[-1] - 115) <= 2
    with pytest.raises(VmnetError, match="past the end"):
        media.sample_frames(media_dir / "indexed.mp4", start_s=30)


def test_sparse_sampling_seeks_and_finds_the_same_frames(tmp_path):
    path = make_indexed_video(tmp_path / "gop.mp4", seconds=24, fps=10, keyint=10)
    info = media.probe(path)
    times = np.arange(6) * 4.0
    assert media_frames._seeking_is_cheaper(info, times)  # keyframe every second, a sample every 4 s
    frames = media.sample_frames(path, fps=0.25, size=64)
    shown = np.array([frame_index(f) for f in frames])
    assert len(frames) == 6 and np.all(np.abs(shown - times * 10) <= 2), shown
    assert not media_frames._seeking_is_cheaper(info, np.arange(24) * 1.0)  # dense sampling decodes once


@pytest.mark.parametrize("fps", [2.0, 0.25])  # one decode through the fps filter; one seek per frame
def test_iter_frame_batches_streams_the_frames_of_sample_frames(tmp_path, fps):
    path = make_indexed_video(tmp_path / "gop.mp4", seconds=12, fps=10, keyint=10)
    whole = media.sample_frames(path, fps=fps, size=64)
    batches = list(media.iter_frame_batches(path, fps=fps, size=64, batch_frames=5))
    assert all(b.dtype == np.uint8 and b.shape[1:] == (64, 64, 3) and 1 <= len(b) <= 5 for b in batches)
    np.testing.assert_array_equal(np.concatenate(batches), whole)  # same frames, same order
    assert len(whole) == (24 if fps == 2.0 else 3)


def test_iter_frame_batches_checks_the_file_before_the_first_batch(media_dir):
    with pytest.raises(VmnetError, match="no video track"):
        media.iter_frame_batches(media_dir / "tone.wav")  # raised by the call itself, not lazily
    with pytest.raises(VmnetError, match="batch_frames"):
        media.iter_frame_batches(media_dir / "clip.mp4", batch_frames=0)


def test_leaving_iter_frame_batches_early_stops_ffmpeg(media_dir):
    before = live_children()
    batches = media.iter_frame_batches(media_dir / "indexed.mp4", fps=10.0, size=32, batch_frames=2)
    first = next(batches)
    assert 1 <= len(first) <= 2
    batches.close()
    assert live_children() <= before
    assert not any(t.name == "vmnet-frame-reader" for t in threading.enumerate())


def _rawvideo_runs(monkeypatch) -> list[list[str]]:
    """Record every ffmpeg run that writes frames (the real ffmpeg still runs)."""
    runs: list[list[str]] = []
    real_popen = media_frames.subprocess.Popen

    def recording(args, *rest, **kwargs):
        if "rawvideo" in args:
            runs.append(list(args))
        return real_popen(args, *rest, **kwargs)

    monkeypatch.setattr(media_frames.subprocess, "Popen", recording)
    return runs


@pytest.mark.parametrize(("main", "side", "decodes"), [
    ((2.0, 40), (10.0, 32), 1),  # both shrink 128 px ≥ 3×: same decoder options, one shared decode
    ((2.0, 64), (10.0, 32), 2),  # 64 px keeps deblocking, 32 px skips it: each its own decode
])
def test_frames_beside_are_exactly_those_of_their_own_sampling(media_dir, monkeypatch, main, side, decodes):
    path = media_dir / "indexed.mp4"
    runs = _rawvideo_runs(monkeypatch)
    batches, side_frames = media.iter_frame_batches_beside(
        path, media.FrameSampling(main[0], 360, main[1]), media.FrameSampling(side[0], 1000, side[1]), batch_frames=4)
    main_frames = np.concatenate(list(batches))
    beside = side_frames.result(timeout=60)
    assert len(runs) == decodes
    np.testing.assert_array_equal(main_frames, media.sample_frames(path, fps=main[0], size=main[1]))
    np.testing.assert_array_equal(beside, media.sample_frames(path, fps=side[0], size=side[1]))
    assert beside.shape == (120, side[1], side[1], 3)


def test_frames_beside_a_seeking_sampling_come_from_their_own_decode(tmp_path):
    path = make_indexed_video(tmp_path / "gop.mp4", seconds=12, fps=10, keyint=10)
    batches, side_frames = media.iter_frame_batches_beside(path, media.FrameSampling(0.25, 360, 64),
                                                           media.FrameSampling(2.0, 100, 32))
    np.testing.assert_array_equal(np.concatenate(list(batches)), media.sample_frames(path, fps=0.25, size=64))
    np.testing.assert_array_equal(side_frames.result(timeout=60), media.sample_frames(path, fps=2.0, size=32))


def test_frames_beside_fail_with_the_main_decode_and_stop_with_it(media_dir, monkeypatch):
    with pytest.raises(VmnetError, match="no video track"):
        media.iter_frame_batches_beside(media_dir / "tone.wav", media.FrameSampling(1.0, 10, 32),
                                        media.FrameSampling(8.0, 80, 32))
    before = live_children()
    batches, side_frames = media.iter_frame_batches_beside(
        media_dir / "indexed.mp4", media.FrameSampling(10.0, 360, 32), media.FrameSampling(10.0, 360, 32), batch_frames=2)
    next(batches)
    batches.close()  # the consumer leaves early: ffmpeg stops and the side frames say so
    with pytest.raises(VmnetError, match="Stopped decoding frames"):
        side_frames.result(timeout=60)
    assert live_children() <= before
    monkeypatch.setattr(media_frames, "_decode_timeout_s", lambda seconds: 0.001)
    batches, side_frames = media.iter_frame_batches_beside(
        media_dir / "indexed.mp4", media.FrameSampling(10.0, 360, 32), media.FrameSampling(10.0, 360, 32))
    with pytest.raises(VmnetError, match="Gave up"):
        list(batches)
    with pytest.raises(VmnetError, match="Gave up"):
        side_frames.result(timeout=60)


def test_frame_decoding_that_runs_too_long_is_a_plain_error(media_dir, monkeypatch):
    monkeypatch.setattr(media_frames, "_decode_timeout_s", lambda seconds: 0.001)
    with pytest.raises(VmnetError, match="Gave up") as err:
        media.sample_frames(media_dir / "indexed.mp4", fps=10.0, size=32)
    _assert_plain_sentence(err, "indexed.mp4")
    with pytest.raises(VmnetError, match="Gave up"):
        list(media.iter_frame_batches(media_dir / "indexed.mp4", fps=10.0, size=32))


def test_deblocking_is_skipped_only_when_frames_shrink_enough(media_dir, monkeypatch):
    path = media_dir / "indexed.mp4"  # 128x128
    info = media.probe(path)
    assert "-skip_loop_filter" in media_frames._sampling_decode_args(info, 40)  # shrunk 3.2x
    assert "-skip_loop_filter" not in media_frames._sampling_decode_args(info, 64)  # shrunk 2x: filtered
    fast = media.sample_frames(path, fps=2.0, size=40)
    monkeypatch.setattr(media_frames, "SKIP_DEBLOCKING_MIN_DOWNSCALE", float("inf"))  # always filtered
    filtered = media.sample_frames(path, fps=2.0, size=40)
    assert fast.shape == filtered.shape == (24, 40, 40, 3)
    assert np.abs(fast.astype(float) - filtered).mean() < 3.0  # of 255; CNN features: test_video_descriptor
    assert [frame_index(f) for f in fast] == [frame_index(f) for f in filtered]


def test_frames_are_centre_cropped_squares(tmp_path):
    # a wide picture: left third red, middle third green, right third blue
    wide = np.zeros((60, 180, 3), np.uint8)
    wide[:, :60, 0] = wide[:, 60:120, 1] = wide[:, 120:, 2] = 255
    path = media.write_video([wide] * 10, tmp_path / "wide.mp4", fps=10)
    frame = media.sample_frames(path, size=48)[0].astype(int)
    assert frame.shape == (48, 48, 3)
    assert frame[:, 8:40, 1].mean() > 200 and frame[:, 8:40, [0, 2]].mean() < 60  # only green survives


# ----------------------------------------------------------------------------- bad inputs

def _truncated(src: Path, dst: Path, fraction: float) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


def _header_only(src: Path, dst: Path) -> Path:
    data = src.read_bytes()  # faststart mp4: ftyp, moov, then mdat; keep everything before mdat
    dst.write_bytes(data[: data.index(b"mdat") - 4])
    return dst


def _cut_inside_moov(src: Path, dst: Path) -> Path:
    data = src.read_bytes()  # ftyp and the first 64 bytes of moov: no stream is even declared
    dst.write_bytes(data[: data.index(b"moov") - 4 + 64])
    return dst


def _zero_length_wav(dst: Path) -> Path:
    with wave.open(str(dst), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
    return dst


def _noise(seed: int) -> bytes:
    """50 kB of seeded random bytes: unseeded ones now and then hold an MP3 frame header that
    ffmpeg's probe takes for a stream, which makes the expected message a matter of luck."""
    return np.random.default_rng(seed).bytes(50_000)


BAD_INPUTS = {
    "empty": (lambda d, t: _write(t / "empty.mp4", b""), "empty"),
    "random bytes": (lambda d, t: _write(t / "noise.mp4", _noise(0)), "not a media file"),
    "text": (lambda d, t: _write(t / "notes.mp4", b"just some text\n" * 500), "not a media file"),
    "random bytes, other suffix": (lambda d, t: _write(t / "noise.mkv", _noise(1)), "corrupt"),
    "truncated mp4": (lambda d, t: _truncated(d / "clip.mp4", t / "cut.mp4", 0.6), "truncated"),
    "truncated mkv": (lambda d, t: _truncated(d / "clip.mkv", t / "cut.mkv", 0.6), "truncated"),
    "mp4 without its index": (lambda d, t: _truncated(remux_moov_at_end(d / "clip.mp4", t / "moov_end.mp4"),
                                                      t / "cut_end.mp4", 0.6), "incomplete"),
    "header-only mp4": (lambda d, t: _header_only(d / "clip.mp4", t / "header.mp4"), "truncated"),
    "mp4 cut inside its header": (lambda d, t: _cut_inside_moov(d / "clip.mp4", t / "half_header.mp4"),
                                  "incomplete"),
    "zero duration": (lambda d, t: _zero_length_wav(t / "nothing.wav"), "zero duration"),
    "missing": (lambda d, t: t / "absent.mp4", "does not exist"),
    "directory": (lambda d, t: _mkdir(t / "folder.mp4"), "folder"),
}


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


@pytest.mark.parametrize("kind", list(BAD_INPUTS))
def test_bad_inputs_raise_one_helpful_sentence(media_dir, tmp_path, kind):
    make, expected = BAD_INPUTS[kind]
    path = make(media_dir, tmp_path)
    for call in (media.probe, lambda p: media.decode_audio(p, 12000), media.sample_frames):
        with pytest.raises(VmnetError) as err:
            call(path)
        _assert_plain_sentence(err, path.name)
        assert expected in str(err.value), str(err.value)


def test_missing_streams_and_length_limit(media_dir):
    with pytest.raises(VmnetError, match="no audio track") as err:
        media.decode_audio(media_dir / "silent.mp4", 12000)
    _assert_plain_sentence(err, "silent.mp4")
    assert len(media.sample_frames(media_dir / "silent.mp4")) == 3  # still fine for frames
    for call in (lambda p: media.probe(p, max_duration_s=2), lambda p: media.sample_frames(p, max_duration_s=2)):
        with pytest.raises(VmnetError, match="above the limit of 2 s") as err:
            call(media_dir / "clip.mp4")
        _assert_plain_sentence(err, "clip.mp4")


def test_trailing_junk_after_the_last_mp4_box_is_not_called_incomplete(media_dir, tmp_path):
    padded = _write(tmp_path / "padded.mp4", (media_dir / "clip.mp4").read_bytes() + b"\xff\x00\x00\x00\x01\x02junk!")
    assert media.probe(padded).duration_s == pytest.approx(media.probe(media_dir / "clip.mp4").duration_s)


def test_still_image_named_like_a_video(tmp_path):
    make_image(tmp_path / "picture.mp4")
    with pytest.raises(VmnetError, match="still image") as err:
        media.sample_frames(tmp_path / "picture.mp4")
    _assert_plain_sentence(err, "picture.mp4")


# ----------------------------------------------------------------------------- split and mux

def test_split_music_video_writes_mono_audio_and_jpeg_frames(media_dir, tmp_path):
    out = tmp_path / "split"
    audio, frames_dir = media.split_music_video(media_dir / "clip.mkv", out, sr=12000, fps=1.0)
    with wave.open(str(audio)) as w:
        assert (w.getnchannels(), w.getframerate()) == (1, 12000)
        assert abs(w.getnframes() - SECONDS * 12000) <= 600
    assert sorted(p.name for p in frames_dir.iterdir()) == ["000001.jpg", "000002.jpg", "000003.jpg"]
    assert sorted(p.name for p in out.iterdir()) == ["audio.wav", "frames"]  # no work folder left
    media.split_music_video(media_dir / "clip.mkv", out, fps=2.0)  # a second split replaces the first
    assert len(list(frames_dir.iterdir())) == 6


def test_split_refuses_audio_only_files_and_leaves_nothing(media_dir, tmp_path):
    with pytest.raises(VmnetError, match="no video track"):
        media.split_music_video(media_dir / "tone.mp3", tmp_path / "split")
    assert not (tmp_path / "split").exists() or not any((tmp_path / "split").iterdir())


def _top_level_boxes(path: Path) -> list[str]:
    data, boxes, offset = path.read_bytes(), [], 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset:offset + 8])
        if size == 1:
            size = struct.unpack(">Q", data[offset + 8:offset + 16])[0]
        boxes.append(kind.decode("latin-1"))
        if size < 8:
            break
        offset += size
    return boxes


@pytest.mark.parametrize("video_ext, music_name", [("mov", "tone.opus"), ("webm", "tone.mp3")])
def test_mux_gives_a_faststart_h264_aac_mp4_of_the_videos_length(media_dir, tmp_path, video_ext, music_name):
    # mov: its h264 stream is copied; webm: its vp9 stream is re-encoded. 3-s music under a 5-s video.
    video = make_video(tmp_path / "in" / f"video.{video_ext}", seconds=5.0)
    out = media.mux_music_onto_video(video, media_dir / music_name, tmp_path / "out" / "muxed.mp4", fade_s=1.0)
    info = media.probe(out)
    assert (info.video_codec, info.audio_codec, info.pix_fmt) == ("h264", "aac", "yuv420p")
    assert info.duration_s == pytest.approx(media.probe(video).duration_s, abs=0.1)
    boxes = _top_level_boxes(out)
    assert "moov" in boxes and "mdat" in boxes and boxes.index("moov") < boxes.index("mdat")
    assert sorted(p.name for p in out.parent.iterdir()) == ["muxed.mp4"]  # no partial files
    assert out.stat().st_mode & 0o777 == FILE_MODE  # readable as open() would have made it
    y = media.decode_audio(out, 8000)
    rms = [float(np.sqrt(np.mean(y[int(a * 8000):int(b * 8000)] ** 2))) for a, b in
           [(0.5, 1.5), (info.duration_s - 0.3, info.duration_s)]]
    assert rms[0] > 0.05 and rms[1] < 0.5 * rms[0]  # music at the start, faded and padded at the end
    assert float(np.abs(y[int(3.5 * 8000):int(4.5 * 8000)]).max()) < 0.01  # padded with silence, not looped


def test_mux_cuts_long_music_at_an_offset_and_fades(media_dir, tmp_path):
    music = make_audio(tmp_path / "song.flac", seconds=8.0, freq=660.0)
    out = media.mux_music_onto_video(media_dir / "clip.mp4", music, tmp_path / "muxed.mp4",
                                     music_offset_s=2.0, fade_s=2.0)
    y = media.decode_audio(out, 8000)
    assert len(y) == pytest.approx(SECONDS * 8000, abs=800)
    assert abs(_dominant_hz(y, 8000) - 660.0) < 5
    start, end = (float(np.sqrt(np.mean(part ** 2))) for part in (y[:4000], y[-2000:]))
    assert end < 0.5 * start


def test_mux_failure_leaves_no_partial_file(media_dir, tmp_path):
    with pytest.raises(VmnetError, match="no audio track"):
        media.mux_music_onto_video(media_dir / "clip.mp4", media_dir / "silent.mp4", tmp_path / "x.mp4")
    with pytest.raises(VmnetError, match="no video track"):
        media.mux_music_onto_video(media_dir / "tone.wav", media_dir / "tone.mp3", tmp_path / "x.mp4")
    assert list(tmp_path.iterdir()) == []


def test_write_video_refuses_nothing_and_cleans_up(tmp_path):
    with pytest.raises(VmnetError, match="No frames"):
        media.write_video([], tmp_path / "none.mp4", fps=10)
    odd = np.zeros((31, 33, 3), np.uint8)  # odd sides cannot be yuv420p
    with pytest.raises(VmnetError, match="even sides") as err:
        media.write_video([odd] * 3, tmp_path / "odd.mp4", fps=10, audio=np.zeros(4410, np.float32))
    _assert_plain_sentence(err, "odd.mp4")
    assert list(tmp_path.iterdir()) == []
