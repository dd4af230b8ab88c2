"""The demo's decode limits (``vmnet_core.media.decode_limits``) attacked through MP4/MOV edit lists
(``moov/trak/edts/elst``): pieces of a track played in a given order. For each piece ffmpeg decodes every
frame from the keyframe before its start and shows only those inside it.

What was found (a fifth audit, 2026-12-07, docs/security.md): the frames decoded and not shown are counted
by the demux pass (a stream copy keeps them), so an edit showing the last second of a long group of pictures
is refused as a high frame rate; but ffmpeg copies the sample index once per piece while opening the file,
so 20000 pieces in a 346-kB file took 1.7 GB and 21 CPU-s in every ffmpeg run, probing included. Such files
are refused before ffmpeg opens them (``vmnet_core.media.mp4.MAX_MP4_EDITS``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from vmnet_core.errors import VmnetError
from vmnet_core.media import check_frame_rate, check_picture_limits, probe
from vmnet_testkit.decode_bombs import skip_bomb

FPS, SECONDS = 60, 10
MAX_MP4_EDITS = 64  # vmnet_core.media.mp4.MAX_MP4_EDITS, named in the sentence


def _box(kind: bytes, payload: bytes) -> bytes:
    return (8 + len(payload)).to_bytes(4, "big") + kind + payload


def _children(data: bytes, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """(type, start, end) of the boxes between ``start`` and ``end`` (32-bit sizes: ffmpeg's small files)."""
    found = []
    while start < end:
        size = int.from_bytes(data[start:start + 4], "big")
        found.append((data[start + 4:start + 8], start, start + size))
        start += size
    return found


def _with_edits(source: Path, out: Path, edits: list[tuple[int, int]], compressed: bool = False) -> Path:
    """``source`` (an ffmpeg mp4, its ``moov`` last) with its video track's edit list replaced by ``edits``,
    (duration, start) in frames each; with ``compressed`` the ``moov`` also holds a ``cmov`` box."""
    data = source.read_bytes()
    kind, start, end = _children(data, 0, len(data))[-1]
    assert kind == b"moov" and end == len(data)
    ticks = int.from_bytes(data[start + 28:start + 32], "big") // FPS  # mvhd timescale = mdhd's (ffmpeg)
    elst = (0).to_bytes(4, "big") + len(edits).to_bytes(4, "big") + b"".join(
        (duration * ticks).to_bytes(4, "big") + (first * ticks).to_bytes(4, "big") + b"\x00\x01\x00\x00"
        for duration, first in edits)
    moov = b"".join(
        _box(b"trak", b"".join(data[s:e] + (_box(b"edts", _box(b"elst", elst)) if k == b"tkhd" else b"")
                               for k, s, e in _children(data, s0 + 8, e0) if k != b"edts"))
        if k0 == b"trak" else data[s0:e0] for k0, s0, e0 in _children(data, start + 8, end))
    out.write_bytes(data[:start] + _box(b"moov", moov + (_box(b"cmov", b"") if compressed else b"")))
    return out


@pytest.fixture(scope="module")
def one_gop(tmp_path_factory) -> Path:
    """10 s of 320×240 H.264 at 60 fps: one keyframe and 599 skip frames (one group of pictures)."""
    return skip_bomb(tmp_path_factory.mktemp("edits") / "one-gop.mp4", 320, 240, FPS, SECONDS)


def test_frames_decoded_before_an_edit_and_not_shown_are_counted(one_gop, tmp_path):
    """One edit showing the last second of the 10-s group: ffmpeg decodes all 600 frames to show 60, and
    the demux pass counts the 600 (held in the fifth audit)."""
    last_second = _with_edits(one_gop, tmp_path / "last-second.mp4", [(FPS, (SECONDS - 1) * FPS)])
    info = probe(last_second)
    assert round(info.duration_s, 2) == 1.0
    check_picture_limits(info)
    with pytest.raises(VmnetError, match=r"'last-second.mp4' plays 600 frames per second, more than this demo"):
        check_frame_rate(info, 600)


def test_a_file_of_more_edits_than_ffmpeg_should_open_is_refused_before_it_is_opened(one_gop, tmp_path):
    """Each edit showing the last frame copies the index of the whole group of pictures: 65 edits are
    refused by probing with a sentence (ffmpeg never opens the file), 64 are opened and then refused for
    the frames they decode; a compressed index, whose edits cannot be counted, is refused too."""
    last_frame = [(1, SECONDS * FPS - 1)]
    most = _with_edits(one_gop, tmp_path / "most.mp4", last_frame * MAX_MP4_EDITS)
    with pytest.raises(VmnetError, match=r"'most.mp4' plays [0-9.e+]+ frames per second"):
        check_frame_rate(probe(most), 600)
    over = _with_edits(one_gop, tmp_path / "over.mp4", last_frame * (MAX_MP4_EDITS + 1))
    with pytest.raises(VmnetError, match=rf"'over.mp4' is put together from {MAX_MP4_EDITS + 1} edits \(pieces of its "
                                         rf"tracks played in another order\), more than this program opens \(at most "
                                         rf"{MAX_MP4_EDITS}\); export it from your editor as one continuous video"):
        probe(over)
    packed = _with_edits(one_gop, tmp_path / "packed.mov", last_frame, compressed=True)
    with pytest.raises(VmnetError, match=r"'packed.mov' has a compressed index \(an old QuickTime format\)"):
        probe(packed)
