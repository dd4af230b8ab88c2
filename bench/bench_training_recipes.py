"""Issue 18: the default ``vmnet train`` against the simplest things that could work, on a realistic store.

Run: python bench/bench_training_recipes.py [--pairs 6000] [--recipes default,plain,cca,cca_auto,full] [--threads 2]

Builds a synthetic store that looks like real features (``vmnet_testkit.synthetic.realistic_pairs``:
shared and private factors through nonlinear maps, per-feature units over two decades, noise at
three levels; test 1,000 / val 500 / train the rest), then trains and scores on the test gallery:

- ``default``: ``train_bundle`` with every default (data-aware preprocessing, the tower shape chosen
  on validation, early stopping);
- ``full`` / ``small`` / ``linear``: the default with one fixed tower shape (``[model] capacity``);
- ``plain``: the plain recipe (z-scored inputs, the paper's towers and losses, 200 steps);
- ``cca`` / ``cca_auto``: regularised CCA on the z-scored inputs / on the default's data-aware inputs,
  ridge chosen on validation;
- ``pls``: partial least squares on the z-scored inputs, the number of components chosen on validation;
- ``paper``: the paper's preprocessing (1,024-component whitening PCA) with the default schedule.

Prints one JSON line per recipe (R@10 both directions, steps, wall seconds) and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from vmnet_core.bundle.files import load_bundle
from vmnet_core.bundle.recipes import train_bundle
from vmnet_core.features.store import FeatureStore
from vmnet_core.learn.baselines import fit_cca_on_validation, fit_pls_on_validation
from vmnet_core.learn.metrics import evaluate_embeddings
from vmnet_core.learn.model import ModelConfig
from vmnet_core.learn.preprocess import PreprocessConfig, Preprocessor
from vmnet_core.learn.train import RunConfig, TrainConfig, paired_inputs, plain_recipe, resolve_splits
from vmnet_testkit.synthetic import write_realistic_store


def _r10(result: dict) -> dict:
    return {d: round(result[d]["R@10"], 3) for d in ("video_to_music", "music_to_video")}


def run_recipe(name: str, store_dir: Path, out_root: Path, threads: int) -> dict:
    """Train/fit recipe ``name`` on the store; its test R@10, steps and wall seconds."""
    started = time.perf_counter()
    base = RunConfig(train=TrainConfig(num_threads=threads, progress=False))
    if name in ("cca", "cca_auto", "pls"):  # closed forms on z-scores, or on the default's data-aware inputs
        store = FeatureStore.open(store_dir)
        splits = resolve_splits(store, base.train)
        pre = Preprocessor.fit_store(store, splits.train, PreprocessConfig(mode="auto" if name == "cca_auto" else "zscore"))
        train, val = paired_inputs(store, pre, splits.train), paired_inputs(store, pre, splits.val)
        fitted = fit_pls_on_validation(train, val) if name == "pls" else fit_cca_on_validation(train, val)
        test = paired_inputs(store, pre, splits.test)
        result = evaluate_embeddings(fitted.encode_music(test.music), fitted.encode_video(test.video))
        chosen = {"components": fitted.music_proj.shape[1]} if name == "pls" else {"ridge": fitted.ridge}
        return {"recipe": name, "R@10": _r10(result), **chosen, "wall_s": round(time.perf_counter() - started)}
    runs = {"default": base, "plain": plain_recipe(base),
            "paper": RunConfig(train=base.train, model=ModelConfig(capacity="full"),
                               preprocess=PreprocessConfig(mode="paper")),
            **{name: replace(base, model=ModelConfig(capacity=name)) for name in ("full", "small", "linear")}}
    bundle = load_bundle(train_bundle(store_dir, out_root / name, runs[name]))
    return {"recipe": name, "R@10": _r10(bundle.metrics["test"]), "steps": bundle.config.training.steps,
            "best_step": bundle.config.training.best_step, "inputs": [bundle.config.model.music_dim,
                                                                       bundle.config.model.video_dim],
            "towers": bundle.config.model.capacity,
            "val_scores": json.loads((out_root / name / "config.json").read_text())["capacity"]["val_scores"],
            "wall_s": round(time.perf_counter() - started)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=6000)
    parser.add_argument("--recipes", default="default,plain,cca")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--val", type=int, default=500, help="validation pairs")
    parser.add_argument("--test", type=int, default=1000, help="test pairs (the gallery)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vmnet-recipes-") as tmp:
        root = Path(tmp)
        store = write_realistic_store(root / "store", n=args.pairs, n_val=args.val, n_test=args.test,
                                      seed=args.seed)
        print(json.dumps({"pairs": args.pairs, "load_before": os.getloadavg()[0]}), flush=True)
        for name in args.recipes.split(","):
            print(json.dumps({**run_recipe(name, store, root, args.threads), "load": round(os.getloadavg()[0], 2)}),
                  flush=True)


if __name__ == "__main__":
    main()
