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
    from vmnet_core.features.store import VIDEO_SPACE_IMPORTED, FeatureStore

    pairs = synthetic_pairs(n, seed=seed, **kwargs)
    rows = []
    for i in range(n):
        split = "" if not with_split else ("train" if i < n - n_val - n_test else ("val" if i < n - n_test else "test"))
        rows.append({"id": f"pair{i:05d}", "path": "", "duration_s": None, "split": split, "status": "ok", "error": ""})
    FeatureStore.create(directory, rows, pairs.music, pairs.video, video_space=VIDEO_SPACE_IMPORTED,
                        descriptors={"synthetic": {"seed": seed, **kwargs}})
    return Path(directory)
