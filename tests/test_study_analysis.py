"""The reviewer-facing analysis (rater-clustered intervals, ICC and design effect, effect sizes,
per-clip results, strength ratings, position per pair) against independent computations, and its
edge cases (all ties, unused conditions, Holm over configured pairs, no ``nan`` in the text)."""

from __future__ import annotations

import math

import choix
import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy.stats import binomtest, wilcoxon
from statsmodels.stats.anova import anova_lm
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint
from test_study_stats import simulate

from study import stats
from study.config import StudyConfig
from study.planner import votes_for_power
from vmnet_core.cli.main import main as run_cli
from vmnet_core.errors import VmnetError

N_BOOT, SEED = 150, 5


def _with_strengths(votes: pd.DataFrame, seed: int = 2) -> pd.DataFrame:
    """A 1-5 strength on every decisive vote (none on ties), some left unrated."""
    rng = np.random.default_rng(seed)
    strength = rng.integers(1, 6, size=len(votes)).astype(object)
    strength[(votes["choice"] == "none").to_numpy() | (rng.random(len(votes)) < 0.1)] = None
    return votes.assign(strength=strength)


@pytest.fixture(scope="module")
def simulated():
    votes, truth, pairs = simulate(seed=4, raters=16, clips=4, rater_sd=1.0)
    votes = _with_strengths(stats.votes_frame(votes))
    analysis = stats.analyze_votes(votes, list(truth), pairs, n_boot=N_BOOT, seed=SEED)
    return votes, pairs, analysis


def _resamples(votes: pd.DataFrame):
    """Each bootstrap resample as a vote table built by concatenating whole raters' votes."""
    raters = list(dict.fromkeys(votes["participant"]))
    rng = np.random.default_rng(SEED)
    for _ in range(N_BOOT):
        drawn = rng.integers(len(raters), size=len(raters))
        yield pd.concat([votes[votes["participant"] == raters[i]] for i in drawn])


def _decisive(votes, first, second):
    sub = votes[votes[["condition_a", "condition_b"]].apply(lambda r: {r.iloc[0], r.iloc[1]} == {first, second},
                                                             axis=1)]
    return sub[sub["winner"] != "none"]


def test_rater_bootstrap_intervals_match_resampling_whole_raters(simulated):
    votes, pairs, analysis = simulated
    rates = {p: [] for p in pairs}
    probabilities = {p: [] for p in pairs}
    strength_means = {p: [] for p in pairs}
    conditions = ["ground_truth", "vmnet", "random"]
    for sample in _resamples(votes):
        # Bradley–Terry from the vote list (choix's sparse ILSR), not the count matrix the code uses
        decisive = sample[sample["winner"] != "none"]
        loser = np.where(decisive["winner"] == decisive["condition_a"], decisive["condition_b"], decisive["condition_a"])
        data = [(conditions.index(w), conditions.index(lo)) for w, lo in zip(decisive["winner"], loser, strict=True)]
        params = choix.ilsr_pairwise(3, data, alpha=0.01, tol=1e-12)
        for first, second in pairs:
            sub = _decisive(sample, first, second)
            rates[(first, second)].append((sub["winner"] == first).mean())
            i, j = conditions.index(first), conditions.index(second)
            probabilities[(first, second)].append(1 / (1 + math.exp(params[j] - params[i])))
            rated = sub[sub["strength"].notna()]
            signed = [s if w == first else -s for s, w in zip(rated["strength"], rated["winner"], strict=True)]
            strength_means[(first, second)].append(np.mean(signed))
    for c, w, s in zip(analysis.clustering, analysis.win_probabilities, analysis.strength_ratings, strict=True):
        pair = (c.first, c.second)
        assert c.rater_interval == pytest.approx(tuple(np.percentile(rates[pair], [2.5, 97.5])), abs=1e-9)
        assert (w.low, w.high) == pytest.approx(tuple(np.percentile(probabilities[pair], [2.5, 97.5])), abs=1e-6)
        assert s.rater_interval == pytest.approx(tuple(np.percentile(strength_means[pair], [2.5, 97.5])), abs=1e-9)
    # clustered votes (rater sd 1 on the logit scale): the rater interval is not narrower than Wilson overall
    widths = [(c.rater_interval[1] - c.rater_interval[0]) - (r.test.wilson[1] - r.test.wilson[0])
              for c, r in zip(analysis.clustering, analysis.pairs, strict=True)]
    assert sum(widths) > 0


