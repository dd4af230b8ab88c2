"""The trial planner's balance properties, checked exactly."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from study.design import CHECK_CONDITION, DesignSpec, PlannedTrial, plan_slot, williams_rows
from study.session_time import session_time, with_session_time
from vmnet_core.errors import VmnetError

PAIRS = (("ground_truth", "vmnet"), ("ground_truth", "random"), ("vmnet", "random"))


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6, 7, 8])
def test_williams_rows_balance_positions_and_carryover(n):
    rows = williams_rows(n)
    assert len(rows) == (n if n % 2 == 0 else 2 * n)
    per_cell = len(rows) // n
    for row in rows:
        assert sorted(row) == list(range(n))
    for pos in range(n):
        assert Counter(row[pos] for row in rows) == {t: per_cell for t in range(n)}
    follows = Counter((row[i], row[i + 1]) for row in rows for i in range(n - 1))
    if n > 1:
        expected = len(rows) * (n - 1) // (n * (n - 1))
        assert follows == {pair: expected for pair in itertools.permutations(range(n), 2)}


def _normal(trials):
    return [t for t in trials if t.kind == "normal"]


@pytest.mark.parametrize("n_stimuli,trials", [(5, 6), (4, 12), (3, 7), (6, 18)])
def test_replicate_shows_every_pair_per_clip_equally_often_on_each_side(n_stimuli, trials):
    spec = DesignSpec(n_stimuli=n_stimuli, pairs=PAIRS, trials_per_participant=trials, seed=11)
    s = spec.replicate_size
    times = spec.replicate_size * trials // (2 * spec.n_comparisons)
    for replicate in range(3):  # also across block boundaries
        shown = Counter()
        for slot in range(replicate * s, (replicate + 1) * s):
            normal = _normal(plan_slot(spec, slot))
            assert len(normal) == trials
            # no (clip, pair) twice for one rater
            assert len({(t.stimulus, frozenset((t.condition_a, t.condition_b))) for t in normal}) == trials
            shown.update((t.stimulus, t.condition_a, t.condition_b) for t in normal)
        expected = {(v, a, b): times for v in range(n_stimuli) for x, y in PAIRS for a, b in ((x, y), (y, x))}
        assert shown == expected


@pytest.mark.parametrize("n_stimuli,trials", [(5, 6), (3, 5)])
def test_block_balances_order_positions_and_carryover(n_stimuli, trials):
    spec = DesignSpec(n_stimuli=n_stimuli, pairs=PAIRS, trials_per_participant=trials, seed=5,
                      swapped_repeats=1, attention_checks=1, attention_reference="ground_truth")
    block = spec.block_size
    at_rank = Counter()
    for slot in range(block):
        for t in _normal(plan_slot(spec, slot)):
            at_rank[(t.stimulus, t.condition_a, t.condition_b, t.order_index)] += 1
    per_cell = block * trials // (2 * spec.n_comparisons * trials)
    assert set(at_rank.values()) == {per_cell}
    assert len(at_rank) == 2 * spec.n_comparisons * trials


def test_each_condition_equally_often_on_each_side_over_a_replicate():
    spec = DesignSpec(n_stimuli=4, pairs=PAIRS, trials_per_participant=6, seed=2)
    sides = Counter()
    for slot in range(spec.replicate_size):
        for t in _normal(plan_slot(spec, slot)):
            sides[(t.condition_a, "A")] += 1
            sides[(t.condition_b, "B")] += 1
    for cond in ("ground_truth", "vmnet", "random"):
        assert sides[(cond, "A")] == sides[(cond, "B")] > 0


def test_extras_repeats_attention_and_practice():
    spec = DesignSpec(n_stimuli=5, pairs=PAIRS, trials_per_participant=8, seed=9, swapped_repeats=2,
                      attention_checks=2, attention_reference="ground_truth")
    expected_sides = Counter()
    for slot in range(10):
        trials = plan_slot(spec, slot)
        assert [t.position for t in trials] == list(range(spec.trials_per_slot))
        assert trials[0].kind == "practice"
        repeats = [t for t in trials if t.kind == "repeat_swapped"]
        assert len(repeats) == 2
        for r in repeats:
            orig = trials[r.repeat_of]
            assert orig.kind == "normal" and r.position > orig.position + 1
            assert (r.stimulus, r.condition_a, r.condition_b) == (orig.stimulus, orig.condition_b, orig.condition_a)
        checks = [t for t in trials if t.kind == "attention"]
        assert len(checks) == 2
        for c in checks:
            right = c.condition_a if c.expected == "A" else c.condition_b
            wrong = c.condition_b if c.expected == "A" else c.condition_a
            assert (right, wrong) == ("ground_truth", CHECK_CONDITION)
            expected_sides[c.expected] += 1
            assert c.position > 0
    assert expected_sides["A"] == expected_sides["B"]


def test_the_practice_trial_has_a_clip_of_its_own():
    spec = DesignSpec(n_stimuli=3, pairs=PAIRS, seed=2, swapped_repeats=1, attention_checks=1,
                      attention_reference="ground_truth", practice_clip=True)
    for slot in range(12):
        trials = plan_slot(spec, slot)
        assert trials[0].kind == "practice" and trials[0].stimulus == 3  # the clip after the scored ones
        assert all(t.stimulus < 3 for t in trials[1:])
    legacy = DesignSpec.from_dict({k: v for k, v in spec.to_dict().items() if k != "practice_clip"})
    assert not legacy.practice_clip and plan_slot(legacy, 4)[0].stimulus == 4 % 3  # studies stored before


def test_the_consent_minutes_come_from_the_clips_lengths():
    spec = DesignSpec(n_stimuli=2, pairs=PAIRS, swapped_repeats=1, attention_checks=1,
                      attention_reference="ground_truth", practice_clip=True)
    assert spec.trials_per_slot == 9  # 6 comparisons + repeat + check + practice
    time = session_time(spec, [10.0, 20.0, 12.0])  # two scored clips (mean 15 s), the practice clip 12 s
    assert time.play_s == 2 * (15.0 * 8 + 12.0) and time.total_s == time.play_s + 15.0 * 9 + 60.0
    assert (time.play_minutes, time.minutes) == (5, 8)
    text = with_session_time("About {minutes} min ({play_minutes} playing); {other} kept.", time)
    assert text == "About 8 min (5 playing); {other} kept."


def test_instructed_checks_use_real_pairs():
    spec = DesignSpec(n_stimuli=3, pairs=PAIRS, trials_per_participant=4, seed=1, attention_checks=1,
                      attention_kind="instructed", practice=False)
    checks = [t for slot in range(4) for t in plan_slot(spec, slot) if t.kind == "attention"]
    assert all(c.instructed and CHECK_CONDITION not in (c.condition_a, c.condition_b) for c in checks)
    assert Counter(c.expected for c in checks) == {"A": 2, "B": 2}


def test_plan_is_reproducible_and_seed_dependent():
    spec = DesignSpec(n_stimuli=5, pairs=PAIRS, trials_per_participant=6, seed=4, swapped_repeats=1)
    again = DesignSpec.from_dict(spec.to_dict())
    assert [t.to_dict() for t in plan_slot(spec, 3)] == [t.to_dict() for t in plan_slot(again, 3)]
    other = DesignSpec(n_stimuli=5, pairs=PAIRS, trials_per_participant=6, seed=5, swapped_repeats=1)
    plans = [[t.to_dict() for t in plan_slot(s, slot)] for s in (spec, other) for slot in range(4)]
    assert plans[:4] != plans[4:]


def test_too_many_trials_is_refused_plainly():
    with pytest.raises(VmnetError, match="trials_per_participant"):
        DesignSpec(n_stimuli=2, pairs=PAIRS[:1], trials_per_participant=3)


def _check_music(trials) -> list[str]:
    """The real soundtrack's condition of each noise/silence check in ``trials``."""
    return [c.condition_a if c.expected == "A" else c.condition_b for c in trials if c.kind == "attention"]


