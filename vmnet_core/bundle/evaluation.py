"""``vmnet evaluate``: score a bundle on a store split beside random, CCA and the ablation.

All numbers come from :mod:`vmnet_core.learn.metrics`; the baselines from
:mod:`vmnet_core.learn.baselines`. The no-structure ablation is read from ``BUNDLE/ablation`` when
``vmnet train --with-ablation`` made it, else trained now with the bundle's recorded settings.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from vmnet_core.bundle.files import load_bundle
from vmnet_core.bundle.recipes import train_bundle
from vmnet_core.errors import VmnetError
from vmnet_core.features.store import FeatureStore
from vmnet_core.learn.baselines import fit_cca_on_validation, random_embeddings
from vmnet_core.learn.hubness import hubness_report
from vmnet_core.learn.metrics import evaluate_embeddings, retrieval_ranks, structure_report
from vmnet_core.learn.model import ModelConfig, embed_arrays
from vmnet_core.learn.preprocess import PreprocessConfig
from vmnet_core.learn.train import (
    ABLATION_DIR,
    RunConfig,
    TrainConfig,
    paired_inputs,
    resolve_splits,
    split_ids_for,
)


@dataclass
class Evaluation:
    """What ``vmnet evaluate`` prints and plots."""

    result: dict[str, Any]  # the --json object
    ranks: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # model → direction → (N,)
    notes: list[str] = field(default_factory=list)


def run_config_from_bundle(config: dict) -> Any:
    """The RunConfig a bundle was trained with (for retraining its ablation)."""
    def known(cls, section: dict) -> dict:
        names = {f.name for f in fields(cls)}
        return {k: v for k, v in section.items() if k in names}

    return RunConfig(train=TrainConfig(**known(TrainConfig, config.get("train", {}))),
                     model=ModelConfig(**known(ModelConfig, config.get("model", {}))),
                     preprocess=PreprocessConfig(**known(PreprocessConfig, config.get("preprocess", {}))))


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def _ablation_bundle(bundle, store_dir: Path, progress: bool):
    saved = bundle.path / ABLATION_DIR
    if (saved / "config.json").is_file():
        return load_bundle(saved), f"ablation: loaded from {saved}"
    run = run_config_from_bundle(bundle.config)
    device = run.train.device if run.train.device == "cpu" or _cuda_available() else "cpu"
    run = replace(run, train=replace(run.train, structure=False, progress=progress, device=device))
    tmp = Path(tempfile.mkdtemp(prefix="vmnet-ablation-"))
    out = train_bundle(store_dir, tmp / "ablation", run)
    return load_bundle(out), (f"ablation: trained now with the bundle's settings into {out} "
                              "(train with --with-ablation to keep one in the bundle)")


def evaluate_bundle(bundle, store_dir: str | Path, split: str = "test", compare: bool = False,
                    seed: int = 0, progress: bool = True) -> Evaluation:
    """Score a bundle on a store split; with ``compare`` also random, CCA and the no-structure ablation.

    Returns an :class:`Evaluation` whose ``result`` is the ``vmnet evaluate --json`` object; under
    ``"compare"`` each model has the same recall block plus ``"structure"``: the mean Spearman ρ
    between input-space and embedding-space neighbour distances for music and video.
    """
    store_dir = Path(store_dir)
    store = FeatureStore.open(store_dir)
    ids = split_ids_for(store, bundle.config, split)
    if len(ids) < 2:
        raise VmnetError(f"The '{split}' split has {len(ids)} pair(s); evaluation needs at least 2.")
    data = paired_inputs(store, bundle.preprocessor, ids)
    em, ev = embed_arrays(bundle.model, data.music, data.video)
    evaluation = Evaluation(result=evaluate_embeddings(em, ev))
    evaluation.result["hubness"] = hubness_report(em, ev)
    evaluation.ranks["VM-NET"] = retrieval_ranks(em, ev)
    if not compare:
        return evaluation

    models: dict[str, tuple[np.ndarray, np.ndarray]] = {"vmnet": (em, ev)}
    ablation, note = _ablation_bundle(bundle, store_dir, progress)
    evaluation.notes.append(note)
    a_data = paired_inputs(store, ablation.preprocessor, ids)
    models["no_structure"] = embed_arrays(ablation.model, a_data.music, a_data.video)

    run = run_config_from_bundle(bundle.config)
    splits = resolve_splits(store, run.train)
    cca = fit_cca_on_validation(paired_inputs(store, bundle.preprocessor, splits.train),
                                paired_inputs(store, bundle.preprocessor, splits.val))
    evaluation.notes.append(f"cca: ridge {cca.ridge:g} chosen on the validation split, {cca.correlations.size} components")
    models["cca"] = (cca.encode_music(data.music), cca.encode_video(data.video))
    models["random"] = random_embeddings(len(ids), em.shape[1], seed)

    compare_block: dict[str, Any] = {}
    for name, (m, v) in models.items():
        compare_block[name] = {**evaluate_embeddings(m, v)}
        if len(ids) >= 3:
            compare_block[name]["structure"] = structure_report(data.music, data.video, m, v)
        evaluation.ranks.setdefault(MODEL_LABELS[name], retrieval_ranks(m, v))
    evaluation.result["compare"] = compare_block
    return evaluation


MODEL_LABELS = {"vmnet": "VM-NET", "no_structure": "VM-NET w/o structure", "cca": "CCA", "random": "random"}
