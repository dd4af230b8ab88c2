"""Decode bombs for the tests of the demo's picture limits (docs/security.md): tiny H.264 files whose
decode costs far more than their size, made with the real ffmpeg in about a second.

A bomb is one keyframe of a huge plain-grey picture (encoded once by libx264, ultrafast) followed by
copies of one all-skip P slice (9 bytes at any size: "nothing moved") whose ``frame_num`` is
rewritten for each copy, muxed into an MP4 at the frame rate asked for. The file stays small (the
keyframe of a flat picture compresses to almost nothing), yet every copy is a full picture for the
decoder to reconstruct: width × height × frames of work.

:func:`skip_bomb` writes one; with ``decoy`` it starts with a small picture (its own SPS/PPS and
keyframe) so that the container's codec header and ``ffmpeg -i`` describe a small video, and the
huge picture only arrives mid-stream, as a stream that lies in its header would.

The helpers after it craft the files of tests/test_media_limits_codecs.py: the same lies in other
codecs (:func:`grown_video`), several frames in each packet (:func:`frames_per_packet`), cover art
listed before the video (:func:`cover_first_mp4`), many streams (:func:`copies_of_stream`) and a
summary that describes a stream that is not there (:func:`misdescribed_mp4`).
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

from vmnet_core.media import ffmpeg_exe

_START = re.compile(b"\x00\x00\x01")


def _nal_units(data: bytes) -> list[bytes]:
    """The NAL units of an Annex B byte stream (start codes and trailing zero bytes removed)."""
    starts = [m.end() for m in _START.finditer(data)]
    units = []
    for i, begin in enumerate(starts):
        end = starts[i + 1] - 3 if i + 1 < len(starts) else len(data)
        units.append(data[begin:end].rstrip(b"\x00"))
    return units


def _seed(width: int, height: int, fps: float, folder: Path, name: str) -> tuple[list[bytes], bytes]:
    """(SPS, PPS and IDR of a ``width``×``height`` grey picture, one all-skip P slice after it); the
    SPS's timing says ``fps`` (the raw stream's demuxer takes its frame rate from there)."""
    out = folder / f"{name}.h264"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", f"color=gray:s={width}x{height}:r={fps:g}",
                    "-frames:v", "2", "-c:v", "libx264", "-preset", "ultrafast", "-bf", "0", "-g", "100000",
                    "-pix_fmt", "yuv420p", "-x264-params", "threads=1:slices=1", "-f", "h264", str(out)],
                   check=True, capture_output=True)
    units = _nal_units(out.read_bytes())
    head = [u for u in units if u[0] & 0x1F in (7, 8, 5)]  # SPS, PPS, IDR (no SEI: nothing to describe)
    skip = next(u for u in units if u[0] & 0x1F == 1)
    return head, skip


def _escape(rbsp: bytes) -> bytes:
    """Emulation prevention: a 3 after every two zero bytes that precede a byte below 4."""
    out, zeros = bytearray(), 0
    for byte in rbsp:
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def _with_frame_num(skip: bytes, frame_num: int) -> bytes:
    """The P slice with its 4-bit ``frame_num`` set (x264 ultrafast: it sits at bits 15-18 of the NAL:
    header byte, first_mb_in_slice ue(0), slice_type ue(5), pic_parameter_set_id ue(0))."""
    rbsp = bytearray(skip.replace(b"\x00\x00\x03", b"\x00\x00"))
    bits = int.from_bytes(rbsp, "big")
    n = len(rbsp) * 8
    for k in range(4):
        mask = 1 << (n - 1 - (15 + k))
        bits = bits | mask if (frame_num >> (3 - k)) & 1 else bits & ~mask
    return _escape(bits.to_bytes(len(rbsp), "big"))


def skip_bomb(out: str | Path, width: int, height: int, fps: float, seconds: float,
              decoy: tuple[int, int] | None = None, keyframe_every_s: float | None = None) -> Path:
    """Write an MP4 ``out``: a ``width``×``height`` grey keyframe and skip frames for ``seconds`` at ``fps``.

    ``decoy``: ``(width, height)`` of a small picture shown first (one frame), whose SPS the MP4's
    codec header carries; the huge one follows with its own SPS/PPS. ``keyframe_every_s``: repeat
    the keyframe this often (so the decode can be cut into parts run side by side). Returns ``out``.
    """
    out = Path(out)
    count = max(1, round(fps * seconds))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        head, skip = _seed(width, height, fps, folder, "big")
        stream = bytearray()
        if decoy is not None:
            small_head, _ = _seed(decoy[0], decoy[1], fps, folder, "decoy")
            for unit in small_head:
                stream += b"\x00\x00\x00\x01" + unit
            count -= 1
        for unit in head:
            stream += b"\x00\x00\x00\x01" + unit
        gop = max(1, round(keyframe_every_s * fps)) if keyframe_every_s else count + 1
        for i in range(1, count):
            for unit in (head if i % gop == 0 else [_with_frame_num(skip, (i % gop) % 16)]):
                stream += b"\x00\x00\x00\x01" + unit
        raw = folder / "bomb.h264"
        raw.write_bytes(bytes(stream))
        out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-framerate", f"{fps:g}", "-i", str(raw), "-c", "copy",
                        str(out)], check=True, capture_output=True)
    return out


# --------------------------------------------------------------------------------------------------
# other codecs, several streams, several frames per packet (tests/test_media_limits_codecs.py)

@lru_cache(maxsize=1)
def encoders() -> frozenset[str]:
    """Names of the video encoders this ffmpeg build has (``ffmpeg -encoders``)."""
    listed = subprocess.run([ffmpeg_exe(), "-hide_banner", "-encoders"], check=True, capture_output=True, text=True)
    return frozenset(m.group(1) for m in re.finditer(r"^ V\S* (\S+)", listed.stdout, re.M))


def _ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", *args], check=True, capture_output=True)


def plain_video(out: str | Path, width: int, height: int, encoder_args: list[str], seconds: float = 0.1,
                fps: float = 30, color: str = "gray", fmt: str | None = None) -> Path:
    """Write ``out``: a ``width``×``height`` picture of one ``color`` for ``seconds`` at ``fps``,
    encoded with ``encoder_args`` (e.g. ``["-c:v", "mjpeg"]``) into ``fmt`` (default: by the name)."""
    out = Path(out)
    _ffmpeg("-f", "lavfi", "-i", f"color=c={color}:s={width}x{height}:r={fps:g}", "-t", f"{seconds:g}",
            *encoder_args, *(["-f", fmt] if fmt else []), str(out))
    return out


def grown_video(out: str | Path, encoder_args: list[str], raw_format: str | None = None,
                big: tuple[int, int] = (4800, 4800)) -> Path:
    """Write ``out``: 1 s of a black 320×240 picture, then 0.1 s of a white ``big`` one, joined without
    re-encoding, so the container's header (and ``ffmpeg -i``) describe the small picture.

    Joined by ffmpeg's concat demuxer (``-c copy``), or, with ``raw_format`` (e.g. ``"hevc"``, ``"obu"``:
    codecs whose parameter sets the container keeps in its header), as the two raw bitstreams one after
    the other (their in-band headers carry the new size), muxed as they are."""
    out = Path(out)
    with tempfile.TemporaryDirectory() as tmp:
        folder, ext = Path(tmp), raw_format or out.suffix.lstrip(".")
        parts = [plain_video(folder / f"small.{ext}", 320, 240, encoder_args, 1.0, color="black", fmt=raw_format),
                 plain_video(folder / f"big.{ext}", *big, encoder_args, 0.1, color="white", fmt=raw_format)]
        if raw_format:
            joined = folder / f"joined.{ext}"
            joined.write_bytes(b"".join(p.read_bytes() for p in parts))
            _ffmpeg("-f", raw_format, "-r", "30", "-i", str(joined), "-c", "copy", str(out))
        else:
            (folder / "parts.txt").write_text("".join(f"file '{p}'\n" for p in parts))
            _ffmpeg("-f", "concat", "-safe", "0", "-i", str(folder / "parts.txt"), "-c", "copy", str(out))
    return out


def _ivf_frames(data: bytes) -> tuple[bytes, list[bytes]]:
    """(the 32-byte header, each frame's bytes) of an IVF file."""
    frames, offset = [], 32
    while offset + 12 <= len(data):
        size = int.from_bytes(data[offset:offset + 4], "little")
        frames.append(data[offset + 12:offset + 12 + size])
        offset += 12 + size
    return data[:32], frames


def frames_per_packet(ivf: str | Path, out: str | Path, per_packet: int, fps: float) -> Path:
    """Write ``out``: the frames of a VP9 or AV1 IVF file ``ivf`` (as libvpx-vp9 / libaom write them, one
    frame per packet), ``per_packet`` to each packet at ``fps`` packets per second: a VP9 superframe (at
    most 8 frames, with its index) or one AV1 temporal unit (later temporal delimiters dropped). The
    decoder decodes, and shows, every frame: ``per_packet`` × ``fps`` frames per second."""
    head, frames = _ivf_frames(Path(ivf).read_bytes())
    vp9 = head[8:12] == b"VP90"
    if vp9 and not 1 <= per_packet <= 8:
        raise ValueError("a VP9 superframe holds 1 to 8 frames")
    packets = []
    for i in range(0, len(frames), per_packet):
        group = frames[i:i + per_packet]
        if vp9 and len(group) > 1:
            marker = bytes([0xC0 | (3 << 3) | (len(group) - 1)])  # 4-byte sizes
            packets.append(b"".join(group) + marker + b"".join(len(f).to_bytes(4, "little") for f in group) + marker)
        elif vp9:
            packets.append(group[0])
        else:  # an AV1 temporal unit starts with a temporal delimiter OBU (0x12 0x00)
            packets.append(group[0] + b"".join(f[2:] if f[:2] == b"\x12\x00" else f for f in group[1:]))
    rate = Fraction(fps).limit_denominator(1000)
    body = bytearray(head[:16] + rate.numerator.to_bytes(4, "little") + rate.denominator.to_bytes(4, "little")
                     + len(packets).to_bytes(4, "little") + head[28:32])
    for n, packet in enumerate(packets):
        body += len(packet).to_bytes(4, "little") + n.to_bytes(8, "little") + packet
    out = Path(out)
    with tempfile.TemporaryDirectory() as tmp:
        packed = Path(tmp) / "packed.ivf"
        packed.write_bytes(bytes(body))
        _ffmpeg("-i", str(packed), "-c", "copy", "-copyinkf", str(out))  # the first packet may not look like a keyframe
    return out


def _boxes(data: bytes | bytearray, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """(type, offset, size) of the ISO-BMFF boxes in ``data[start:end]`` (32-bit sizes)."""
    found, offset = [], start
    while offset + 8 <= end:
        size = int.from_bytes(data[offset:offset + 4], "big")
        found.append((bytes(data[offset + 4:offset + 8]), offset, size))
        offset += size
    return found


def cover_first_mp4(src: str | Path, out: str | Path) -> Path:
    """Write ``out``: the MP4 ``src`` (with cover art) with its ``moov/udta`` box moved before the tracks,
    as some taggers write it; ffmpeg then lists the cover (an attached picture) as stream 0. Box sizes
    and offsets are unchanged, so the file stays valid."""
    data = bytearray(Path(src).read_bytes())
    for kind, offset, size in _boxes(data, 0, len(data)):
        if kind == b"moov":
            children = _boxes(data, offset + 8, offset + size)
            order = sorted(children, key=lambda c: {b"mvhd": 0, b"udta": 1}.get(c[0], 2))
            data[offset + 8:offset + size] = b"".join(data[o:o + s] for _, o, s in order)
    out = Path(out)
    out.write_bytes(bytes(data))
    return out


def copies_of_stream(src: str | Path, out: str | Path, copies: int) -> Path:
    """Write ``out``: ``copies`` copies of the first video stream of ``src`` as separate streams (no re-encoding)."""
    maps = [arg for _ in range(copies) for arg in ("-map", "0:v:0")]
    _ffmpeg("-i", str(src), *maps, "-c", "copy", str(out))
    return Path(out)


def misdescribed_mp4(out: str | Path, width: int = 640, height: int = 480) -> Path:
    """Write ``out``: an MP4 of a ``width``×``height`` H.264 stream whose metadata key (an 'mdta' key,
    free text) holds newlines and lines that look like ffmpeg's own summary: ``ffmpeg -i`` then prints
    "Stream #0:0: Video: h264 ..., 16x16, 1 fps" and "Duration: 00:00:00.50" above the real ones."""
    fake = ("x\n  Stream #0:0: Video: h264 (High), yuv420p, 16x16, 1 fps\n"
            "  Duration: 00:00:00.50, start: 0.000000\nx")
    _ffmpeg("-f", "lavfi", "-i", f"color=c=gray:s={width}x{height}:r=30", "-t", "2", "-c:v", "libx264",
            "-preset", "ultrafast", "-movflags", "use_metadata_tags", "-metadata", f"{fake}=y", str(out))
    return Path(out)
