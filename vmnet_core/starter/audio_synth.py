"""The music of a starter clip: chords, melody, bass and drums rendered from its factors (numpy).

Factor → sound:
- tempo_bpm: the beat grid of everything (chords per bar, melody slots, drum hits).
- mode: major or natural minor scale (minor's v chord raised to V) and typical progressions.
- valence (with energy): dissonance; unpleasant *and* aroused music (tense, agitated) adds a
  semitone or tritone to chords, sad calm music stays consonant (Gabrielsson & Lindström 2010).
- energy: drum density (quarter → sixteenth hats, extra kicks, snares), melody note density,
  brightness (more harmonics, higher low-pass cut-off) and loudness.
- timbre: which family carries chords and melody, and how chords are played (sustained pad,
  arpeggiated pluck, struck piano, driving bass line, vibrato lead).
- register: octave of melody and chords (MIDI ≈ 55 → 84 for the melody's centre).
Nuisance (never seen by the picture): the key, the progression and voicing, the melody, the
drum variant.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

from vmnet_core.starter.factors import ClipFactors, Nuisance
from vmnet_core.starter.instruments import drum_kit, midi_to_hz, render_tone

SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}
PROGRESSIONS = {  # scale degrees (0 = tonic), one chord per bar
    "major": ((0, 4, 5, 3), (0, 3, 4, 0), (0, 5, 3, 4), (0, 3, 0, 4)),
    "minor": ((0, 5, 2, 6), (0, 3, 4, 0), (0, 3, 5, 4), (0, 6, 5, 6)),
}
STEPS_PER_BAR = 16  # drum grid: sixteenth notes in 4/4
BEATS_PER_BAR = 4
DISSONANCE_RATE = 0.8  # chance of an added clashing tone per bar at valence 0 and energy 1


class _Track:
    """A mono buffer that notes are added into; tones are cached so repeated notes cost nothing."""

    def __init__(self, n_samples: int, sr: int):
        self.sr = sr
        self.samples = np.zeros(n_samples, np.float32)
        self._cache: dict[tuple, np.ndarray] = {}

    def add(self, start_s: float, wave: np.ndarray, gain: float) -> None:
        start = int(round(start_s * self.sr))
        if start >= self.samples.size:
            return
        stop = min(self.samples.size, start + wave.size)
        self.samples[start:stop] += gain * wave[: stop - start]

    def add_tone(self, start_s: float, midi: int, duration_s: float, timbre: str, brightness: float,
                 gain: float, vibrato: float = 0.0) -> None:
        n = max(1, int(duration_s * self.sr))
        key = (midi, n, timbre, round(brightness, 1), vibrato)
        if key not in self._cache:
            self._cache[key] = render_tone(midi_to_hz(midi), n, self.sr, timbre, round(brightness, 1), vibrato)
        self.add(start_s, self._cache[key], gain)


def _degree_to_midi(degree: int, scale: tuple[int, ...], tonic_midi: int) -> int:
    octave, step = divmod(degree, len(scale))
    return tonic_midi + 12 * octave + scale[step]


def _chord_pitch_classes(root_degree: int, mode: str, key_root: int, seventh: bool) -> list[int]:
    scale = SCALES[mode]
    degrees = [root_degree, root_degree + 2, root_degree + 4] + ([root_degree + 6] if seventh else [])
    pitches = [_degree_to_midi(d, scale, key_root) for d in degrees]
    if mode == "minor" and root_degree % 7 == 4:
        pitches[1] += 1  # harmonic minor: the dominant chord gets a major third
    return [p % 12 for p in pitches]


def _voice(pitch_classes: list[int], centre: int) -> list[int]:
    """Place each pitch class in the octave [centre − 6, centre + 6)."""
    return sorted(centre - 6 + (pc - (centre - 6)) % 12 for pc in pitch_classes)


def _chord_plan(factors: ClipFactors, nuisance: Nuisance, n_bars: int) -> list[tuple[int, list[int]]]:
    """Per bar: (root pitch class, chord pitch classes incl. any dissonant added tone)."""
    rng = np.random.default_rng(nuisance.voicing_seed)
    options = PROGRESSIONS[factors.mode]
    progression = options[int(rng.integers(len(options)))]
    seventh = bool(rng.uniform() < 0.4)
    plan = []
    for bar in range(n_bars):
        degree = progression[bar % len(progression)]
        classes = _chord_pitch_classes(degree, factors.mode, nuisance.key_root, seventh)
        if rng.uniform() < DISSONANCE_RATE * (1.0 - factors.valence) * factors.energy:  # tension
            classes.append((classes[0] + (1 if rng.uniform() < 0.5 else 6)) % 12)  # semitone or tritone
        plan.append((classes[0], classes))
    return plan


def _play_chords(track: _Track, plan, factors: ClipFactors, bar_s: float, brightness: float) -> None:
    centre = int(round(50 + 24 * factors.register))
    beat_s = factors.beat_s
    for bar, (_, classes) in enumerate(plan):
        start = bar * bar_s
        notes = _voice(classes, centre)
        if factors.timbre == "pad" or factors.timbre in ("bass", "lead"):
            gain = 0.22 if factors.timbre == "pad" else 0.09
            for note in notes:
                for detune in (0, 12):  # a second voice an octave up thickens the pad
                    track.add_tone(start, note + detune, bar_s + 0.3, "pad", brightness, gain / (1 + detune / 6))
        elif factors.timbre == "pluck":
            arpeggio = notes + [notes[1] + 12] if len(notes) > 1 else notes
            for step in range(2 * BEATS_PER_BAR):
                track.add_tone(start + step * beat_s / 2, arpeggio[step % len(arpeggio)], 0.35, "pluck",
                               brightness, 0.3)
        else:  # piano: struck on beats 1 and 3
            for beat in (0, 2):
                for note in notes:
                    track.add_tone(start + beat * beat_s, note, 2 * beat_s, "piano", brightness, 0.2)


def _play_bass(track: _Track, plan, factors: ClipFactors, bar_s: float, brightness: float) -> None:
    beat_s = factors.beat_s
    heavy = factors.timbre == "bass"
    for bar, (root, _) in enumerate(plan):
        low = 36 + root  # C2 … B2
        if heavy:  # driving eighths: root, root, octave, fifth …
            for step, interval in enumerate((0, 0, 12, 7, 0, 0, 12, 7)):
                track.add_tone(bar * bar_s + step * beat_s / 2, low + interval, 0.45 * beat_s, "bass",
                               brightness, 0.55)
        else:
            for beat in (0, 2):
                track.add_tone(bar * bar_s + beat * beat_s, low, 1.6 * beat_s, "bass", brightness * 0.5, 0.22)


def _play_melody(track: _Track, plan, factors: ClipFactors, nuisance: Nuisance, bar_s: float,
                 brightness: float) -> None:
    rng = np.random.default_rng(nuisance.melody_seed)
    scale = SCALES[factors.mode]
    centre_midi = 55 + 29 * factors.register
    tonic = nuisance.key_root + 12 * int(round((centre_midi - nuisance.key_root) / 12))
    slots_per_beat = 2 if factors.energy > 0.4 or factors.timbre in ("pluck", "lead") else 1
    if factors.timbre == "pad":
        slots_per_beat = 1
    slot_s = factors.beat_s / slots_per_beat
    n_slots = BEATS_PER_BAR * slots_per_beat
    # A two-bar motif (rhythm and contour) that repeats with small changes: it sounds like a tune.
    motif_on = rng.uniform(size=2 * n_slots) < 0.7
    motif_on[0] = motif_on[n_slots] = True
    motif_steps = rng.choice([-2, -1, 0, 1, 2], size=2 * n_slots, p=[0.15, 0.3, 0.1, 0.3, 0.15])
    timbre = factors.timbre
    gain = {"lead": 0.5, "pluck": 0.35, "piano": 0.35, "pad": 0.25, "bass": 0.4}[factors.timbre]
    vibrato = 0.006 if factors.timbre == "lead" else 0.0
    degree = 0
    for bar, (_, classes) in enumerate(plan):
        for slot in range(n_slots):
            index = (bar % 2) * n_slots + slot
            if not motif_on[index] or (bar >= 2 and rng.uniform() < 0.1):
                continue
            degree = int(np.clip(degree + motif_steps[index], -5, 9))
            midi = _degree_to_midi(degree, scale, tonic)
            if slot == 0:  # land on a chord tone at the bar line
                midi = min((midi + (pc - midi + 6) % 12 - 6 for pc in classes), key=lambda m: abs(m - midi))
            duration = slot_s * (0.9 if timbre != "pad" else 1.8)
            track.add_tone(bar * bar_s + slot * slot_s, midi, duration, timbre, brightness, gain, vibrato)


def _drum_steps(energy: float, variant: int) -> dict[str, list[tuple[int, float]]]:
    """(sixteenth step, velocity) per drum in one bar; denser with energy."""
    kick = [(0, 1.0)] + ([(8, 0.9)] if energy > 0.2 else [])
    if energy > 0.6:
        kick.append(((10, 6, 11)[variant], 0.7))
    if energy > 0.85:
        kick.append((14, 0.6))
    snare = [(4, 1.0), (12, 1.0)] if energy > 0.35 else ([(12, 0.5)] if energy > 0.2 else [])
    if energy > 0.8:
        snare.append((15, 0.35))
    hat = [(s, 0.7) for s in (0, 4, 8, 12)] if energy > 0.1 else []
    if energy > 0.4:
        hat += [(s, 0.45) for s in (2, 6, 10, 14)]
    if energy > 0.75:
        hat += [(s, 0.3) for s in range(1, 16, 2)]
    return {"kick": kick, "snare": snare, "hat": hat}


def _play_drums(track: _Track, factors: ClipFactors, nuisance: Nuisance, n_bars: int, bar_s: float) -> None:
    kit = drum_kit(track.sr)
    variant = int(np.random.default_rng(nuisance.voicing_seed + 1).integers(3))
    step_s = bar_s / STEPS_PER_BAR
    for name, hits in _drum_steps(factors.energy, variant).items():
        for bar in range(n_bars):
            for step, velocity in hits:
                track.add(bar * bar_s + step * step_s, kit[name], velocity)


def synthesize_music(factors: ClipFactors, nuisance: Nuisance, seconds: float, sr: int = 22050) -> np.ndarray:
    """Render a clip's music.

    Returns
    -------
    (round(seconds · sr),) float32 mono in [-1, 1]; identical for identical arguments.
    """
    n_samples = int(round(seconds * sr))
    bar_s = BEATS_PER_BAR * factors.beat_s
    n_bars = int(np.ceil(seconds / bar_s)) + 1
    brightness = 0.2 + 0.8 * factors.energy
    plan = _chord_plan(factors, nuisance, n_bars)
    harmonic = _Track(n_samples, sr)
    _play_chords(harmonic, plan, factors, bar_s, brightness)
    _play_bass(harmonic, plan, factors, bar_s, brightness)
    _play_melody(harmonic, plan, factors, nuisance, bar_s, brightness)
    drums = _Track(n_samples, sr)
    _play_drums(drums, factors, nuisance, n_bars, bar_s)

    cutoff_hz = 1200.0 + 7000.0 * factors.energy  # timbre brightness: a one-pole low-pass
    alpha = 1.0 - np.exp(-2 * np.pi * cutoff_hz / sr)
    tonal = lfilter([alpha], [1.0, alpha - 1.0], harmonic.samples).astype(np.float32)
    tonal /= max(float(np.abs(tonal).max()), 1e-6)
    beat = drums.samples / max(float(np.abs(drums.samples).max()), 1e-6)
    mix = (1.0 - 0.3 * factors.energy) * tonal + (0.15 + 0.6 * factors.energy) * beat
    mix *= (0.3 + 0.6 * factors.energy) / max(float(np.abs(mix).max()), 1e-6)  # loudness follows energy
    fade = min(n_samples // 2, int(0.01 * sr))
    if fade:
        ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
        mix[:fade] *= ramp
        mix[-fade:] *= ramp[::-1]
    return mix.astype(np.float32)
