"""Affine input transforms fitted on the train split: z-score, PCA and whitening PCA in one form.

Every transform here is ``x ↦ ((x − mean) / scale) @ projection``:

- z-score: ``scale`` = the per-feature std (floored), no projection;
- the paper's whitening PCA (video, YouTube-8M style): ``scale`` = 1, ``projection`` = the top-K
  eigenvectors divided by the square roots of their eigenvalues;
- the data-aware default: z-score, then a projection on the K principal directions whose variance
  stands above the noise edge (:func:`signal_components`), not whitened.

Because the form is affine, ``t(mean(frames)) == mean(t(frames))``: a store's pooled video vector
and its frames give the same model input.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vmnet_core.errors import VmnetError
from vmnet_core.features.video_descriptor import WhiteningPCA

MIN_SIGNAL_COMPONENTS = 8  # never fewer (when the data has that many directions)


@dataclass
class LinearInput:
    """``((x − mean) / scale) @ projection``; ``projection`` None = identity. Shapes: (D,), (D,), (D, K)."""

    mean: np.ndarray
    scale: np.ndarray
    projection: np.ndarray | None
    kind: str  # "zscore", "whitening_pca" (the paper's video input) or "zscore_pca"

    def __post_init__(self) -> None:
        self.mean = np.asarray(self.mean, dtype=np.float32)
        self.scale = np.asarray(self.scale, dtype=np.float32)
        if self.projection is not None:
            self.projection = np.asarray(self.projection, dtype=np.float32)

    @property
    def in_dim(self) -> int:
        """Width D of the raw features."""
        return int(self.mean.shape[0])

    @property
    def out_dim(self) -> int:
        """Width K of the network's input."""
        return self.in_dim if self.projection is None else int(self.projection.shape[1])

    def transform(self, x: np.ndarray) -> np.ndarray:
        """(..., D) → (..., K) float32."""
        z = (np.asarray(x, dtype=np.float32) - self.mean) / self.scale  # centre first: no float32 cancellation
        return (z if self.projection is None else z @ self.projection).astype(np.float32)

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        """``{prefix.mean, prefix.scale[, prefix.projection]}`` for safetensors."""
        out = {f"{prefix}.mean": self.mean, f"{prefix}.scale": self.scale}
        if self.projection is not None:
            out[f"{prefix}.projection"] = self.projection
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], prefix: str, kind: str) -> LinearInput:
        """Inverse of :meth:`to_arrays`; ``KeyError`` when a required array is missing."""
        made = cls(arrays[f"{prefix}.mean"], arrays[f"{prefix}.scale"], arrays.get(f"{prefix}.projection"), kind)
        if made.scale.shape != made.mean.shape or (
                made.projection is not None and made.projection.shape[0] != made.in_dim):
            raise VmnetError(f"The saved {prefix} transform has inconsistent shapes; the bundle is damaged.")
        return made


def floored_std(x: np.ndarray, floor_ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """(N, D) → per-feature (mean, std) with std floored at ``floor_ratio`` × the median positive std.

    Constant columns then do not explode on new data.
    """
    x = np.asarray(x, dtype=np.float64)
    mean, std = x.mean(axis=0), x.std(axis=0)
    positive = std[std > 0]
    floor = floor_ratio * (float(np.median(positive)) if positive.size else 1.0)
    return mean, np.maximum(std, max(floor, 1e-12))


def _covariance_eigen(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (descending) and eigenvectors (D, D) of the covariance of (N, D) ``z``."""
    z = np.asarray(z, dtype=np.float64)
    centred = z - z.mean(axis=0)
    values, vectors = np.linalg.eigh(centred.T @ centred / max(1, z.shape[0] - 1))
    order = np.argsort(values)[::-1]
    vectors = vectors[:, order]
    # fix each direction's sign (largest-magnitude entry positive) so fits are reproducible
    flip = np.sign(vectors[np.abs(vectors).argmax(axis=0), np.arange(vectors.shape[1])])
    return np.clip(values[order], 0.0, None), vectors * np.where(flip == 0, 1.0, flip)


def signal_components(eigenvalues: np.ndarray, n_samples: int) -> int:
    """How many principal directions of z-scored data stand above sampling noise.

    For N samples of D independent unit-variance features, the sample covariance's eigenvalues stay
    below the Marchenko–Pastur edge ``(1 + sqrt(D / N))²``; a direction above it carries shared
    structure. The count grows with the sample size (more data resolves weaker directions), which is
    what makes the choice data-aware. At least ``MIN_SIGNAL_COMPONENTS`` (data allowing).
    """
    dim = eigenvalues.shape[0]
    edge = (1.0 + np.sqrt(dim / max(1, n_samples))) ** 2
    rank = int(min(dim, max(1, n_samples - 1)))
    return int(min(rank, max(int((eigenvalues > edge).sum()), MIN_SIGNAL_COMPONENTS)))


def fit_zscore(x: np.ndarray, floor_ratio: float) -> LinearInput:
    """Per-feature z-score of (N, D) ``x``."""
    mean, std = floored_std(x, floor_ratio)
    return LinearInput(mean, std, None, "zscore")


def fit_zscore_pca(x: np.ndarray, floor_ratio: float, components: int | None, whiten: bool) -> LinearInput:
    """z-score (N, D) ``x``, then project on its top principal directions.

    ``components`` None = :func:`signal_components`; ``whiten`` divides each direction by its std.
    """
    mean, std = floored_std(x, floor_ratio)
    values, vectors = _covariance_eigen((np.asarray(x, np.float64) - mean) / std)
    n = int(np.asarray(x).shape[0])
    k = signal_components(values, n) if components is None else int(min(components, len(values), max(1, n - 1)))
    projection = vectors[:, :k]
    if whiten:
        projection = projection / np.sqrt(values[:k] + 1e-6)
    return LinearInput(mean, std, projection, "zscore_pca")


def fit_whitening_pca(x: np.ndarray, components: int) -> LinearInput:
    """The paper's video input: whitening PCA of raw (N, D) ``x`` to ``components`` directions."""
    pca = WhiteningPCA(n_components=min(components, np.asarray(x).shape[1])).fit(np.asarray(x, np.float32))
    return whitening_input(pca)


def whitening_input(pca: WhiteningPCA) -> LinearInput:
    """A fitted :class:`WhiteningPCA` in the affine form (scale 1, whitened components as projection)."""
    projection = pca.components_.T / np.sqrt(pca.explained_variance_ + pca.eps)
    return LinearInput(pca.mean_, np.ones_like(pca.mean_), projection, "whitening_pca")
