"""Model capacity chosen from the data (issue 18).

The paper's towers (music 1140 → 2048 → 1024 → 512, video 1024 → 2048 → 512, ReLU) were sized for
YouTube-8M; on a few thousand pairs they memorise the train split within a few hundred steps. With
``capacity = "auto"`` (the default) ``vmnet train`` therefore climbs a short ladder of tower shapes,
simplest first, while the next one beats the last on validation by more than one standard error
of the validation score (:func:`wins_beyond_noise`). The ladder:

- ``cca``: regularised CCA on the same inputs, in closed form (ridge chosen on validation), written
  as a VM-NET with one linear layer per tower (no training; the simplest thing that could work);
- ``linear``: one 512-wide layer per tower without ReLU and a 128-d embedding, i.e. a linear map
  trained with the paper's losses (the official script's ``is_linear``; on 2,000 synthetic pairs it
  scored as the paper's widths without ReLU did, in a seventh of the time);
- ``small``: one 512-wide ReLU layer per tower, a 128-d embedding, dropout 0.3;
- ``full``: the configured towers (the paper's by default).

Beside the ladder, with the data-aware preprocessing (``[preprocess] mode = "auto"``), ``pls``:
partial least squares on the z-scored inputs (no PCA: it averages the noise of every feature instead
of dropping features), components chosen on validation, in closed form, written like ``cca``. It
takes other inputs than the ladder, so it replaces the ladder's choice only when it beats it on
validation by more than noise (:func:`with_pls`; ``vmnet_core.bundle.recipes.train_bundle`` fits both).

``capacity = "full"`` trains the configured towers only: with ``[preprocess] mode = "paper"`` that is
the paper's exact setting.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vmnet_core.errors import VmnetError
from vmnet_core.learn.baselines import fit_cca_on_validation, fit_pls_on_validation
from vmnet_core.learn.metrics import DIRECTIONS, evaluate_embeddings, selection_noise, selection_score
from vmnet_core.learn.model import CAPACITIES, ModelConfig, VMNet, embed_arrays
from vmnet_core.learn.train import (
    CHECKPOINT_FILE,
    LOG_FILE,
    PairedArrays,
    RunConfig,
    TrainResult,
    TrainState,
    fit,
    run_fingerprint,
)

LADDER = ("cca", "linear", "small", "full")  # simplest first, so a tie keeps the simpler one
CCA_COMPONENTS = 512  # at most this many canonical variates (the paper's embedding width)
CAPACITY_DIR = "capacity"  # training/capacity/<name>/: each candidate's checkpoint and log


def sized_model(model: ModelConfig, capacity: str) -> ModelConfig:
    """``model`` with the towers of a named capacity (input widths kept), marked as that capacity.

    ``full`` keeps the configured hidden widths, activation, embedding width and dropout.
    """
    if capacity == "cca":  # one linear layer per tower onto the canonical variates
        return replace(model, music_hidden=(), video_hidden=(), embed_dim=min(CCA_COMPONENTS, model.music_dim,
                                                                                model.video_dim),
                       activation="linear", dropout=0.0, capacity="cca")
    if capacity == "pls":  # one linear layer per tower onto the PLS scores (their number is chosen on validation)
        return replace(model, music_hidden=(), video_hidden=(), activation="linear", dropout=0.0, capacity="pls")
    if capacity == "linear":
        return replace(model, music_hidden=(512,), video_hidden=(512,), embed_dim=128, activation="linear",
                       capacity="linear")
    if capacity == "small":
        return replace(model, music_hidden=(512,), video_hidden=(512,), embed_dim=128, dropout=0.3,
                       activation="relu", capacity="small")
    if capacity == "full":
        return replace(model, capacity="full")
    raise VmnetError(f"Unknown capacity {capacity!r}; use one of {', '.join(CAPACITIES)}.")


def candidate_models(model: ModelConfig) -> dict[str, ModelConfig]:
    """``{name: model config}`` to train: the ladder for ``auto``, else the one named capacity."""
    names = LADDER if model.capacity == "auto" else (model.capacity,)
    return {name: sized_model(model, name) for name in names}


@dataclass
class CapacityChoice:
    """The outcome of :func:`fit_capacity`: the kept candidate and every candidate's score."""

    name: str  # the kept capacity
    run: RunConfig  # its settings (model.capacity = name)
    result: TrainResult  # its best model and training state
    work_dir: Path  # where its checkpoint and metrics.jsonl are
    val_scores: dict[str, float]  # every candidate's best validation score (mean R@10), -1 when unscored
    val_mean_ranks: dict[str, float]  # and the mean rank (both directions) at that validation

    def record(self, asked: str) -> dict[str, Any]:
        """What the bundle's config keeps: the asked capacity, the kept one, the scores and mean ranks."""
        return {"asked": asked, "chosen": self.name, "val_scores": {k: round(v, 4) for k, v in self.val_scores.items()},
                "val_mean_ranks": {k: round(v, 2) for k, v in self.val_mean_ranks.items()}}