def test_without_a_reference_a_checks_music_side_is_drawn_from_every_condition_with_the_seed():
    spec = DesignSpec(n_stimuli=4, pairs=PAIRS, trials_per_participant=6, seed=13, swapped_repeats=1,
                      attention_checks=2, practice_clip=True)
    plans = [plan_slot(spec, slot) for slot in range(300)]
    music = Counter(m for trials in plans for m in _check_music(trials))
    assert set(music) == {"ground_truth", "vmnet", "random"} and min(music.values()) > 150, music
    for trials in plans[:20]:  # the noise side is still the check's wrong soundtrack
        for c in (t for t in trials if t.kind == "attention"):
            assert (c.condition_b if c.expected == "A" else c.condition_a) == CHECK_CONDITION
    again = DesignSpec.from_dict(spec.to_dict())  # as stored with the study
    assert [[t.to_dict() for t in plan_slot(again, slot)] for slot in range(300)] == [[t.to_dict() for t in p]
                                                                                    for p in plans]
    reseeded = DesignSpec.from_dict({**spec.to_dict(), "seed": 14})
    assert [_check_music(plan_slot(reseeded, slot)) for slot in range(40)] != [_check_music(p) for p in plans[:40]]
    # only the music side is drawn: the rest of the plan is the one a fixed reference gives
    fixed = DesignSpec.from_dict({**spec.to_dict(), "attention_reference": "ground_truth"})
    for slot in range(40):
        for drawn, kept in zip(plans[slot], plan_slot(fixed, slot), strict=True):
            d, k = drawn.to_dict(), kept.to_dict()
            if drawn.kind == "attention":
                d["condition_a" if drawn.expected == "A" else "condition_b"] = "ground_truth"
            assert d == k


