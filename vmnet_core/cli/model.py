"""``vmnet train``, ``vmnet tune`` and ``vmnet evaluate`` (``import-features`` lives in cli/extract)."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from vmnet_core.learn.metrics import DIRECTIONS
from vmnet_core.learn.model_config import CAPACITIES


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``train`` and ``evaluate`` to the ``vmnet`` parser."""
    p = subparsers.add_parser(
        "train", help="train VM-NET on a feature store and write a bundle",
        description="Fit the preprocessors on the train split, train with the paper's losses, keep the best "
        "validation checkpoint and write a bundle. An interrupted run resumes: rerun the same command.")
    p.add_argument("--store", required=True, type=Path, help="feature store directory")
    p.add_argument("--out", required=True, type=Path, help="bundle directory to create (or resume)")
    p.add_argument("--config", type=Path, default=None, help="TOML with [train], [model], [preprocess] tables")
    p.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    p.add_argument("--device", default=None, help="cpu or cuda (default cpu)")
    p.add_argument("--steps", type=int, default=None, help="maximum optimisation steps")
    p.add_argument("--no-structure", action="store_true", help="train the ablation without the structure constraint")
    p.add_argument("--capacity", choices=CAPACITIES, default=None,
                   help="tower shape: auto (default) climbs cca, linear, small, full while validation improves, "
                        "then keeps pls (partial least squares on z-scores) instead if it beats that beyond noise; "
                        "full = the configured towers only (the paper's by default)")
    p.add_argument("--with-ablation", action="store_true",
                   help="also train the baselines evaluate --compare uses: the no-structure ablation into "
                   "OUT/ablation and the plain recipe into OUT/plain")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_train)

    p = subparsers.add_parser(
        "evaluate", help="Recall@K, median and mean rank of a bundle on a store split",
        description="Score a bundle on a store split in both directions (video→music, music→video) with the "
        "paper's Recall@K; --compare adds random ranking, CCA, the plain recipe and the no-structure ablation.")
    p.add_argument("--bundle", required=True, type=Path)
    p.add_argument("--store", required=True, type=Path)
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument("--compare", action="store_true",
                   help="add random, CCA, the plain recipe and the no-structure ablation")
    p.add_argument("--plot", type=Path, default=None,
                   help="PNG of R@K curves (default: BUNDLE/eval_<split>.png)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random baseline")
    p.add_argument("--quiet", action="store_true", help="no progress bar when the ablation must be trained")
    p.set_defaults(func=run_evaluate)

    p = subparsers.add_parser(
        "tune", help="a seeded, budgeted search over training choices, scored on validation",
        description="Train the given settings, then seeded random variations of the input widths, whitening, "
        "dropout, learning rate and step cap; score each on the validation split; print a table and copy the "
        "best bundle to OUT (every trial stays in OUT.trials/).")
    p.add_argument("--store", required=True, type=Path, help="feature store directory")
    p.add_argument("--out", required=True, type=Path, help="directory for the best bundle (must not exist)")
    p.add_argument("--config", type=Path, default=None, help="TOML with the starting settings (trial 0)")
    p.add_argument("--trials", type=int, default=8, help="at most this many trials (default 8)")
    p.add_argument("--budget-minutes", type=float, default=None, help="start no new trial after this long")
    p.add_argument("--seed", type=int, default=0, help="seed of the search (and of every trial's training)")
    p.set_defaults(func=run_tune)


def run_train(args: argparse.Namespace) -> int:
    from vmnet_core.bundle.files import load_bundle  # torch: only when the command runs (see cli/main.py)
    from vmnet_core.bundle.recipes import train_bundle
    from vmnet_core.learn.train import load_run_config

    run = load_run_config(args.config, seed=args.seed, device=args.device, max_steps=args.steps,
                          structure=False if args.no_structure else None,
                          progress=False if args.quiet else None)
    if args.capacity:
        run = replace(run, model=replace(run.model, capacity=args.capacity))
    out = train_bundle(args.store, args.out, run, with_ablation=args.with_ablation)

    bundle = load_bundle(out)
    metrics = bundle.metrics
    test = metrics.get("test")
    print(f"bundle written to {out} (towers: {bundle.config.model.capacity})")
    if test:
        print(format_table({"VM-NET": test}, test["gallery"]))
    return 0


