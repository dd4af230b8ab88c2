"""``vmnet extract``, ``vmnet merge-stores``, ``vmnet himv`` and ``vmnet import-features``."""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from vmnet_core.datasets.himv import match_himv, write_extract_list
from vmnet_core.errors import VmnetError
from vmnet_core.features.extract import discover_inputs, extract_store, parse_shard
from vmnet_core.features.imported import import_features, read_split_file
from vmnet_core.features.parts import merge_stores
from vmnet_core.features.store import SPLITS

_MAX_ERRORS_SHOWN = 5


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this module's sub-commands to the ``vmnet`` parser."""
    p = subparsers.add_parser("extract", help="extract music and video features from media into a store",
                              description="Extract the paper's music descriptor and 1-fps EfficientNet-Lite0 "
                              "frame features. Interrupted runs resume: rerun the same command.")
    p.add_argument("--input", required=True, type=Path, help="a folder, a media file, or a .txt list of files")
    p.add_argument("--out", required=True, type=Path, help="store directory (created or resumed)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--shard", default="0/1", help="i/N: take only the items whose id hash mod N is i")
    p.add_argument("--modality", choices=("both", "music"), default="both",
                   help="both (videos) or music only (videos and audio files)")
    p.add_argument("--max-duration", type=float, default=None, metavar="S",
                   help="record files longer than S seconds as errors instead of extracting them")
    p.add_argument("--split-file", type=Path, default=None, help="'id split' lines (train/val/test)")
    p.add_argument("--meta", type=Path, default=None,
                   help="CSV with an id (or path) column whose other columns are copied into the manifest")
    p.add_argument("--retry-errors", action="store_true", help="extract again the items that failed before")
    p.add_argument("--device", default="cpu", help="torch device for the CNN (default cpu)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_extract)

    p = subparsers.add_parser("merge-stores", help="merge disjoint stores or shard parts into one store",
                              description="Merge stores (or the parts that sharded `vmnet extract` runs wrote) "
                              "into --out, which may itself be one of the inputs.")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("stores", nargs="+", type=Path)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run_merge_stores)

    p = subparsers.add_parser("himv", help="match a HIMV-200K id list to downloaded videos",
                              description="Write a list for `vmnet extract --input` from HIMV-200K's "
                              "Youtube_ID.txt and a folder of videos named by YouTube id. Downloads nothing.")
    p.add_argument("--ids", required=True, type=Path, help="Youtube_ID.txt (watch URLs or bare ids)")
    p.add_argument("--media", required=True, type=Path, help="folder of videos named <id>.<ext>")
    p.add_argument("--out", type=Path, default=Path("list.txt"), help="list to write (default list.txt)")
    p.add_argument("--missing", type=Path, default=None, help="missing ids file (default missing.txt beside --out)")
    p.set_defaults(func=run_himv)

    if "import-features" not in subparsers.choices:
        p = subparsers.add_parser("import-features", help="make a store from precomputed feature vectors",
                                  description="Create a store from N×Dm music and N×Dv video .npy arrays.")
        p.add_argument("--music", required=True, type=Path, help="N×Dm .npy")
        p.add_argument("--video", required=True, type=Path, help="N×Dv .npy")
        p.add_argument("--ids", type=Path, default=None, help="one id per line (default item000000…)")
        p.add_argument("--split", type=Path, default=None,
                       help="one split name per line aligned with the rows, or 'id split' pairs")
        p.add_argument("--out", required=True, type=Path)
        p.set_defaults(func=run_import_features)


def run_extract(args: argparse.Namespace) -> int:
    shard = parse_shard(args.shard)
    items = discover_inputs(args.input, args.modality)
    split_map, extra_columns = read_meta_csv(args.meta, [i.id for i in items], [i.path for i in items]) \
        if args.meta else ({}, {})
    if args.split_file:
        split_map.update(read_split_file(args.split_file))
    summary = extract_store(items, args.out, modality=args.modality, workers=args.workers, shard=shard,
                            max_duration_s=args.max_duration, split_map=split_map, extra_columns=extra_columns,
                            retry_errors=args.retry_errors, device=args.device, progress=not args.quiet)
    print(f"{summary.total} items{'' if shard[1] == 1 else f' in shard {args.shard}'}: "
          f"{summary.skipped} already done, {summary.ok} extracted, {summary.errors} failed.")
    for item_id, message in list(summary.error_messages.items())[:_MAX_ERRORS_SHOWN]:
        print(f"  {item_id}: {message}")
    if summary.errors > _MAX_ERRORS_SHOWN:
        print(f"  … and {summary.errors - _MAX_ERRORS_SHOWN} more (status 'error' in manifest.csv).")
    if summary.store is not None:
        store = summary.store
        print(f"Store {args.out}: {len(store)} items ready, {len(store.errors())} with errors.")
    else:
        print(f"When every shard has finished, consolidate with: vmnet merge-stores --out {args.out} {args.out}"
              " (add the other shards' directories if they wrote elsewhere).")
    return 0


def read_meta_csv(path: Path, ids: list[str], paths: list[Path]) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """(id → split, id → extra columns) from a metadata CSV joined on its ``id`` or ``path`` column.

    A ``path`` value matches an item by file name. Columns id/path/duration_s/status/error are not copied.
    """
    if not path.is_file():
        raise VmnetError(f"The metadata file {path} does not exist.")
    with open(path, newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    columns = rows[0].keys() if rows else []
    if "id" in columns:
        known = set(ids)
        key, item_of = "id", {i: i for i in known}.get
    elif "path" in columns:
        by_name = {p.name: i for i, p in zip(ids, paths, strict=True)}
        key, item_of = "path", lambda value: by_name.get(Path(value).name)
    else:
        raise VmnetError(f"{path.name} needs an 'id' or a 'path' column to match its rows to the media files.")
    skip = {"id", "path", "duration_s", "status", "error", "split"}
    split_map: dict[str, str] = {}
    extra: dict[str, dict[str, str]] = {}
    for row in rows:
        item_id = item_of(row[key] or "")
        if item_id is None:
            continue
        if row.get("split"):
            if row["split"] not in SPLITS:
                raise VmnetError(f"{path.name} gives {item_id!r} the split {row['split']!r}; use train, val or test.")
            split_map[item_id] = row["split"]
        extra[item_id] = {k: v for k, v in row.items() if k not in skip and k is not None}
    return split_map, extra


def run_merge_stores(args: argparse.Namespace) -> int:
    store = merge_stores(args.out, args.stores, progress=not args.quiet)
    print(f"Store {args.out}: {len(store)} items ready, {len(store.errors())} with errors.")
    return 0


def run_himv(args: argparse.Namespace) -> int:
    match = match_himv(args.ids, args.media)
    missing = args.missing or args.out.parent / "missing.txt"
    write_extract_list(match, args.out, missing)
    print(f"Found {len(match.found)} of {len(match.ids)} videos; {len(match.missing)} missing "
          f"(ids in {missing}). List for `vmnet extract --input`: {args.out}")
    if match.unparsed:
        print(f"Skipped {len(match.unparsed)} lines with no YouTube id, e.g. {match.unparsed[0]!r}.")
    return 0


def run_import_features(args: argparse.Namespace) -> int:
    store = import_features(args.out, args.music, args.video, args.ids, args.split)
    counts = {name: len(store.split_ids(name)) for name in ("train", "val", "test")}
    print(f"Store {args.out}: {len(store)} items (train {counts['train']}, val {counts['val']}, "
          f"test {counts['test']}).")
    return 0