def fit_capacity(train_data: PairedArrays, val_data: PairedArrays, run: RunConfig, work_dir: Path,
                 store_digest: str, preprocessor_arrays: dict[str, np.ndarray] | None = None) -> CapacityChoice:
    """Train the candidates of ``run.model.capacity`` and keep the best on validation.

    A named capacity trains once in ``work_dir``. ``auto`` climbs the ladder, each step in
    ``work_dir/capacity/<name>/`` (resumable), while a larger shape beats the smaller one on
    validation by more than noise (:func:`wins_beyond_noise`); it keeps the last shape that did.
    When the validation split is too small to score anything, it trains every step and keeps the
    configured towers.
    """
    candidates = candidate_models(run.model)
    several = len(candidates) > 1
    best: CapacityChoice | None = None
    scores: dict[str, float] = {}
    mean_ranks: dict[str, float] = {}
    for name, model in candidates.items():
        candidate = replace(run, model=model)
        where = work_dir / CAPACITY_DIR / name if several else work_dir
        if name == "cca":
            result = fit_cca_model(train_data, val_data, candidate, where)
        else:
            result = fit(train_data, val_data, candidate, where, run_fingerprint(candidate, store_digest),
                         preprocessor_arrays, label=f"train {name}" if several else "train")
        scores[name] = result.state.best_score
        if result.state.best_val:
            mean_ranks[name] = _mean_rank(result.state.best_val)
        if best is not None and best.result.state.best_val and \
                not wins_beyond_noise(result, best.result, run.train.min_delta):
            break  # a larger shape that does not beat the smaller one: the data supports no more
        best = CapacityChoice(name, candidate, result, where, scores, mean_ranks)  # unscored: the last is kept
    return best


def fit_cca_model(train_data: PairedArrays, val_data: PairedArrays, run: RunConfig, work_dir: Path) -> TrainResult:
    """The ``cca`` rung: regularised CCA (ridge chosen on validation) as a VMNet of ``run.model``.

    Each tower's linear layer holds the centring and the projection scaled by the canonical
    correlations, and its batch norm is the identity, so the model's unit embeddings are CCA's.
    Writes one validation record to ``work_dir/metrics.jsonl``; returns it as a TrainResult of 0 steps.
    """
    val = _scored_val(val_data, run)
    cca = fit_cca_on_validation(train_data, val, n_components=run.model.embed_dim)
    return _closed_form_model(run, (cca.music_mean, cca.music_proj * cca.correlations),
                              (cca.video_mean, cca.video_proj * cca.correlations), val, work_dir, {"ridge": cca.ridge})


def fit_pls_model(train_data: PairedArrays, val_data: PairedArrays, run: RunConfig, work_dir: Path) -> TrainResult:
    """The ``pls`` candidate: partial least squares (components chosen on validation) as a VMNet of
    ``run.model``, written like :func:`fit_cca_model`."""
    val = _scored_val(val_data, run)
    pls = fit_pls_on_validation(train_data, val)
    return _closed_form_model(run, (pls.music_mean, pls.music_proj), (pls.video_mean, pls.video_proj), val, work_dir,
                              {"components": int(pls.music_proj.shape[1])})


def _scored_val(val_data: PairedArrays, run: RunConfig) -> PairedArrays:
    n_val = min(len(val_data.ids), run.train.val_max_items)
    return PairedArrays(val_data.ids[:n_val], val_data.music[:n_val], val_data.video[:n_val])


