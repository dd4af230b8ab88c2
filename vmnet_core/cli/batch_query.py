"""``vmnet query`` over many files in one call: a folder or a .txt list → one JSON line per file.

Scripts pay the start-up (imports, bundle, CNN) once. Each line is
``{"query": PATH, "id": ID, "results": [hit records with "explain"]}`` or, for a file that cannot
be used, ``{"query": PATH, "id": ID, "error": SENTENCE}``; the other files go on.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from vmnet_core.errors import VmnetError
from vmnet_core.features.extract import LIST_EXTENSIONS, discover_inputs


def is_batch_query(path: Path) -> bool:
    """True when the query names many files: a folder or a .txt list."""
    return path.is_dir() or (path.is_file() and path.suffix.lower() in LIST_EXTENSIONS)


def explanations(retriever: Any, side: str, hits: list, query: Path) -> list[list[str]]:
    """Per hit, why it fits the query file (``explain_hits``); the query's cues (another decode of
    the file, about 0.7 s for a 30-s video) are computed only when some hit has stored cues."""
    from vmnet_core.bundle.track_cues import QUERY_SIDE, cues_or_none, explain_hits

    catalog = retriever.bundle.catalog
    if not any(catalog.has(side, h.id) and catalog.item(side, h.id).cues for h in hits):
        return [[] for _ in hits]
    return explain_hits(catalog, side, hits, cues_or_none(query, QUERY_SIDE[side]))


def run_batch_query(args: argparse.Namespace) -> int:
    """Print one JSON line per file of the folder or list; 0 when every file gave results, else 1."""
    from vmnet_core.bundle.files import load_bundle  # torch: only when the command runs
    from vmnet_core.bundle.retrieval import Retriever
    from vmnet_core.bundle.track_cues import explained_records

    by_video = args.video is not None
    source = args.video if by_video else args.music
    items = discover_inputs(source, "both" if by_video else "music")
    retriever = Retriever(load_bundle(args.bundle), device=args.device)
    side = "music" if by_video else "video"
    failures = 0
    for item in items:
        record: dict = {"query": str(item.path), "id": item.id}
        try:
            if by_video:
                hits = retriever.music_for_video(item.path, k=args.top, max_duration_s=None, exact=args.exact)
            else:
                hits = retriever.videos_for_music(item.path, k=args.top, exact=args.exact)
            why = explanations(retriever, side, hits, item.path)
            record["results"] = explained_records(hits, why)
        except VmnetError as exc:
            record["error"] = str(exc)
            failures += 1
        print(json.dumps(record, ensure_ascii=False), flush=True)
    if failures:
        print(f"vmnet: {failures} of {len(items)} files gave no results (see their \"error\").", file=sys.stderr)
    return 1 if failures else 0
