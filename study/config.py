"""``StudyConfig``: what a study shows and to whom, read from a TOML file (reference: docs/study.md)."""

from __future__ import annotations

import itertools
import math
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from study.design import CHECK_CONDITION
from vmnet_core.errors import VmnetError

DEFAULT_CONSENT = (
    "You are invited to a short study on music for video. You will watch short clips, each with two "
    "different soundtracks, and say which soundtrack fits the video better. It takes about {minutes} "
    "minutes (the clips alone play for about {play_minutes} minutes). We store your answers, listening and "
    "response times, but no name or contact details. Taking part is voluntary; you may stop at any time by "
    "closing the page."
)
DEFAULT_INSTRUCTIONS = (
    "Each trial shows one clip with two soundtracks, A and B. Press Play (or the space bar) and switch "
    "between the soundtracks with the A and B buttons (or the A and B keys): the clip goes on at the same "
    "moment with the other soundtrack. Listen to almost all of each soundtrack (the answer unlocks then; "
    "jumping ahead does not count), then choose the one that fits the video better, or 'no preference'. "
    "Please use headphones or speakers at a comfortable volume. The first trial is practice, on a clip of "
    "its own."
)
DEFAULT_DECLINE = ("You chose not to take part. Nothing about you was stored. You may close this page; "
                   "if you came from a crowd platform, please return the study there.")
DEFAULT_INSTRUCTION_CHECK = "Attention check: for this clip, please choose soundtrack {side}, whatever you think."
ATTENTION_KINDS = ("noise", "silence", "instructed")
TIE_RULES = ("drop", "half")
# names the vote table already uses: "none" is the winner of a tie, CHECK_CONDITION the wrong
# soundtrack of an attention check
RESERVED_CONDITIONS = ("none", CHECK_CONDITION)


@dataclass
class VideoSelection:
    """Which clips the study uses.

    source: ``"split"`` (``count`` clips drawn with the study seed from the bundle's ``split``) or
    ``"folder"`` (every video in ``folder``, or ``count`` of them).
    """

    source: str = "split"
    split: str = "test"
    count: int = 10
    folder: str = ""


@dataclass
class AttentionChecks:
    """Catch trials: ``noise``/``silence`` put a real soundtrack against an obviously wrong one;
    ``instructed`` asks the rater to pick a named side.

    ``reference``: "" (the default) draws the real soundtrack per check, with the seed, from the
    compared conditions; a named condition plays in every check, which tells raters which of their
    trials' files is that condition."""

    count: int = 2
    kind: str = "noise"
    reference: str = ""  # the real soundtrack of every noise/silence check; "" = drawn per check
    instruction: str = DEFAULT_INSTRUCTION_CHECK


@dataclass
class Screening:
    """Rules that mark a finished rater as excluded from the analysis."""

    max_attention_failure_rate: float = 0.15  # exclude when failures / checks is above this
    min_repeat_consistency: float = 0.0  # exclude when agreeing swapped repeats / repeats is below this
    # exclude when the seconds played (as the page reports them, seeking forward excluded) add up to
    # less than this share of both soundtracks' lengths over the rater's trials (votes without a report are not judged)
    min_listened_fraction: float = 0.5
    min_response_ms: int = 0  # exclude when the rater's median response time is below this (0: off)


@dataclass
class MediaSettings:
    """How each (clip, soundtrack) pair is premuxed (vmnet_core.media.mux_music_onto_video)."""

    fade_s: float = 2.0
    loudness_lufs: float = -16.0
    max_duration_s: float = 30.0


