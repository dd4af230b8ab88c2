"""Sniffing ISO-BMFF (MP4/MOV/M4A) files from their top-level box headers, without ffmpeg."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


def _looks_like_mp4(path: Path) -> bool:
    """Whether the file starts like an ISO-BMFF (mp4/mov/m4a) file: a box type at bytes 4-8."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError:
        return False
    return head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip")



_MP4_MAX_TOP_LEVEL_BOXES = 4096
"""How many top-level boxes :func:`_mp4_declared_end` walks before it stops looking."""


def _is_box_type(code: bytes) -> bool:
    """Whether 4 bytes can be an ISO-BMFF box type (printable ASCII, or © as in ``©nam``)."""
    return len(code) == 4 and all(0x20 <= b <= 0x7E or b == 0xA9 for b in code)


def _mp4_declared_end(path: Path) -> int | None:
    """Where an ISO-BMFF file's top-level boxes say it ends, in bytes, when that is past its real end.

    Walks the box headers only (size, type; 64-bit sizes and size 0, "to the end", included).
    Returns ``None`` when every box fits in the file (or the walk gives up on odd bytes).
    """
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            offset = 0
            for _ in range(_MP4_MAX_TOP_LEVEL_BOXES):
                if offset + 8 > size:
                    return None
                f.seek(offset)
                head = f.read(16)
                box_size = int.from_bytes(head[:4], "big")
                if box_size == 1 and len(head) == 16:
                    box_size = int.from_bytes(head[8:16], "big")
                elif box_size == 0:
                    return None
                if box_size < 8:
                    return None
                if offset + box_size > size:  # a real box cut short, not trailing junk read as one
                    return offset + box_size if _is_box_type(head[4:8]) else None
                offset += box_size
    except OSError:
        return None
    return None


MAX_MP4_EDITS = 64
"""Most edit-list entries (``elst``: pieces of a track played in a given order) an MP4/MOV file may hold, all
tracks together, before ffmpeg opens it. For each entry ffmpeg copies the index of every sample from the
keyframe before the piece's start to its end, all of which are decoded too: a 346-kB file of 20000 entries,
each showing the last frame of one 60-s group of pictures, took 1.7 GB and 21 CPU-s in every ffmpeg run
that opened it (probing gave up after 30 s; found by an audit, 2026-12-07). Phones and editors write one
or two entries a track."""
_MP4_MAX_CHILD_BOXES = 4096
"""How many boxes :func:`_child_boxes` walks inside one box before it stops looking."""


_MP4_MAX_BOXES = 65536
"""How many boxes :func:`_mp4_edits` walks in all before it stops looking (an honest file has a few hundred)."""
_MP4_MAX_DEPTH = 16
_MP4_DATA_BOXES = (b"mdat", b"free", b"skip", b"wide")
"""Boxes holding media or padding, not boxes: :func:`_mp4_edits` does not look inside them."""


def _child_boxes(f: BinaryIO, start: int, end: int, limit: int = _MP4_MAX_CHILD_BOXES) -> list[tuple[bytes, int, int]]:
    """``(type, payload start, box end)`` of the boxes between ``start`` and ``end`` of the open file ``f``
    (64-bit sizes and size 0, "to the end", included). A box whose size runs past ``end`` is cut at
    ``end``, as ffmpeg reads it (so a box that says it is longer than its parent still counts)."""
    found, offset = [], start
    while offset + 8 <= end and len(found) < limit:
        f.seek(offset)
        head = f.read(16)
        box_size, header = int.from_bytes(head[:4], "big"), 8
        if box_size == 1 and len(head) == 16:
            box_size, header = int.from_bytes(head[8:16], "big"), 16
        elif box_size == 0:
            box_size = end - offset
        if box_size < header:
            break
        box_end = min(offset + box_size, end)
        found.append((head[4:8], offset + header, box_end))
        offset = box_end
    return found


def _walk(f: BinaryIO, size: int) -> Iterator[tuple[bytes, int, int, int | None]]:
    """``(type, payload start, box end, the enclosing trak's offset or None)`` of every box of the open
    file ``f`` of ``size`` bytes, as ffmpeg's box walk would meet them (see :func:`_mp4_edits`); at most
    :data:`_MP4_MAX_BOXES`."""
    stack: list[tuple[int, int, int, int | None]] = [(0, size, 0, None)]
    seen = 0
    while stack:
        start, end, depth, trak = stack.pop()
        for kind, box_start, box_end in _child_boxes(f, start, end):
            seen += 1
            if seen > _MP4_MAX_BOXES:
                return
            yield kind, box_start, box_end, trak
            if (depth < _MP4_MAX_DEPTH and kind not in _MP4_DATA_BOXES and kind != b"elst" and _is_box_type(kind)
                    and box_end - box_start >= 8):
                stack.append((box_start, box_end, depth + 1, box_start if kind == b"trak" else trak))


