"""The hidden factors one starter clip's sound and picture share, and its independent nuisance.

A clip is fully described by a :class:`ClipFactors` (what the model should learn to match across
modalities) and a :class:`Nuisance` (variation that differs between the modalities, so matching
a clip to its own partner needs more than one factor). Both go into the corpus manifest, one
column per field; floats are rounded to 3 decimals when sampled, so a manifest row rebuilds the
exact clip. The mappings themselves live in ``audio_synth`` (sound) and ``palette``/``visuals``
(picture); see docs/starter-corpus.md for their literature basis.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Literal

import numpy as np

from vmnet_core.errors import VmnetError

TIMBRES = ("pad", "pluck", "piano", "bass", "lead")
MODES = ("major", "minor")
TEMPO_RANGE_BPM = (60.0, 180.0)
PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_SEED_LIMIT = 2**31 - 1
AROUSAL_SPREAD = 0.15  # how far tempo and energy stray from the clip's shared arousal level (0–1 scale)


@dataclass(frozen=True)
class ClipFactors:
    """The factors sound and picture of one clip share.

    tempo_bpm : beats per minute, 60–180 (↔ speed of motion, flashes and cuts on beats).
    mode : ``"major"`` or ``"minor"`` (with valence ↔ lightness and yellow–blue warmth).
    valence : 0 (sad; tense and dissonant when energetic too) … 1 (happy, consonant).
    energy : 0 (calm) … 1 (loud, dense drums, bright timbre) (↔ saturation, contrast, motion).
    timbre : one of :data:`TIMBRES` (↔ visual texture family).
    register : 0 (low pitch) … 1 (high pitch) (↔ vertical position, and size of shapes).
    """

    tempo_bpm: float
    mode: str
    valence: float
    energy: float
    timbre: str
    register: float

    def __post_init__(self) -> None:
        low, high = TEMPO_RANGE_BPM
        if not low <= self.tempo_bpm <= high:
            raise VmnetError(f"A starter clip's tempo must be between {low:g} and {high:g} BPM, not {self.tempo_bpm}.")
        if self.mode not in MODES:
            raise VmnetError(f"A starter clip's mode must be major or minor, not {self.mode!r}.")
        if self.timbre not in TIMBRES:
            raise VmnetError(f"A starter clip's timbre must be one of {', '.join(TIMBRES)}, not {self.timbre!r}.")
        for name in ("valence", "energy", "register"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise VmnetError(f"A starter clip's {name} must be between 0 and 1, not {value}.")

    @property
    def tempo_unit(self) -> float:
        """Tempo mapped linearly onto 0 (60 BPM) … 1 (180 BPM)."""
        low, high = TEMPO_RANGE_BPM
        return (self.tempo_bpm - low) / (high - low)

    @property
    def beat_s(self) -> float:
        """Seconds per beat."""
        return 60.0 / self.tempo_bpm

    @property
    def emotional_tone(self) -> float:
        """0 (slow, minor, sad) … 1 (fast, major, happy): the emotion that, after Palmer et al.
        (PNAS 2013), mediates which colours people pick for a piece of music."""
        return 0.45 * self.valence + 0.30 * (self.mode == "major") + 0.25 * self.tempo_unit


@dataclass(frozen=True)
class Nuisance:
    """Per-clip variation that is independent between sound and picture.

    key_root : tonic pitch class 0–11 (sound only).
    melody_seed, voicing_seed : melody line; chord progression, voicing and drum variant (sound only).
    layout_seed, background_seed : shapes, positions, directions, cut rhythm; background pattern,
        red–green hue side and figure/ground polarity (picture only).
    """

    key_root: int
    melody_seed: int
    voicing_seed: int
    layout_seed: int
    background_seed: int


FACTOR_COLUMNS = tuple(f.name for f in fields(ClipFactors))
NUISANCE_COLUMNS = tuple(f.name for f in fields(Nuisance))


def _reflect_unit(x: float) -> float:
    """Fold ``x`` back into [0, 1] by reflection at its ends (keeps a uniform variable uniform)."""
    x = abs(x) % 2.0
    return float(2.0 - x if x > 1.0 else x)


def sample_factors(rng: np.random.Generator) -> ClipFactors:
    """Draw factors as the music-emotion literature finds them related in real music.

    One latent arousal level a ~ U(0, 1) drives both tempo (tempo unit = a + N(0, AROUSAL_SPREAD²))
    and energy (loudness, drum density, timbre brightness: a + N(0, AROUSAL_SPREAD²)), reflected
    into 0–1 (so each stays uniform): tempo and loudness are the strongest, jointly varying cues to arousal (Gabrielsson &
    Lindström 2010; Eerola, Friberg & Bresin 2013). Valence is drawn independently of arousal, as
    in the circumplex model (Russell 1980); mode is major with probability 0.25 + 0.5·valence
    (happy music leans major, yet not always). Register uniform, timbre uniform over the families.
    """
    arousal = float(rng.uniform(0.0, 1.0))
    tempo_unit = _reflect_unit(arousal + rng.normal(0.0, AROUSAL_SPREAD))
    low, high = TEMPO_RANGE_BPM
    tempo = low + (high - low) * tempo_unit
    valence = float(rng.uniform(0.0, 1.0))
    mode = "major" if rng.uniform() < 0.25 + 0.5 * valence else "minor"
    energy = _reflect_unit(arousal + rng.normal(0.0, AROUSAL_SPREAD))
    timbre = TIMBRES[int(rng.integers(len(TIMBRES)))]
    register = float(rng.uniform(0.0, 1.0))
    return ClipFactors(tempo_bpm=round(tempo, 3), mode=mode, valence=round(valence, 3),
                       energy=round(energy, 3), timbre=timbre, register=round(register, 3))


def sample_nuisance(rng: np.random.Generator) -> Nuisance:
    """Draw a key and four independent seeds."""
    seeds = rng.integers(0, _SEED_LIMIT, size=4)
    return Nuisance(key_root=int(rng.integers(12)), melody_seed=int(seeds[0]), voicing_seed=int(seeds[1]),
                    layout_seed=int(seeds[2]), background_seed=int(seeds[3]))


def nuisance_from_seed(seed: int) -> Nuisance:
    """The nuisance a single integer seed stands for (same seed → same nuisance)."""
    return sample_nuisance(np.random.default_rng(seed))


def clip_rngs(seed: int, index: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Independent generators for clip ``index`` of a corpus with ``seed`` (factors, nuisance).

    They depend only on (seed, index), so a corpus is the same whatever the number of workers.
    """
    factor_seq, nuisance_seq = np.random.SeedSequence([seed, index]).spawn(2)
    return np.random.default_rng(factor_seq), np.random.default_rng(nuisance_seq)


