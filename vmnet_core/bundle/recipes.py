"""Store → bundle: ``vmnet train``'s recipe (fit preprocessors, train, evaluate, write the bundle).

The training loop itself lives in :mod:`vmnet_core.learn.train`; this module adds what needs the
bundle layer: the bundle's config record, its metrics, its model card and the ablation bundle.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

from vmnet_core.bundle.files import save_bundle
from vmnet_core.errors import VmnetError
from vmnet_core.features.store import FeatureStore
from vmnet_core.learn.capacity import (
    CapacityChoice,
    fit_capacity,
    pls_choice,
    unfinished_checkpoints,
    with_pls,
)
from vmnet_core.learn.hubness import hubness_line, hubness_report
from vmnet_core.learn.metrics import evaluate_embeddings, structure_report
from vmnet_core.learn.model import embed_arrays
from vmnet_core.learn.plots import plot_training_curves
from vmnet_core.learn.preprocess import Preprocessor
from vmnet_core.learn.train import (
    ABLATION_DIR,
    CURVES_FILE,
    LOG_FILE,
    TRAINING_DIR,
    RunConfig,
    Splits,
    TrainResult,
    baseline_runs,
    paired_inputs,
    read_log,
    resolve_splits,
    store_fingerprint,
)


def train_bundle(
    store_dir: str | Path,
    out: str | Path,
    run: RunConfig | None = None,
    with_ablation: bool = False,
    preprocessor: Preprocessor | None = None,
) -> Path:
    """``vmnet train``: fit preprocessors on the train split, train, evaluate, write the bundle.

    Parameters
    ----------
    store_dir : a feature store (``FeatureStore.open``).
    out : bundle directory; ``out/training/`` keeps checkpoint, ``metrics.jsonl`` and ``curves.png``.
    run : settings (defaults: the paper's).
    with_ablation : also train the baselines ``evaluate --compare`` uses: the no-structure ablation
        into ``out/ablation`` (same settings and preprocessor) and the plain recipe into ``out/plain``.
    preprocessor : an already fitted preprocessor for this store's train split (skips fitting).

    Returns the bundle path. Running the same call again resumes an interrupted run.
    """
    run = run or RunConfig()
    out = Path(out)
    store = FeatureStore.open(store_dir)
    if "video" not in store.modalities:
        raise VmnetError(f"The store {store_dir} holds music only; training needs music and video features.")
    work_dir = out / TRAINING_DIR
    unfinished = unfinished_checkpoints(work_dir)
    others = [p for p in out.iterdir() if p.name != TRAINING_DIR] if out.is_dir() else []
    if others and not unfinished:
        raise VmnetError(f"{out} already exists and holds no unfinished training; choose a new --out directory.")
    splits = resolve_splits(store, run.train)

    asked = run.model.capacity
    pls = None  # the pls candidate and its z-scored inputs' preprocessor
    if asked == "pls" or (asked == "auto" and run.preprocess.mode == "auto"):
        pls = _pls_candidate(store, splits, run, work_dir, preprocessor if asked == "pls" else None)
    if asked == "pls":
        choice, preprocessor = pls
    else:
        if preprocessor is None and unfinished:
            saved = torch.load(unfinished[0], map_location="cpu", weights_only=True).get("preprocessor")
            if saved:
                preprocessor = Preprocessor.from_arrays({k: v.numpy() for k, v in saved.items()})
        if preprocessor is None:
            preprocessor = Preprocessor.fit_store(store, splits.train, run.preprocess)
        run = replace(run, model=replace(run.model, music_dim=preprocessor.music_dim, video_dim=preprocessor.video_dim))
        train_data = paired_inputs(store, preprocessor, splits.train)
        val_data = paired_inputs(store, preprocessor, splits.val)
        choice = fit_capacity(train_data, val_data, run, work_dir, store_fingerprint(store, splits),
                              preprocessor.to_arrays())
        if pls is not None:
            choice = with_pls(choice, pls[0], run.train.min_delta)
            if choice.name == "pls":
                preprocessor = pls[1]
    result, run = choice.result, choice.run
    if choice.work_dir != work_dir:  # the kept candidate's log is the bundle's training log
        shutil.copyfile(choice.work_dir / LOG_FILE, work_dir / LOG_FILE)

    metrics = final_metrics(result, store, preprocessor, splits)
    metrics["val_curve"] = validation_curve(read_log(work_dir / LOG_FILE))
    config = {
        "train": asdict(run.train),
        "preprocess": preprocessor.describe(),
        "split": splits.record(),
        "store": {"path": str(Path(store_dir).absolute()), "n_items": len(store.ids),
                  "video_space": store.video_space, "dims": store.info.get("dims", {})},
        "descriptors": store.info.get("descriptors", {}),
        "capacity": choice.record(asked),
        "training": {"steps": result.state.step, "best_step": result.state.best_step,
                     "batch_size": result.batch_size, "steps_per_epoch": result.steps_per_epoch,
                     "stopped_early": result.state.stopped_early},
    }
    card = model_card(config, metrics, store_dir)
    save_bundle(out, result.model, preprocessor, config, metrics, card)
    plot_training_curves(read_log(work_dir / LOG_FILE), work_dir / CURVES_FILE)
    if with_ablation and run.train.structure:
        for name, baseline in baseline_runs(run).items():
            train_bundle(store_dir, out / name, baseline, preprocessor=preprocessor if name == ABLATION_DIR else None)
    return out


def _pls_candidate(store: FeatureStore, splits: Splits, run: RunConfig, work_dir: Path,
              preprocessor: Preprocessor | None = None) -> tuple[CapacityChoice, Preprocessor]:
    """The ``pls`` candidate beside the capacity ladder, on z-scored inputs (or ``preprocessor``'s, when given)."""
    z_scores = preprocessor or Preprocessor.fit_store(store, splits.train, replace(run.preprocess, mode="zscore"))
    choice = pls_choice(paired_inputs(store, z_scores, splits.train), paired_inputs(store, z_scores, splits.val),
                        run, work_dir)
    return choice, z_scores


def final_metrics(result: TrainResult, store, preprocessor: Preprocessor, splits: Splits) -> dict[str, Any]:
    """metrics.json: best validation numbers and the test gallery's numbers and structure scores."""
    metrics: dict[str, Any] = {"best_step": result.state.best_step, "steps": result.state.step,
                               "val": result.state.best_val}
    if len(splits.test) >= 2:
        test = paired_inputs(store, preprocessor, splits.test)
        em, ev = embed_arrays(result.model, test.music, test.video)
        metrics["test"] = evaluate_embeddings(em, ev)
        metrics["hubness"] = hubness_report(em, ev)  # issue 14: no hub in more than a quarter of top-5 lists
        if len(splits.test) >= 3:
            metrics["structure"] = {"test": structure_report(test.music, test.video, em, ev)}
    return metrics


def validation_curve(log: list[dict]) -> list[list[float]]:
    """``[[step, mean R@10 of both directions], ...]`` from a training log's validation records."""
    return [[int(r["step"]), round(float(r["score"]), 4)] for r in log if r.get("split") == "val"]


def _curve_line(curve: list[list[float]], most: int = 12) -> str:
    shown = curve if len(curve) <= most else curve[::-(-len(curve) // most)] + [curve[-1]]
    return ", ".join(f"{step}: {100 * score:.1f}%" for step, score in shown)


def _metric_line(result: dict | None, direction: str) -> str:
    if not result:
        return "n/a"
    row = result[direction]
    recalls = ", ".join(f"{k} {100 * v:.1f}%" for k, v in row.items() if k.startswith("R@"))
    return f"{recalls}; median rank {row['median_rank']:g}"


def _preprocess_line(pre: dict) -> str:
    mode = pre.get("mode", "paper")
    how = {"auto": "chosen from the train data: z-score, then the principal directions above the noise edge",
           "paper": "the paper's: z-scored music, whitening-PCA video", "zscore": "z-scored, no projection"}[mode]
    widths = (f"music {pre.get('music_transform', 'zscore')} {pre.get('music_in_dim', pre.get('music_dim'))} → "
              f"{pre.get('music_dim')}, video {pre.get('video_transform', 'whitening_pca')} "
              f"{pre.get('video_in_dim')} → {pre.get('video_dim')}")
    return f"mode {mode}, {how}): {widths}"


def _capacity_line(capacity: dict) -> str:
    chosen = capacity["chosen"] + (" (regularised CCA in closed form as linear towers, no training steps)"
                                   if capacity["chosen"] == "cca" else "")
    if capacity["asked"] != "auto":
        return f"- towers: {chosen}, as configured"
    ranks = capacity.get("val_mean_ranks", {})
    scores = ", ".join((f"{name} {100 * score:.1f}%" + (f" (mean rank {ranks[name]:g})" if name in ranks else ""))
                       if score >= 0 else f"{name} not scored" for name, score in capacity["val_scores"].items())
    return (f"- towers: {chosen}, chosen on validation (mean R@10; a shape is kept over the simpler one "
            f"only when it wins by more than one standard error, or by mean rank when R@10 is saturated: {scores})")


def model_card(config: dict, metrics: dict, store_dir: str | Path) -> str:
    """The bundle's ``card.md``: what it was trained on, its numbers, its limits."""
    counts = config["split"]["counts"]
    test = metrics.get("test")
    structure = metrics.get("structure", {}).get("test")
    gallery = test["gallery"] if test else 0
    lines = [
        "# VM-NET model card",
        "",
        "Two-branch video–music embedding after Hong, Im, Yang, *Content-Based Video–Music Retrieval "
        "Using Soft Intra-Modal Structure Constraint* (ICMR 2018).",
        "",
        "## Trained on",
        f"- store: `{store_dir}` ({config['store']['n_items']} pairs, video space `{config['store']['video_space']}`)",
        f"- split ({config['split']['source']}): train {counts['train']}, val {counts['val']}, test {counts['test']}",
        f"- steps: {config['training']['steps']} (best at {config['training']['best_step']}), batch "
        f"{config['training']['batch_size']}, structure constraint {'on' if config['train']['structure'] else 'off'}",
        f"- inputs ({_preprocess_line(config['preprocess'])})",
        *([_capacity_line(config["capacity"])] if config.get("capacity") else []),
        "",
        f"## Test numbers (gallery of {gallery} pairs)",
        f"- video → music: {_metric_line(test, 'video_to_music')}",
        f"- music → video: {_metric_line(test, 'music_to_video')}",
    ]
    if metrics.get("val_curve"):
        lines.append(f"- validation mean R@10 by step: {_curve_line(metrics['val_curve'])}")
    lines += [f"- {line}" for line in [hubness_line(metrics.get("hubness"))] if line]
    if structure:
        lines.append(f"- structure kept (mean Spearman ρ, input vs embedding neighbour distances): "
                     f"music {structure['music']:.3f}, video {structure['video']:.3f}")
    lines += [
        "",
        "## Limits",
        "- Numbers are only comparable at the same gallery size; chance R@10 is 10/gallery.",
        "- It knows only what its training pairs show; music or video unlike the store's will embed poorly.",
        "- A video's embedding sees frame content at 1 fps, not motion or editing rhythm; "
        "music is summarised from one 29.12-s window.",
    ]
    return "\n".join(lines) + "\n"