def test_icc_and_design_effect_match_statsmodels_anova(simulated):
    votes, pairs, analysis = simulated
    weighted = []
    for c in analysis.clustering:
        sub = _decisive(votes, c.first, c.second)
        frame = pd.DataFrame({"y": (sub["winner"] == c.first).astype(float).to_numpy(),
                              "rater": sub["participant"].astype(str).to_numpy()})
        table = anova_lm(smf.ols("y ~ C(rater)", data=frame).fit())
        msb, msw = table.loc["C(rater)", "mean_sq"], table.loc["Residual", "mean_sq"]
        sizes = frame.groupby("rater").size().to_numpy(dtype=float)
        k, n = len(sizes), sizes.sum()
        n0 = (n - (sizes ** 2).sum() / n) / (k - 1)
        icc = (msb - msw) / (msb + (n0 - 1) * msw)
        assert c.icc.value == pytest.approx(icc, abs=1e-9)
        assert c.votes_per_rater == pytest.approx(n / k, abs=1e-12)
        assert c.design_effect == pytest.approx(1 + (n / k - 1) * max(icc, 0), abs=1e-9)
        weighted.append((icc, n, n / k))
    assert analysis.icc == pytest.approx(sum(i * n for i, n, _ in weighted) / sum(n for _, n, _ in weighted))
    assert analysis.votes_per_rater == pytest.approx(sum(m * n for _, n, m in weighted) / sum(n for _, n, _ in weighted))
    assert analysis.icc > 0.05  # the simulated raters differ: the votes are clustered


def test_odds_per_clip_strength_and_position_match_direct_computations(simulated):
    votes, pairs, analysis = simulated
    for o, r, c in zip(analysis.odds, analysis.pairs, analysis.clustering, strict=True):
        assert o.odds == pytest.approx(r.wins / r.losses, abs=1e-12)
        assert o.rater == pytest.approx(tuple(p / (1 - p) for p in c.rater_interval), abs=1e-12)
        low, high = proportion_confint(r.wins, r.wins + r.losses, method="beta")
        assert o.exact == pytest.approx((low / (1 - low), high / (1 - high)), abs=1e-9)
    # per clip: counts from a crosstab, p from binomtest, Wilson from statsmodels
    rows = {(c.clip, c.first, c.second): c for c in analysis.per_clip}
    assert len(rows) == 4 * len(pairs)
    for (clip, first, second), c in rows.items():
        sub = _decisive(votes[votes["stimulus"] == clip], first, second)
        counts = sub["winner"].value_counts()
        k, n = int(counts.get(first, 0)), len(sub)
        assert (c.wins, c.losses) == (k, n - k)
        assert c.p_value == pytest.approx(binomtest(k, n).pvalue, abs=1e-12)
        assert c.wilson == pytest.approx(proportion_confint(k, n, method="wilson"), abs=1e-9)
    # strength ratings: signed by the winner; mean and Wilcoxon signed-rank from scipy
    for s in analysis.strength_ratings:
        sub = _decisive(votes, s.first, s.second)
        sub = sub[sub["strength"].notna()]
        signed = np.array([v if w == s.first else -v for v, w in zip(sub["strength"], sub["winner"], strict=True)],
                          dtype=float)
        assert s.rated_votes == len(signed) and s.mean == pytest.approx(signed.mean(), abs=1e-12)
        assert s.wilcoxon_p == pytest.approx(wilcoxon(signed).pvalue, abs=1e-12)
        assert sum(s.distribution.values()) == len(signed)
        assert s.distribution[-3] == int((signed == -3).sum())
    # position bias per pair: share of A among decisive votes, exact test
    for q in analysis.position_by_pair:
        sub = _decisive(votes, q.first, q.second)
        k = int((sub["choice"] == "A").sum())
        assert (q.a_chosen, q.non_tie_votes) == (k, len(sub))
        assert q.p_value == pytest.approx(binomtest(k, len(sub)).pvalue, abs=1e-12)
        assert q.clopper_pearson == pytest.approx(proportion_confint(k, len(sub), method="beta"), abs=1e-9)


def test_bradley_terry_win_probabilities_follow_the_strengths(simulated):
    _, _, analysis = simulated
    theta = {s.condition: s.strength for s in analysis.strengths}
    for w in analysis.win_probabilities:
        assert w.probability == pytest.approx(1 / (1 + math.exp(theta[w.second] - theta[w.first])), abs=1e-12)
        assert w.low <= w.probability <= w.high