def extreme_factors(pole: Literal["high", "low"], rng: np.random.Generator) -> ClipFactors:
    """Factors at one end of the arousal/valence axis, for probing a model with real music.

    ``"high"``: fast (160–180 BPM), major, happy, energetic (fast, bright, warm, busy pictures).
    ``"low"``: slow (60–75 BPM), minor, sad, calm (slow, dark, cool, calm pictures).
    Timbre and register are drawn at random, the same way for both poles: they are separate
    factors, not part of the arousal/valence axis, and a fixed timbre per pole would confound the
    probe (docs/starter-corpus.md: the corpus's "lead" voice resembles the real library's *calm*
    tracks, so "high" clips with lead textures pulled calm music).
    """
    if pole not in ("high", "low"):
        raise VmnetError(f"The extreme pole must be 'high' or 'low', not {pole!r}.")
    high = pole == "high"
    tempo = rng.uniform(160.0, 180.0) if high else rng.uniform(60.0, 75.0)
    valence = rng.uniform(0.85, 1.0) if high else rng.uniform(0.0, 0.15)
    energy = rng.uniform(0.85, 1.0) if high else rng.uniform(0.0, 0.15)
    return ClipFactors(tempo_bpm=round(float(tempo), 3), mode="major" if high else "minor",
                       valence=round(float(valence), 3), energy=round(float(energy), 3),
                       timbre=TIMBRES[int(rng.integers(len(TIMBRES)))], register=round(float(rng.uniform()), 3))


def extreme_pair(rng: np.random.Generator) -> tuple[ClipFactors, ClipFactors]:
    """A matched ("high", "low") pair of :func:`extreme_factors`: the low clip takes the high clip's
    timbre and register, so the two differ only along the arousal/valence axis. Render both with
    the same nuisance seed and they share layout, background and melody as well."""
    high = extreme_factors("high", rng)
    return high, replace(extreme_factors("low", rng), timbre=high.timbre, register=high.register)


def clip_columns(factors: ClipFactors, nuisance: Nuisance) -> dict[str, object]:
    """The manifest columns of one clip: factors then nuisance (``key`` spelled out, e.g. ``F#``)."""
    row: dict[str, object] = asdict(factors)
    row.update(asdict(nuisance))
    row["key"] = PITCH_CLASSES[nuisance.key_root]
    return row


def clip_from_row(row: dict[str, str]) -> tuple[ClipFactors, Nuisance]:
    """Rebuild (factors, nuisance) from a manifest row of strings (inverse of :func:`clip_columns`)."""
    try:
        factors = ClipFactors(tempo_bpm=float(row["tempo_bpm"]), mode=row["mode"], valence=float(row["valence"]),
                              energy=float(row["energy"]), timbre=row["timbre"], register=float(row["register"]))
        nuisance = Nuisance(**{name: int(row[name]) for name in NUISANCE_COLUMNS})
    except (KeyError, ValueError) as exc:
        raise VmnetError(f"This manifest row has no valid starter factors ({exc}); regenerate the corpus.") from exc
    return factors, nuisance
