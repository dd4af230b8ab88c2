"""``vmnet index`` (add media files to a bundle's catalog) and ``vmnet query`` (ranked matches for a file)."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vmnet_core.bundle.ann_index import MIN_ROWS
from vmnet_core.errors import VmnetError
from vmnet_core.features.extract import discover_inputs
from vmnet_core.media import probe
from vmnet_core.starter.settings import DEFAULT_CUE_WEIGHT

if TYPE_CHECKING:  # the command modules load at every `vmnet` start: heavy imports wait for their command
    from vmnet_core.bundle.config import VideoSampling

TAG_KEY_COLUMNS = ("id", "file", "path")


def register(subparsers: Any) -> None:
    """Add the ``index`` and ``query`` sub-commands."""
    index = subparsers.add_parser(
        "index", help="add music and/or video files to a bundle's catalog (incremental, resumable)",
        description="Embed media files with the bundle's model and add them to its catalog. Files already "
                    "in the catalog are skipped, so an interrupted run continues where it stopped.")
    index.add_argument("--bundle", required=True, type=Path, help="bundle directory")
    index.add_argument("--music", type=Path, metavar="DIR",
                       help="folder (or .txt list) of audio files or music videos: their sound becomes music items")
    index.add_argument("--videos", type=Path, metavar="DIR",
                       help="folder (or .txt list) of videos: their pictures become video items")
    index.add_argument("--tags", type=Path, metavar="FILE",
                       help="optional CSV or JSON of tags per file (key column id, file or path; "
                            "a title column sets the title)")
    index.add_argument("--save-every", type=int, default=20, metavar="N", help="save the catalog every N items")
    index.add_argument("--max-duration", type=float, default=600.0, metavar="S",
                       help="skip videos longer than S seconds (default 600)")
    index.add_argument("--device", default="cpu", help="torch device for the frame CNN (cpu or cuda)")
    index.add_argument("--quiet", action="store_true", help="no progress bar")
    search = index.add_mutually_exclusive_group()
    search.add_argument("--approximate", action="store_true",
                        help="search the indexed sides (both when no folder is given) with an approximate IVF "
                             "index, for catalogs of 10,000+ items; its recall is measured and printed")
    search.add_argument("--exact", action="store_true", help="go back to exact search (the default)")
    index.add_argument("--target-recall", type=float, default=0.95, metavar="R",
                       help="with --approximate: the recall@10 against exact search to reach (default 0.95)")
    index.add_argument("--cues", action="store_true",
                       help="compute the named cues (tempo, key, cuts, grading) of catalog items indexed without "
                            "them (catalogs from before cues), so their results get a 'why this track' explanation")
    index.add_argument("--cue-weight", type=float, default=None, metavar="W",
                       help="store how results are ordered: the weight of the named-cue fit beside the network's "
                            "cosine (0: the paper's order; the default bundle uses "
                            f"{DEFAULT_CUE_WEIGHT:g}); needs cues in the catalog (--cues)")
    balance = index.add_mutually_exclusive_group()
    balance.add_argument("--balance-with", type=Path, metavar="DIR",
                         help="folder (or .txt list) of at least 10 videos like the ones this catalog will be asked "
                              "about: lower the tracks that take more than a fifth of their top-5 lists (exposure "
                              "offsets added to the cue-fused order; docs/cues.md)")
    balance.add_argument("--no-balance", action="store_true", help="remove the exposure offsets")
    index.add_argument("--include-training", action="store_true",
                       help="with --balance-with: balance the starter's synthetic training tracks too "
                            "(they are left out of results unless asked for)")
    index.set_defaults(func=run_index)

    query = subparsers.add_parser(
        "query", help="rank a bundle's catalog items for a video (→ music) or a music file (→ videos)",
        description="Print the catalog items that fit the query file best, with cosine scores.")
    query.add_argument("--bundle", required=True, type=Path, help="bundle directory")
    which = query.add_mutually_exclusive_group(required=True)
    which.add_argument("--video", type=Path, metavar="FILE", help="find music for this video (a folder or "
                       ".txt list of videos: one JSON line per file)")
    which.add_argument("--music", type=Path, metavar="FILE",
                       help="find videos for this audio file (or this video's soundtrack; a folder or .txt list: one JSON line per file)")
    query.add_argument("-k", "--top", type=int, default=10, metavar="K", help="number of results (default 10)")
    query.add_argument("--json", action="store_true",
                       help='print a JSON list of {"rank", "id", "title", "score", "path", "tags", "start_s", "end_s", '
                            '"explain"} ("start_s"/"end_s": the part of the item that fits best, null for items '
                            'indexed as one piece; "explain": the named cues that make it fit, e.g. '
                            '"fast cuts ↔ 132 BPM")')
    query.add_argument("--device", default="cpu", help="torch device for the frame CNN (cpu or cuda)")
    query.add_argument("--exact", action="store_true", help="search exactly even if the catalog side is approximate")
    query.add_argument("--cue-weight", type=float, default=None, metavar="W",
                       help="weight of the named-cue fit in the order (default: the bundle's ranking.cue_weight; "
                            "0: the paper's cosine order)")
    query.add_argument("--spread", action="store_true",
                       help="for a folder or .txt list: fit exposure offsets on the batch itself so no item is in "
                            "more than a fifth of its top-5 lists (varied music across a set of clips; docs/cues.md)")
    query.add_argument("--include-training", action="store_true",
                       help="also list the starter bundle's synthetic training tracks (starter-NNNNN), "
                            "which music results leave out by default, as the web app does")
    query.set_defaults(func=run_query)


def run_index(args: argparse.Namespace) -> int:
    """``vmnet index``: returns 0 when every file was indexed or skipped, 1 when some failed."""
    from vmnet_core.bundle.files import load_bundle  # torch: only when the command runs (see cli/main.py)
    from vmnet_core.bundle.retrieval import Retriever, index_media_files

    switching = args.approximate or args.exact
    balancing = args.balance_with is not None or args.no_balance
    if (args.music is None and args.videos is None and not switching and not args.cues and args.cue_weight is None
            and not balancing):
        raise VmnetError("Say what to index: --music DIR and/or --videos DIR (or --approximate / --exact / --cues "
                         "/ --cue-weight W / --balance-with DIR / --no-balance).")
    if args.cue_weight is not None and not 0.0 <= args.cue_weight <= 10.0:
        raise VmnetError("--cue-weight must be between 0 (cosine order only) and 10.")
    if args.include_training and args.balance_with is None:
        raise VmnetError("--include-training says which tracks --balance-with DIR balances; give it with that.")
    if args.save_every < 1:
        raise VmnetError("--save-every must be at least 1.")
    tags = read_tags_file(args.tags) if args.tags else {}
    # find the inputs before loading the model, so a wrong folder fails fast
    jobs = [(side, discover_inputs(source, modality)) for side, source, modality in
            (("music", args.music, "music"), ("video", args.videos, "both")) if source is not None]
    bank = [item.path for item in discover_inputs(args.balance_with, "both")] if args.balance_with is not None else None
    retriever = Retriever(load_bundle(args.bundle), device=args.device)

    def report(path: str, sentence: str) -> None:
        sentence = sentence.replace("raise the limit.", "raise the limit with --max-duration S.")
        print(f"vmnet: skipped {path}: {sentence}", file=sys.stderr)

    failures = 0
    for side, inputs in jobs:
        summary = index_media_files(retriever, side, inputs, tags=tags, save_every=args.save_every,
                                    max_duration_s=args.max_duration, progress=not args.quiet, on_error=report)
        failures += len(summary.failed)
        print(f"{side}: {summary.added} added, {summary.skipped} already indexed, {len(summary.failed)} failed; "
              f"the catalog now holds {retriever.bundle.catalog.size(side)} {side} items.")
    if args.cues:
        fill_missing_cues(retriever.bundle, [side for side, _ in jobs] or ["music", "video"])
    if args.cue_weight is not None:
        from vmnet_core.bundle.config import RankingConfig

        changed = args.cue_weight != retriever.cue_weight
        retriever.bundle.save_ranking(RankingConfig(cue_weight=args.cue_weight))
        retriever.cue_weight = args.cue_weight
        order = (f"the cosine and the cue fit (weight {args.cue_weight:g})" if args.cue_weight
                 else "the cosine alone (the paper's order)")
        print(f"results are now ordered by {order}.")
        if changed and not balancing and is_balanced(retriever.bundle.catalog):
            retriever.bundle.catalog.set_exposure_offsets("music", {})
            retriever.bundle.save_catalog()
            print("the exposure offsets were fitted at the old weight and are removed; balance again with "
                  "--balance-with DIR.")
    if balancing:
        rebalance(retriever, bank, args)
    if switching:
        sides = [side for side, _ in jobs] or ["music", "video"]
        set_search_mode(retriever.bundle, sides, approximate=args.approximate, target_recall=args.target_recall)
    return 1 if failures else 0


def is_balanced(catalog: Any) -> bool:
    """True when some music item carries an exposure offset."""
    return any(item.exposure_offset for item in catalog.items("music"))


def rebalance(retriever: Any, bank: list | None, args: argparse.Namespace) -> None:
    """``vmnet index --balance-with DIR`` (``bank``: its files) or ``--no-balance``; saves the catalog."""
    from vmnet_core.bundle.exposure_bank import balance_music
    from vmnet_core.cli.batch_query import training_items_hidden

    catalog = retriever.bundle.catalog
    if bank is None:
        catalog.set_exposure_offsets("music", {})
        retriever.bundle.save_catalog()
        print("music: exposure offsets removed; results follow the cosine and the cue fit alone.")
        return

    def report(path: str, sentence: str) -> None:
        print(f"vmnet: left out of the balance: {path}: {sentence}", file=sys.stderr)

    done = balance_music(retriever, bank, hidden=training_items_hidden(args, "music"), on_error=report)
    retriever.bundle.save_catalog()
    print(f"music: balanced {done.tracks} tracks on {done.bank} videos; the largest share of their top-{done.k} "
          f"lists one track takes went from {done.max_share_before:.2f} to {done.max_share_after:.2f} "
          f"(cap {done.cap:.2f}); "
          + (f"{done.lowered} tracks lowered, offsets down to {done.lowest_offset:+.2f}." if done.lowered
             else "no track was over the cap, so none was lowered."))


def fill_missing_cues(bundle: Any, sides: list[str]) -> None:
    """``vmnet index --cues``: store cues for the items of ``sides`` that lack them, then save."""
    from vmnet_core.bundle.track_cues import add_missing_cues

    for side in sides:
        added = add_missing_cues(bundle.catalog, side)
        lacking = sum(1 for item in bundle.catalog.items(side) if not item.cues)
        print(f"{side}: cues computed for {added} items; {lacking} still have none (file missing or unusable).")
    bundle.save_catalog()


def set_search_mode(bundle: Any, sides: list[str], approximate: bool, target_recall: float) -> None:
    """Make ``sides`` of the bundle's catalog search approximately (or exactly) and save it.

    Sides too small for an approximate index are left exact with a note, unless none is big enough.
    """
    catalog = bundle.catalog
    if approximate and len(sides) > 1:
        big = [side for side in sides if catalog.search_rows(side) >= MIN_ROWS]
        for side in sides:
            if side not in big and catalog.size(side):
                print(f"{side}: {catalog.search_rows(side):,} rows, fewer than the {MIN_ROWS:,} approximate search "
                      "needs; it stays exact.")
        sides = big or sides[:1]
    for side in sides:
        if not approximate:
            catalog.make_exact(side)
            print(f"{side}: exact search.")
            continue
        stats = catalog.make_approximate(side, target_recall=target_recall)
        note = "" if stats.recall >= stats.target_recall else f" (below the target {stats.target_recall:.2f})"
        print(f"{side}: approximate search over {stats.rows:,} items, IVF-Flat nlist={stats.nlist} "
              f"nprobe={stats.nprobe}; measured recall@{stats.k} against exact search {stats.recall:.3f}{note} "
              f"on {stats.sample_queries} of its own items.")
    bundle.save_catalog()


def run_query(args: argparse.Namespace) -> int:
    """``vmnet query``: print ranked catalog items for the query file."""
    from vmnet_core.bundle.files import load_bundle  # torch: only when the command runs
    from vmnet_core.bundle.filtered_search import count_visible
    from vmnet_core.bundle.retrieval import Retriever
    from vmnet_core.bundle.track_cues import explained_records
    from vmnet_core.cli.batch_query import (
        is_batch_query,
        run_batch_query,
        search_and_explain,
        training_items_hidden,
    )

    if args.top < 1:
        raise VmnetError("-k must be at least 1.")
    if args.cue_weight is not None and not 0.0 <= args.cue_weight <= 10.0:
        raise VmnetError("--cue-weight must be between 0 (cosine order only) and 10.")
    query_path = args.video if args.video is not None else args.music
    if is_batch_query(query_path):
        return run_batch_query(args)
    if args.spread:
        raise VmnetError("--spread shares the results out over many files; give a folder or .txt list of them.")
    check_query_file(query_path)
    retriever = Retriever(load_bundle(args.bundle), device=args.device, cue_weight=args.cue_weight)
    side, found = ("music", "music") if args.video is not None else ("video", "videos")
    hidden = training_items_hidden(args, side)
    try:
        hits, why, fused = search_and_explain(retriever, side, query_path, args.top, args.exact, hidden)
    except VmnetError as exc:
        raise VmnetError(as_typed(str(exc), query_path)) from None
    if args.video is not None:
        note = analysed_part_note(retriever.bundle.config.descriptors.video, query_path)
        if note:
            print(f"vmnet: note: {note}", file=sys.stderr)
    if args.json:
        print(json.dumps(explained_records(hits, why), indent=2, ensure_ascii=False))
        return 0
    order = "cosine" if not fused else ("cosine, cue fit and exposure balance" if side == "music"
                                        and is_balanced(retriever.bundle.catalog) else "cosine and cue fit")
    left_out = retriever.bundle.catalog.size(side) - count_visible(retriever.bundle.catalog, side, hidden)
    print(f"{found} for {query_path.name} (best first by {order}; score = cosine similarity"
          + (f"; {left_out} synthetic training tracks left out, --include-training lists them" if left_out else "")
          + "):")
    for hit, phrases in zip(hits, why, strict=True):
        moment = f"  {hit.start_s:.1f}–{hit.end_s:.1f} s" if hit.start_s is not None and hit.end_s is not None else ""
        print(f"{hit.rank:>4}  {hit.score:+.3f}  {hit.title}  [{hit.id}]{moment}  {hit.path}")
        if phrases:
            print(f"        why: {'; '.join(phrases)}")
    return 0


def analysed_part_note(sampling: VideoSampling, video: Path) -> str | None:
    """A sentence when the model looked at only the start of ``video`` (its frame cap), else None."""
    span_s = sampling.span_s
    duration_s = probe(video).duration_s
    if duration_s <= span_s + 1.0:
        return None
    return (f"{video} is {duration_s:.0f} s long; the model looks at its first {span_s:.0f} s "
            "(the frames it was trained on), as the web app does.")


def check_query_file(path: Path) -> None:
    """One sentence naming ``path`` as the user typed it when it is a broken link or missing (folders
    and lists are batch queries: :mod:`vmnet_core.cli.batch_query`)."""
    if path.is_symlink() and not path.exists():
        raise VmnetError(f"{path} is a link to a file that does not exist; fix the link or pass the file itself.")
    if not path.is_file():
        raise VmnetError(f"The query file {path} does not exist; check the path.")


def as_typed(message: str, typed: Path) -> str:
    """``message`` with a symlink's resolved target (full path, then file name) replaced by the
    path the user typed."""
    if not typed.is_symlink():
        return message
    target = typed.resolve()
    if str(target) in message:
        return message.replace(str(target), str(typed))
    return message.replace(target.name, str(typed))


def read_tags_file(path: Path) -> dict[str, dict[str, Any]]:
    """Tags per item from a CSV (key column ``id``, ``file`` or ``path``) or JSON file.

    JSON may be ``{key: {tag: value}}`` or a list of objects with an ``id``/``file``/``path`` key.
    Returns ``{key: {tag: value}}``; empty CSV cells are left out.
    """
    if not path.is_file():
        raise VmnetError(f"The tags file {path} does not exist.")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise VmnetError(f"The tags file {path} is not valid JSON ({exc}).") from None
        records = list(data.items()) if isinstance(data, dict) else None
        if isinstance(data, list) and all(isinstance(r, dict) for r in data):
            records = [(_record_key(r, path), {k: v for k, v in r.items() if k not in TAG_KEY_COLUMNS})
                       for r in data]
        if records is None or not all(isinstance(v, dict) for _, v in records):
            raise VmnetError(f"The tags file {path} should map each file or id to an object of tags.")
        return {str(k): dict(v) for k, v in records}
    if path.suffix.lower() != ".csv":
        raise VmnetError(f"The tags file {path} should be a .csv or .json file.")
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {_record_key(row, path): {k: v for k, v in row.items() if k and k not in TAG_KEY_COLUMNS and v}
            for row in rows}


def _record_key(record: dict[str, Any], path: Path) -> str:
    for column in TAG_KEY_COLUMNS:
        if record.get(column):
            return str(record[column])
    raise VmnetError(f"Every entry of the tags file {path} needs an id, file or path.")
