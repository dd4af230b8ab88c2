"""``vmnet study create | export | analyze | plan`` (registered through the ``vmnet.commands`` entry point)."""

from __future__ import annotations

import argparse
import json
import math
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
    plan.add_argument("--votes-per-rater", type=float, default=None, metavar="M",
                      help="votes each rater gives on this pair (for the design effect; default 1, or the "
                           "study's own with --db)")
    plan.add_argument("--icc", type=float, default=None,
                      help="intra-rater correlation (design effect 1+(m-1)·ICC; default 0, or the study's with --db)")
    plan.add_argument("--design-effect", type=float, default=None, metavar="D",
                      help="use this design effect instead of 1+(m-1)·ICC")
    plan.add_argument("--db", help="estimate the ICC and votes per rater from this study database's votes")
    plan.add_argument("--study", help="study name (with --db, needed when the database holds several)")
    plan.add_argument("--power", type=float, default=0.8)
    plan.add_argument("--tie-share", type=float, default=0.0, help="expected share of 'no preference' votes")
    plan.add_argument("--json", action="store_true")
    plan.set_defaults(func=run_plan)

    report = sub.add_parser("report", help="one self-contained HTML file with the tables and plots of the analysis",
                            description="Write the analysis as a single HTML file (inline CSS and SVG plots, "
                                        "no external resources) for a paper's supplement.")
    report.add_argument("--db", required=True, help=DB_HELP)
    report.add_argument("--out", required=True, type=Path, help="HTML file to write")
    report.add_argument("--study", help="study name (needed when the database holds several)")
    report.add_argument("--bootstrap", type=int, default=1000, metavar="N",
                        help="bootstrap resamples over raters (default 1000)")
    report.add_argument("--json", type=Path, metavar="FILE", help="also write the analysis JSON the report shows")
    report.set_defaults(func=run_report)


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


def _analysis(db_url: str, study: str | None, n_boot: int):
    """The stored study's analysis (refuses a negative bootstrap count)."""
    from study.db import open_database
    from study.service import analyze

    if n_boot < 0:
        raise VmnetError("--bootstrap cannot be negative.")
    db = open_database(db_url, must_exist=True)
    try:
        return analyze(db, study, n_boot=n_boot)
    finally:
        db.dispose()


def run_analyze(args: argparse.Namespace) -> int:
    analysis = _analysis(args.db, args.study, args.bootstrap)
    print(json.dumps(analysis.to_dict(), indent=2) if args.json else analysis.to_text())
    return 0


def run_report(args: argparse.Namespace) -> int:
    from study.report_html import write_report

    analysis = _analysis(args.db, args.study, args.bootstrap)
    print(f"wrote {write_report(analysis, args.out)}")
    if args.json:
        args.json.write_text(json.dumps(analysis.to_dict(), indent=2), encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


def _estimated_clustering(args: argparse.Namespace) -> tuple[float, float]:
    """(ICC, votes per rater) from the study's votes; refuses when the votes do not define them."""
    analysis = _analysis(args.db, args.study, 0)
    if math.isnan(analysis.icc):
        reasons = sorted({c.icc.reason for c in analysis.clustering if c.icc.reason}) or ["no votes"]
        raise VmnetError(f"The study's votes do not define an ICC yet ({'; '.join(reasons)}); give --icc instead.")
    return analysis.icc, analysis.votes_per_rater


def run_plan(args: argparse.Namespace) -> int:
    from study.stats import plan_votes

    icc, per_rater, source = 0.0, 1.0, "given"
    if args.db:
        icc, per_rater = _estimated_clustering(args)
        source = f"estimated from {args.study or 'the study'}: ICC {icc:+.3f}, {per_rater:.2f} votes per rater"
        icc = max(icc, 0.0)
    icc = args.icc if args.icc is not None else icc
    per_rater = args.votes_per_rater if args.votes_per_rater is not None else per_rater
    rows = [plan_votes(rate, per_rater, icc, args.power, tie_share=args.tie_share, deff=args.design_effect)
            for rate in args.rate]
    for row in rows:
        row.update({"icc": icc, "votes_per_rater": per_rater, "clustering": source})
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        if args.db:
            print(source)
        print("true rate  independent votes  design effect  votes to collect  raters")
        for r in rows:
            print(f"{r['rate']:9.2f}  {r['independent_votes']:17d}  {r['design_effect']:13.2f}  "
                  f"{r['votes']:16d}  {r['raters']:6d}")
    return 0
