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
"""

from __future__ import annotations

import re
import subprocess
import tempfile
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
