"""The colours of a starter clip, chosen in CIELAB from its factors (after Palmer et al., PNAS 2013).

Palmer, Schloss, Xu and Prado-León found that the colours people pick for music follow the
music's emotion: faster, major-mode, happier music goes with lighter, more saturated, yellower
colours; slower, minor, sadder music with darker, greyer, bluer ones. Here:
- lightness L* follows the clip's emotional tone (valence, mode, tempo);
- yellow–blue warmth (the sign and size of b*) follows the same tone;
- chroma (saturation) and figure/ground lightness contrast follow energy (and tone, a little);
- the red–green side of the hue circle is nuisance (a background coin flip).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vmnet_core.starter.factors import ClipFactors

_WHITE_D65 = np.array([0.95047, 1.0, 1.08883])
_XYZ_TO_LINEAR_RGB = np.array([[3.2404542, -1.5371385, -0.4985314],
                               [-0.9692660, 1.8760108, 0.0415560],
                               [0.0556434, -0.2040259, 1.0572252]])


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """CIELAB (D65) to sRGB.

    lab : (..., 3) with L* in 0–100 and a*, b* roughly in −100…100.
    Returns (..., 3) float32 sRGB in [0, 1] (out-of-gamut colours clipped).
    """
    lab = np.asarray(lab, dtype=np.float64)
    fy = (lab[..., 0] + 16.0) / 116.0
    f = np.stack([fy + lab[..., 1] / 500.0, fy, fy - lab[..., 2] / 200.0], axis=-1)
    xyz = np.where(f > 6 / 29, f**3, 3 * (6 / 29) ** 2 * (f - 4 / 29)) * _WHITE_D65
    linear = np.clip(xyz @ _XYZ_TO_LINEAR_RGB.T, 0.0, 1.0)
    srgb = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)
    return np.clip(srgb, 0.0, 1.0).astype(np.float32)


@dataclass(frozen=True)
class ColourPlan:
    """A clip's colour choices in CIELAB terms.

    lightness : mean L* (0–100); contrast : L* gap between shapes and background;
    chroma : shape chroma; hue_rad : shape hue angle in the a*b* plane;
    polarity : +1 shapes lighter than the background, −1 darker.
    """

    lightness: float
    contrast: float
    chroma: float
    hue_rad: float
    polarity: int

    def shape_colours(self, rng: np.random.Generator, count: int) -> np.ndarray:
        """(count, 3) float32 sRGB shape colours: the plan's colour with small hue/lightness jitter."""
        light = self.lightness + self.polarity * 0.65 * self.contrast + rng.uniform(-5, 5, count)
        hue = self.hue_rad + rng.uniform(-0.25, 0.25, count)
        chroma = self.chroma * rng.uniform(0.85, 1.15, count)
        lab = np.stack([np.clip(light, 4, 97), chroma * np.cos(hue), chroma * np.sin(hue)], axis=-1)
        return lab_to_rgb(lab)

    def background_colours(self, gradient: float) -> np.ndarray:
        """(2, 3) float32 sRGB: the two ends of a background gradient ``gradient`` L* units apart."""
        light = self.lightness - self.polarity * 0.35 * self.contrast + np.array([-gradient, gradient]) / 2
        chroma = 0.5 * self.chroma
        lab = np.stack([np.clip(light, 3, 97), np.full(2, chroma * np.cos(self.hue_rad)),
                        np.full(2, chroma * np.sin(self.hue_rad))], axis=-1)
        return lab_to_rgb(lab)


def colour_plan(factors: ClipFactors, background_rng: np.random.Generator) -> ColourPlan:
    """Map factors to colours: tone → L* and yellow(+b*)/blue(−b*) warmth; energy → chroma, contrast."""
    tone = factors.emotional_tone
    warmth_angle = (tone - 0.5) * 0.9 * np.pi  # −81° (blue side) … +81° (yellow side) from the a* axis
    green_side = background_rng.uniform() < 0.5
    hue = np.pi - warmth_angle if green_side else warmth_angle  # same b*, red or green a*
    return ColourPlan(lightness=22.0 + 56.0 * tone,
                      contrast=6.0 + 44.0 * factors.energy,
                      chroma=6.0 + 64.0 * (0.65 * factors.energy + 0.35 * tone),
                      hue_rad=float(hue),
                      polarity=1 if background_rng.uniform() < 0.5 else -1)
