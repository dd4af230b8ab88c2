"""What one training run is made of: :class:`TrainConfig`, :class:`RunConfig` (a ``cfg.toml``'s
three sections), the plain baseline recipe, and reading them; importable without torch."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from vmnet_core.errors import VmnetError
from vmnet_core.learn.model_config import ModelConfig
from vmnet_core.learn.preprocess import PreprocessConfig


@dataclass
class TrainConfig:
    """Training settings; the defaults follow the paper's official training script."""

    lr: float = 3e-4  # Adam learning rate
    batch_size: int = 1000  # pairs per step (clamped to the train split's size)
    max_steps: int = 3_000  # upper bound on optimisation steps (the official script: 700k)
    epochs: int | None = None  # optional bound in passes over the train split
    val_every: int = 50  # validate (and checkpoint) every this many steps
    patience: int = 6  # stop after this many validations without improvement (0 = never)
    min_delta: float | None = None  # improvement that resets patience (None: one standard error of
    #                                 the validation score, selection_noise; 0: any improvement)
    val_max_items: int = 4000  # validation gallery cap (the official script validates on 4,000)
    seed: int = 0
    device: str = "cpu"  # "cpu" or "cuda"
    num_threads: int | None = None  # torch CPU threads (None = leave torch's default)
    margin: float = 0.1
    top_q: int | None = 100  # most violating negatives per anchor (None = all)
    w_music: float = 3.0  # music-anchored ranking term
    w_video: float = 1.0  # video-anchored ranking term
    structure: bool = True  # False = the no-structure ablation
    w_struct_music: float = 0.2
    w_struct_video: float = 0.2
    n_anchors: int = 100  # structure-loss anchors: the first n of each shuffled batch
    test_size: int = 1000  # seeded split only: test gallery size when the data allows
    val_size: int = 1000  # seeded split only: validation size when the data allows
    split_fraction: float = 0.15  # seeded split only: val/test fraction for small stores
    log_every: int = 50  # steps between loss lines in metrics.jsonl
    progress: bool = True  # tqdm progress bar

    def __post_init__(self) -> None:
        if self.device not in ("cpu", "cuda") and not str(self.device).startswith("cuda:"):
            raise VmnetError(f"Unknown device {self.device!r}; use 'cpu' or 'cuda'.")
        for name in ("batch_size", "max_steps", "val_every", "log_every", "n_anchors"):
            if int(getattr(self, name)) < 1:
                raise VmnetError(f"The training setting {name} must be at least 1, not {getattr(self, name)}.")
        if self.top_q is not None and int(self.top_q) < 1:
            raise VmnetError(f"top_q must be at least 1 (or omitted for all negatives), not {self.top_q}.")

    @property
    def structure_weights(self) -> tuple[float, float]:
        """(music, video) structure weights actually used (0 when ``structure`` is off)."""
        return (self.w_struct_music, self.w_struct_video) if self.structure else (0.0, 0.0)


@dataclass
class RunConfig:
    """Everything one training run is made of (the three sections of a ``cfg.toml``)."""

    train: TrainConfig = field(default_factory=TrainConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)


PLAIN_STEPS = 200  # the plain baseline recipe's fixed length (issue 18)


def plain_recipe(run: RunConfig) -> RunConfig:
    """The simplest recipe that could work, as a baseline: z-scored inputs, the paper's towers and
    losses, ``PLAIN_STEPS`` steps, no PCA, no early stopping (same seed, split and batch as ``run``)."""
    train = replace(run.train, max_steps=PLAIN_STEPS, val_every=PLAIN_STEPS, patience=0, epochs=None)
    return RunConfig(train=train, model=ModelConfig(capacity="full"), preprocess=PreprocessConfig(mode="zscore"))


def load_run_config(path: str | Path | None = None, **train_overrides: Any) -> RunConfig:
    """Read a TOML config over the defaults, then apply ``train_overrides`` (CLI flags; None = unset).

    The file may hold ``[train]``, ``[model]`` and ``[preprocess]`` tables; top-level keys belong to
    ``[train]``. Unknown keys raise ``VmnetError``.
    """
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise VmnetError(f"The config file {path} does not exist.") from None
        except tomllib.TOMLDecodeError as exc:
            raise VmnetError(f"The config file {path} is not valid TOML ({exc}).") from None
    sections = {"train": dict(data.pop("train", {})), "model": dict(data.pop("model", {})),
                "preprocess": dict(data.pop("preprocess", {}))}
    for key, value in data.items():
        if isinstance(value, dict):
            raise VmnetError(f"The config has an unknown table [{key}]; use [train], [model] or [preprocess].")
        sections["train"][key] = value
    sections["train"].update({k: v for k, v in train_overrides.items() if v is not None})
    built = {}
    for name, cls in (("train", TrainConfig), ("model", ModelConfig), ("preprocess", PreprocessConfig)):
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(sections[name]) - known)
        if unknown:
            raise VmnetError(f"Unknown [{name}] setting '{unknown[0]}'; known ones: {', '.join(sorted(known))}.")
        try:
            built[name] = cls(**sections[name])
        except (TypeError, ValueError) as exc:
            raise VmnetError(f"The [{name}] settings are not valid ({exc}).") from None
    return RunConfig(**built)
