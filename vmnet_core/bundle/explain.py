"""Why a track fits a video, in words: named cue pairs such as "fast cuts ↔ 132 BPM".

A pure function over the two sides' cues (:class:`~vmnet_core.features.video_cues.VideoCues`,
:class:`~vmnet_core.features.music_cues.MusicCues`, or their ``as_dict()`` forms as stored in a
catalog). The mapping (docs/cues.md) follows the two axes that music-and-picture studies keep
finding:

- **arousal**: video cut rate, motion energy, visual rhythm ↔ music tempo, onset rate, loudness;
- **valence**: video brightness, warmth, colourfulness ↔ music mode, spectral brightness.

Each cue is placed on a −1 … +1 scale between a documented low and high anchor (:data:`ANCHORS`).
A dimension explains a pair when both sides lean the same way by at least :data:`LEAN`; the phrase
names each side's strongest cue(s) on that dimension. A visual pulse on the music's beat is its
own phrase: the music repeats at the cut period or its halves or quarters
(:func:`~vmnet_core.features.pulse.pulse_fit` ≥ :data:`PULSE_EXPLAIN_MIN`), or, for cues stored
before the pulse profile, the tracked tempo matches it (within 6 %, or at half or double).
Pairs that share no lean get no phrase.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, is_dataclass
from typing import Any

from vmnet_core.features.pulse import pulse_fit

# cue → (value at −1, value at +1): linear between, clipped outside
ANCHORS: dict[str, tuple[float, float]] = {
    "cut_rate": (6.0, 30.0),            # cuts per minute
    "motion_energy": (0.04, 0.25),      # full scale per second
    "rhythm_bpm": (40.0, 120.0),        # visual repetitions per minute (only when rhythm_strength ≥ 0.3)
    "brightness": (0.25, 0.6),          # luma 0 … 1
    "warmth": (0.0, 0.3),               # (R − B) / 255
    "colourfulness": (25.0, 70.0),      # Hasler–Süsstrunk M
    "tempo_bpm": (80.0, 130.0),         # beats per minute
    "onset_rate": (1.5, 4.5),           # onsets per second
    "loudness_db": (-28.0, -12.0),      # dBFS
    "brightness_hz": (1200.0, 2800.0),  # spectral centroid
}
VIDEO_CUES = {"arousal": ("cut_rate", "motion_energy", "rhythm_bpm"),
              "valence": ("brightness", "warmth", "colourfulness")}
MUSIC_CUES = {"arousal": ("tempo_bpm", "onset_rate", "loudness_db"),
              "valence": ("mode", "brightness_hz")}
LEAN = 0.25               # a side leans on a dimension when its mean cue score is at least this far from 0
RHYTHM_MIN_STRENGTH = 0.3
PULSE_TOLERANCE = 0.06    # relative tempo difference that still counts as the same pulse
PULSE_EXPLAIN_MIN = 1.5   # a pulse fit (the music's periodicity in standard deviations) this high is "on the beat"


@dataclass(frozen=True)
class MatchReason:
    """One reason a track fits a video."""

    dimension: str      # "arousal", "valence" or "pulse"
    direction: str      # "high" or "low" ("same" for pulse)
    video: str          # e.g. "fast cuts"
    music: str          # e.g. "132 BPM"

    @property
    def phrase(self) -> str:
        """``"video ↔ music"``, e.g. ``"fast cuts ↔ 132 BPM"``."""
        return f"{self.video} ↔ {self.music}"


def cue_score(name: str, value: float) -> float:
    """A cue's place between its :data:`ANCHORS`: −1 (low anchor or below) … +1 (high or above)."""
    low, high = ANCHORS[name]
    return float(min(1.0, max(-1.0, 2.0 * (value - low) / (high - low) - 1.0)))


def side_scores(cues: Mapping[str, Any], side: str) -> dict[str, dict[str, float]]:
    """``{dimension: {cue: score}}`` for one side (``"video"`` or ``"music"``); cues that are
    missing, or uninformative (no visual rhythm, no key), are left out."""
    table = VIDEO_CUES if side == "video" else MUSIC_CUES
    out: dict[str, dict[str, float]] = {}
    for dimension, names in table.items():
        scores = {}
        for name in names:
            if name == "mode":
                if cues.get("mode") in ("major", "minor"):
                    scores[name] = 1.0 if cues["mode"] == "major" else -1.0
            elif name == "rhythm_bpm":
                if cues.get("rhythm_bpm") and cues.get("rhythm_strength", 0.0) >= RHYTHM_MIN_STRENGTH:
                    scores[name] = cue_score(name, float(cues["rhythm_bpm"]))
            elif cues.get(name) is not None:
                scores[name] = cue_score(name, float(cues[name]))
        out[dimension] = scores
    return out


