"""How long a rater's session takes, from the clips' real lengths: what the consent text's
``{minutes}`` and ``{play_minutes}`` say (instead of a number written by hand)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from study.design import DesignSpec

ANSWER_S = 15.0  # per trial, on top of playing both soundtracks once: switching back, choosing, saving
INTRO_S = 60.0  # reading the consent and the instructions


@dataclass(frozen=True)
class SessionTime:
    """A session's expected length in seconds: ``play_s`` playing both soundtracks of every trial
    once, ``total_s`` with the answers and the introduction added."""

    play_s: float
    total_s: float

    @property
    def minutes(self) -> int:
        return max(1, math.ceil(self.total_s / 60))

    @property
    def play_minutes(self) -> int:
        return max(1, math.ceil(self.play_s / 60))


def session_time(spec: DesignSpec, durations: list[float]) -> SessionTime:
    """The expected session of a rater of ``spec`` whose clips last ``durations`` seconds (in the
    study's clip order; the practice clip, when it has its own, last): every trial plays a clip
    twice, one of the scored clips on average, the practice trial its own clip."""
    scored = [float(d) for d in durations[:spec.n_stimuli]]
    mean = sum(scored) / len(scored) if scored else 0.0
    has_own = spec.practice and spec.practice_clip and len(durations) > spec.n_stimuli
    practice_s = float(durations[spec.n_stimuli]) if has_own else mean if spec.practice else 0.0
    play_s = 2 * (mean * (spec.trials_per_slot - int(spec.practice)) + practice_s)
    return SessionTime(play_s, play_s + ANSWER_S * spec.trials_per_slot + INTRO_S)


def with_session_time(text: str, time: SessionTime) -> str:
    """``text`` with ``{minutes}`` and ``{play_minutes}`` filled in (other braces left as they are)."""
    return text.replace("{minutes}", str(time.minutes)).replace("{play_minutes}", str(time.play_minutes))
