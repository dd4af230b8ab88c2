"""What a stranger's video may cost to decode: limits checked before any decode, and the decoder's pixel cap.

Decoding costs width × height × frames whatever the file's size: under 1 MB of H.264 "skip" frames
can hold minutes of 16000×16000 pictures (142 s of CPU and 4.75 GB for one 60-s file, docs/security.md).
The demo checks every uploaded video with :func:`check_picture_limits` (the header's size and rate,
free) and :func:`check_frame_rate` (the frames actually packed into the analysed span, a demux pass)
before decoding it; every frame decode, the command line's too, passes :func:`decode_pixel_cap` to
ffmpeg, so a stream whose header shows a small picture and that grows later is not decoded. Only the
codecs of :data:`ACCEPTED_VIDEO_CODECS` are accepted (others cost many times more per picture), and the
demux pass checks that the stream it counts, the one every decode reads (``0:V:0``), is the one the
probe described.
"""

from __future__ import annotations

import re
import subprocess
import threading
from functools import lru_cache
from pathlib import Path

from vmnet_core.errors import VmnetError
from vmnet_core.media.ffmpeg import _input, _run, ffmpeg_exe, not_started
from vmnet_core.media.messages import _quoted
from vmnet_core.media.probing import PROBE_TIMEOUT_S, MediaInfo

MAX_VIDEO_SIDE_PX = 4096
"""Widest or tallest picture :func:`check_picture_limits` accepts (4K DCI is 4096 wide)."""
MAX_VIDEO_PIXELS = 4096 * 2304
"""Most pixels per picture :func:`check_picture_limits` accepts: 4096×2304 (UHD 3840×2160 and DCI
4096×2160 fit; decode work and memory grow with it). Its sentence names 4096×2304: change both."""
MAX_VIDEO_FPS = 60.0
"""Highest frame rate :func:`check_picture_limits` and :func:`check_frame_rate` accept, whatever the
picture's size: a stream may grow mid-way up to the decoder's cap (:func:`decode_pixel_cap`, at
least 4K), so the bound on decode work (4K at 60 frames per second) must hold at 4K. A 320×240
header at 240 fps that grew to 4096×2304 was analysed at 4× that work (found by an audit,
2026-12-07). Slow-motion phone videos (120, 240 fps) are refused with a sentence to re-encode them."""
ACCEPTED_VIDEO_CODECS = frozenset({"h264", "hevc", "vp8", "vp9", "av1", "mpeg4", "mpeg1video", "mpeg2video",
                                   "h263", "theora", "mjpeg", "prores"})
"""Video codecs (ffmpeg's names) :func:`check_picture_limits` accepts: what phones, cameras and the web
deliver. A crafted flat 4096×2304 picture costs at most about 45 ms of one core to decode in any of them
(ProRes 4444 XQ; 5-22 ms in the others), about an honest 4K frame's cost; in other codecs a few bytes
cost far more: JPEG 2000 frames of 285 bytes took 208 ms each, PNG 115 ms, FFV1 77 ms, VVC 64 ms
(measured 2026-12-07, docs/security.md), so a 6-MB file of 6 minutes at 60 fps would take 75 CPU-minutes."""
MULTI_FRAME_CODECS = {"vp9": "vp9_superframe_split", "av1": "av1_frame_split"}
"""Codecs whose packets may each hold several frames, all decoded (a VP9 superframe up to 8, an AV1
temporal unit any number), and the ffmpeg bitstream filter that splits them: :func:`check_frame_rate`
counts the frames, not the packets, of these (8 frames per packet played 480 frames per second at 60
packets per second; found 2026-12-07)."""
MAX_VIDEO_SAMPLES = 2 * MAX_VIDEO_PIXELS
"""Most samples per picture (luma, chroma and alpha together) :func:`check_picture_limits` accepts: 4K in
4:2:2 (2 samples a pixel; ProRes 422 and 4:2:2 camera footage at 4096×2304 fit). A decoder's work grows
with the samples, not only the pixels: 4:4:4 12-bit 4096×2304 pictures at 60 fps took 1.5 CPU-s per second
of video in HEVC (flat, 280 kB/s) and 2.1 in VP9 (385 kB/s, 600 MB), against 0.54 (190 MB) for an honest
4K60 H.264 clip and 1.1 for VP9 4:2:0 (measured 2026-12-07, an audit), so full-chroma pictures are accepted
up to about 2560×1440 (6.3 MP); over 10 bits a sample counts a third more (:func:`_samples_per_pixel`).
Only the header's format is checked: a VP9 stream whose first frame is 4:2:0 and the rest 4:4:4 12-bit
still costs that (2.0 CPU-s per second, 650 MB; a known limit)."""
HIDDEN_FRAMES_ALLOWANCE = 1.5
"""Frames counted per frame shown that :func:`check_frame_rate` allows in :data:`MULTI_FRAME_CODECS`: honest
encoders decode some frames hidden and show them later, and each such frame counts twice once split (60-fps
AV1 from SVT-AV1, libaom and rav1e counted 1.5 per frame shown, 90 a second). An attacker gains 1.5× at most."""
MAX_JPEG_SCANS_PER_FRAME = 16
"""Most scans (passes over the picture, each opened by a start-of-scan marker) a Motion JPEG picture may be
stored in, on average over the frames :func:`check_frame_rate` counts. A baseline JPEG is one scan (three
when its colours are stored apart), a progressive one about ten (libjpeg's script for colour, 10); each further
scan costs a pass over every block of the picture from a few bytes: flat 3840×2160 progressive frames
with 1000 extra scans (69 kB each) took 0.5 s each to decode, 32 CPU-s per second of 60-fps video against
0.75 for an honest 4K60 H.264 clip (found by an audit, 2026-12-07). 16 scans cost about what 10 do."""