def test_bradley_terry_leaves_out_conditions_without_comparisons(simulated):
    votes, pairs, analysis = simulated
    wider = stats.analyze_votes(votes, ["ground_truth", "vmnet", "random", "unused"], [*pairs, ("vmnet", "unused")],
                                n_boot=N_BOOT, seed=SEED)
    assert [s.condition for s in wider.strengths] == ["ground_truth", "vmnet", "random"]
    assert wider.bt_excluded == ["unused"]
    for a, b in zip(wider.strengths, analysis.strengths, strict=True):
        assert (a.strength, a.low, a.high) == pytest.approx((b.strength, b.low, b.high), abs=1e-12)
    assert any("unused" in n for n in wider.notes)


def test_holm_corrects_over_the_configured_pairs_and_says_so(simulated):
    votes, pairs, _ = simulated
    configured = [*pairs, ("vmnet", "other")]
    analysis = stats.analyze_votes(votes, ["ground_truth", "vmnet", "random", "other"], configured, n_boot=0)
    raw = [r.test.p_value for r in analysis.pairs[:3]]
    expected = multipletests([*raw, 1.0], method="holm")[1][:3]
    assert [r.p_holm for r in analysis.pairs[:3]] == pytest.approx(list(expected), abs=1e-12)
    assert analysis.holm_family == 4
    assert any("Holm corrects over all 4 configured pairs" in n and "vmnet vs other" in n for n in analysis.notes)
    text = analysis.to_text()
    assert "Holm correction over the 4 configured pair(s)" in text and "nan" not in text.lower()


def _tie_rows(raters=4):
    return [{"participant": r, "stimulus": f"c{k}", "kind": "normal", "condition_a": "x", "condition_b": "y",
             "choice": "none", "position": k + 1, "strength": None} for r in range(raters) for k in range(3)]


def test_an_all_ties_study_reports_no_decisive_votes():
    analysis = stats.analyze_votes(_tie_rows(), ["x", "y"], [("x", "y")], n_boot=50)
    text = analysis.to_text()
    assert "no decisive votes (all ties)" in text
    assert "0.000 [0.000, 0.000]" not in text and "+0.000  [" not in text
    assert "nan" not in text.lower()
    d = analysis.to_dict()
    assert d["pairs"][0]["decisive"] is False and d["pairs"][0]["test"]["rate"] is None
    assert d["strengths"] == [] and d["bt_excluded"] == ["x", "y"]


@pytest.mark.parametrize("rows", [
    [],
    _tie_rows(1),
    [{"participant": 0, "stimulus": "c", "kind": "normal", "condition_a": "x", "condition_b": "y", "choice": "A"}],
    [{"participant": r, "stimulus": "c", "kind": "normal", "condition_a": "x", "condition_b": "y", "choice": "A",
      "strength": 5} for r in range(3)],
], ids=["empty", "one-rater-ties", "one-vote", "unanimous"])
def test_the_text_report_never_prints_nan(rows):
    text = stats.analyze_votes(rows, ["x", "y", "z"], [("x", "y"), ("y", "z")], n_boot=20).to_text()
    assert "nan" not in text.lower() and "inf " not in text
    assert "n/a (" in text


def test_reserved_condition_names_are_refused():
    for name in ("none", "None", "__attention__"):
        with pytest.raises(VmnetError, match="reserved"):
            StudyConfig(name="s", conditions=["vmnet", name])


@pytest.mark.parametrize("args,message", [
    (["--power", "1"], "no finite study has power 1"),
    (["--power", "0"], "strictly between 0 and 1"),
    (["--power", "0.04"], "must exceed the significance level"),
    (["--rate", "0.5"], "differ from 0.5"),
    (["--rate", "0.5000001"], "plan for a larger effect"),
    (["--tie-share", "1"], "tie share"),
    (["--design-effect", "0"], "design effect"),
])
def test_impossible_plans_are_refused_with_a_sentence(args, message, capsys):
    assert run_cli(["study", "plan", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1


def test_plan_takes_a_design_effect():
    n = votes_for_power(0.6)
    assert stats.plan_votes(0.6, votes_per_rater=3, deff=1.5)["votes"] == math.ceil(n * 1.5)
