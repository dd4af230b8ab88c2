"""Synthetic paired feature stores: one random latent seen through two different nonlinear maps.

Each pair shares a latent ``z ~ N(0, I_d)``. Music is ``B_m cos(A_m z) + noise`` (1140-d), video
is ``B_v sin(A_v z) + noise`` (1280-d), with independent random ``A``, ``B`` per modality.

Why this shape: music is an *even* function of ``z`` and video an *odd* one, so for a symmetric
latent every music feature is uncorrelated with every video feature (E[even(z)·odd(z)] = 0).
Linear CCA, which only sees cross-covariances, is left near chance, while two nonlinear towers can
still meet on a shared even function of ``z`` (pairs are identifiable up to ``z ↔ -z``). That is
the property the tests check: a nonlinear model should beat linear CCA here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class SyntheticPairs:
    """(N, 1140) music, (N, 1280) video and the (N, d) latent that ties them."""

    music: np.ndarray
    video: np.ndarray
    latent: np.ndarray


def _random_map(z: np.ndarray, out_dim: int, hidden: int, gain: float, act, noise: float,
                rng: np.random.Generator) -> np.ndarray:
    a = rng.standard_normal((z.shape[1], hidden)) * gain / np.sqrt(z.shape[1])  # (d, H)
    b = rng.standard_normal((hidden, out_dim)) / np.sqrt(hidden)  # (H, D)
    x = act(z @ a) @ b  # (N, D)
    x /= x.std()
    return (x + noise * rng.standard_normal(x.shape)).astype(np.float32)


def synthetic_pairs(n: int, latent_dim: int = 3, hidden: int = 64, gain: float = 2.0, noise: float = 0.5,
                    music_dim: int = 1140, video_dim: int = 1280, seed: int = 0) -> SyntheticPairs:
    """``n`` synthetic pairs (see the module docstring); ``noise`` is relative to the signal's std."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, latent_dim))
    music = _random_map(z, music_dim, hidden, gain, np.cos, noise, rng)
    video = _random_map(z, video_dim, hidden, gain, np.sin, noise, rng)
    return SyntheticPairs(music, video, z.astype(np.float32))


def write_synthetic_store(directory: str | Path, n: int = 3000, n_val: int = 500, n_test: int = 500,
                          with_split: bool = True, seed: int = 0, **kwargs) -> Path:
    """Write a real feature store (via ``FeatureStore.create``) of ``n`` synthetic pairs.

    With ``with_split`` the manifest's split column holds ``n - n_val - n_test`` train, ``n_val``
    val and ``n_test`` test items (in that order of ids); without it the column is empty, so the
    trainer makes its own seeded split. Extra keyword arguments go to :func:`synthetic_pairs`.
    """
    pairs = synthetic_pairs(n, seed=seed, **kwargs)
    return write_pairs_store(directory, pairs, n_val, n_test, with_split, {"seed": seed, **kwargs})


def write_pairs_store(directory: str | Path, pairs: SyntheticPairs, n_val: int, n_test: int,
                      with_split: bool, recipe: dict) -> Path:
    """Write ``pairs`` as a feature store; the split column as in :func:`write_synthetic_store`."""
    from vmnet_core.features.store import VIDEO_SPACE_IMPORTED, FeatureStore

    n = pairs.music.shape[0]
    rows = []
    for i in range(n):
        split = "" if not with_split else ("train" if i < n - n_val - n_test else ("val" if i < n - n_test else "test"))
        rows.append({"id": f"pair{i:05d}", "path": "", "duration_s": None, "split": split, "status": "ok", "error": ""})
    FeatureStore.create(directory, rows, pairs.music, pairs.video, video_space=VIDEO_SPACE_IMPORTED,
                        descriptors={"synthetic": recipe})
    return Path(directory)


