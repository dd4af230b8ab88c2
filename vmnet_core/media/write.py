"""Writing media: splitting a music video into audio and stills, laying music under a video,
encoding frames into an mp4. Every file is written under a temporary name and renamed on success. A video
is read from its first stream that is not cover art (``0:V:0``, the one ``probe`` describes) and decoded
under the decoder's pixel cap (``decode_limits.decode_pixel_cap``), as every frame decode is."""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from vmnet_core.atomic_io import atomic_path
from vmnet_core.errors import VmnetError
from vmnet_core.media.audio import _mono_filter
from vmnet_core.media.decode_limits import decode_pixel_cap
from vmnet_core.media.ffmpeg import _decode_timeout_s, _input, _run, ffmpeg_exe
from vmnet_core.media.frames import VIDEO_DECODE_ARGS, _fps_filter, _no_frame
from vmnet_core.media.messages import _quoted
from vmnet_core.media.probing import MediaInfo, check_start, probe, require_audio, require_video

log = logging.getLogger("vmnet_core.media")


def _scratch_sibling(path: Path, suffix: str) -> Path:
    """An unused scratch file name next to ``path``; the caller removes it."""
    fd, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".partial{suffix}", dir=path.parent)
    os.close(fd)
    return Path(name)


def split_music_video(path: str | Path, out_dir: str | Path, sr: int = 12000, fps: float = 1.0,
                      max_frames: int | None = 360) -> tuple[Path, Path]:
    """Split a music video into mono audio and still frames, as the paper did with ffmpeg.

    Writes ``out_dir/audio.wav`` (mono 16-bit PCM at ``sr`` Hz) and ``out_dir/frames/000001.jpg…``
    (one full-resolution JPEG per 1/fps s, at most ``max_frames``; ``None``: no cap), replacing
    earlier ones. Nothing is written on failure.

    Returns
    -------
    (audio_path, frames_dir)
    """
    info = probe(path)
    require_video(info)
    require_audio(info)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".split-", dir=out))
    try:
        (work / "frames").mkdir()
        cap = [] if max_frames is None else ["-frames:v", str(max_frames)]
        _run(["-v", "error", *VIDEO_DECODE_ARGS, *_input(info.path, max_pixels=decode_pixel_cap(info)),
              "-map", "0:a:0", "-vn", "-sn", "-dn", *_mono_filter(info), "-ac", "1", "-ar", str(int(sr)),
              "-c:a", "pcm_s16le", "-f", "wav", f"file:{work / 'audio.wav'}",
              "-map", "0:V:0", "-an", "-sn", "-dn", "-vf", f"{_fps_filter(fps)},scale=iw*sar:ih,setsar=1",
              *cap, "-q:v", "2", "-start_number", "1", "-f", "image2",
              f"file:{work / 'frames' / '%06d.jpg'}"],
             info.path, "splitting", _decode_timeout_s(info.duration_s))
        if not any((work / "frames").iterdir()):
            raise _no_frame(info)
        audio_path, frames_dir = out / "audio.wav", out / "frames"
        if frames_dir.exists():
            shutil.rmtree(frames_dir)
        os.replace(work / "frames", frames_dir)
        os.replace(work / "audio.wav", audio_path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return audio_path, frames_dir


def _music_filter(length_s: float, fade_s: float, loudness_lufs: float, fade_in_s: float = 0.0) -> str:
    """Loudness-normalise (single-pass loudnorm), pad with silence to the video's length, fade in and out."""
    chain = [f"loudnorm=I={loudness_lufs:g}:TP=-1.5:LRA=11", "aresample=48000",
             f"apad=whole_dur={length_s:.6f}", f"atrim=end={length_s:.6f}"]
    fade_in = min(max(fade_in_s, 0.0), length_s / 2)
    if fade_in > 0:
        chain.append(f"afade=t=in:st=0:d={fade_in:.6f}")
    fade = min(max(fade_s, 0.0), length_s)
    if fade > 0:
        chain.append(f"afade=t=out:st={length_s - fade:.6f}:d={fade:.6f}")
    return ",".join(chain)


def mux_music_onto_video(video: str | Path, music: str | Path, out: str | Path, fade_s: float = 2.0,
                         loudness_lufs: float = -16.0, music_offset_s: float = 0.0,
                         max_duration_s: float | None = None, fade_in_s: float = 0.0,
                         keep_first_s: float | None = None, max_width_px: int | None = None,
                         max_fps: float | None = None) -> Path:
    """Lay a music track under a video: a browser-ready H.264/AAC mp4 with ``+faststart``.

    ``max_duration_s`` refuses a longer video; ``keep_first_s`` keeps only its first seconds (the
    work, and ffmpeg's time limit, then follow that length, not the length the file declares).
    ``max_width_px`` and ``max_fps`` bound a re-encoded picture (scaled down, aspect kept; frames
    dropped): re-encoding costs with the pixels, and a copied stream costs nothing either way.
    The music starts at ``music_offset_s`` into the track, is cut to the video's length,
    loudness-normalised to ``loudness_lufs`` LUFS (ffmpeg ``loudnorm``, one pass), faded in over the
    first ``fade_in_s`` seconds and out over the last ``fade_s`` seconds. Music shorter than the video is padded with silence (never looped).
    The video stream is copied when it is already H.264 yuv420p, re-encoded otherwise; the video's
    own sound is dropped. The result is written under a temporary name and renamed on success.
    """
    video_info = probe(video, max_duration_s)
    require_video(video_info)
    music_info = probe(music)
    require_audio(music_info)
    check_start(music_info, music_offset_s, "music")
    length = video_info.duration_s if keep_first_s is None else min(video_info.duration_s, keep_first_s)
    out_path = Path(out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    copy_video = video_info.video_codec == "h264" and video_info.pix_fmt == "yuv420p"
    video_codec = (["-c:v", "copy"] if copy_video else
                   ["-vf", _reencode_filter(video_info, max_width_px, max_fps), "-c:v", "libx264",
                    "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p"])
    with atomic_path(out_path, suffix=".partial.mp4") as partial:
        _run(["-v", "error", "-y", *_input(video_info.path, max_pixels=decode_pixel_cap(video_info)),
              *_input(music_info.path, music_offset_s, length),
              "-map", "0:V:0", "-map", "1:a:0", "-sn", "-dn", *video_codec,
              "-af", _music_filter(length, fade_s, loudness_lufs, fade_in_s), "-c:a", "aac", "-b:a", "192k", "-ac", "2",
              "-t", f"{length:.6f}", "-movflags", "+faststart", "-f", "mp4", f"file:{partial}"],
             video_info.path, "laying music under", _decode_timeout_s(length))
    return out_path


def _reencode_filter(info: MediaInfo, max_width_px: int | None, max_fps: float | None) -> str:
    """The ffmpeg video filter of a re-encode: square pixels and even sides, at most
    ``max_width_px`` wide (scaled by the stored width) and ``max_fps`` frames per second."""
    scale = min(1.0, max_width_px / info.width) if max_width_px and info.width else 1.0
    factor = "" if scale == 1.0 else f"*{scale:.6f}"
    steps = [f"scale=trunc(iw*sar{factor}/2)*2:trunc(ih{factor}/2)*2", "setsar=1"]
    if max_fps and info.fps and info.fps > max_fps:
        steps.append(f"fps={max_fps:g}")
    return ",".join(steps)


def _encode_frames(cmd: list[str], frames: Iterable[np.ndarray]) -> tuple[int, str]:
    """Pipe RGB uint8 frames into the ffmpeg command ``cmd``; returns its exit code and stderr text."""
    with tempfile.TemporaryFile() as stderr:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=stderr)
        assert proc.stdin is not None
        try:
            for frame in frames:
                proc.stdin.write(np.ascontiguousarray(frame, dtype=np.uint8).tobytes())
            proc.stdin.close()
        except BrokenPipeError:
            pass
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        try:
            returncode = proc.wait(timeout=_decode_timeout_s(0))
        except subprocess.TimeoutExpired:
            proc.kill()
            returncode = proc.wait()
        stderr.seek(0)
        return returncode, stderr.read().decode(errors="replace")


def write_video(
    frames: Iterable[np.ndarray],
    path: str | Path,
    fps: float,
    audio: np.ndarray | None = None,
    sr: int = 44100,
    crf: int = 23,
    *,
    preset: str = "veryfast",
) -> Path:
    """Encode RGB frames (each (H, W, 3) uint8, H and W even) and optional mono audio
    ((S,) float32 in [-1, 1] at ``sr`` Hz) into a browser-ready H.264/AAC mp4 with faststart.
    ``preset`` is the x264 speed preset (``"ultrafast"`` … ``"veryslow"``).

    Audio is handed to ffmpeg through a temporary WAV beside ``path``; frames stream through a pipe.
    The mp4 is written under a temporary name and renamed on success.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        raise VmnetError(f"No frames were given for the video {_quoted(path)}; pass at least one frame.")
    height, width = first.shape[:2]
    wav_path = None
    cmd = [ffmpeg_exe(), "-nostdin", "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
           "-s", f"{width}x{height}", "-r", str(fps), "-i", "pipe:0"]
    try:
        with atomic_path(path, suffix=".partial.mp4") as partial:
            if audio is not None:
                wav_path = _scratch_sibling(path, ".wav")
                pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2")
                with wave.open(str(wav_path), "wb") as w:
                    w.setnchannels(1)
                    w.setsampwidth(2)
                    w.setframerate(sr)
                    w.writeframes(pcm.tobytes())
                cmd += ["-i", f"file:{wav_path}", "-c:a", "aac", "-aac_coder", "fast", "-b:a", "128k", "-shortest"]
            cmd += ["-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-pix_fmt", "yuv420p",
                    "-movflags", "+faststart", "-f", "mp4", f"file:{partial}"]
            returncode, message = _encode_frames(cmd, itertools.chain([first], frames))
            if returncode != 0:
                log.debug("ffmpeg failed while writing %s:\n%s", path, message)
                raise VmnetError(f"Could not write the video {_quoted(path)}; check that every frame is "
                                 f"{width}x{height} RGB uint8 with even sides and that the disk has room.")
    finally:
        if wav_path is not None:
            wav_path.unlink(missing_ok=True)
    return path
