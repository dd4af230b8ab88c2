"""Sniffing ISO-BMFF (MP4/MOV/M4A) files from their top-level box headers, without ffmpeg."""

from __future__ import annotations

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
"""How many boxes :func:`_mp4_edits` walks inside one box before it stops looking."""


def _child_boxes(f: BinaryIO, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """``(type, payload start, box end)`` of the boxes between ``start`` and ``end`` of the open file ``f``
    (64-bit sizes and size 0, "to the end", included); stops at a box that does not fit."""
    found, offset = [], start
    while offset + 8 <= end and len(found) < _MP4_MAX_CHILD_BOXES:
        f.seek(offset)
        head = f.read(16)
        box_size, header = int.from_bytes(head[:4], "big"), 8
        if box_size == 1 and len(head) == 16:
            box_size, header = int.from_bytes(head[8:16], "big"), 16
        elif box_size == 0:
            box_size = end - offset
        if box_size < header or offset + box_size > end:
            break
        found.append((head[4:8], offset + header, offset + box_size))
        offset += box_size
    return found


def _mp4_edits(path: Path) -> int | None:
    """Edit-list entries declared in an ISO-BMFF file's ``moov`` boxes (``moov/trak/edts/elst``, every track),
    from the box headers; ``None`` when a ``moov`` is compressed (``cmov``: old QuickTime, whose entries
    cannot be counted without inflating it). 0 for a file that is not ISO-BMFF or cannot be read."""
    edits = 0
    try:
        with open(path, "rb") as f:
            size = path.stat().st_size
            for kind, start, end in _child_boxes(f, 0, size):
                if kind != b"moov":
                    continue
                for child, child_start, child_end in _child_boxes(f, start, end):
                    if child == b"cmov":
                        return None
                    if child != b"trak":
                        continue
                    for box in _child_boxes(f, child_start, child_end):
                        if box[0] != b"edts":
                            continue
                        for elst, elst_start, elst_end in _child_boxes(f, box[1], box[2]):
                            if elst == b"elst" and elst_end - elst_start >= 8:
                                f.seek(elst_start + 4)  # after version and flags
                                edits += int.from_bytes(f.read(4), "big")
    except OSError:
        return 0
    return edits


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