MAX_AUDIO_SAMPLES_PER_S = 8 * 192_000
"""Most samples a second (all channels together) :func:`check_audio_limits` accepts: 7.1 at 192 kHz, or
stereo at 768 kHz. Decoding and resampling audio costs samples, not bytes: a silent 655.35-kHz 7.1 FLAC of
800 s (18 MB) took 29 CPU-s to search with, 384 kHz 7.1 (11 MB) 17 CPU-s, against 1.6 CPU-s for an honest
44.1-kHz stereo FLAC of the same length and 3.2 CPU-s at 96 kHz (measured 2026-12-07; the music search
decodes up to 300 s before the centre clip, :data:`vmnet_core.media.audio.EXACT_AUDIO_SEEK_S`)."""
UNKNOWN_LAYOUT_CHANNELS = 24
"""Channels counted for a layout the probe cannot name (22.2, say): the most a standard layout has."""


def check_audio_limits(info: MediaInfo) -> None:
    """Raise one sentence when ``info``'s audio has more samples a second than
    :data:`MAX_AUDIO_SAMPLES_PER_S` (sample rate × channels; a layout the probe cannot count counts
    :data:`UNKNOWN_LAYOUT_CHANNELS`), before anything is decoded; files without audio pass."""
    if not info.has_audio or not info.sample_rate:
        return
    channels = info.channels or UNKNOWN_LAYOUT_CHANNELS
    if info.sample_rate * channels > MAX_AUDIO_SAMPLES_PER_S:
        raise VmnetError(f"The audio of {_quoted(info.path)} has {info.channels or 'many'} channels at "
                         f"{info.sample_rate} Hz, which costs far more to decode than music needs (at most "
                         "7.1 at 192 kHz is read); re-export it as stereo at 48 kHz or less and try again.")


def check_picture_limits(info: MediaInfo) -> None:
    """Raise one sentence when ``info``'s video is too big to decode for a stranger: a picture over
    :data:`MAX_VIDEO_SIDE_PX` on a side or :data:`MAX_VIDEO_PIXELS` in all, a size that could not be
    read, or a declared frame rate over :data:`MAX_VIDEO_FPS`; audio-only files pass. With the
    decoder's cap this bounds the decode to 4K at 60 frames per second.

    Decoding costs width × height × frames whatever the file's size (under 1 MB of skip frames can
    hold minutes of 16000×16000 pictures), so the demo checks every uploaded video before decoding
    it. The size checked is the coded picture ffmpeg reports (rotation metadata only turns it on
    screen: same work); a stream whose header shows a small picture and that grows later is stopped
    by the decoder's pixel cap (:func:`decode_pixel_cap`)."""
    if not info.has_video:
        return
    width, height = info.width, info.height
    if not width or not height:
        raise VmnetError(f"The size of the picture in {_quoted(info.path)} could not be read; re-export it "
                         "(H.264 in an .mp4 is safest) and upload it again.")
    if info.video_codec not in ACCEPTED_VIDEO_CODECS:
        raise VmnetError(f"The video {_quoted(info.path)} is encoded as {info.video_codec}, which costs this demo "
                         "far more to decode than common formats; re-encode it to H.264 (an .mp4 is safest) "
                         "and upload it again.")
    if max(width, height) > MAX_VIDEO_SIDE_PX or width * height > MAX_VIDEO_PIXELS:
        raise VmnetError(f"The video {_quoted(info.path)} is {width}×{height} pixels, larger than this demo "
                         f"accepts (at most {MAX_VIDEO_SIDE_PX} pixels on a side and 4096×2304 in all: 4K fits); "
                         "scale it down, e.g. to 1920×1080, and upload it again.")
    samples = _samples_per_pixel(info.pix_fmt)
    if width * height * samples > MAX_VIDEO_SAMPLES:
        raise VmnetError(f"The video {_quoted(info.path)} is {width}×{height} pixels stored with extra colour detail "
                         f"({info.pix_fmt}), which costs this demo far more to decode than an ordinary 4K video; "
                         "re-encode it to H.264 (an .mp4 is safest; 4:2:0 colour) or scale it down to 2560×1440, "
                         "and upload it again.")
    if info.fps is not None:
        _check_rate(info, info.fps)


