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


def _first_box_renamed(data: bytes, kind: bytes) -> bytes:
    return data[:4] + kind + data[8:]


def _edits_in_mdia(data: bytes) -> bytes:
    """Each track's ``edts`` moved from ``trak`` into its ``mdia`` (ffmpeg reads it there too)."""
    kind, start, end = _children(data, 0, len(data))[-1]

    def trak(payload: bytes) -> bytes:
        kids = _children(payload, 0, len(payload))
        edts = b"".join(payload[s:e] for k, s, e in kids if k == b"edts")
        return b"".join(_box(b"mdia", payload[s + 8:e] + edts) if k == b"mdia" else payload[s:e]
                        for k, s, e in kids if k != b"edts")

    return data[:start] + _box(b"moov", b"".join(_box(b"trak", trak(data[s + 8:e])) if k == b"trak" else data[s:e]
                                                 for k, s, e in _children(data, start + 8, end)))


def _track_longer_than_its_moov(data: bytes) -> bytes:
    """The last track's box says it runs 100 kB past its ``moov`` (ffmpeg cuts it at the moov's end)."""
    kind, start, end = _children(data, 0, len(data))[-1]
    kids = _children(data, start + 8, end)
    traks = [data[s:e] for k, s, e in kids if k == b"trak"]
    last = (len(traks[-1]) + 100_000).to_bytes(4, "big") + traks[-1][4:]
    return data[:start] + _box(b"moov", b"".join(data[s:e] for k, s, e in kids if k != b"trak")
                               + b"".join(traks[:-1]) + last)


@pytest.mark.parametrize("disguise", ["first box junk", "first box uuid", "first box pnot", "edts in mdia",
                                      "track longer than its moov"])
def test_edits_hidden_from_a_walk_of_moov_trak_edts_are_counted(one_gop, tmp_path, disguise):
    """ffmpeg opens a file of MOV boxes as MOV whatever its first box, reads an ``elst`` inside ``mdia`` as
    readily as inside ``trak/edts``, and cuts a box longer than its parent at the parent's end; the first
    count looked only at files starting ftyp/moov/mdat/free/wide/skip and walked ``moov/trak/edts`` only,
    stopping at a box too long: 20,000 edits got past it in each of these ways and took ffmpeg 317 MB to
    open (37 MB without the edits; a bypass audit, 2026-12-07). They are counted and refused now."""
    data = _with_edits(one_gop, tmp_path / "edited.mp4", [(1, SECONDS * FPS - 1)] * (MAX_MP4_EDITS + 1)).read_bytes()
    disguised = {"first box junk": lambda d: _first_box_renamed(d, b"junk"),
                 "first box uuid": lambda d: _first_box_renamed(d, b"uuid"),
                 "first box pnot": lambda d: _first_box_renamed(d, b"pnot"),
                 "edts in mdia": _edits_in_mdia, "track longer than its moov": _track_longer_than_its_moov}[disguise](data)
    path = tmp_path / "disguised.mp4"
    path.write_bytes(disguised)
    with pytest.raises(VmnetError, match=rf"'disguised.mp4' is put together from {MAX_MP4_EDITS + 1} edits"):
        probe(path)


def _with_samples(source: Path, out: Path, samples: int) -> Path:
    """``source`` with its video track's sample tables replaced by ``samples`` samples of 14 bytes in one
    chunk, one tick each: 48 bytes of tables (``stts``, ``stsc``, ``stsz``, ``stco``) whatever the count."""
    data = source.read_bytes()

    def full(kind: bytes, *fields: int) -> bytes:
        return _box(kind, b"\0\0\0\0" + b"".join(v.to_bytes(4, "big") for v in fields))

    mdat = next(s for k, s, e in _children(data, 0, len(data)) if k == b"mdat") + 8

    def rebuilt(start: int, end: int) -> bytes:
        out = b""
        for kind, s, e in _children(data, start, end):
            if kind == b"stbl":
                stsd = next(data[cs:ce] for ck, cs, ce in _children(data, s + 8, e) if ck == b"stsd")
                out += _box(b"stbl", stsd + full(b"stts", 1, samples, 1) + full(b"stsc", 1, 1, samples, 1)
                            + full(b"stsz", 14, samples) + full(b"stco", 1, mdat))
            elif kind in (b"moov", b"trak", b"mdia", b"minf"):
                out += _box(kind, rebuilt(s + 8, e))
            else:
                out += data[s:e]
        return out

    out.write_bytes(rebuilt(0, len(data)))
    return out


def test_a_sample_table_declaring_millions_of_samples_is_refused_before_it_is_opened(one_gop, tmp_path):
    """ffmpeg builds an index entry for every sample a track's tables declare while it opens a file, and a
    table of samples of one size declares any number in 12 bytes: a 7.7-kB file declaring 30 million took
    1.5 GB and 5 CPU-s in every ffmpeg run, probing included (60 million: 2.6 GB; bypass audit, 2026-12-07).
    More than ``MAX_MP4_SAMPLES`` (4 million) are refused with a sentence before ffmpeg opens the file;
    1 million are opened (and then refused for their frame rate), and honest PCM sound in a .mov, which
    ffmpeg indexes by the chunk, is not counted."""
    import subprocess

    import imageio_ffmpeg

    bomb = _with_samples(one_gop, tmp_path / "index-bomb.mp4", 30_000_000)
    assert bomb.stat().st_size < 10_000
    with pytest.raises(VmnetError, match=r"'index-bomb.mp4' declares 30,000,000 frames and sound packets, more than "
                                         r"this program opens \(at most 4,000,000"):
        probe(bomb)
    opened = _with_samples(one_gop, tmp_path / "a-million.mp4", 1_000_000)
    with pytest.raises(VmnetError, match=r"'a-million.mp4' plays [0-9.e+]+ frames per second"):
        check_frame_rate(probe(opened), 600)
    pcm = tmp_path / "pcm.mov"  # 10 min of 48-kHz PCM: 28.8 million samples, read by the chunk
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "testsrc=s=64x48:r=5:d=600",
                    "-f", "lavfi", "-i", "anullsrc=r=48000:cl=mono", "-t", "600", "-c:v", "libx264", "-preset",
                    "ultrafast", "-c:a", "pcm_s16le", str(pcm)], check=True)
    assert round(probe(pcm).duration_s) == 600