def run_tune(args: argparse.Namespace) -> int:
    from vmnet_core.bundle.tuning import tune  # torch: only when the command runs
    from vmnet_core.learn.train import load_run_config

    run = load_run_config(args.config, seed=args.seed, progress=False)
    print(f"{'trial':>5}  {'val R@10':>8}  {'steps':>5}  {'wall':>6}  choices")

    def report(trial) -> None:
        choices = ", ".join(f"{k}={v}" for k, v in trial.choices.items()) or "the given settings"
        print(f"{trial.number:>5}  {100 * trial.val_score:>7.1f}%  {trial.steps:>5}  {trial.wall_s:>5.0f}s  {choices}",
              flush=True)

    budget = None if args.budget_minutes is None else 60 * args.budget_minutes
    trials = tune(args.store, args.out, run, trials=args.trials, seed=args.seed, budget_s=budget, report=report)
    best = max((t for t in trials if t.val_score == t.val_score), key=lambda t: t.val_score)
    print(f"best: trial {best.number} (validation mean R@10 {100 * best.val_score:.1f}%), copied to {args.out}")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from vmnet_core.bundle.evaluation import (  # torch: only when the command runs
        MODEL_LABELS,
        evaluate_bundle,
    )
    from vmnet_core.bundle.files import load_bundle
    from vmnet_core.learn.hubness import hubness_line
    from vmnet_core.learn.plots import plot_recall_curves

    bundle = load_bundle(args.bundle)
    evaluation = evaluate_bundle(bundle, args.store, split=args.split, compare=args.compare, seed=args.seed,
                                 progress=not (args.quiet or args.json))
    result = evaluation.result
    plot_path = args.plot or Path(args.bundle) / f"eval_{args.split}.png"
    try:
        plot_recall_curves(evaluation.ranks, plot_path, title=f"{args.split}, gallery {result['gallery']}")
    except OSError as exc:
        print(f"vmnet: warning: could not write the plot {plot_path} ({exc.strerror}).", file=sys.stderr)
        plot_path = None
    if args.json:
        print(json.dumps(result))
        return 0
    rows = {"VM-NET": result}
    structure = {}
    if "compare" in result:
        rows = {MODEL_LABELS[name]: block for name, block in result["compare"].items()}
        structure = {MODEL_LABELS[name]: block["structure"] for name, block in result["compare"].items()
                     if "structure" in block}
    print(f"split: {args.split}   gallery: {result['gallery']} pairs   (chance R@10 = "
          f"{100 * min(1.0, 10 / result['gallery']):.2f}%)")
    print(format_table(rows, result["gallery"]))
    if structure:
        print()
        print("structure kept (mean Spearman rho of neighbour distances, input vs embedding):")
        width = max(len(n) for n in structure)
        for name, rho in structure.items():
            print(f"  {name:<{width}}  music {rho['music']:.3f}   video {rho['video']:.3f}")
    hubs = hubness_line(result.get("hubness"))
    if hubs:
        print(f"\n{hubs}")
    for note in evaluation.notes:
        print(f"note: {note}")
    if plot_path is not None:
        print(f"R@K curves: {plot_path}")
    return 0


def format_table(rows: dict[str, dict], gallery: int) -> str:
    """A text table: one line per model and direction, recalls in percent, then median/mean rank."""
    first = next(iter(rows.values()))
    keys = [k for k in first[DIRECTIONS[0]] if k.startswith("R@")]
    name_width = max(12, *(len(n) for n in rows))
    header = f"{'model':<{name_width}}  {'direction':<15}" + "".join(f"{k:>8}" for k in keys) + f"{'med r':>8}{'mean r':>9}"
    lines = [f"gallery {gallery}", header, "-" * len(header)]
    for name, block in rows.items():
        for direction in DIRECTIONS:
            row = block[direction]
            label = direction.replace("_to_", "→")
            lines.append(f"{name:<{name_width}}  {label:<15}" + "".join(f"{100 * row[k]:>7.1f}%" for k in keys)
                         + f"{row['median_rank']:>8g}{row['mean_rank']:>9.1f}")
    return "\n".join(lines)
