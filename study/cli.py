"""``vmnet study create | export | analyze | plan`` (registered through the ``vmnet.commands`` entry point)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from vmnet_core.errors import VmnetError

DB_HELP = "SQLAlchemy URL (sqlite:///study.db, postgresql+psycopg://user@host/db) or a SQLite file path"


def register(subparsers: Any) -> None:
    """Add the ``study`` command with its sub-commands."""
    study = subparsers.add_parser("study", help="blind A/B preference studies: create, export votes, analyse",
                                  description="Run the human preference study (see docs/study.md).")
    sub = study.add_subparsers(dest="study_command", required=True)

    create = sub.add_parser("create", help="premux the stimuli and store a new study with its trial plan",
                            description="Create a study from a bundle (clips from its test split or a folder) or "
                                        "from an explicit candidates CSV (video,condition,track[,title]).")
    source = create.add_mutually_exclusive_group(required=True)
    source.add_argument("--bundle", type=Path, help="trained bundle directory (vmnet train / vmnet starter)")
    source.add_argument("--candidates", type=Path, metavar="CSV",
                        help="CSV with columns video,condition,track[,title,track_id,name]; no model needed")
    create.add_argument("--config", required=True, type=Path, help="study TOML (docs/study.md)")
    create.add_argument("--db", required=True, help=DB_HELP)
    create.add_argument("--media-dir", type=Path, default=Path("study_media"),
                        help="folder that receives the premuxed clips (a random sub-folder per study; "
                             "default ./study_media)")
    create.add_argument("--quiet", action="store_true", help="no progress bar")
    create.set_defaults(func=run_create)

    export = sub.add_parser("export", help="write the votes CSV (long format) and optionally the participants CSV")
    export.add_argument("--db", required=True, help=DB_HELP)
    export.add_argument("--out", required=True, type=Path, help="votes CSV to write")
    export.add_argument("--participants", type=Path, metavar="CSV", help="participants CSV to write")
    export.add_argument("--study", help="study name (needed when the database holds several)")
    export.set_defaults(func=run_export)

    analyze = sub.add_parser("analyze", help="win rates, sign tests, Bradley-Terry, position bias, mixed model")
    analyze.add_argument("--db", required=True, help=DB_HELP)
    analyze.add_argument("--study", help="study name (needed when the database holds several)")
    analyze.add_argument("--json", action="store_true", help="print the analysis as JSON")
    analyze.add_argument("--bootstrap", type=int, default=1000, metavar="N",
                         help="bootstrap resamples over raters for Bradley-Terry intervals (default 1000)")
    analyze.set_defaults(func=run_analyze)

    plan = sub.add_parser("plan", help="votes needed for 80%% power of the exact sign test",
                          description="Votes (and raters) one condition pair needs for the given power.")
    plan.add_argument("--rate", type=float, nargs="+", default=[0.55, 0.6, 0.65, 0.7, 0.75],
                      help="true preference rate(s) to plan for")
    plan.add_argument("--votes-per-rater", type=float, default=1.0, metavar="M",
                      help="votes each rater gives on this pair (for the design effect)")
    plan.add_argument("--icc", type=float, default=0.0, help="intra-rater correlation (design effect 1+(m-1)·ICC)")
    plan.add_argument("--power", type=float, default=0.8)
    plan.add_argument("--tie-share", type=float, default=0.0, help="expected share of 'no preference' votes")
    plan.add_argument("--json", action="store_true")
    plan.set_defaults(func=run_plan)


def run_create(args: argparse.Namespace) -> int:
    from study.config import load_config
    from study.create import clips_from_bundle, clips_from_csv, create_study
    from study.db import open_database

    config = load_config(args.config)
    clips = clips_from_csv(args.candidates) if args.candidates else clips_from_bundle(args.bundle, config)
    db = open_database(args.db)
    bar = None
    if not args.quiet:
        from tqdm import tqdm

        bar = tqdm(desc="premuxing stimuli", unit="clip", file=sys.stderr)

    def progress(done: int, total: int) -> None:
        if bar is not None:
            bar.total = total
            bar.n = done
            bar.refresh()

    try:
        name = create_study(db, config, clips, args.media_dir, progress)
    finally:
        if bar is not None:
            bar.close()
        db.dispose()
    print(f"created study {name!r} with {len(clips)} clips in {args.db}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from study.db import open_database
    from study.export import export_participants, export_votes

    db = open_database(args.db, must_exist=True)
    try:
        out = export_votes(db, args.out, args.study)
        print(f"wrote {out}")
        if args.participants:
            print(f"wrote {export_participants(db, args.participants, args.study)}")
    finally:
        db.dispose()
    return 0


def run_analyze(args: argparse.Namespace) -> int:
    from study.db import open_database
    from study.service import analyze

    if args.bootstrap < 0:
        raise VmnetError("--bootstrap cannot be negative.")
    db = open_database(args.db, must_exist=True)
    try:
        analysis = analyze(db, args.study, n_boot=args.bootstrap)
    finally:
        db.dispose()
    print(json.dumps(analysis.to_dict(), indent=2) if args.json else analysis.to_text())
    return 0


def run_plan(args: argparse.Namespace) -> int:
    from study.stats import plan_votes

    rows = []
    for rate in args.rate:
        if not 0 < rate < 1 or rate == 0.5:
            raise VmnetError(f"--rate {rate} must lie between 0 and 1 and differ from 0.5.")
        rows.append(plan_votes(rate, args.votes_per_rater, args.icc, args.power, tie_share=args.tie_share))
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print("true rate  independent votes  design effect  votes to collect  raters")
        for r in rows:
            print(f"{r['rate']:9.2f}  {r['independent_votes']:17d}  {r['design_effect']:13.2f}  "
                  f"{r['votes']:16d}  {r['raters']:6d}")
    return 0
