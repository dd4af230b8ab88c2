"""Baselines and the ``vmnet evaluate`` service, all scored by :mod:`vmnet_core.metrics`.

- Random ranking: seeded random unit vectors for both modalities (chance R@K = K / gallery).
- Regularised CCA (closed form, numpy/scipy) on the same preprocessed inputs as VM-NET, fitted on
  the train split; its ridge is chosen on the validation split from a small grid.
- VM-NET without the structure constraint (ablation): the same trainer with the structure terms off,
  read from ``BUNDLE/ablation`` when ``vmnet train --with-ablation`` made it, else trained now with
  the bundle's recorded settings on the evaluated store (same seed, same split rule).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy import linalg

from vmnet_core.errors import VmnetError
from vmnet_core.metrics import evaluate_embeddings, retrieval_ranks, selection_score, structure_report

CCA_RIDGES: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0)


def random_embeddings(n: int, dim: int = 512, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seeded random unit vectors (n, dim) for music and video: the random-ranking baseline."""
    rng = np.random.default_rng(seed)
    em, ev = rng.standard_normal((2, n, dim)).astype(np.float32)
    return _unit(em), _unit(ev)


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)).astype(np.float32)


@dataclass
class CCA:
    """Regularised CCA projections; embeddings are canonical variates scaled by their correlations."""

    music_mean: np.ndarray  # (Dm,)
    video_mean: np.ndarray  # (Dv,)
    music_proj: np.ndarray  # (Dm, k)
    video_proj: np.ndarray  # (Dv, k)
    correlations: np.ndarray  # (k,) canonical correlations, descending
    ridge: float

    @classmethod
    def fit(cls, music: np.ndarray, video: np.ndarray, n_components: int = 512, ridge: float = 1e-2) -> CCA:
        """Fit on paired (N, Dm) and (N, Dv) arrays.

        ``ridge`` is relative: each covariance gets ``ridge × its mean variance`` added to its diagonal.
        """
        return cls.fit_ridges(music, video, (ridge,), n_components)[0]

    @classmethod
    def fit_ridges(cls, music: np.ndarray, video: np.ndarray, ridges, n_components: int = 512) -> list[CCA]:
        """One fit per ridge, sharing the covariances and their eigendecompositions."""
        x = np.asarray(music, dtype=np.float64)
        y = np.asarray(video, dtype=np.float64)
        n = x.shape[0]
        if n < 2:
            raise VmnetError("CCA needs at least two training pairs.")
        mx, my = x.mean(axis=0), y.mean(axis=0)
        xc, yc = x - mx, y - my
        ex, vx = linalg.eigh(xc.T @ xc / (n - 1))  # (Dm,), (Dm, Dm)
        ey, vy = linalg.eigh(yc.T @ yc / (n - 1))  # (Dv,), (Dv, Dv)
        cxy = xc.T @ yc / (n - 1)  # (Dm, Dv)
        fits = []
        for ridge in ridges:
            # (C + r I)^(-1/2) = V diag((λ + r)^(-1/2)) V^T
            wx = (vx / np.sqrt(np.maximum(ex + ridge * ex.mean(), 0) + 1e-9)) @ vx.T
            wy = (vy / np.sqrt(np.maximum(ey + ridge * ey.mean(), 0) + 1e-9)) @ vy.T
            u, s, vt = linalg.svd(wx @ cxy @ wy, full_matrices=False)
            k = int(min(n_components, s.size))
            fits.append(cls(mx, my, wx @ u[:, :k], wy @ vt[:k].T, s[:k], float(ridge)))
        return fits

    def encode_music(self, music: np.ndarray) -> np.ndarray:
        """(N, Dm) → (N, k) unit vectors."""
        return _unit((np.asarray(music, np.float64) - self.music_mean) @ self.music_proj * self.correlations)

    def encode_video(self, video: np.ndarray) -> np.ndarray:
        """(N, Dv) → (N, k) unit vectors."""
        return _unit((np.asarray(video, np.float64) - self.video_mean) @ self.video_proj * self.correlations)


def fit_cca_on_validation(train, val, ridges=CCA_RIDGES, n_components: int = 512) -> CCA:
    """CCA fitted on ``train`` (PairedArrays) with the ridge that scores best on ``val``."""
    fits = CCA.fit_ridges(train.music, train.video, ridges, n_components)
    if len(val.ids) < 2:
        return fits[0]
    scores = [selection_score(evaluate_embeddings(c.encode_music(val.music), c.encode_video(val.video)))
              for c in fits]
    return fits[int(np.argmax(scores))]


# ----------------------------------------------------------------------------- evaluate a bundle
@dataclass
class Evaluation:
    """What ``vmnet evaluate`` prints and plots."""

    result: dict[str, Any]  # the --json object
    ranks: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # model → direction → (N,)
    notes: list[str] = field(default_factory=list)


def run_config_from_bundle(config: dict) -> Any:
    """The RunConfig a bundle was trained with (for retraining its ablation)."""
    from vmnet_core.model import ModelConfig
    from vmnet_core.preprocess import PreprocessConfig
    from vmnet_core.train import RunConfig, TrainConfig

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
    from vmnet_core.bundle import load_bundle
    from vmnet_core.train import ABLATION_DIR, train_bundle

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
    from vmnet_core.model import embed_arrays
    from vmnet_core.store import FeatureStore
    from vmnet_core.train import paired_inputs, resolve_splits, split_ids_for

    store_dir = Path(store_dir)
    store = FeatureStore.open(store_dir)
    ids = split_ids_for(store, bundle.config, split)
    if len(ids) < 2:
        raise VmnetError(f"The '{split}' split has {len(ids)} pair(s); evaluation needs at least 2.")
    data = paired_inputs(store, bundle.preprocessor, ids)
    em, ev = embed_arrays(bundle.model, data.music, data.video)
    evaluation = Evaluation(result=evaluate_embeddings(em, ev))
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