_CHROMA_SAMPLES = {"420": 1.5, "411": 1.5, "410": 1.125, "422": 2.0, "440": 2.0, "444": 3.0}


def _samples_per_pixel(pix_fmt: str | None) -> float:
    """Samples a decoder writes per pixel in ``pix_fmt`` (ffmpeg's name: ``yuv444p`` 3, ``yuva444p10le`` 4,
    ``yuv422p10le`` 2, ``gbrp`` 3, ``gray`` 1), a third more over 10 bits (``yuv422p12le`` 2.67, ``yuv420p12le``
    2); 1.5 (4:2:0) for a name it cannot read or none, so :data:`MAX_VIDEO_SAMPLES` refuses 4:4:4, 4:2:2 with
    alpha and 12-bit 4:2:2 at 4K, and nothing ordinary (8- and 10-bit 4:2:0 and 4:2:2 4K pass)."""
    name = (pix_fmt or "").lower()
    bits = re.search(r"p(\d+)(?:le|be)?$", name)
    deep = 4 / 3 if bits and int(bits.group(1)) > 10 else 1.0  # VP9 4:2:2 12-bit 4K: 1.6 CPU-s a second
    if name.startswith(("gray", "y400")):
        return 1.0 * deep
    alpha = 1.0 if name.startswith(("yuva", "gbra", "ayuv")) else 0.0
    if name.startswith(("gbr", "rgb", "bgr", "argb", "abgr", "rgba", "bgra", "0rgb", "x2rgb", "ayuv")):
        return (3.0 + alpha) * deep
    subsampling = re.match(r"yuva?j?(\d{3})", name)
    return (_CHROMA_SAMPLES.get(subsampling.group(1), 1.5) + alpha) * deep if subsampling else 1.5


def _check_rate(info: MediaInfo, fps: float, checked_fps: float | None = None) -> None:
    """Raise when ``checked_fps`` (default ``fps``, the rate the sentence names) frames per second are
    over :data:`MAX_VIDEO_FPS`."""
    if (fps if checked_fps is None else checked_fps) > MAX_VIDEO_FPS:
        raise VmnetError(f"The video {_quoted(info.path)} plays {fps:.4g} frames per second, more than this demo "
                         f"accepts (at most {MAX_VIDEO_FPS:g}); re-encode it at 30 frames per second and upload "
                         "it again.")


def check_frame_rate(info: MediaInfo, span_s: float) -> None:
    """Raise :func:`check_picture_limits`'s frame-rate sentence when the first ``span_s`` seconds of
    ``info``'s video hold more frames than its limits allow, counted from the packets (read, not
    decoded: a demux pass; the frames inside them for :data:`MULTI_FRAME_CODECS`), so a file whose
    header states a low rate but whose timestamps are packed closer cannot get around them.

    The stream counted is the one every decode reads (``0:V:0``); a sentence refuses the file when
    its codec or size is not what :func:`~vmnet_core.media.probing.probe` described (a crafted
    file can make ffmpeg's text summary describe another stream) or cannot be read. Motion JPEG whose
    pictures are stored in more than :data:`MAX_JPEG_SCANS_PER_FRAME` scans each on average gets its own
    sentence (a second demux pass counts them). Audio-only files pass."""
    if not info.has_video:
        return
    seconds = min(float(span_s), info.duration_s)
    stat = info.path.stat()
    counted = _counted_video(info.path, stat.st_size, stat.st_mtime_ns, seconds, MULTI_FRAME_CODECS.get(info.video_codec))
    described = (info.video_codec, info.width, info.height)
    if counted is None or counted[1:] != described:
        found = "nothing" if counted is None else f"{counted[1]} {counted[2]}×{counted[3]}"
        raise VmnetError(f"The video {_quoted(info.path)} could not be checked: its video stream reads as "
                         f"{found}, not the {info.video_codec} {info.width}×{info.height} its header describes; "
                         "re-export it (H.264 in an .mp4 is safest) and upload it again.")
    frames = counted[0]  # with 5 % and two frames to spare for timestamp rounding at both ends
    allowance = HIDDEN_FRAMES_ALLOWANCE if info.video_codec in MULTI_FRAME_CODECS else 1.0
    _check_rate(info, frames / max(seconds, 1.0), max(0.0, frames - 2) / max(seconds, 1.0) / 1.05 / allowance)
    if info.video_codec == "mjpeg":
        most = MAX_JPEG_SCANS_PER_FRAME * max(frames, 1)
        scans = _jpeg_scans(info.path, stat.st_size, stat.st_mtime_ns, seconds, most)
        if scans > most:
            raise VmnetError(f"The video {_quoted(info.path)} is Motion JPEG whose pictures are each stored in "
                             f"{scans / max(frames, 1):.0f} or more passes (scans), far more than cameras write (at "
                             f"most {MAX_JPEG_SCANS_PER_FRAME} are accepted), which costs this demo many times more "
                             "to decode than an ordinary video; re-encode it to H.264 (an .mp4 is safest) and upload "
                             "it again.")


