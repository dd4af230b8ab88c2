"""Named cues stored with catalog items, and "why this track" phrases for search results.

A catalog item may carry its cues (``CatalogItem.cues``: :class:`~vmnet_core.features.music_cues.MusicCues`
fields for a track, :class:`~vmnet_core.features.video_cues.VideoCues` fields for a video, as a
plain dict). They are computed once, when the item is indexed (:func:`cues_of_file`); a query's
cues are computed once per query. :func:`explain_hits` pairs the two sides with
:func:`vmnet_core.bundle.explain.explain_phrases`. Items indexed before cues existed (old
catalogs) have ``cues = None`` and get no explanation until :func:`add_missing_cues`
(``vmnet index --bundle B --cues``) fills them in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from vmnet_core.bundle.catalog import Catalog, Hit
from vmnet_core.bundle.explain import explain_phrases
from vmnet_core.errors import VmnetError

QUERY_SIDE = {"music": "video", "video": "music"}  # results side → the query's side


def cues_of_file(path: str | Path, side: str, max_duration_s: float | None = None) -> dict[str, Any]:
    """The named cues of a media file as one side sees it, as a JSON-ready dict.

    ``side`` "music": the sound (audio file or a video's soundtrack, centre 60 s); "video": the
    pictures (the first ``max_duration_s`` seconds, at most 180). Raises :class:`VmnetError` when
    the file lacks that stream.
    """
    if side == "music":
        from vmnet_core.features.music_cues import music_cues_from_file

        return cue_record(music_cues_from_file(path))
    if side == "video":
        from vmnet_core.features.video_cues import video_cues_from_file

        return cue_record(video_cues_from_file(path, max_duration_s=video_cue_span_s(max_duration_s)))
    raise ValueError(f"side must be 'music' or 'video', not {side!r}")


def video_cue_span_s(max_duration_s: float | None) -> float:
    """Seconds of a video its cues look at: the first ``max_duration_s``, at most 180."""
    from vmnet_core.features.video_cues import CUE_MAX_S

    return CUE_MAX_S if max_duration_s is None else min(CUE_MAX_S, float(max_duration_s))


def cue_record(cues: Any) -> dict[str, Any]:
    """``MusicCues`` / ``VideoCues`` as the JSON-ready dict stored with items (floats to 4 decimals,
    the pulse profile as a list)."""
    return {name: round(value, 4) if isinstance(value, float) else list(value) if isinstance(value, tuple) else value
            for name, value in cues.as_dict().items()}


def cues_or_none(path: str | Path, side: str, max_duration_s: float | None = None) -> dict[str, Any] | None:
    """:func:`cues_of_file`, or ``None`` when the file gives none (the item is then indexed without)."""
    try:
        return cues_of_file(path, side, max_duration_s)
    except VmnetError:
        return None


def explain_hits(catalog: Catalog, side: str, hits: Sequence[Hit], query_cues: dict[str, Any] | None,
                 max_reasons: int = 3) -> list[list[str]]:
    """Per hit (same order), the phrases saying why it fits the query, e.g. ``["fast cuts ↔ 132 BPM"]``.

    ``side`` is the side the hits come from; ``query_cues`` the query's cues (the other side). A hit
    whose item has no stored cues, or a query without cues, gets ``[]``.
    """
    if side not in QUERY_SIDE:
        raise ValueError(f"side must be 'music' or 'video', not {side!r}")
    out = []
    for hit in hits:
        item_cues = catalog.item(side, hit.id).cues if catalog.has(side, hit.id) else None
        if not query_cues or not item_cues:
            out.append([])
            continue
        video, music = (query_cues, item_cues) if side == "music" else (item_cues, query_cues)
        out.append(explain_phrases(video, music, max_reasons))
    return out


def explained_records(hits: Sequence[Hit], explanations: Sequence[list[str]]) -> list[dict[str, Any]]:
    """``vmnet query --json`` records: each hit's ``to_dict()`` with its ``explain`` phrases."""
    return [{**hit.to_dict(), "explain": list(phrases)} for hit, phrases in zip(hits, explanations, strict=True)]


def add_missing_cues(catalog: Catalog, side: str, on_item: Callable[[str, bool], None] | None = None) -> int:
    """Compute and store cues for ``side``'s items that have none and whose file is on this machine.

    In memory: save the catalog after. ``on_item(id, ok)`` is called per item tried. Returns how
    many items got cues.
    """
    added = 0
    for item in catalog.items(side):
        if item.cues or not item.path or not Path(item.path).is_file():
            continue
        item.cues = cues_or_none(item.path, side)
        added += item.cues is not None
        if on_item is not None:
            on_item(item.id, item.cues is not None)
    return added


def write_cues_file(paths: dict[str, str | Path], out: str | Path, side: str = "music") -> dict[str, Any]:
    """Cues of each ``{id: media path}`` into the JSON file ``out`` (``{id: cues or null}``), resumably:
    ids already in ``out`` are kept. Returns the whole table."""
    import json

    from vmnet_core.atomic_io import write_file_atomic

    out = Path(out)
    table = read_cues_file(out)
    missing = [item_id for item_id in paths if item_id not in table]
    for item_id in missing:
        table[item_id] = cues_or_none(paths[item_id], side)
    if missing or not out.is_file():
        write_file_atomic(out, json.dumps(table, indent=1, ensure_ascii=False))
    return table


def read_cues_file(path: str | Path) -> dict[str, Any]:
    """The table written by :func:`write_cues_file`; ``{}`` when the file is absent or unreadable."""
    import json

    try:
        table = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return table if isinstance(table, dict) else {}
