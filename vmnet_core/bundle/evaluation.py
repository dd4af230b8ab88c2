"""``vmnet evaluate``: score a bundle on a store split beside random, CCA, the plain recipe and the ablation.

All numbers come from :mod:`vmnet_core.learn.metrics`; the baselines from
:mod:`vmnet_core.learn.baselines`. The no-structure ablation is read from ``BUNDLE/ablation`` and the
plain recipe (:func:`vmnet_core.learn.train.plain_recipe`: z-scored inputs, the paper's towers and
losses, 200 steps) from ``BUNDLE/plain`` when ``vmnet train --with-ablation`` made them, else they are
trained now with the bundle's recorded seed and split rule.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vmnet_core.bundle.files import load_bundle
from vmnet_core.bundle.recipes import train_bundle
from vmnet_core.errors import VmnetError
from vmnet_core.features.store import FeatureStore
from vmnet_core.learn.baselines import fit_cca_on_validation, fit_pls_on_validation, random_embeddings
from vmnet_core.learn.hubness import hubness_report
from vmnet_core.learn.metrics import evaluate_embeddings, retrieval_ranks, structure_report
from vmnet_core.learn.model import embed_arrays
from vmnet_core.learn.preprocess import PreprocessConfig, Preprocessor
from vmnet_core.learn.train import (
    ABLATION_DIR,
    PLAIN_DIR,
    baseline_runs,
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


def _cuda_available() -> bool:
    return torch.cuda.is_available()


def _baseline_bundle(bundle, store_dir: Path, name: str, progress: bool):
    """The baseline ``name`` (a key of :func:`baseline_runs`): loaded from the bundle, else trained now."""
    saved = bundle.path / name
    if (saved / "config.json").is_file():
        return load_bundle(saved), f"{name}: loaded from {saved}"
    run = baseline_runs(bundle.config.run)[name]
    device = run.train.device if run.train.device == "cpu" or _cuda_available() else "cpu"
    run = replace(run, train=replace(run.train, progress=progress, device=device))
    tmp = Path(tempfile.mkdtemp(prefix=f"vmnet-{name}-"))
    out = train_bundle(store_dir, tmp / name, run)
    return load_bundle(out), (f"{name}: trained now with the bundle's seed and split into {out} "
                              "(train with --with-ablation to keep one in the bundle)")


def evaluate_bundle(bundle, store_dir: str | Path, split: str = "test", compare: bool = False,
                    seed: int = 0, progress: bool = True) -> Evaluation:
    """Score a bundle on a store split; with ``compare`` also random, CCA, PLS, the plain recipe and the ablation.

    Returns an :class:`Evaluation` whose ``result`` is the ``vmnet evaluate --json`` object; under
    ``"compare"`` each model has the same recall block plus ``"structure"``: the mean Spearman ρ
    between input-space and embedding-space neighbour distances for music and video.
    """
    store_dir = Path(store_dir)
    store = FeatureStore.open(store_dir)
    ids = split_ids_for(store, bundle.config.held_out_ids(split), split)
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
    for key, name in (("no_structure", ABLATION_DIR), ("plain", PLAIN_DIR)):
        baseline, note = _baseline_bundle(bundle, store_dir, name, progress)
        evaluation.notes.append(note)
        b_data = paired_inputs(store, baseline.preprocessor, ids)
        models[key] = embed_arrays(baseline.model, b_data.music, b_data.video)

    run = bundle.config.run
    splits = resolve_splits(store, run.train)
    cca = fit_cca_on_validation(paired_inputs(store, bundle.preprocessor, splits.train),
                                paired_inputs(store, bundle.preprocessor, splits.val))
    evaluation.notes.append(f"cca: ridge {cca.ridge:g} chosen on the validation split, {cca.correlations.size} components")
    models["cca"] = (cca.encode_music(data.music), cca.encode_video(data.video))
    z_scores = Preprocessor.fit_store(store, splits.train, PreprocessConfig(mode="zscore"))
    pls = fit_pls_on_validation(paired_inputs(store, z_scores, splits.train), paired_inputs(store, z_scores, splits.val))
    evaluation.notes.append(f"pls: {pls.music_proj.shape[1]} components on z-scores, chosen on the validation split")
    z_data = paired_inputs(store, z_scores, ids)
    models["pls"] = (pls.encode_music(z_data.music), pls.encode_video(z_data.video))
    models["random"] = random_embeddings(len(ids), em.shape[1], seed)

    compare_block: dict[str, Any] = {}
    for name, (m, v) in models.items():
        compare_block[name] = {**evaluate_embeddings(m, v)}
        if len(ids) >= 3:
            compare_block[name]["structure"] = structure_report(data.music, data.video, m, v)
        evaluation.ranks.setdefault(MODEL_LABELS[name], retrieval_ranks(m, v))
    evaluation.result["compare"] = compare_block
    return evaluation


MODEL_LABELS = {"vmnet": "VM-NET", "no_structure": "VM-NET w/o structure", "plain": "plain recipe",
                "cca": "CCA", "pls": "PLS (z-scores)", "random": "random"}