# sha256 of the first 40 slots' plans, computed before the music side of checks could be drawn
STORED_PLAN_SHA256 = "427e17c8d45a983a230599ce7893eef62eab9b3557de4c89dbb00acb108198b6"


def test_a_spec_stored_with_a_reference_plans_exactly_as_before():
    import hashlib
    import json

    stored = {"n_stimuli": 4, "pairs": [list(p) for p in PAIRS], "trials_per_participant": 6,
              "attention_checks": 2, "attention_kind": "noise", "attention_reference": "ground_truth",
              "swapped_repeats": 1, "practice": True, "seed": 13, "practice_clip": True}
    plans = [[t.to_dict() for t in plan_slot(DesignSpec.from_dict(stored), slot)] for slot in range(40)]
    assert hashlib.sha256(json.dumps(plans, sort_keys=True).encode()).hexdigest() == STORED_PLAN_SHA256
    assert set(m for p in plans for m in _check_music([PlannedTrial(**t) for t in p])) == {"ground_truth"}


def test_the_config_draws_the_checks_music_unless_it_names_a_reference():
    from study.config import StudyConfig
    from study.create import design_for

    drawn = design_for(StudyConfig.from_dict({"name": "s", "attention": {"kind": "silence"}}), 3)
    assert drawn.attention_reference == "" and StudyConfig(name="s").attention.reference == ""
    named = StudyConfig.from_dict({"name": "s", "attention": {"reference": "vmnet"}})
    assert design_for(named, 3).attention_reference == "vmnet"
    with pytest.raises(VmnetError, match="attention.reference 'nope' is not one of the conditions"):
        StudyConfig.from_dict({"name": "s", "attention": {"reference": "nope"}})


# sha256 of the first 40 slots' plans of a spec with no reference, computed before plan keys existed
UNKEYED_PLAN_SHA256 = "993e030c269be87eddcb8b740620d939114d5dc9a678685bc2b2eb6c8a529d3c"


def test_a_spec_stored_before_plan_keys_plans_exactly_as_before():
    import hashlib
    import json

    stored = {"n_stimuli": 4, "pairs": [list(p) for p in PAIRS], "trials_per_participant": 6,
              "attention_checks": 2, "attention_kind": "noise", "attention_reference": "",
              "swapped_repeats": 1, "practice": True, "seed": 13, "practice_clip": True}
    spec = DesignSpec.from_dict(stored)
    plans = [[t.to_dict() for t in plan_slot(spec, slot)] for slot in range(40)]
    assert spec.plan_key == "" and spec.entropy == (13,)
    assert hashlib.sha256(json.dumps(plans, sort_keys=True).encode()).hexdigest() == UNKEYED_PLAN_SHA256


def test_the_plan_key_reshapes_every_part_of_the_plan_and_is_kept_with_the_spec():
    from study.config import StudyConfig
    from study.create import design_for

    config = StudyConfig.from_dict({"name": "s", "seed": 13, "swapped_repeats": 1, "attention": {"count": 2}})
    keyed = [design_for(config, 4) for _ in range(2)]
    assert all(len(spec.plan_key) == 32 and spec.seed == 13 for spec in keyed)
    assert keyed[0].plan_key != keyed[1].plan_key
    public = design_for(config, 4, plan_key="")  # what a rater who knows the config can rebuild

    def parts(spec, slot):
        trials = plan_slot(spec, slot)
        return ([(t.stimulus, t.condition_a, t.condition_b) for t in _normal(trials)],
                [t.position for t in trials if t.kind != "normal"], _check_music(trials))
    for spec in keyed:
        for part in range(3):  # the normal trials' order, where the extras go, the checks' music
            assert [parts(spec, s)[part] for s in range(20)] != [parts(public, s)[part] for s in range(20)]
        again = DesignSpec.from_dict(spec.to_dict())  # as stored with the study
        assert [plan_slot(again, s) for s in range(20)] == [plan_slot(spec, s) for s in range(20)]
    with pytest.raises(VmnetError, match="A plan key is 32 hexadecimal digits"):
        DesignSpec.from_dict({**keyed[0].to_dict(), "plan_key": "not-a-key"})
