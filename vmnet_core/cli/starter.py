"""``vmnet starter``: build the default bundle from the procedural starter corpus."""

from __future__ import annotations

import argparse
from pathlib import Path

from vmnet_core.starter.settings import StarterSettings


def register(subparsers) -> None:
    defaults = StarterSettings()
    p = subparsers.add_parser("starter", help="generate the starter corpus, train VM-NET on it, index a catalog",
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="bundle directory to create (work files go to OUT.work)")
    p.add_argument("--clips", type=int, default=defaults.clips, help="procedural clips to generate")
    p.add_argument("--seconds", type=float, default=defaults.seconds, help="length of each clip")
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--steps", type=int, default=defaults.max_steps, help="training steps at most")
    p.add_argument("--val-every", type=int, default=defaults.val_every, help="validate every this many steps")
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.add_argument("--no-library", action="store_true", help="skip indexing the 28 immich-memories-music tracks")
    p.add_argument("--cue-weight", type=float, default=defaults.cue_weight,
                   help="weight of the named-cue fit in the ranking (0: the paper's cosine order)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from vmnet_core.starter.pipeline import build_starter_bundle  # torch, librosa: only when the command runs

    settings = StarterSettings(clips=args.clips, seconds=args.seconds, seed=args.seed, max_steps=args.steps,
                               val_every=args.val_every, workers=args.workers, index_real_library=not args.no_library,
                               cue_weight=args.cue_weight)
    out = build_starter_bundle(args.out, settings)
    print(f"starter bundle ready: {out}")
    print((out / "card.md").read_text(encoding="utf-8").split("## The starter bundle")[-1])
    return 0
