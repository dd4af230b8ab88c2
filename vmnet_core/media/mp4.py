"""Sniffing ISO-BMFF (MP4/MOV/M4A) files from their top-level box headers, without ffmpeg."""

from __future__ import annotations

from pathlib import Path


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