# ----------------------------------------------------------------------------- realistic stores
@dataclass
class RealisticSpec:
    """Shape of a store that looks like real features (see :func:`realistic_pairs`).

    ``shared_dim`` latent factors tie a pair; ``private_dim`` more per modality vary independently
    (what a video shows that the music does not say, and the reverse). Each modality is a random
    two-layer tanh network of its factors, then per-feature scales spread over two decades (real
    descriptors mix units), then noise at three levels: a few very noisy features, most features
    moderately noisy, and a low-rank nuisance shared across features (recording / camera effects).
    """

    shared_dim: int = 24
    private_dim: int = 16
    hidden: int = 128
    gain: float = 5.0  # tanh input scale: larger = more nonlinear
    noise: float = 4.0  # per-feature noise std relative to the signal's std
    noisy_fraction: float = 0.1  # features whose noise is 4× ``noise``
    nuisance_rank: int = 8  # low-rank nuisance factors per modality
    nuisance: float = 0.5  # their std relative to the signal's std
    music_dim: int = 1140
    video_dim: int = 1024  # 1024 (PCA-reduced like YouTube-8M) or 1280 (frame-pooled EfficientNet)


def _modality(factors: np.ndarray, out_dim: int, spec: RealisticSpec, world: np.random.Generator,
              draws: np.random.Generator, nonnegative: bool) -> np.ndarray:
    """(N, F) factors → (N, out_dim) float32 features: tanh network, scales, three noise levels.

    ``world`` draws the fixed maps, ``draws`` the per-pair noise.
    """
    n, f = factors.shape
    a = world.standard_normal((f, spec.hidden)) * spec.gain / np.sqrt(f)  # (F, H)
    bias = 0.3 * world.standard_normal(spec.hidden)  # (H,)
    b = world.standard_normal((spec.hidden, out_dim)) / np.sqrt(spec.hidden)  # (H, D)
    level = np.full(out_dim, float(spec.noise))
    level[world.random(out_dim) < spec.noisy_fraction] *= 4.0
    nuisance_map = world.standard_normal((spec.nuisance_rank, out_dim)) / np.sqrt(spec.nuisance_rank)
    scales = np.exp(world.uniform(np.log(0.1), np.log(10.0), out_dim))  # units spread over two decades
    offsets = world.standard_normal(out_dim)
    x = np.tanh(factors @ a + bias) @ b  # (N, D)
    x /= np.sqrt((b ** 2).sum(axis=0) * 0.5) + 1e-9  # roughly unit signal std, independent of N
    x += level * draws.standard_normal((n, out_dim))
    x += spec.nuisance * (draws.standard_normal((n, spec.nuisance_rank)) @ nuisance_map)
    if nonnegative:  # CNN features after ReLU are sparse and non-negative
        x, offsets = np.maximum(x + 0.5, 0.0), 0.0
    return ((x + offsets) * scales).astype(np.float32)


def realistic_pairs(n: int, spec: RealisticSpec | None = None, seed: int = 0) -> SyntheticPairs:
    """``n`` pairs of (N, music_dim) music and (N, video_dim) video sharing ``spec.shared_dim`` factors.

    Deterministic in ``(n, spec, seed)``: the maps depend on ``seed`` only, so a larger ``n`` with
    the same seed draws new pairs from the same "world".
    """
    spec = spec or RealisticSpec()
    world = np.random.default_rng([seed, 0])
    draws = np.random.default_rng([seed, 1, n])
    shared = draws.standard_normal((n, spec.shared_dim))
    music_f = np.hstack([shared, draws.standard_normal((n, spec.private_dim))])
    video_f = np.hstack([shared, draws.standard_normal((n, spec.private_dim))])
    music = _modality(music_f, spec.music_dim, spec, world, draws, nonnegative=False)
    video = _modality(video_f, spec.video_dim, spec, world, draws, nonnegative=True)
    return SyntheticPairs(music, video, shared.astype(np.float32))


def write_realistic_store(directory: str | Path, n: int = 6000, n_val: int = 500, n_test: int = 1000,
                          with_split: bool = True, seed: int = 0, **spec: object) -> Path:
    """A feature store of :func:`realistic_pairs` (``spec`` keywords override :class:`RealisticSpec`).

    The default is the issue-18 store: 6,000 pairs, test 1,000, val 500, train 4,500.
    """
    pairs = realistic_pairs(n, RealisticSpec(**spec), seed=seed)
    return write_pairs_store(directory, pairs, n_val, n_test, with_split, {"realistic": True, "seed": seed, **spec})
