"""Training VM-NET on a feature store: splits, preprocessing, the loop, checkpoints and the bundle.

The recipe is the official code's (csehong/VM-NET ``train.py``): Adam 3e-4, batch 1000, loss =
3 · music-anchored ranking + 1 · video-anchored ranking + 0.2 · music structure + 0.2 · video
structure, margin 0.1, top-100 negatives, dropout keep 0.9. Around it:

- splits: the store's ``split`` column when it has one; otherwise a seeded split holding out a
  1,000-pair test gallery (the paper's protocol) when the data allows, 15 % otherwise;
- validation Recall@K every ``val_every`` (50) steps (the same code as ``vmnet evaluate``); the
  best model by mean R@10 of both directions is kept; training stops after ``patience`` (6)
  validations that do not beat the score patience started from by ``min_delta`` (by default one
  standard error of the validation score, so noise does not keep it going), at the latest after
  ``max_steps`` (3,000): on a few thousand pairs the validation score peaks within a few hundred
  steps and the rest only memorises (issue 18). The official script's 700k steps are a ``max_steps``/``patience`` setting away;
- ``OUT/training/checkpoint.pt`` holds model, optimizer, step, best model and RNG states, written
  atomically at every validation: after an interruption, running the same command again continues
  from the last validation (losing at most ``val_every`` steps) and ends with the same weights as
  an uninterrupted run (CPU);
- ``OUT/training/metrics.jsonl`` logs loss terms and validation numbers, ``curves.png`` plots them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from vmnet_core.atomic_io import atomic_path
from vmnet_core.errors import VmnetError
from vmnet_core.learn.losses import ranking_terms, structure_loss
from vmnet_core.learn.metrics import evaluate_embeddings, selection_noise, selection_score
from vmnet_core.learn.model import VMNet, embed_arrays
from vmnet_core.learn.preprocess import Preprocessor
from vmnet_core.learn.run_config import PLAIN_STEPS, RunConfig, TrainConfig, load_run_config, plain_recipe

__all__ = ["PLAIN_STEPS", "RunConfig", "TrainConfig", "baseline_runs", "fit", "load_run_config", "plain_recipe"]

TRAINING_DIR = "training"
CHECKPOINT_FILE = "checkpoint.pt"
LOG_FILE = "metrics.jsonl"
CURVES_FILE = "curves.png"
ABLATION_DIR = "ablation"
PLAIN_DIR = "plain"  # the plain baseline recipe's bundle inside a bundle (--with-ablation)
# settings that may change between an interrupted run and its continuation
_RESUMABLE_KEYS = ("max_steps", "epochs", "patience", "device", "num_threads", "log_every", "progress")


def baseline_runs(run: RunConfig) -> dict[str, RunConfig]:
    """The trained baselines of a run: ``{bundle subfolder: settings}`` (ablation and plain recipe)."""
    return {ABLATION_DIR: replace(run, train=replace(run.train, structure=False)), PLAIN_DIR: plain_recipe(run)}


# ----------------------------------------------------------------------------- splits
@dataclass
class Splits:
    """Item ids per split and where they came from (``"store"`` or ``"seeded"``)."""

    train: list[str]
    val: list[str]
    test: list[str]
    source: str
    seed: int

    def record(self) -> dict[str, Any]:
        """What a bundle keeps: counts, source and the held-out ids (train = the rest)."""
        return {"source": self.source, "seed": self.seed,
                "counts": {"train": len(self.train), "val": len(self.val), "test": len(self.test)},
                "val_ids": list(self.val), "test_ids": list(self.test)}


def _held_out_size(n: int, cap: int, fraction: float) -> int:
    return int(min(cap, max(1, math.floor(fraction * n))))


def resolve_splits(store, config: TrainConfig) -> Splits:
    """Train/val/test ids: the store's split column when present, otherwise a seeded split.

    Seeded split: a test gallery of ``config.test_size`` (1,000) pairs and as many validation
    pairs when that leaves at least as many for training, else ``split_fraction`` of the items
    each. A store split without validation items gets a seeded validation part of its train split.
    """
    ids = list(store.ids)
    if len(ids) < 10:
        raise VmnetError(f"The store has {len(ids)} usable pairs; training needs at least 10.")
    rng = np.random.default_rng(config.seed)
    labelled = {name: list(store.split_ids(name)) for name in ("train", "val", "test")}
    if labelled["train"]:
        train, val, test = labelled["train"], labelled["val"], labelled["test"]
        if not val:
            n_val = _held_out_size(len(train), config.val_size, config.split_fraction)
            order = rng.permutation(len(train))
            val = [train[i] for i in sorted(order[:n_val])]
            held = set(val)
            train = [i for i in train if i not in held]
        if len(train) < 2:
            raise VmnetError("The store's train split has fewer than 2 pairs; relabel the split column.")
        return Splits(train, val, test, "store", config.seed)
    n = len(ids)
    if n >= 3 * (config.test_size + config.val_size):
        n_test, n_val = config.test_size, config.val_size
    else:
        n_test = n_val = _held_out_size(n, config.test_size, config.split_fraction)
    order = rng.permutation(n)
    test = [ids[i] for i in sorted(order[:n_test])]
    val = [ids[i] for i in sorted(order[n_test:n_test + n_val])]
    train = [ids[i] for i in sorted(order[n_test + n_val:])]
    return Splits(train, val, test, "seeded", config.seed)


def split_ids_for(store, recorded: Sequence[str], name: str) -> list[str]:
    """Ids of split ``name`` for evaluation: the store's column, else ``recorded`` (the bundle's ids)."""
    from_store = list(store.split_ids(name))
    if from_store:
        return from_store
    if recorded:
        known = set(store.ids)
        missing = [i for i in recorded if i not in known]
        if missing:
            raise VmnetError(f"The bundle's {name} split names item {missing[0]!r}, which this store lacks; "
                             "evaluate on the store the bundle was trained on.")
        return list(recorded)
    raise VmnetError(f"The store has no '{name}' items and the bundle recorded none; pick another --split.")


# ----------------------------------------------------------------------------- data
@dataclass
class PairedArrays:
    """Preprocessed model inputs for one split: (N, Dm) music and (N, Dv) video, row i paired."""

    ids: list[str]
    music: np.ndarray
    video: np.ndarray


def paired_inputs(store, preprocessor: Preprocessor, ids: list[str]) -> PairedArrays:
    """Load and preprocess the pairs ``ids`` of ``store``."""
    rows = np.array([store.index(i) for i in ids], dtype=np.int64)
    music = np.asarray(store.music(mmap=True))[rows]
    video = np.asarray(store.video(mmap=True))[rows]
    return PairedArrays(list(ids), preprocessor.transform_music(music), preprocessor.transform_video_vectors(video))


def store_fingerprint(store, splits: Splits) -> str:
    digest = hashlib.blake2b(digest_size=12)
    for part in (splits.train, splits.val, splits.test):
        digest.update("\n".join(part).encode("utf-8") + b"\x00")
    digest.update(json.dumps(store.info.get("dims", {}), sort_keys=True).encode())
    return digest.hexdigest()


def run_fingerprint(run: RunConfig, store_digest: str) -> str:
    train = {k: v for k, v in asdict(run.train).items() if k not in _RESUMABLE_KEYS}
    blob = json.dumps({"train": train, "model": run.model.to_dict(), "preprocess": asdict(run.preprocess),
                       "store": store_digest}, sort_keys=True)
    return hashlib.blake2b(blob.encode(), digest_size=12).hexdigest()


# ----------------------------------------------------------------------------- determinism
@contextlib.contextmanager
def deterministic_torch(num_threads: int | None) -> Iterator[None]:
    """Deterministic kernels (and a thread count) for the duration of a run, restored afterwards."""
    previous_flag = torch.are_deterministic_algorithms_enabled()
    previous_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    previous_threads = torch.get_num_threads()
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    if num_threads:
        torch.set_num_threads(int(num_threads))
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous_flag, warn_only=previous_warn)
        torch.set_num_threads(previous_threads)


def _epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The shuffled order of epoch ``epoch``: a pure function of (seed, epoch), so resuming is exact."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=generator)


# ----------------------------------------------------------------------------- the loop
@dataclass
class TrainState:
    """What a checkpoint restores besides model and optimizer."""

    step: int = 0
    best_score: float = -1.0
    best_step: int = 0
    best_val: dict | None = None
    patience_score: float = -1.0  # the score the patience count started from
    bad_validations: int = 0
    stopped_early: bool = False


@dataclass
class TrainResult:
    """The outcome of :func:`fit`: the best model (eval mode) and how training went."""

    model: VMNet
    state: TrainState
    steps_per_epoch: int
    batch_size: int


class _LossMeter:
    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0

    def add(self, values: dict[str, torch.Tensor]) -> None:
        for key, value in values.items():
            self.sums[key] = self.sums.get(key, 0.0) + value.detach()
        self.count += 1

    def flush(self) -> dict[str, float]:
        out = {k: float(v) / self.count for k, v in self.sums.items()} if self.count else {}
        self.sums, self.count = {}, 0
        return out


def loss_terms(model: VMNet, music: torch.Tensor, video: torch.Tensor, cfg: TrainConfig) -> dict[str, torch.Tensor]:
    """One batch's loss terms: ``rank_music``, ``rank_video``, ``struct_*`` (when on) and the weighted ``loss``.

    ``music`` (B, Dm) and ``video`` (B, Dv) are paired rows of preprocessed inputs.
    """
    em, ev, sim = model(music, video)  # (B, E), (B, E), (B, B)
    ranking = ranking_terms(sim, margin=cfg.margin, top_q=cfg.top_q)
    terms = {"rank_music": ranking.music_anchored, "rank_video": ranking.video_anchored}
    total = cfg.w_music * ranking.music_anchored + cfg.w_video * ranking.video_anchored
    w_sm, w_sv = cfg.structure_weights
    if w_sm or w_sv:
        terms["struct_music"] = structure_loss(music, em, cfg.n_anchors)
        terms["struct_video"] = structure_loss(video, ev, cfg.n_anchors)
        total = total + w_sm * terms["struct_music"] + w_sv * terms["struct_video"]
    terms["loss"] = total
    return terms


def _rng_states(device: torch.device) -> dict[str, Any]:
    states: dict[str, Any] = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state(device)
    return states


def _set_rng_states(states: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(states["torch"])
    if device.type == "cuda" and "cuda" in states:
        torch.cuda.set_rng_state(states["cuda"], device)


def _cpu_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


class Logger:
    """Appends JSON lines to ``metrics.jsonl``; on resume drops lines past the checkpoint's step."""

    def __init__(self, path: Path, resume_step: int | None) -> None:
        self.path = path
        kept: list[str] = []
        if resume_step is not None and path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                with contextlib.suppress(json.JSONDecodeError):
                    if json.loads(line).get("step", 0) <= resume_step:
                        kept.append(line)
        path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")

    def write(self, record: dict) -> None:
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")


