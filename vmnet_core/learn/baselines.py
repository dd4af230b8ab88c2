"""Baselines and the ``vmnet evaluate`` service, all scored by :mod:`vmnet_core.learn.metrics`.

- Random ranking: seeded random unit vectors for both modalities (chance R@K = K / gallery).
- Regularised CCA (closed form, numpy/scipy) on the same preprocessed inputs as VM-NET, fitted on
  the train split; its ridge is chosen on the validation split from a small grid.
- PLS (partial least squares: the top singular vectors of the train cross-covariance, no whitening),
  the number of components chosen on validation: the limit of CCA as its ridge grows, and far more
  robust than CCA when pairs are few next to the input widths.
- VM-NET without the structure constraint (ablation): the same trainer with the structure terms off,
  read from ``BUNDLE/ablation`` when ``vmnet train --with-ablation`` made it, else trained now with
  the bundle's recorded settings on the evaluated store (same seed, same split rule).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import linalg

from vmnet_core.errors import VmnetError
from vmnet_core.learn.metrics import evaluate_embeddings, selection_score

CCA_RIDGES: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0)
PLS_COMPONENTS: tuple[int, ...] = (8, 16, 24, 32, 48, 64, 128)


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


@dataclass
class PLS:
    """Partial least squares projections: embeddings are the inputs' scores on the top ``k`` pairs of
    singular vectors of the (music, video) cross-covariance."""

    music_mean: np.ndarray  # (Dm,)
    video_mean: np.ndarray  # (Dv,)
    music_proj: np.ndarray  # (Dm, k) orthonormal columns
    video_proj: np.ndarray  # (Dv, k) orthonormal columns

    @classmethod
    def fit_components(cls, music: np.ndarray, video: np.ndarray, ks) -> list[PLS]:
        """One fit per component count in ``ks`` (one SVD of the cross-covariance shared)."""
        x = np.asarray(music, dtype=np.float64)
        y = np.asarray(video, dtype=np.float64)
        if x.shape[0] < 2:
            raise VmnetError("PLS needs at least two training pairs.")
        mx, my = x.mean(axis=0), y.mean(axis=0)
        u, _, vt = linalg.svd((x - mx).T @ (y - my), full_matrices=False)
        return [cls(mx, my, u[:, :k], vt[:k].T) for k in sorted({int(min(k, u.shape[1])) for k in ks})]

    def encode_music(self, music: np.ndarray) -> np.ndarray:
        """(N, Dm) → (N, k) unit vectors."""
        return _unit((np.asarray(music, np.float64) - self.music_mean) @ self.music_proj)

    def encode_video(self, video: np.ndarray) -> np.ndarray:
        """(N, Dv) → (N, k) unit vectors."""
        return _unit((np.asarray(video, np.float64) - self.video_mean) @ self.video_proj)


def fit_pls_on_validation(train, val, ks=PLS_COMPONENTS) -> PLS:
    """PLS fitted on ``train`` (PairedArrays) with the component count that scores best on ``val``."""
    fits = PLS.fit_components(train.music, train.video, ks)
    if len(val.ids) < 2:
        return fits[0]
    scores = [selection_score(evaluate_embeddings(p.encode_music(val.music), p.encode_video(val.video)))
              for p in fits]
    return fits[int(np.argmax(scores))]
