"""Catalog records: :class:`CatalogItem` (one row's metadata, a line of ``{side}.jsonl``) and
:class:`Hit` (one search result)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from vmnet_core.errors import VmnetError


@dataclass
class CatalogItem:
    """Metadata for one catalog row.

    Attributes
    ----------
    id : str
        Unique within its side; adding an item with an existing id replaces it.
    title : str
        What a person sees (defaults to the id).
    path : str
        Media file the item was indexed from ("" when unknown).
    duration_s : float | None
        Media duration in seconds.
    tags : dict
        Free-form labels (genre, mood, starter factors, ...), JSON-serialisable.
    pair_id : str | None
        Id of the paired item on the other side (a music video's own soundtrack), if known.
    split : str | None
        Dataset split the item came from ("train", "val", "test"), if any.
    cues : dict | None
        Named cues of the item's media (``vmnet_core.bundle.track_cues``), None when not computed.
    exposure_offset : float
        Added to the item's fused ranking score (``vmnet_core.bundle.exposure``; 0 unless the
        catalog was balanced on a query bank).
    """

    id: str
    title: str = ""
    path: str = ""
    duration_s: float | None = None
    tags: dict[str, Any] = field(default_factory=dict)
    pair_id: str | None = None
    split: str | None = None
    cues: dict[str, Any] | None = None
    exposure_offset: float = 0.0

    def __post_init__(self) -> None:
        self.id = str(self.id)
        if not self.id:
            raise ValueError("a catalog item needs a non-empty id")
        self.title = str(self.title) if self.title else self.id
        self.path = str(self.path) if self.path else ""
        self.duration_s = None if self.duration_s is None else float(self.duration_s)
        self.tags = dict(self.tags or {})
        self.exposure_offset = float(self.exposure_offset)
        if not math.isfinite(self.exposure_offset):
            raise ValueError(f"exposure_offset must be a finite number, not {self.exposure_offset}")

    @classmethod
    def from_mapping(cls, record: Mapping[str, Any]) -> CatalogItem:
        """Build an item from a dict; keys outside the dataclass fields are rejected."""
        known = {f.name for f in fields(cls)}
        unknown = set(record) - known
        if unknown:
            raise ValueError(f"unknown catalog item keys: {sorted(unknown)}")
        return cls(**record)

    def to_dict(self) -> dict[str, Any]:
        """The jsonl record; ``cues`` only when computed and ``exposure_offset`` only when not 0 (lines
        without them keep the older format)."""
        record = asdict(self)
        if record["cues"] is None:
            del record["cues"]
        if not record["exposure_offset"]:
            del record["exposure_offset"]
        return record


@dataclass(frozen=True)
class Hit:
    """One search result: ``rank`` is 1-based, ``score`` the cosine similarity in [-1, 1].

    ``start_s`` / ``end_s``: the span of the item's media that matched best (its best segment), in
    seconds; ``None`` when the item was indexed as one piece (catalogs from before segments).
    """

    rank: int
    id: str
    title: str
    score: float
    path: str
    tags: dict[str, Any]
    duration_s: float | None
    start_s: float | None = None
    end_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The ``vmnet query --json`` record: rank, id, title, score, path, tags, start_s, end_s."""
        return {"rank": self.rank, "id": self.id, "title": self.title, "score": self.score,
                "path": self.path, "tags": dict(self.tags), "start_s": self.start_s, "end_s": self.end_s}


Span = tuple[float | None, float | None]


def hits_for(items: list[CatalogItem], rows: list[int], scores: list[float],
             spans: list[Span] | None = None) -> list[Hit]:
    """Hits for one query's ranked ``rows`` (``-1`` = an approximate index found fewer than k);
    ``spans``: each row's best ``(start_s, end_s)`` when the side has segments."""
    spans = spans if spans is not None else [(None, None)] * len(rows)
    ranked = [(row, score, span) for row, score, span in zip(rows, scores, spans, strict=True) if row >= 0]
    return [Hit(rank=rank, id=items[row].id, title=items[row].title, score=float(score), path=items[row].path,
                tags=dict(items[row].tags), duration_s=items[row].duration_s, start_s=span[0], end_s=span[1])
            for rank, (row, score, span) in enumerate(ranked, start=1)]


def read_items(path: Path, side: str) -> list[CatalogItem]:
    """The items of a ``{side}.jsonl`` file, or one ``VmnetError`` naming the bad line."""
    if not path.is_file():
        raise VmnetError(f"The {side} catalog item list is missing: {path} does not exist.")
    items = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                items.append(CatalogItem.from_mapping(json.loads(line)))
            except (json.JSONDecodeError, TypeError, ValueError, AttributeError) as exc:
                raise VmnetError(f"Line {number} of {path} is not a valid catalog item ({exc}); "
                                 "fix or rebuild the catalog.") from None
    return items