def read_log(path: str | Path) -> list[dict]:
    """The records of a ``metrics.jsonl``."""
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def fit(
    train_data: PairedArrays,
    val_data: PairedArrays,
    run: RunConfig,
    work_dir: str | Path,
    fingerprint: str,
    preprocessor_arrays: dict[str, np.ndarray] | None = None,
    label: str = "train",
) -> TrainResult:
    """Train a VMNet on preprocessed pairs; checkpoints and logs go to ``work_dir``.

    ``label`` names the run on the progress bar.
    Resumes from ``work_dir/checkpoint.pt`` when it exists and was made with the same
    ``fingerprint`` (settings, data); raises ``VmnetError`` when it belongs to another run.
    """
    cfg = run.train
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    device = torch.device(cfg.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise VmnetError("--device cuda was asked for but this machine has no usable CUDA GPU; use --device cpu.")
    n_train = len(train_data.ids)
    batch_size = min(cfg.batch_size, n_train)
    steps_per_epoch = max(1, n_train // batch_size)
    max_steps = cfg.max_steps if cfg.epochs is None else min(cfg.max_steps, cfg.epochs * steps_per_epoch)
    checkpoint_path = work_dir / CHECKPOINT_FILE

    with deterministic_torch(cfg.num_threads):
        torch.manual_seed(cfg.seed)
        if device.type == "cuda":
            torch.cuda.manual_seed_all(cfg.seed)
        model = VMNet(run.model).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        state = TrainState()
        best_weights = _cpu_state(model)
        resumed = checkpoint_path.exists()
        if resumed:
            checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
            if checkpoint.get("fingerprint") != fingerprint:
                raise VmnetError(f"{checkpoint_path} belongs to a run with other settings or data; delete it "
                                 "or choose another --out directory.")
            model.load_state_dict(checkpoint["model"])
            optimizer.load_state_dict(checkpoint["optimizer"])
            best_weights = checkpoint["best_model"]
            state = TrainState(**checkpoint["state"])
            _set_rng_states(checkpoint["rng"], device)
        logger = Logger(work_dir / LOG_FILE, state.step if resumed else None)

        def save_checkpoint() -> None:
            extra = {} if preprocessor_arrays is None else {
                "preprocessor": {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in preprocessor_arrays.items()}}
            with atomic_path(checkpoint_path) as tmp:
                torch.save({"fingerprint": fingerprint, "model": _cpu_state(model),
                            "optimizer": optimizer.state_dict(), "best_model": best_weights,
                            "state": asdict(state), "rng": _rng_states(device), **extra}, tmp)

        music_all = torch.from_numpy(np.ascontiguousarray(train_data.music))  # (N, Dm)
        video_all = torch.from_numpy(np.ascontiguousarray(train_data.video))  # (N, Dv)
        n_val = min(len(val_data.ids), cfg.val_max_items)
        meter = _LossMeter()
        bar = None
        if cfg.progress:
            bar = tqdm(total=max_steps, initial=min(state.step, max_steps), desc=label, unit="step",
                       dynamic_ncols=True)
        order, order_epoch = None, -1
        try:
            while state.step < max_steps and not state.stopped_early:
                epoch, position = divmod(state.step, steps_per_epoch)
                if epoch != order_epoch:
                    order, order_epoch = _epoch_order(n_train, cfg.seed, epoch), epoch
                rows = order[position * batch_size:(position + 1) * batch_size]
                music = music_all[rows].to(device, non_blocking=True)  # (B, Dm)
                video = video_all[rows].to(device, non_blocking=True)  # (B, Dv)
                model.train()
                terms = loss_terms(model, music, video, cfg)
                optimizer.zero_grad(set_to_none=True)
                terms["loss"].backward()
                optimizer.step()
                state.step += 1
                meter.add(terms)
                if bar is not None:
                    bar.update(1)
                if state.step % cfg.log_every == 0:
                    logged = meter.flush()
                    logger.write({"step": state.step, "epoch": epoch, **logged})
                    if bar is not None:
                        bar.set_postfix(loss=f"{logged['loss']:.4f}")
                if state.step % cfg.val_every == 0 or state.step == max_steps:
                    if n_val >= 2:
                        result = evaluate_embeddings(*embed_arrays(
                            model, val_data.music[:n_val], val_data.video[:n_val], device))
                        score = selection_score(result)
                        logger.write({"step": state.step, "split": "val", "score": score, **result})
                        if score > state.best_score:  # the best model so far is kept, however small the gain
                            state.best_score, state.best_step, state.best_val = score, state.step, result
                            best_weights = _cpu_state(model)
                        delta = selection_noise(result) if cfg.min_delta is None else cfg.min_delta
                        if score > state.patience_score + delta:  # learning goes on: patience restarts
                            state.patience_score, state.bad_validations = score, 0
                        else:
                            state.bad_validations += 1
                            if cfg.patience and state.bad_validations >= cfg.patience:
                                state.stopped_early = True
                        if bar is not None:
                            bar.set_postfix(val_r10=f"{score:.3f}", best=f"{state.best_score:.3f}")
                    else:
                        state.best_step, best_weights = state.step, _cpu_state(model)
                    save_checkpoint()
        finally:
            if bar is not None:
                bar.close()
        model.load_state_dict(best_weights)
        model.eval()
    return TrainResult(model=model, state=state, steps_per_epoch=steps_per_epoch, batch_size=batch_size)
