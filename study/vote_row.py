"""The study's vote row: one stored vote joined with its trial, clip and both candidates.

The one definition that :func:`study.service.vote_rows` returns, the votes CSV writes (its columns
are ``VOTE_COLUMNS``, the field order below) and :mod:`study.stats` reads.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True)
class VoteRow:
    """One vote, long format (one row per vote, in the order the rater saw the trials)."""

    study: str  # the study's name
    participant: int  # the participant's number, never the secret token
    trial: int  # the trial's id
    position: int  # 0-based position of the trial in the session (the practice trial is 0)
    kind: str  # practice | normal | attention | repeat_swapped
    stimulus: str  # the clip's name
    condition_a: str  # condition of soundtrack A (shown first / left)
    condition_b: str
    track_a: str  # title of track A
    track_b: str
    choice: str  # A | B | none
    winner: str  # the chosen condition, or none
    strength: int | None  # 1-5 when the study asks for it
    response_ms: int | None  # time from showing the trial to the answer
    played_a_to_end: bool
    played_b_to_end: bool
    both_played: bool
    expected_choice: str | None  # an attention check's correct side, else None
    repeat_of: int | None  # a swapped repeat's original position, else None
    voted_at: str  # ISO 8601 time the vote was stored
    listened_a_s: float | None = None  # seconds of soundtrack A the page reports as played (seeking excluded)
    listened_b_s: float | None = None
    duration_s: float | None = None  # the clip's length: each soundtrack's length
    served_at: str = ""  # ISO 8601 time the trial was first served to the rater

    def as_dict(self) -> dict[str, Any]:
        """The row as {column: value}, in ``VOTE_COLUMNS`` order."""
        return asdict(self)


VOTE_COLUMNS: list[str] = [f.name for f in fields(VoteRow)]
