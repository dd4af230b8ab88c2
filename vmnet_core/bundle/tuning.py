"""``vmnet tune``: a small, seeded, budgeted search over the training choices that matter (issue 18).

Trial 0 is the given settings (the defaults unless a config says otherwise); each later trial
draws, with a seeded generator, one value per choice in :data:`SEARCH_SPACE` (tower shape, input
widths, whitening, dropout, learning rate, step cap) over those settings. Every trial trains a bundle under
``OUT.trials/trial-NN`` and is scored on the **validation** split only (mean R@10 of both
directions); the test split stays untouched for the final report. The best trial's bundle is
copied to ``OUT``. A time budget stops new trials from starting once it is spent.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from vmnet_core.bundle.files import load_bundle
from vmnet_core.bundle.recipes import train_bundle
from vmnet_core.errors import VmnetError
from vmnet_core.learn.capacity import sized_model
from vmnet_core.learn.metrics import selection_score
from vmnet_core.learn.train import RunConfig

# choice → values; None = the data-aware default of that setting
SEARCH_SPACE: dict[str, tuple[Any, ...]] = {
    "capacity": ("cca", "linear", "small", "full"),  # tower shape (vmnet_core.learn.capacity)
    "components": (None, 16, 64, 256),  # music and video input widths
    "whiten": (False, True),
    "dropout": (0.1, 0.3, 0.5),
    "lr": (1e-4, 3e-4, 1e-3),
    "max_steps": (500, 1500, 3000),
}


@dataclass
class Trial:
    """One tried setting: its choices, validation score, steps and wall seconds."""

    number: int
    choices: dict[str, Any]
    val_score: float
    steps: int
    wall_s: float
    bundle: Path


def draw_choices(rng: np.random.Generator) -> dict[str, Any]:
    """One value per choice of :data:`SEARCH_SPACE`, drawn with ``rng``."""
    return {name: values[int(rng.integers(len(values)))] for name, values in SEARCH_SPACE.items()}


def apply_choices(run: RunConfig, choices: dict[str, Any]) -> RunConfig:
    """``run`` with the trial's choices applied (an empty dict = ``run`` unchanged)."""
    if not choices:
        return run
    preprocess = replace(run.preprocess, music_components=choices["components"],
                         video_components=choices["components"], whiten=choices["whiten"])
    model = replace(sized_model(run.model, choices["capacity"]), dropout=choices["dropout"])
    return replace(run, preprocess=preprocess, model=model,
                   train=replace(run.train, lr=choices["lr"], max_steps=choices["max_steps"]))


def tune(store_dir: str | Path, out: str | Path, run: RunConfig, trials: int = 8, seed: int = 0,
         budget_s: float | None = None, report: Callable[[Trial], None] | None = None) -> list[Trial]:
    """Run up to ``trials`` trials (fewer when ``budget_s`` runs out), copy the best bundle to ``out``.

    Returns the trials in the order run; ``report`` is called after each one.
    """
    out = Path(out)
    if out.exists():
        raise VmnetError(f"{out} already exists; choose a new --out directory for the best bundle.")
    if trials < 1:
        raise VmnetError(f"--trials must be at least 1, not {trials}.")
    trials_dir = out.with_name(out.name + ".trials")
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    done: list[Trial] = []
    for number in range(trials):
        if budget_s is not None and done and time.perf_counter() - started >= budget_s:
            break
        choices = {} if number == 0 else draw_choices(rng)
        trial_started = time.perf_counter()
        bundle_dir = train_bundle(store_dir, trials_dir / f"trial-{number:02d}", apply_choices(run, choices))
        bundle = load_bundle(bundle_dir)
        val = bundle.metrics.get("val")
        trial = Trial(number, choices, selection_score(val) if val else float("nan"),
                      bundle.config.training.steps if bundle.config.training else 0,
                      time.perf_counter() - trial_started, bundle_dir)
        done.append(trial)
        if report:
            report(trial)
    scored = [t for t in done if np.isfinite(t.val_score)]
    if not scored:
        raise VmnetError("No trial could be scored: the store has no validation pairs to choose by.")
    best = max(scored, key=lambda t: t.val_score)
    shutil.copytree(best.bundle, out, ignore=shutil.ignore_patterns("checkpoint.pt"))
    return done
