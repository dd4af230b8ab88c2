"""Sound sources for the starter corpus: band-limited wavetable voices and synthetic drums (numpy).

Each timbre family is a harmonic recipe (a one-period wavetable) plus an envelope; ``brightness``
(0–1) lets more upper harmonics through. Drums are short fixed samples (kick, snare, hi-hat) made
from a sine sweep and filtered noise. Everything is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

TABLE_SIZE = 2048  # samples per wavetable period (a power of two: phase wraps with a bit mask)
MAX_HARMONICS = 40


def midi_to_hz(note: float) -> float:
    """Equal-tempered frequency in Hz of a MIDI note number (69 = A4 = 440 Hz)."""
    return 440.0 * 2.0 ** ((note - 69.0) / 12.0)


@dataclass(frozen=True)
class Envelope:
    """Attack–decay–sustain–release amplitude envelope; times in seconds, sustain in 0–1."""

    attack_s: float
    decay_s: float
    sustain: float
    release_s: float

    def render(self, n_samples: int, sr: int) -> np.ndarray:
        """(n_samples,) float32 envelope; the release is the note's last ``release_s`` seconds."""
        t = np.arange(n_samples, dtype=np.float32) / sr
        env = np.minimum(t / max(self.attack_s, 1e-4), 1.0)
        env *= self.sustain + (1.0 - self.sustain) * np.exp(-t / max(self.decay_s, 1e-4))
        n_release = min(n_samples, int(self.release_s * sr))
        if n_release > 0:
            env[n_samples - n_release:] *= np.linspace(1.0, 0.0, n_release, dtype=np.float32)
        return env


# Per timbre family: (harmonic slope p in 1/k^p, odd harmonics only?, rolloff base, rolloff per brightness)
_RECIPES: dict[str, tuple[float, bool, float, float]] = {
    "pad": (1.0, False, 1.5, 5.0),     # soft sawtooth, darkened
    "pluck": (1.0, False, 2.5, 12.0),  # bright attack, decays fast
    "piano": (1.4, False, 2.0, 8.0),   # steeper spectrum, medium decay
    "bass": (1.0, False, 1.0, 4.0),    # dark sawtooth in a low octave
    "lead": (1.0, True, 3.0, 14.0),    # square-like (odd harmonics), bright, with vibrato
}

ENVELOPES: dict[str, Envelope] = {
    "pad": Envelope(attack_s=0.25, decay_s=1.5, sustain=0.8, release_s=0.4),
    "pluck": Envelope(attack_s=0.003, decay_s=0.12, sustain=0.0, release_s=0.02),
    "piano": Envelope(attack_s=0.004, decay_s=0.5, sustain=0.1, release_s=0.08),
    "bass": Envelope(attack_s=0.008, decay_s=0.25, sustain=0.5, release_s=0.05),
    "lead": Envelope(attack_s=0.02, decay_s=0.3, sustain=0.7, release_s=0.06),
}


@lru_cache(maxsize=1024)
def wavetable(timbre: str, brightness_step: int, n_harmonics: int) -> np.ndarray:
    """(TABLE_SIZE,) float32 one-period waveform, peak 1.

    ``brightness_step`` is brightness quantised to 0–10; ``n_harmonics`` caps the partials so that
    the highest stays below Nyquist for the note it will play.
    """
    slope, odd_only, rolloff, rolloff_per_brightness = _RECIPES[timbre]
    k = np.arange(1, max(n_harmonics, 1) + 1, dtype=np.float64)
    amplitude = k ** -slope * np.exp(-(k - 1) / (rolloff + rolloff_per_brightness * brightness_step / 10))
    if odd_only:
        amplitude[1::2] = 0.0
    phase = np.arange(TABLE_SIZE) / TABLE_SIZE
    wave = np.sin(2 * np.pi * np.outer(phase, k)) @ amplitude
    return (wave / np.abs(wave).max()).astype(np.float32)


def render_tone(freq_hz: float, n_samples: int, sr: int, timbre: str, brightness: float,
                vibrato: float = 0.0) -> np.ndarray:
    """(n_samples,) float32 band-limited tone of one timbre family, envelope applied, peak ≤ 1.

    vibrato : depth as a fraction of the frequency (a 5.5 Hz sine), 0 for none.
    """
    n_harmonics = int(min(MAX_HARMONICS, 0.45 * sr / freq_hz))
    table = wavetable(timbre, int(round(10 * brightness)), n_harmonics)
    if vibrato > 0.0:
        t = np.arange(n_samples, dtype=np.float64) / sr
        inst = freq_hz * (1.0 + vibrato * np.sin(2 * np.pi * 5.5 * t) * np.minimum(t / 0.3, 1.0))
        phase = np.cumsum(inst) / sr
    else:
        phase = np.arange(n_samples, dtype=np.float64) * (freq_hz / sr)
    index = (phase * TABLE_SIZE).astype(np.int64) & (TABLE_SIZE - 1)
    return table[index] * ENVELOPES[timbre].render(n_samples, sr)


@lru_cache(maxsize=8)
def drum_kit(sr: int) -> dict[str, np.ndarray]:
    """Fixed drum samples at ``sr``: ``kick``, ``snare``, ``hat``, each (S,) float32, peak ≤ 1."""
    rng = np.random.default_rng(1234)

    def seconds(duration: float) -> np.ndarray:
        return np.arange(int(duration * sr), dtype=np.float64) / sr

    t = seconds(0.35)
    sweep_hz = 45.0 + 110.0 * np.exp(-t / 0.04)
    kick = np.sin(2 * np.pi * np.cumsum(sweep_hz) / sr) * np.exp(-t / 0.12)
    t = seconds(0.25)
    noise = rng.normal(0.0, 1.0, t.size)
    snare_noise = np.diff(noise, prepend=0.0) * 0.5
    snare = (0.6 * snare_noise + 0.5 * np.sin(2 * np.pi * 190.0 * t)) * np.exp(-t / 0.06)
    t = seconds(0.08)
    noise = rng.normal(0.0, 1.0, t.size)
    hat = np.diff(np.diff(noise, prepend=0.0), prepend=0.0) * 0.25 * np.exp(-t / 0.018)
    kit = {"kick": kick, "snare": snare, "hat": hat}
    return {name: (wave / np.abs(wave).max()).astype(np.float32) for name, wave in kit.items()}
