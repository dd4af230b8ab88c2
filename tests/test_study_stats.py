"""Statistics against known answers and against simulated raters with a known truth."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest

from study import stats

# REFERENCES.md: votes for 80% power of the exact two-sided sign test at alpha 0.05
REFERENCE_POWER = {0.55: 810, 0.60: 210, 0.65: 90, 0.70: 52, 0.75: 30}


def test_sign_test_known_answer_60_of_100():
    t = stats.sign_test(60, 100)
    assert t.p_value == pytest.approx(0.0569, abs=5e-4)
    assert t.wilson == pytest.approx((0.502, 0.691), abs=5e-4)
    assert t.clopper_pearson == pytest.approx((0.497, 0.697), abs=5e-4)
    ref = binomtest(60, 100)
    assert t.wilson == pytest.approx(tuple(ref.proportion_ci(method="wilson")))
    assert t.clopper_pearson == pytest.approx(tuple(ref.proportion_ci(method="exact")))


def test_tie_rules():
    assert stats.apply_tie_rule(30, 20, 7, "drop") == (30, 50)
    assert stats.apply_tie_rule(30, 20, 7, "half") == (33, 56)


def _votes(pair_counts):
    """Rows from {(first, second): (wins, losses, ties)}; sides alternate, one rater per vote."""
    rows, i = [], 0
    for (x, y), (wins, losses, ties) in pair_counts.items():
        for winner, n in ((x, wins), (y, losses), ("none", ties)):
            for _ in range(n):
                a, b = (x, y) if i % 2 else (y, x)
                choice = "none" if winner == "none" else ("A" if winner == a else "B")
                rows.append({"participant": i, "stimulus": f"clip{i % 3}", "kind": "normal", "condition_a": a,
                             "condition_b": b, "choice": choice, "position": 1})
                i += 1
    return stats.votes_frame(rows)


def test_pair_results_and_holm():
    votes = _votes({("vmnet", "random"): (60, 40, 10), ("ground_truth", "vmnet"): (55, 45, 0)})
    res = stats.pair_results(votes, [("vmnet", "random"), ("ground_truth", "vmnet")], "drop")
    first, second = res
    assert (first.wins, first.losses, first.ties, first.votes) == (60, 40, 10, 110)
    assert first.test.p_value == pytest.approx(binomtest(60, 100).pvalue)
    assert first.win_rate == pytest.approx(0.6)
    p = sorted([first.test.p_value, second.test.p_value])
    holm = [min(1, 2 * p[0]), max(min(1, 2 * p[0]), p[1])]
    assert sorted([first.p_holm, second.p_holm]) == pytest.approx(holm)
    half = stats.pair_results(votes, [("vmnet", "random")], "half")[0]
    assert (half.test.successes, half.test.trials) == (65, 110)


def test_power_planner_exact_values_and_reference_band():
    for rate, reference in REFERENCE_POWER.items():
        first = stats.votes_for_power(rate, rule="first")
        stable = stats.votes_for_power(rate)
        assert stats.sign_test_power(first, rate) >= 0.8 > stats.sign_test_power(first - 1, rate)
        assert all(stats.sign_test_power(n, rate) >= 0.8 for n in range(stable, stable + 300))
        assert stats.sign_test_power(stable - 1, rate) < 0.8
        # the published check values lie inside the saw-tooth band [first, stable]
        assert first <= reference <= stable
    assert (stats.votes_for_power(0.60), stats.votes_for_power(0.65, rule="first")) == (210, 90)
    assert stats.votes_for_power(0.45) == stats.votes_for_power(0.55)


def test_design_effect_scales_the_plan():
    plan = stats.plan_votes(0.6, votes_per_rater=11, icc=0.1)
    assert plan["design_effect"] == pytest.approx(2.0)
    assert plan["votes"] == 2 * stats.votes_for_power(0.6)
    assert plan["raters"] == math.ceil(plan["votes"] / 11)


def _expit(x):
    return 1 / (1 + np.exp(-x))


def marginal_rate(d, position=1.0, rater_sd=0.3):
    """P(first wins) averaged over both sides and the raters' random offsets (the estimand of the
    per-pair and Bradley–Terry analyses, which do not model either)."""
    offsets = np.random.default_rng(0).normal(0, rater_sd, 20000)
    return float(np.mean(0.5 * (_expit(d + offsets + position / 2) + _expit(d + offsets - position / 2))))


def simulate(seed=3, raters=40, clips=6, strengths=None, position=1.0, rater_sd=0.3, tie_p=0.08):
    """Raters voting under a Bradley–Terry truth with a position effect (logit scale, A vs B) and
    a random rater offset on the first condition of each pair."""
    strengths = strengths or {"ground_truth": 0.9, "vmnet": 0.4, "random": -1.3}
    pairs = [("ground_truth", "vmnet"), ("ground_truth", "random"), ("vmnet", "random")]
    rng = np.random.default_rng(seed)
    rows = []
    for r in range(raters):
        offset = rng.normal(0, rater_sd)
        for c in range(clips):
            for k, (x, y) in enumerate(pairs):
                a, b = (x, y) if (r + c + k) % 2 == 0 else (y, x)
                x_left = 0.5 if a == x else -0.5
                p_x = _expit(strengths[x] - strengths[y] + offset + position * x_left)
                if rng.random() < tie_p:
                    choice = "none"
                else:
                    x_wins = rng.random() < p_x
                    choice = "A" if (x_wins == (a == x)) else "B"
                rows.append({"participant": r, "stimulus": f"clip{c}", "kind": "normal", "condition_a": a,
                             "condition_b": b, "choice": choice, "position": c * 3 + k + 1})
    return pd.DataFrame(rows), strengths, pairs


def test_simulated_raters_are_recovered_within_intervals():
    votes, truth, pairs = simulate()
    conditions = list(truth)
    analysis = stats.analyze_votes(votes, conditions, pairs, headline=("vmnet", "random"), n_boot=200, seed=1)
    # sign test per pair: the true marginal win rate (averaged over sides) lies in both intervals
    for res in analysis.pairs:
        true_rate = marginal_rate(truth[res.first] - truth[res.second])
        assert res.test.wilson[0] <= true_rate <= res.test.wilson[1], res
        assert res.test.clopper_pearson[0] <= true_rate <= res.test.clopper_pearson[1], res
        assert res.significant_holm
    # Bradley–Terry: the strengths that fit the true marginal rates lie inside the bootstrap intervals
    expected_wins = np.zeros((3, 3))
    for i, x in enumerate(conditions):
        for j, y in enumerate(conditions):
            if i != j:
                expected_wins[i, j] = marginal_rate(truth[x] - truth[y])
    target = stats._bt_fit(expected_wins, alpha=0.0)
    for s in analysis.strengths:
        assert s.low <= target[conditions.index(s.condition)] <= s.high, s
    assert [s.condition for s in sorted(analysis.strengths, key=lambda s: -s.strength)] == conditions
    # position bias: A chosen more often than half, and significantly
    assert analysis.position.test.rate > 0.5 and analysis.position.test.p_value < 0.05
    # mixed model: the preference and the position effect inside their intervals
    h = analysis.headline
    assert h is not None and (h.raters, h.clips) == (40, 6)
    lo, hi = h.preference_interval
    assert lo <= truth["vmnet"] - truth["random"] <= hi
    assert h.position_interval[0] <= 1.0 <= h.position_interval[1]
    assert h.position_interval[0] > 0
    assert -1 <= analysis.krippendorff_alpha <= 1 and analysis.agreement_units > 0
    d = analysis.to_dict()
    assert d["headline"]["first"] == "vmnet" and len(d["pairs"]) == 3


def test_no_position_bias_is_not_reported_as_one():
    votes, truth, pairs = simulate(seed=8, position=0.0, raters=30, clips=5)
    analysis = stats.analyze_votes(votes, list(truth), pairs, n_boot=50)
    assert analysis.position.test.clopper_pearson[0] <= 0.5 <= analysis.position.test.clopper_pearson[1]
    h = analysis.headline
    assert h.position_interval[0] <= 0 <= h.position_interval[1]


def test_screening_attention_and_swapped_repeats():
    rows = []
    for r in range(3):
        rows.append({"participant": r, "stimulus": "c0", "kind": "normal", "condition_a": "x", "condition_b": "y",
                     "choice": "A", "position": 1})
        # swapped repeat: consistent means choosing x again, now on side B
        rows.append({"participant": r, "stimulus": "c0", "kind": "repeat_swapped", "condition_a": "y",
                     "condition_b": "x", "choice": "B" if r != 2 else "A", "position": 5, "repeat_of": 1})
        for k in range(4):
            failed = (r == 1 and k == 0)
            rows.append({"participant": r, "stimulus": "c1", "kind": "attention", "condition_a": "x",
                         "condition_b": "__attention__", "choice": "B" if failed else "A",
                         "expected_choice": "A", "position": 2 + k})
    screening = {s.participant: s for s in stats.screen_raters(stats.votes_frame(rows), 0.15, 0.5)}
    assert not screening[0].excluded and screening[0].repeat_consistency == 1.0
    assert screening[1].excluded and screening[1].attention_failed == 1 and "attention" in screening[1].reason
    assert screening[2].excluded and screening[2].repeats_consistent == 0 and "repeats" in screening[2].reason
    analysis = stats.analyze_votes(rows, ["x", "y"], [("x", "y")], n_boot=10, min_repeat_consistency=0.5)
    assert analysis.raters == 3 and analysis.raters_included == 1 and analysis.votes == 1


def test_empty_votes_give_an_empty_analysis():
    analysis = stats.analyze_votes([], ["x", "y"], [("x", "y")])
    assert analysis.votes == 0 and analysis.headline is None
    assert analysis.to_dict()["pairs"][0]["test"]["rate"] is None
    assert "no normal votes" in analysis.to_text()


def test_a_unanimous_pair_is_analysed_and_says_why_it_has_no_mixed_model():
    """Every rater preferring one side (a real outcome for ground truth against random) is no error:
    the mixed model has no finite estimate then, so it is left out with a note (statsmodels raised
    "endog values must be 0 and 1, and not all identical" and the admin's analysis failed)."""
    rows = [{"participant": r, "stimulus": f"c{c}", "kind": "normal", "condition_a": a, "condition_b": b,
             "choice": "A" if a == "x" else "B", "position": c + 1}
            for r in range(4) for c in range(3) for a, b in (("x", "y") if (r + c) % 2 else ("y", "x"),)]
    analysis = stats.analyze_votes(rows, ["x", "y"], [("x", "y")], n_boot=20)
    assert analysis.votes == 12 and analysis.headline is None
    assert analysis.pairs[0].test.successes == 12 and analysis.pairs[0].test.p_value < 0.001
    assert any("all 12 non-tie votes of x vs y went to x" in note for note in analysis.notes), analysis.notes
    assert "went to x" in analysis.to_text()