@dataclass
class StudyConfig:
    """A whole study's settings; every field has a default except ``name``."""

    name: str
    title: str = "Which soundtrack fits the video better?"
    conditions: list[str] = field(default_factory=lambda: ["ground_truth", "vmnet", "random"])
    pairs: list[list[str]] = field(default_factory=list)  # default: every pair of conditions
    headline: list[str] = field(default_factory=list)  # pair for the mixed model; default: the first pair
    trials_per_participant: int = 0  # normal trials; 0 = every (clip, pair) once, at most 24
    participants: int = 0  # planned raters whose plans are stored up front; 0 = one balanced replicate
    close_when_full: bool = False  # refuse joins beyond ``participants`` instead of extending the plan
    # a rater who has not finished this many seconds after joining keeps their session, and their
    # slot is planned again for the next rater; 0 = three times the session's expected length, at least 30 minutes
    slot_hold_s: float = 0.0
    swapped_repeats: int = 1
    practice: bool = True  # one practice trial first, on a clip of its own that no scored trial uses
    practice_clip: str = ""  # the clip (by name) kept for practice; empty: an extra clip drawn, or the last one
    strength_scale: bool = True  # ask for an optional 1-5 strength
    tie_rule: str = "drop"
    seed: int = 0
    completion_code: str = ""  # a fixed code (e.g. the crowd platform's); empty = a random code per rater
    completion_url: str = ""  # where to send a finished rater (e.g. Prolific's); "{code}" is replaced by the code
    # a vote comes no sooner than this share of both soundtracks' lengths after the trial was served
    min_listen_fraction: float = 0.8
    joins_per_client: int = 10  # joins one client (IP address) may make within joins_window_s; 0 = no limit
    joins_window_s: float = 3600.0
    consent_text: str = DEFAULT_CONSENT  # {minutes} and {play_minutes} are filled in from the clips' lengths
    contact: str = ""  # the researcher's contact (name, institution, e-mail), shown with consent and on decline
    decline_text: str = DEFAULT_DECLINE  # shown when a rater does not agree
    instructions_text: str = DEFAULT_INSTRUCTIONS
    models: dict[str, str] = field(default_factory=dict)  # condition -> bundle dir, for model conditions
    videos: VideoSelection = field(default_factory=VideoSelection)
    attention: AttentionChecks = field(default_factory=AttentionChecks)
    screening: Screening = field(default_factory=Screening)
    media: MediaSettings = field(default_factory=MediaSettings)

    def __post_init__(self) -> None:
        self.validate()

    @property
    def condition_pairs(self) -> list[tuple[str, str]]:
        """The compared pairs, as given or every pair in ``conditions`` order."""
        if self.pairs:
            return [(a, b) for a, b in self.pairs]
        return list(itertools.combinations(self.conditions, 2))

    @property
    def headline_pair(self) -> tuple[str, str]:
        return (self.headline[0], self.headline[1]) if self.headline else self.condition_pairs[0]

    @property
    def attention_reference(self) -> str:
        """The fixed real soundtrack of noise/silence checks; "" = drawn per check (study.design)."""
        return self.attention.reference

    def validate(self) -> None:
        if not str(self.name).strip():
            raise VmnetError("The study config needs a non-empty name.")
        if len(self.conditions) < 2 or len(set(self.conditions)) != len(self.conditions):
            raise VmnetError("The study config needs at least two different conditions.")
        for condition in self.conditions:
            if not isinstance(condition, str) or not condition.strip():
                raise VmnetError(f"Condition names must be non-empty text, not {condition!r}.")
            if condition.strip().lower() in RESERVED_CONDITIONS:
                raise VmnetError(f"The condition name {condition!r} is reserved (\"none\" marks a tie and "
                                 f"{CHECK_CONDITION!r} an attention check's wrong soundtrack); rename it.")
        for pair in self.pairs:
            if len(pair) != 2 or pair[0] == pair[1] or any(c not in self.conditions for c in pair):
                raise VmnetError(f"The pair {pair} must name two different conditions from {self.conditions}.")
        if len({frozenset(p) for p in self.condition_pairs}) != len(self.condition_pairs):
            raise VmnetError("The study config lists the same condition pair twice.")
        if self.headline and frozenset(self.headline) not in {frozenset(p) for p in self.condition_pairs}:
            raise VmnetError(f"The headline pair {self.headline} must be one of the compared pairs.")
        if self.tie_rule not in TIE_RULES:
            raise VmnetError(f"tie_rule must be one of {', '.join(TIE_RULES)}, not {self.tie_rule!r}.")
        if self.attention.kind not in ATTENTION_KINDS:
            raise VmnetError(f"attention.kind must be one of {', '.join(ATTENTION_KINDS)}, not {self.attention.kind!r}.")
        if self.attention.count and self.attention.kind != "instructed" and self.attention_reference \
                and self.attention_reference not in self.conditions:
            raise VmnetError(f"attention.reference {self.attention_reference!r} is not one of the conditions; "
                             "name one of them, or leave it empty to draw one per check.")
        if "{side}" not in self.attention.instruction:
            raise VmnetError("attention.instruction must contain {side} where the side to choose goes.")
        for name, value in (("trials_per_participant", self.trials_per_participant),
                            ("participants", self.participants), ("swapped_repeats", self.swapped_repeats),
                            ("attention.count", self.attention.count), ("videos.count", self.videos.count)):
            if value < 0:
                raise VmnetError(f"{name} cannot be negative.")
        if self.videos.source not in ("split", "folder"):
            raise VmnetError(f"videos.source must be 'split' or 'folder', not {self.videos.source!r}.")
        if not all(0 <= rate <= 1 for rate in (self.screening.max_attention_failure_rate,
                                                self.screening.min_repeat_consistency,
                                                self.screening.min_listened_fraction, self.min_listen_fraction)):
            raise VmnetError("The screening rates and min_listen_fraction must lie between 0 and 1.")
        if self.screening.min_response_ms < 0 or self.joins_per_client < 0 or not self.joins_window_s > 0:
            raise VmnetError("screening.min_response_ms and joins_per_client cannot be negative, "
                             "and joins_window_s must be above 0.")
        if not 0 <= self.slot_hold_s < math.inf:
            raise VmnetError("slot_hold_s must be 0 (three times the session's expected length) or a number "
                             "of seconds above 0.")
        check_completion_url(self.completion_url)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StudyConfig:
        """Build from a parsed TOML/JSON table; unknown keys are refused by name."""
        nested = {"videos": VideoSelection, "attention": AttentionChecks, "screening": Screening,
                  "media": MediaSettings}
        data = dict(data)
        _refuse_unknown(cls, data, "")
        for key, sub in nested.items():
            if key in data:
                if not isinstance(data[key], dict):
                    raise VmnetError(f"[{key}] in the study config must be a table.")
                _refuse_unknown(sub, data[key], f"{key}.")
                data[key] = sub(**data[key])
        if "name" not in data:
            raise VmnetError("The study config needs a name, e.g. name = \"vmnet-vs-random\".")
        try:
            return cls(**data)
        except TypeError as exc:
            raise VmnetError(f"The study config has a value of the wrong type: {exc}.") from exc


def check_completion_url(url: str) -> None:
    """Refuse a completion URL that is not empty or http(s), or holds a placeholder other than ``{code}``."""
    if not url:
        return
    if not url.startswith(("https://", "http://")) or any(c.isspace() for c in url):
        raise VmnetError(f"completion_url must be an http(s) address without spaces, not {url!r}.")
    if "{" in url.replace("{code}", "") or "}" in url.replace("{code}", ""):
        raise VmnetError("completion_url may hold only the placeholder {code} (the rater's completion code).")


def _refuse_unknown(cls, data: dict[str, Any], prefix: str) -> None:
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise VmnetError(f"Unknown study config key {prefix}{unknown[0]}; see docs/study.md for the keys.")


def load_config(path: str | Path) -> StudyConfig:
    """Read a study config from a TOML file."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError as exc:
        raise VmnetError(f"The study config {path} does not exist.") from exc
    except tomllib.TOMLDecodeError as exc:
        raise VmnetError(f"The study config {path} is not valid TOML: {exc}.") from exc
    return StudyConfig.from_dict(data)