def _mp4_edits(path: Path) -> int | None:
    """Edit-list entries (``elst``) declared anywhere in an ISO-BMFF file's boxes, from the box headers;
    ``None`` when it holds a compressed index (``cmov``: old QuickTime, whose entries cannot be counted
    without inflating it). 0 for a file that is not ISO-BMFF or cannot be read.

    ffmpeg reads an ``elst`` wherever its box walk meets one, not only at ``moov/trak/edts`` (inside
    ``mdia``, say), opens a file as MOV whatever its first box (``junk``, ``uuid``, ``pnot``, ...), and cuts a
    box that says it is longer than its parent at the parent's end: so every box is looked into (but the
    media and padding boxes), whatever the first box, and a box too long for its parent is cut as ffmpeg
    cuts it (a bypass audit put 20,000 entries past the first count in each of these three ways)."""
    edits = 0
    try:
        with open(path, "rb") as f:
            for kind, start, end, _ in _walk(f, path.stat().st_size):
                if kind == b"cmov":
                    return None
                if kind == b"elst" and end - start >= 8:
                    f.seek(start + 4)  # after version and flags
                    edits += int.from_bytes(f.read(4), "big")
    except OSError:
        return 0
    return edits


MAX_MP4_SAMPLES = 4_000_000
"""Most samples (frames of video, packets of compressed audio) an MP4/MOV file's sample tables may declare,
all tracks and fragments together, before ffmpeg opens it. ffmpeg builds an index entry for every declared
sample while opening a file, about 65 bytes each, and a table of samples of one size declares millions in
12 bytes (``stsz``; ``trun`` in a fragment, whose samples may take no bytes at all): a 7.7-kB file declaring
30 million samples took 1.5 GB and 5 CPU-s to probe, 60 million 2.6 GB (bypass audit, 2026-12-07). 4 million
is 11 hours of 60-fps video with AAC sound (about 260 MB of index). Uncompressed sound that ffmpeg reads by
the chunk (a sound track whose one ``stts`` entry lasts one tick) is not counted: its index grows with the
file's chunk table, so with its bytes."""


def _mp4_samples(path: Path) -> int:
    """Samples the sample tables of an ISO-BMFF file declare (``stsz``/``stz2`` per track, ``trun`` per
    fragment), as ffmpeg would index them; 0 for a file that is not ISO-BMFF or cannot be read."""
    tracks: dict[int | None, dict] = {}
    fragments = 0
    try:
        with open(path, "rb") as f:
            for kind, start, end, trak in _walk(f, path.stat().st_size):
                if kind not in (b"stsz", b"stz2", b"stts", b"hdlr", b"trun") or end - start < 8:
                    continue
                f.seek(start)
                head = f.read(16).ljust(16, b"\0")
                track = tracks.setdefault(trak, {"samples": 0, "handlers": set(), "stts": []})
                if kind == b"trun":
                    fragments += int.from_bytes(head[4:8], "big")
                elif kind in (b"stsz", b"stz2"):
                    track["samples"] += int.from_bytes(head[8:12], "big")
                elif kind == b"hdlr":
                    track["handlers"].add(head[8:12])
                else:  # stts: entry count, then (count, duration) pairs
                    track["stts"].append((int.from_bytes(head[4:8], "big"), int.from_bytes(head[12:16], "big")))
    except OSError:
        return 0
    return fragments + sum(t["samples"] for t in tracks.values() if not _read_by_the_chunk(t))


def _read_by_the_chunk(track: dict) -> bool:
    """Whether ffmpeg indexes a track by its chunks, not its samples: uncompressed sound, one ``stts``
    entry of one tick (any ``hdlr`` other than sound, or a second table, and it indexes every sample)."""
    handlers = track["handlers"] - {b"alis", b"url ", b"dhlr"}  # QuickTime's data handlers set no type
    return handlers == {b"soun"} and len(track["stts"]) == 1 and track["stts"][0] == (1, 1)


FREE_BOX_HEADER = 8  # 32-bit size + b"free"


def pad_mp4(path: str | Path, size: int) -> None:
    """Grow the ISO-BMFF file at ``path`` to exactly ``size`` bytes with a trailing top-level ``free``
    box (ignored by every player). ``size`` must be the file's size, or at least 8 bytes more."""
    path = Path(path)
    extra = size - path.stat().st_size
    if extra == 0:
        return
    if extra < FREE_BOX_HEADER or size >= 2**32:
        raise ValueError(f"cannot pad {path.name} by {extra} bytes with a free box")
    with open(path, "ab") as f:
        f.write(extra.to_bytes(4, "big") + b"free" + bytes(extra - FREE_BOX_HEADER))
