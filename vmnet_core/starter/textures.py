"""Visual texture families: one alpha mask per shape, one family per timbre family.

Soft sounds go with round, soft shapes and harsh or bright sounds with angular, jagged ones
(Köhler's "maluma/takete"; for musical timbre: Adeli, Rouat & Molotchnikoff, Front. Hum.
Neurosci. 2014). The families:

- ``pad`` → ``blobs``: soft Gaussian blobs;
- ``pluck`` → ``dots``: many small crisp discs;
- ``piano`` → ``grid``: crisp upright rectangles in rows, like keys;
- ``bass`` → ``stripes``: broad horizontal bars;
- ``lead`` → ``jagged``: spiky stars.
"""

from __future__ import annotations

import numpy as np

TEXTURE_OF_TIMBRE = {"pad": "blobs", "pluck": "dots", "piano": "grid", "bass": "stripes", "lead": "jagged"}


def shape_mask(family: str, size_px: float, width_px: int, rng: np.random.Generator) -> np.ndarray:
    """(h, w) float32 alpha in [0, 1] of one shape of ``family``.

    size_px : nominal shape size in pixels; width_px : frame width (stripes span much of it).
    """
    size = max(4, int(round(size_px)))
    if family == "blobs":
        aspect = rng.uniform(0.7, 1.4)
        h, w = size, max(4, int(round(size * aspect)))
        y, x = np.ogrid[-1:1:h * 1j, -1:1:w * 1j]
        return np.exp(-(x**2 + y**2) * 4.5).astype(np.float32)
    if family == "dots":
        d = max(3, int(round(size * 0.45)))
        y, x = np.ogrid[:d, :d]
        r = np.hypot(x - (d - 1) / 2, y - (d - 1) / 2)
        return np.clip(d / 2 - r + 0.5, 0.0, 1.0).astype(np.float32)
    if family == "grid":
        return np.ones((size, max(2, int(round(size * 0.42)))), np.float32)
    if family == "stripes":
        h = max(3, int(round(size * 0.4)))
        return np.ones((h, int(width_px * rng.uniform(0.5, 1.0))), np.float32)
    if family == "jagged":
        spikes = int(rng.integers(5, 10))
        y, x = np.ogrid[-1:1:size * 1j, -1:1:size * 1j]
        angle = np.arctan2(y, x) + rng.uniform(0, 2 * np.pi)
        zigzag = np.abs(((angle * spikes / (2 * np.pi)) % 1.0) * 2 - 1)  # 1 at a spike, 0 between
        return (np.hypot(x, y) < 0.4 + 0.6 * zigzag).astype(np.float32)
    raise ValueError(f"unknown texture family {family!r}")
