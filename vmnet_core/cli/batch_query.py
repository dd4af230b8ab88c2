"""``vmnet query`` over many files in one call: a folder or a .txt list → one JSON line per file.

Scripts pay the start-up (imports, bundle, CNN) once. Each line is
``{"query": PATH, "id": ID, "results": [hit records with "explain"]}`` or, for a file that cannot
be used, ``{"query": PATH, "id": ID, "error": SENTENCE}``; the other files go on. With ``--spread``
every file is read before any line is printed: the results are ranked with exposure offsets fitted
on the batch itself (:func:`~vmnet_core.bundle.exposure_bank.spread_over_batch`).
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vmnet_core.errors import VmnetError
from vmnet_core.features.extract import LIST_EXTENSIONS, discover_inputs

if TYPE_CHECKING:
    import numpy as np


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
    embedding, cues = embedding_and_cues(retriever, side, query)
    fused = cues is not None and retriever.cue_weight > 0
    hits = retriever.rank(embedding, side, k, exact=exact, query_cues=cues if fused else None, hidden=hidden)
    if cues is None and side == "video" and any(catalog.has(side, h.id) and catalog.item(side, h.id).cues
                                                for h in hits):
        cues = cues_or_none(query, "music")  # to explain the hits
    return hits, explain_hits(catalog, side, hits, cues) if cues else [[] for _ in hits], fused


def embedding_and_cues(retriever: Any, side: str, query: Path) -> tuple[np.ndarray, dict | None]:
    """A query file's ``(512,)`` embedding and named cues (``None`` when they cannot be computed,
    and for a music query when the ranking does not use them), ``side`` being the side searched."""
    from vmnet_core.bundle.track_cues import cues_or_none

    if side == "music":
        frames, cues = retriever.video_frames_and_cues(query, max_duration_s=None)
        return retriever.embed_video_frames(frames), cues
    with ThreadPoolExecutor(1, thread_name_prefix="vmnet-query-cues") as beside:  # their own decode, meanwhile
        pending = beside.submit(cues_or_none, query, "music") if retriever.cue_weight > 0 else None
        embedding = retriever.embed_music_file(query)
        return embedding, pending.result() if pending is not None else None


def run_batch_query(args: argparse.Namespace) -> int:
    """Print one JSON line per file of the folder or list; 0 when every file gave results, else 1."""
    from vmnet_core.bundle.files import load_bundle  # torch: only when the command runs
    from vmnet_core.bundle.retrieval import Retriever

    by_video = args.video is not None
    source = args.video if by_video else args.music
    items = discover_inputs(source, "both" if by_video else "music")
    retriever = Retriever(load_bundle(args.bundle), device=args.device, cue_weight=args.cue_weight)
    side = "music" if by_video else "video"
    hidden = training_items_hidden(args, side)
    records = spread_records(retriever, side, items, args, hidden) if args.spread else (
        query_record(retriever, side, item, args, hidden) for item in items)
    failures = 0
    for record in records:
        failures += "error" in record
        print(json.dumps(record, ensure_ascii=False), flush=True)
    if failures:
        print(f"vmnet: {failures} of {len(items)} files gave no results (see their \"error\").", file=sys.stderr)
    return 1 if failures else 0


def batch_record(item: Any) -> dict:
    """The start of ``item``'s batch line: ``{"query": path, "id": id}``."""
    return {"query": str(item.path), "id": item.id}


def query_record(retriever: Any, side: str, item: Any, args: argparse.Namespace, hidden: Any) -> dict:
    """One batch line: ``item``'s ranked and explained results, or the sentence saying why it has none."""
    from vmnet_core.bundle.track_cues import explained_records

    record = batch_record(item)
    try:
        hits, why, _ = search_and_explain(retriever, side, item.path, args.top, args.exact, hidden)
        record["results"] = explained_records(hits, why)
    except VmnetError as exc:
        record["error"] = str(exc)
    return record


def spread_records(retriever: Any, side: str, items: list, args: argparse.Namespace, hidden: Any) -> list[dict]:
    """The batch lines of ``--spread``: every file read first, then all ranked with offsets fitted on
    the batch; a file without an embedding or named cues gets an ``error`` and stays out of the fit."""
    from vmnet_core.bundle.exposure_bank import require_balanceable, spread_over_batch
    from vmnet_core.bundle.track_cues import explain_hits, explained_records

    retriever.require_side(side)
    require_balanceable(retriever)  # before any file is read
    records, usable = [], []
    for item in items:
        record = batch_record(item)
        try:
            embedding, cues = embedding_and_cues(retriever, side, item.path)
            if cues is None:
                raise VmnetError(f"{item.path.name}: its named cues could not be computed, so it cannot share "
                                 "in a spread; query it without --spread.")
            usable.append((record, embedding, cues))
        except VmnetError as exc:
            record["error"] = str(exc)
            print(f"vmnet: left out of the spread: {item.path}: {exc}", file=sys.stderr)
        records.append(record)
    ranked = spread_over_batch(retriever, side, [(e, c) for _, e, c in usable], args.top, given=len(items),
                               hidden=hidden, exact=args.exact)
    for (record, _, cues), hits in zip(usable, ranked, strict=True):
        record["results"] = explained_records(hits, explain_hits(retriever.bundle.catalog, side, hits, cues))
    return records