@lru_cache(maxsize=64)
def _counted_video(path: Path, size: int, mtime_ns: int, seconds: float, split: str | None
                   ) -> tuple[int, str, int, int] | None:
    """``(frames, codec, width, height)`` of the video stream every decode reads, in the first
    ``seconds`` of ``path`` (its packets, each split into its frames by the bitstream filter ``split``),
    from ffmpeg's frame hash header and lines (a demux pass); ``None`` if the header cannot be read."""
    bsf = ["-bsf:v", split] if split else []  # -copyinkf: count packets before the first keyframe too
    proc = _run(["-v", "error", *_input(path, 0.0, seconds), "-map", "0:V:0", "-c", "copy", "-copyinkf", *bsf,
                 "-f", "framecrc", "pipe:1"],
                path, "reading", PROBE_TIMEOUT_S + 0.01 * size / 1e6, check=False)
    text = proc.stdout.decode(errors="replace")
    codec = re.search(r"^#codec_id 0: (\S+)$", text, re.M)
    size_px = re.search(r"^#dimensions 0: (\d+)x(\d+)$", text, re.M)
    if codec is None or size_px is None:
        return None
    frames = sum(1 for line in text.splitlines() if line.startswith("0,"))
    return frames, codec.group(1), int(size_px.group(1)), int(size_px.group(2))


@lru_cache(maxsize=64)
def _jpeg_scans(path: Path, size: int, mtime_ns: int, seconds: float, most: int) -> int:
    """Start-of-scan markers (``FF DA``) in the packets of the video stream every decode reads, in the first
    ``seconds`` of ``path`` (a demux pass, nothing decoded), counted up to a little past ``most``. Entropy-coded
    data never holds ``FF DA`` (a 0xFF there is followed by 0 or a restart marker), so every scan counts;
    the bytes of other segments (an EXIF thumbnail, say) may add a few, never hide one."""
    cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-v", "error", *_input(path, 0.0, seconds), "-map", "0:V:0",
           "-c", "copy", "-copyinkf", "-f", "mjpeg", "pipe:1"]
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    except OSError as err:
        raise not_started(err, "reading", path) from err
    timer = threading.Timer(PROBE_TIMEOUT_S + 0.01 * size / 1e6, proc.kill)
    timer.start()
    scans, last = 0, b""
    try:
        assert proc.stdout is not None
        while scans <= most and (chunk := proc.stdout.read(1 << 20)):
            scans += (last + chunk[:1]).count(b"\xff\xda") + chunk.count(b"\xff\xda")
            last = chunk[-1:]
    finally:
        timer.cancel()
        proc.kill()
        proc.wait()
    return scans


def decode_pixel_cap(info: MediaInfo) -> int:
    """The most pixels a decoder of ``info``'s video may allocate per picture (ffmpeg's ``-max_pixels``):
    its reported size rounded up to decoder alignment, and never below :data:`MAX_VIDEO_PIXELS`
    (a legitimate stream may grow mid-way, up to what the demo accepts anyway). A stream whose
    header shows a small picture but that carries a huge one later is refused by the decoder
    (:func:`vmnet_core.media.frames` turns that into a sentence) instead of decoding it."""
    return max(_round_up(info.width or 0, 128) * _round_up(info.height or 0, 32), MAX_VIDEO_PIXELS)


def _round_up(value: int, step: int) -> int:
    return -(-value // step) * step