def explain_match(video_cues: Any, music_cues: Any, max_reasons: int = 3) -> list[MatchReason]:
    """Named reasons a track fits a video, strongest first (at most ``max_reasons``; may be empty).

    Parameters
    ----------
    video_cues : VideoCues or mapping with its field names
    music_cues : MusicCues or mapping with its field names
    """
    video, music = _as_mapping(video_cues), _as_mapping(music_cues)
    reasons: list[tuple[float, MatchReason]] = []
    pulse = _pulse_reason(video, music)
    if pulse is not None:
        reasons.append((2.0, pulse))
    video_scores, music_scores = side_scores(video, "video"), side_scores(music, "music")
    for dimension in ("arousal", "valence"):
        v, m = video_scores[dimension], music_scores[dimension]
        if not v or not m:
            continue
        v_mean, m_mean = sum(v.values()) / len(v), sum(m.values()) / len(m)
        if min(abs(v_mean), abs(m_mean)) < LEAN or (v_mean > 0) != (m_mean > 0):
            continue
        sign = 1.0 if v_mean > 0 else -1.0
        words = (_video_words(dimension, v, video, sign), _music_words(dimension, m, music, sign))
        if pulse is not None and dimension == "arousal" and words[1].endswith("BPM"):
            continue  # the pulse phrase already names the tempo
        reasons.append((min(abs(v_mean), abs(m_mean)),
                        MatchReason(dimension, "high" if sign > 0 else "low", *words)))
    reasons.sort(key=lambda pair: -pair[0])
    return [reason for _, reason in reasons[:max_reasons]]


def explain_phrases(video_cues: Any, music_cues: Any, max_reasons: int = 3) -> list[str]:
    """:func:`explain_match` as phrases, e.g. ``["fast cuts ↔ 132 BPM", "dark, cold grading ↔ minor key"]``."""
    return [reason.phrase for reason in explain_match(video_cues, music_cues, max_reasons)]


# ---------------------------------------------------------------------------------------------


def _as_mapping(cues: Any) -> Mapping[str, Any]:
    if is_dataclass(cues) and not isinstance(cues, type):
        return asdict(cues)
    if isinstance(cues, Mapping):
        return cues
    raise TypeError(f"cues must be a cue dataclass or a mapping, not {type(cues).__name__}")


def _leaning(scores: dict[str, float], sign: float) -> list[str]:
    """Cue names leaning the way of ``sign`` by at least LEAN, strongest first."""
    names = [name for name, score in scores.items() if score * sign >= LEAN]
    return sorted(names, key=lambda name: -scores[name] * sign)


def _video_words(dimension: str, scores: dict[str, float], cues: Mapping[str, Any], sign: float) -> str:
    names = _leaning(scores, sign)[:2] or [max(scores, key=lambda n: scores[n] * sign)]
    if dimension == "arousal":
        words = {"cut_rate": ("fast cuts", "long takes"), "motion_energy": ("lively camera", "calm camera"),
                 "rhythm_bpm": ("quick visual rhythm", "slow visual rhythm")}
        return ", ".join(words[name][0 if sign > 0 else 1] for name in names)
    words = {"brightness": ("bright", "dark"), "warmth": ("warm", "cold"), "colourfulness": ("vivid", "muted")}
    return ", ".join(words[name][0 if sign > 0 else 1] for name in names) + " grading"


def _music_words(dimension: str, scores: dict[str, float], cues: Mapping[str, Any], sign: float) -> str:
    names = _leaning(scores, sign)[:2] or [max(scores, key=lambda n: scores[n] * sign)]
    parts = []
    for name in names:
        if name == "tempo_bpm":
            parts.append(f"{float(cues['tempo_bpm']):.0f} BPM")
        elif name == "onset_rate":
            parts.append("busy rhythm" if sign > 0 else "sparse notes")
        elif name == "loudness_db":
            parts.append("loud mix" if sign > 0 else "soft mix")
        elif name == "mode":
            parts.append(f"{cues['mode']} key")
        elif name == "brightness_hz":
            parts.append("bright timbre" if sign > 0 else "mellow timbre")
    # the tempo, when named, goes last so the phrase reads "..., 132 BPM"
    return ", ".join(sorted(parts, key=lambda p: p.endswith("BPM")))


def rhythm_period_s(video_cues: Mapping[str, Any] | None) -> float | None:
    """Seconds between a video's rhythmic cuts or pulses; None when it has no clear rhythm."""
    if not video_cues or float(video_cues.get("rhythm_strength") or 0.0) < RHYTHM_MIN_STRENGTH:
        return None
    rhythm = float(video_cues.get("rhythm_bpm") or 0.0)
    return 60.0 / rhythm if rhythm > 0 else None


def _pulse_reason(video: Mapping[str, Any], music: Mapping[str, Any]) -> MatchReason | None:
    period, tempo = rhythm_period_s(video), float(music.get("tempo_bpm") or 0.0)
    if period is None:
        return None
    what = "cuts" if float(video.get("cut_rate", 0.0)) >= 0.5 * 60.0 / period else "visual pulse"
    tempo_agrees = tempo > 0 and any(abs(60.0 / period * factor - tempo) <= PULSE_TOLERANCE * tempo
                                     for factor in (1.0, 2.0, 0.5, 4.0, 0.25))
    if music.get("pulse_profile"):  # the music's own periodicity decides (its tracked tempo may be off)
        fit = pulse_fit(period, music["pulse_profile"])
        if fit is None or fit < PULSE_EXPLAIN_MIN:
            return None
        return MatchReason("pulse", "same", f"{what} every {period:.2g} s", f"{tempo:.0f} BPM" if tempo_agrees else "its beat")
    if not tempo_agrees:
        return None
    return MatchReason("pulse", "same", f"{what} every {period:.2g} s", f"{tempo:.0f} BPM")