def _closed_form_model(run: RunConfig, music: tuple[np.ndarray, np.ndarray], video: tuple[np.ndarray, np.ndarray],
                       val: PairedArrays, work_dir: Path, chosen: dict[str, Any]) -> TrainResult:
    """A VMNet whose towers are one linear layer each: ``(mean (D,), weight (D, k))`` per modality,
    embedding ``(x − mean) @ weight`` (batch norm the identity); scored on ``val`` and logged."""
    model = VMNet(replace(run.model, embed_dim=music[1].shape[1]))
    with torch.no_grad():
        for branch, (mean, weight) in ((model.music, music), (model.video, video)):
            branch.project.weight.copy_(torch.from_numpy(weight.T.astype(np.float32)))
            branch.project.bias.copy_(torch.from_numpy((-mean @ weight).astype(np.float32)))
            branch.norm.running_mean.zero_()
            branch.norm.running_var.fill_(1.0 - branch.norm.eps)  # (x − 0) / √(var + eps) = x
            branch.norm.weight.fill_(1.0)
            branch.norm.bias.zero_()
    model.eval()
    state = TrainState()
    if len(val.ids) >= 2:
        result = evaluate_embeddings(*embed_arrays(model, val.music, val.video))
        state = TrainState(best_score=selection_score(result), best_val=result)
    work_dir.mkdir(parents=True, exist_ok=True)
    record = {"step": 0, "split": "val", "score": state.best_score, **chosen, **(state.best_val or {})}
    (work_dir / LOG_FILE).write_text(json.dumps(record) + "\n", encoding="utf-8")
    return TrainResult(model=model, state=state, steps_per_epoch=0, batch_size=0)


def with_pls(ladder: CapacityChoice, pls: CapacityChoice, min_delta: float | None) -> CapacityChoice:
    """The ladder's choice, or ``pls`` when its validation score beats that one's by more than noise
    (``min_delta``, None: one standard error). It takes other inputs, so it must show it is better:
    unlike on the ladder, an equal score (e.g. R@10 = 1 on a tiny gallery) keeps the ladder's choice.
    The record lists every score."""
    scores = {**ladder.val_scores, **pls.val_scores}
    ranks = {**ladder.val_mean_ranks, **pls.val_mean_ranks}
    ours, theirs = ladder.result.state, pls.result.state
    margin = (selection_noise(ours.best_val) if min_delta is None else min_delta) if ours.best_val else 0.0
    kept = pls if ours.best_val and theirs.best_val and theirs.best_score > ours.best_score + margin else ladder
    return replace(kept, val_scores=scores, val_mean_ranks=ranks)


def pls_choice(train_data: PairedArrays, val_data: PairedArrays, run: RunConfig, work_dir: Path) -> CapacityChoice:
    """The ``pls`` candidate as a :class:`CapacityChoice` (``train_data`` / ``val_data`` on its own,
    z-scored inputs), fitted in ``work_dir/capacity/pls/``."""
    model = replace(sized_model(run.model, "pls"), music_dim=train_data.music.shape[1],
                    video_dim=train_data.video.shape[1])
    candidate = replace(run, model=model)
    where = work_dir / CAPACITY_DIR / "pls"
    result = fit_pls_model(train_data, val_data, candidate, where)
    scores = {"pls": result.state.best_score}
    ranks = {"pls": _mean_rank(result.state.best_val)} if result.state.best_val else {}
    return CapacityChoice("pls", candidate, result, where, scores, ranks)


def wins_beyond_noise(larger: TrainResult, smaller: TrainResult, min_delta: float | None) -> bool:
    """Whether the larger shape's best validation score beats the smaller's by more than
    ``min_delta`` (None: one standard error of the smaller's score). When that error is 0 (a score
    of 0 or 1, e.g. R@10 on a gallery of 10), an equal score is decided by the lower mean rank."""
    a, b = larger.state, smaller.state
    if a.best_val is None:
        return False
    margin = selection_noise(b.best_val) if min_delta is None else min_delta
    if a.best_score > b.best_score + margin:
        return True
    return margin == 0 and a.best_score == b.best_score and _mean_rank(a.best_val) < _mean_rank(b.best_val)


def _mean_rank(val: dict) -> float:
    """Mean rank of the true partner over both directions of a validation result."""
    return float(np.mean([val[d]["mean_rank"] for d in DIRECTIONS]))


def unfinished_checkpoints(work_dir: Path) -> list[Path]:
    """Checkpoints of an interrupted run in ``work_dir``: its own and its capacity candidates'."""
    return [p for p in [work_dir / CHECKPOINT_FILE, *sorted((work_dir / CAPACITY_DIR).glob(f"*/{CHECKPOINT_FILE}"))]
            if p.is_file()]
