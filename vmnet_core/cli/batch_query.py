"""``vmnet query`` over many files in one call: a folder or a .txt list → one JSON line per file.

Scripts pay the start-up (imports, bundle, CNN) once. Each line is
``{"query": PATH, "id": ID, "results": [hit records with "explain"]}`` or, for a file that cannot
be used, ``{"query": PATH, "id": ID, "error": SENTENCE}``; the other files go on.
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from vmnet_core.errors import VmnetError
from vmnet_core.features.extract import LIST_EXTENSIONS, discover_inputs


def is_batch_query(path: Path) -> bool:
    """True when the query names many files: a folder or a .txt list."""
    return path.is_dir() or (path.is_file() and path.suffix.lower() in LIST_EXTENSIONS)


def training_items_hidden(args: argparse.Namespace, side: str):
    """The filter that leaves the starter corpus's synthetic training tracks out of music results
    (None, nothing left out, for video results or with ``--include-training``)."""
    from vmnet_core.starter.items import is_synthetic_item

    return None if side != "music" or args.include_training else is_synthetic_item


def search_and_explain(retriever: Any, side: str, query: Path, k: int, exact: bool = False, hidden: Any = None
                       ) -> tuple[list, list[list[str]], bool]:
    """``(hits, reasons per hit, fused)`` for one query file, ``side`` being the side searched
    (``hidden(item)`` true: left out, e.g. the starter's synthetic training tracks).

    A video query's named cues come from the decode that feeds the CNN (:meth:`Retriever.video_frames_and_cues`);
    a music query's are computed beside its descriptor, in a thread, when the retriever fuses them
    into the order (``cue_weight`` > 0), else after the search and only when some hit has stored cues
    to explain. ``fused`` says whether they ordered the hits. The whole video is analysed, as in the
    web app (no duration cap).
    """
    from vmnet_core.bundle.track_cues import cues_or_none, explain_hits

    retriever.require_side(side)
    catalog = retriever.bundle.catalog
    if side == "music":
        frames, cues = retriever.video_frames_and_cues(query, max_duration_s=None)
        embedding = retriever.embed_video_frames(frames)
    else:
        with ThreadPoolExecutor(1, thread_name_prefix="vmnet-query-cues") as beside:  # their own decode, meanwhile
            pending = beside.submit(cues_or_none, query, "music") if retriever.cue_weight > 0 else None
            embedding = retriever.embed_music_file(query)
            cues = pending.result() if pending is not None else None
    fused = cues is not None and retriever.cue_weight > 0
    hits = retriever.rank(embedding, side, k, exact=exact, query_cues=cues if fused else None, hidden=hidden)
    if cues is None and side == "video" and any(catalog.has(side, h.id) and catalog.item(side, h.id).cues
                                                for h in hits):
        cues = cues_or_none(query, "music")  # to explain the hits
    return hits, explain_hits(catalog, side, hits, cues) if cues else [[] for _ in hits], fused


def run_batch_query(args: argparse.Namespace) -> int:
    """Print one JSON line per file of the folder or list; 0 when every file gave results, else 1."""
    from vmnet_core.bundle.files import load_bundle  # torch: only when the command runs
    from vmnet_core.bundle.retrieval import Retriever
    from vmnet_core.bundle.track_cues import explained_records

    by_video = args.video is not None
    source = args.video if by_video else args.music
    items = discover_inputs(source, "both" if by_video else "music")
    retriever = Retriever(load_bundle(args.bundle), device=args.device, cue_weight=args.cue_weight)
    side = "music" if by_video else "video"
    hidden = training_items_hidden(args, side)
    failures = 0
    for item in items:
        record: dict = {"query": str(item.path), "id": item.id}
        try:
            hits, why, _ = search_and_explain(retriever, side, item.path, args.top, args.exact, hidden)
            record["results"] = explained_records(hits, why)
        except VmnetError as exc:
            record["error"] = str(exc)
            failures += 1
        print(json.dumps(record, ensure_ascii=False), flush=True)
    if failures:
        print(f"vmnet: {failures} of {len(items)} files gave no results (see their \"error\").", file=sys.stderr)
    return 1 if failures else 0
