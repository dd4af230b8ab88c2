"""The study's trial plan: pure functions, no database. Every rater slot's trial list follows from
``(DesignSpec, slot)`` through seeded ``numpy.random.Generator`` s, so the plan is reproducible by
whoever holds the stored spec. Its ``plan_key`` (a random secret drawn when the study is created and
kept in the database) is mixed into every generator beside the seed: a rater who knows the study's
config, seed included, still cannot rebuild which condition each of their files is.

Structure (``U`` = clips × condition pairs, ``T`` = normal trials per rater, ``M = 2U`` comparisons
counting both sides, ``L = lcm(M, T)``):

* **Sheets.** The ``M`` oriented comparisons (clip, condition on side A, condition on side B) are laid
  out in a cyclic order in which a clip's two orientations sit ``U`` places apart, alternating sides,
  repeated ``L / M`` times and cut into ``S = L / T`` sheets of ``T`` consecutive trials. A sheet never
  holds the same (clip, pair) twice (``T <= U``), and over one *replicate* of ``S`` consecutive slots
  every oriented comparison is shown exactly ``L / M`` times: every pair for every clip equally
  often, every candidate equally often on each side.
* **Order.** Each sheet is shown in the rows of a Williams design (a balanced Latin square: ``W = T``
  rows for even ``T``, ``2T`` for odd), so over one *block* of ``S · W`` slots every comparison sits
  at every normal-trial position equally often and every trial follows every other trial of its
  sheet equally often.
* **Extras** per slot: a practice trial first (on its own clip, index ``n_stimuli``, that no scored
  trial uses), swapped-side repeats of earlier trials, and attention
  checks spread over the session with the correct side alternating across slots. The real
  soundtrack of a noise/silence check is ``attention_reference`` when a spec names one (studies
  stored so), else drawn per check with the seed from the pairs' conditions, so a check's music
  file says nothing about which condition it is.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from vmnet_core.errors import VmnetError

CHECK_CONDITION = "__attention__"  # the obviously wrong soundtrack (noise or silence) of a catch trial
MAX_DEFAULT_TRIALS = 24
PLAN_KEY = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class DesignSpec:
    """What the planner needs; stored with the study so later slots follow the same plan."""

    n_stimuli: int
    pairs: tuple[tuple[str, str], ...]
    trials_per_participant: int = 0  # 0 = min(U, 24)
    attention_checks: int = 0
    attention_kind: str = "noise"  # noise | silence | instructed
    # the real soundtrack of every noise/silence check; "" = drawn per check from the pairs' conditions
    attention_reference: str = ""
    swapped_repeats: int = 0
    practice: bool = True
    seed: int = 0
    # the practice trial uses clip ``n_stimuli``, one kept out of every scored trial (False: a
    # study stored before practice clips existed, whose practice trial reuses a scored clip)
    practice_clip: bool = False
    # 32 hex digits drawn at creation (study.create.design_for), never shown to raters; "" = a study
    # stored before plan keys, which plans exactly as before
    plan_key: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "pairs", tuple((str(a), str(b)) for a, b in self.pairs))
        if self.plan_key and not PLAN_KEY.fullmatch(self.plan_key):
            raise VmnetError("A plan key is 32 hexadecimal digits (or empty for a study stored before keys).")
        if self.n_stimuli < 1:
            raise VmnetError("A study needs at least one video clip.")
        if not self.pairs:
            raise VmnetError("A study needs at least one condition pair.")
        if self.trials_per_participant > self.n_comparisons:
            raise VmnetError(
                f"trials_per_participant ({self.trials_per_participant}) exceeds the {self.n_comparisons} "
                "distinct (clip, condition pair) comparisons; lower it or add clips.")
        if self.swapped_repeats > self.normal_trials:
            raise VmnetError("swapped_repeats cannot exceed the number of normal trials per participant.")

    @property
    def entropy(self) -> tuple[int, ...]:
        """What every generator of the plan is seeded with, before its own keys: the seed and the
        plan key (the seed alone for a spec without one)."""
        return (self.seed, int(self.plan_key, 16)) if self.plan_key else (self.seed,)

    @property
    def conditions(self) -> tuple[str, ...]:
        """The conditions of the pairs, each once, in the order they first appear."""
        return tuple(dict.fromkeys(c for pair in self.pairs for c in pair))

    @property
    def n_comparisons(self) -> int:
        """U: distinct (clip, condition pair) comparisons."""
        return self.n_stimuli * len(self.pairs)

    @property
    def normal_trials(self) -> int:
        """T: normal trials per rater."""
        return self.trials_per_participant or min(self.n_comparisons, MAX_DEFAULT_TRIALS)

    @property
    def replicate_size(self) -> int:
        """S: consecutive slots after which every oriented comparison was shown equally often."""
        return math.lcm(2 * self.n_comparisons, self.normal_trials) // self.normal_trials

    @property
    def block_size(self) -> int:
        """S · W: consecutive slots after which trial order is balanced too."""
        return self.replicate_size * len(williams_rows(self.normal_trials))

    @property
    def trials_per_slot(self) -> int:
        return self.normal_trials + self.swapped_repeats + self.attention_checks + int(self.practice)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["pairs"] = [list(p) for p in self.pairs]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DesignSpec:
        d = dict(d)
        d["pairs"] = tuple(tuple(p) for p in d["pairs"])
        return cls(**d)


@dataclass
class PlannedTrial:
    """One trial in a slot's list; ``stimulus`` indexes the study's clip list."""

    position: int
    stimulus: int
    condition_a: str  # shown first / left
    condition_b: str  # shown second / right
    kind: str  # normal | attention | repeat_swapped | practice
    repeat_of: int | None = None  # position of the trial this one repeats with sides swapped
    expected: str | None = None  # "A" or "B" for attention checks
    instructed: bool = False  # an instructed-response check (the UI shows an instruction)
    order_index: int | None = None  # rank among the slot's normal trials (Williams position)
    sheet_item: int | None = field(default=None, repr=False)  # label of the trial inside its sheet

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PlannedTrial:
        return cls(**d)


def williams_rows(n: int) -> list[list[int]]:
    """Rows of a Williams design for ``n`` treatments: each treatment once per position per ``n`` rows
    and each ordered pair of distinct treatments adjacent equally often (``n`` rows if ``n`` is even,
    ``2n`` if odd, the second half mirrored)."""
    if n < 1:
        raise ValueError("n must be positive")
    first = [0] + [(k + 1) // 2 if k % 2 else n - k // 2 for k in range(1, n)]
    rows = [[(x + r) % n for x in first] for r in range(n)]
    if n % 2:
        rows += [row[::-1] for row in rows]
    return rows


def _rng(*keys: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(k) for k in keys]))


def slot_seed(spec: DesignSpec, slot: int) -> int:
    """The stored per-slot seed (drives the placement of that slot's extras)."""
    return int(np.random.SeedSequence([*spec.entropy, 1, slot]).generate_state(1)[0] & 0x7FFFFFFF)


def _sheets(spec: DesignSpec, block: int) -> list[list[tuple[int, str, str]]]:
    """The block's S sheets of T oriented comparisons (stimulus, condition A, condition B)."""
    n, pairs, t = spec.n_stimuli, spec.pairs, spec.normal_trials
    n_pairs, u = len(pairs), spec.n_comparisons
    rng = _rng(*spec.entropy, 0, block)
    stim_perm = rng.permutation(n)
    pair_perm = rng.permutation(n_pairs)
    flip = int(rng.integers(2))
    forward, backward = [], []
    for i in range(u):
        stim = int(stim_perm[i % n])
        a, b = pairs[int(pair_perm[(i // n + i % n) % n_pairs])]
        first, second = ((a, b), (b, a)) if (i + flip) % 2 == 0 else ((b, a), (a, b))
        forward.append((stim, *first))
        backward.append((stim, *second))
    cycle = forward + backward
    length = math.lcm(len(cycle), t)
    start = int(rng.integers(len(cycle)))  # where the first sheet starts in the cycle
    sequence = [cycle[(start + k) % len(cycle)] for k in range(length)]
    return [sequence[s * t:(s + 1) * t] for s in range(length // t)]


def _normal_trials(spec: DesignSpec, slot: int) -> list[PlannedTrial]:
    block, j = divmod(slot, spec.block_size)
    sheets = _sheets(spec, block)
    rows = williams_rows(spec.normal_trials)
    rng = _rng(*spec.entropy, 2, block)
    row_order = rng.permutation(len(rows))
    labels = [rng.permutation(spec.normal_trials) for _ in sheets]  # sheet item -> Williams label
    s, w = j % len(sheets), int(row_order[j // len(sheets)])
    by_label = {int(label): item for item, label in enumerate(labels[s])}
    trials = []
    for rank, label in enumerate(rows[w]):
        item = by_label[label]
        stim, a, b = sheets[s][item]
        trials.append(PlannedTrial(position=-1, stimulus=stim, condition_a=a, condition_b=b, kind="normal",
                                   order_index=rank, sheet_item=item))
    return trials


def check_music(spec: DesignSpec, slot: int, check: int) -> str:
    """The condition whose soundtrack plays against the noise/silence of attention check ``check``
    (0-based) of ``slot``: the spec's ``attention_reference`` when it names one, else one of the
    pairs' conditions drawn with the seed (its own generator, so the rest of the plan is unchanged)."""
    if spec.attention_reference:
        return spec.attention_reference
    conditions = spec.conditions
    return conditions[int(_rng(*spec.entropy, 3, slot, check).integers(len(conditions)))]


def plan_slot(spec: DesignSpec, slot: int) -> list[PlannedTrial]:
    """The ordered trial list of rater slot ``slot`` (0, 1, 2, ...): practice, normal trials in
    Williams order, swapped repeats and attention checks inserted; positions are 0-based."""
    if slot < 0:
        raise ValueError("slot must be non-negative")
    normal = _normal_trials(spec, slot)
    rng = np.random.default_rng(slot_seed(spec, slot))
    sequence: list[PlannedTrial] = list(normal)

    # Swapped repeats: originals from the first part of the session, each repeat placed later with
    # at least one other trial in between where possible.
    t = len(normal)
    pool = np.arange(max(1, (t + 1) // 2)) if spec.swapped_repeats <= (t + 1) // 2 else np.arange(t)
    originals = sorted(rng.choice(pool, size=spec.swapped_repeats, replace=False).tolist())
    repeated: dict[int, PlannedTrial] = {}  # id(repeat) -> original
    for k in originals:
        orig = normal[k]
        repeat = PlannedTrial(position=-1, stimulus=orig.stimulus, condition_a=orig.condition_b,
                              condition_b=orig.condition_a, kind="repeat_swapped")
        repeated[id(repeat)] = orig
        here = sequence.index(orig)
        low = min(here + 2, len(sequence))
        spot = int(rng.integers(low, len(sequence) + 1))
        sequence.insert(spot, repeat)

    # Attention checks spread evenly; the correct side alternates over checks and slots.
    for k in range(spec.attention_checks):
        expected = "A" if (slot + k) % 2 == 0 else "B"
        stim = (slot * max(spec.attention_checks, 1) + k) % spec.n_stimuli
        if spec.attention_kind == "instructed":
            a, b = spec.pairs[(slot + k) % len(spec.pairs)]
            if rng.integers(2):
                a, b = b, a
            check = PlannedTrial(position=-1, stimulus=stim, condition_a=a, condition_b=b, kind="attention",
                                 expected=expected, instructed=True)
        else:
            music = check_music(spec, slot, k)
            a, b = (music, CHECK_CONDITION) if expected == "A" else (CHECK_CONDITION, music)
            check = PlannedTrial(position=-1, stimulus=stim, condition_a=a, condition_b=b, kind="attention",
                                 expected=expected)
        centre = (k + 1) * len(sequence) / (spec.attention_checks + 1)
        jitter = max(1, len(sequence) // (2 * (spec.attention_checks + 1)))
        spot = int(np.clip(round(centre + rng.integers(-jitter, jitter + 1)), 1, len(sequence)))
        sequence.insert(spot, check)

    if spec.practice:
        a, b = spec.pairs[0] if slot % 2 == 0 else spec.pairs[0][::-1]
        stimulus = spec.n_stimuli if spec.practice_clip else slot % spec.n_stimuli
        sequence.insert(0, PlannedTrial(position=-1, stimulus=stimulus, condition_a=a,
                                        condition_b=b, kind="practice"))

    for pos, trial in enumerate(sequence):
        trial.position = pos
    for trial in sequence:
        if id(trial) in repeated:
            trial.repeat_of = repeated[id(trial)].position
    return sequence


def plan_slots(spec: DesignSpec, first: int, count: int) -> list[list[PlannedTrial]]:
    """Trial lists of slots ``first .. first + count - 1``."""
    return [plan_slot(spec, slot) for slot in range(first, first + count)]


def design_summary(spec: DesignSpec) -> dict[str, int]:
    """Sizes a study runner plans with: comparisons, trials per rater, replicate and block sizes."""
    return {
        "clips": spec.n_stimuli,
        "condition_pairs": len(spec.pairs),
        "comparisons": spec.n_comparisons,
        "normal_trials_per_rater": spec.normal_trials,
        "trials_per_rater": spec.trials_per_slot,
        "raters_per_replicate": spec.replicate_size,
        "raters_per_block": spec.block_size,
    }
