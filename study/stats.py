"""Statistics for pairwise preference votes.

Input is the long vote table: :class:`study.vote_row.VoteRow` objects (what
``study.service.vote_rows`` returns), dicts or a DataFrame with (some of) its columns; these are
read: ``participant, stimulus, kind, condition_a, condition_b, choice ('A'|'B'|'none'), winner,
expected_choice, position, repeat_of``. Only ``kind == 'normal'`` votes enter the preference
analysis; attention checks and swapped repeats serve rater screening.

* per condition pair: win rate, exact two-sided sign test (``scipy.stats.binomtest``), Wilson and
  Clopper–Pearson intervals, Holm correction across pairs; ties by the study's tie rule;
* Bradley–Terry strengths (``choix.ilsr_pairwise``) with bootstrap intervals over raters;
* position bias; rater screening; Krippendorff's alpha (nominal);
* a mixed-effects logistic model (statsmodels ``BinomialBayesMixedGLM``, rater and clip effects);
* a power planner for the exact sign test.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import binomtest

from study.bradley_terry import BradleyTerry, Strength, WinProbability, bradley_terry
from study.bradley_terry import bt_fit as _bt_fit
from study.clustered import PairClustering, pair_clustering, pooled_icc, rater_order, rater_weights
from study.effects import (
    ClipResult,
    PairOdds,
    PairPosition,
    StrengthRatings,
    clip_results,
    pair_odds,
    pair_position,
    pair_votes,
    strength_ratings,
)
from study.listening import listening_reasons
from study.planner import ALPHA, Z95, design_effect, plan_votes, sign_test_power, votes_for_power
from study.vote_row import VOTE_COLUMNS, VoteRow

__all__ = ["ALPHA", "Z95", "Analysis", "BradleyTerry", "ClipResult", "PairClustering", "PairOdds", "PairPosition",
           "PairResult", "SignTest", "Strength", "StrengthRatings", "WinProbability", "_bt_fit", "analyze_votes",
           "bradley_terry", "design_effect", "plan_votes", "screen_raters", "sign_test", "sign_test_power",
           "votes_for_power", "votes_frame"]


# ----------------------------------------------------------------------------------------- sign test
@dataclass
class SignTest:
    """Exact two-sided sign test of ``successes`` out of ``trials`` against 1/2."""

    successes: int
    trials: int
    rate: float
    p_value: float
    wilson: tuple[float, float]
    clopper_pearson: tuple[float, float]


def sign_test(successes: int, trials: int) -> SignTest:
    """Exact binomial test against 0.5 with Wilson and Clopper–Pearson 95% intervals (NaN when empty)."""
    if trials == 0:
        nan = float("nan")
        return SignTest(0, 0, nan, 1.0, (nan, nan), (nan, nan))
    res = binomtest(successes, trials, 0.5)
    wil = res.proportion_ci(0.95, method="wilson")
    cp = res.proportion_ci(0.95, method="exact")
    return SignTest(successes, trials, successes / trials, float(res.pvalue),
                    (float(wil.low), float(wil.high)), (float(cp.low), float(cp.high)))


def apply_tie_rule(wins: int, losses: int, ties: int, tie_rule: str) -> tuple[int, int]:
    """(successes, trials) for the test. ``drop``: ties left out. ``half``: ties split evenly
    between the two sides (an odd last tie is left out), so the test stays exact on whole votes."""
    if tie_rule == "drop":
        return wins, wins + losses
    if tie_rule == "half":
        half = ties // 2
        return wins + half, wins + losses + 2 * half
    raise ValueError(f"unknown tie rule {tie_rule!r}")


def holm(p_values: list[float], family: int | None = None) -> list[float]:
    """Holm-adjusted p-values (statsmodels ``multipletests(method='holm')``) over a family of
    ``family`` tests (default: the p-values given); the tests without data count as p = 1, which
    is Holm over the whole family."""
    if not p_values:
        return []
    from statsmodels.stats.multitest import multipletests

    padded = list(p_values) + [1.0] * max(0, (family or 0) - len(p_values))
    return [float(p) for p in multipletests(padded, alpha=ALPHA, method="holm")[1][:len(p_values)]]


@dataclass
class PairResult:
    """One condition pair: ``first`` wins ``wins`` votes, ``second`` wins ``losses``, ``ties`` none."""

    first: str
    second: str
    votes: int
    wins: int
    losses: int
    ties: int
    tie_rule: str
    test: SignTest
    p_holm: float = float("nan")
    significant_holm: bool = False

    @property
    def win_rate(self) -> float:
        """Share of ``first`` wins among the votes the tie rule keeps."""
        return self.test.rate


def pair_results(votes: pd.DataFrame, pairs: list[tuple[str, str]], tie_rule: str = "drop") -> list[PairResult]:
    """Per condition pair: counts, sign test, intervals and Holm-adjusted p-values over all the
    given (configured) pairs, those without decisive votes counting as p = 1."""
    out = []
    for first, second in pairs:
        sub = pair_votes(votes, first, second)
        wins = int((sub["winner"] == first).sum())
        losses = int((sub["winner"] == second).sum())
        ties = int((sub["choice"] == "none").sum())
        k, n = apply_tie_rule(wins, losses, ties, tie_rule)
        out.append(PairResult(first, second, len(sub), wins, losses, ties, tie_rule, sign_test(k, n)))
    tested = [r for r in out if r.test.trials > 0]
    for r, p in zip(tested, holm([r.test.p_value for r in tested], family=len(pairs)), strict=True):
        r.p_holm = p
        r.significant_holm = p <= ALPHA
    return out


# --------------------------------------------------------------------------------- diagnostics
@dataclass
class PositionBias:
    """How often the first/left soundtrack (A) was chosen among non-tie votes."""

    first_chosen: int
    non_tie_votes: int
    test: SignTest


def position_bias(votes: pd.DataFrame) -> PositionBias:
    non_ties = votes[votes["choice"].isin(["A", "B"])]
    first = int((non_ties["choice"] == "A").sum())
    return PositionBias(first, len(non_ties), sign_test(first, len(non_ties)))


@dataclass
class RaterScreening:
    participant: Any
    attention_checks: int
    attention_failed: int
    repeats: int
    repeats_consistent: int
    excluded: bool
    reason: str

    @property
    def attention_failure_rate(self) -> float:
        return self.attention_failed / self.attention_checks if self.attention_checks else 0.0

    @property
    def repeat_consistency(self) -> float:
        return self.repeats_consistent / self.repeats if self.repeats else 1.0


def screen_rater(participant: Any, votes: list[VoteRow] | list[dict[str, Any]], max_attention_failure_rate: float = 0.15,
                 min_repeat_consistency: float = 0.0, min_listened_fraction: float = 0.0,
                 min_response_ms: float = 0.0) -> RaterScreening:
    """One rater's screening from their votes (dicts with ``kind``, ``choice``, ``expected_choice``,
    ``position``, ``winner``, ``repeat_of``): attention checks failed (a choice other than the
    expected side, 'none' included) and swapped repeats answered consistently (the same condition,
    or 'none' both times). Excluded when the failure rate is above ``max_attention_failure_rate``
    or the consistency below ``min_repeat_consistency``, or the listening rules of
    :func:`study.listening.listening_reasons` fail (played time, median response time). Plain Python: cheap enough to run inside
    the transaction that stores a rater's last vote."""
    votes = [v.as_dict() if isinstance(v, VoteRow) else v for v in votes]
    checks = [v for v in votes if v["kind"] == "attention"]
    failed = sum(v["choice"] != v["expected_choice"] for v in checks)
    by_position = {int(v["position"]): v["winner"] for v in votes}
    answered = [v for v in votes if v["kind"] == "repeat_swapped" and not _missing(v.get("repeat_of"))
                and int(v["repeat_of"]) in by_position]
    consistent = sum(by_position[int(v["repeat_of"])] == v["winner"] for v in answered)
    row = RaterScreening(participant, len(checks), failed, len(answered), consistent, False, "")
    reasons = []
    if row.attention_checks and row.attention_failure_rate > max_attention_failure_rate:
        reasons.append(f"failed {failed} of {row.attention_checks} attention checks")
    if row.repeats and row.repeat_consistency < min_repeat_consistency:
        reasons.append(f"consistent on {consistent} of {row.repeats} swapped repeats")
    reasons += listening_reasons(votes, min_listened_fraction, min_response_ms)
    row.excluded, row.reason = bool(reasons), "; ".join(reasons)
    return row


def _missing(value: Any) -> bool:
    """None or NaN (how a DataFrame holds an empty cell)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def screen_raters(votes: Votes, max_attention_failure_rate: float = 0.15,
                  min_repeat_consistency: float = 0.0, min_listened_fraction: float = 0.0,
                  min_response_ms: float = 0.0) -> list[RaterScreening]:
    """:func:`screen_rater` for every rater in the vote table, in participant order. The one
    screening path: the analysis, the admin's progress, the participants export and the status
    stored when a rater finishes all come from here (see ``study.service``)."""
    records = [v.as_dict() if isinstance(v, VoteRow) else v for v in
               (votes.to_dict("records") if isinstance(votes, pd.DataFrame) else votes)]
    by_rater: dict[Any, list[dict[str, Any]]] = {}
    for v in records:
        by_rater.setdefault(v["participant"], []).append(v)
    return [screen_rater(participant, by_rater[participant], max_attention_failure_rate, min_repeat_consistency,
                         min_listened_fraction, min_response_ms)
            for participant in sorted(by_rater)]


def krippendorff_alpha(votes: pd.DataFrame) -> tuple[float, int]:
    """Krippendorff's alpha (nominal) over units = (clip, condition pair) and values = which condition
    won or 'none'; returns (alpha, units rated by two or more raters). NaN when undefined."""
    import krippendorff

    if votes.empty:
        return float("nan"), 0
    unit = votes["stimulus"].astype(str) + "|" + votes.apply(
        lambda r: "|".join(sorted((r["condition_a"], r["condition_b"]))), axis=1)
    value = votes["winner"].astype(str)
    codes = {v: i for i, v in enumerate(sorted(value.unique()))}
    table = pd.DataFrame({"rater": votes["participant"].values, "unit": unit.values,
                          "value": value.map(codes).values})
    matrix = table.pivot_table(index="rater", columns="unit", values="value", aggfunc="first")
    shared = int((matrix.notna().sum(axis=0) >= 2).sum())
    if shared == 0 or len(codes) < 2:
        return float("nan"), shared
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        alpha = krippendorff.alpha(reliability_data=matrix.to_numpy(dtype=float), level_of_measurement="nominal")
    return float(alpha), shared


# ----------------------------------------------------------------------------------- mixed model
@dataclass
class MixedModelResult:
    """``logit P(first wins) = preference + position · first_left + rater + clip``, with
    ``first_left`` = +0.5 when ``first`` was shown as A and -0.5 otherwise (ties left out)."""

    first: str
    second: str
    votes: int
    raters: int
    clips: int
    preference_logit: float
    preference_interval: tuple[float, float]
    position_logit: float
    position_interval: tuple[float, float]
    rater_sd: float | None
    clip_sd: float | None

    @property
    def preference_probability(self) -> float:
        return _expit(self.preference_logit)

    @property
    def preference_probability_interval(self) -> tuple[float, float]:
        return (_expit(self.preference_interval[0]), _expit(self.preference_interval[1]))


def _expit(x: float) -> float:
    return float(1.0 / (1.0 + math.exp(-x)))


MIXED_MODEL_MIN_VOTES = 10


def _decisive_votes(votes: pd.DataFrame, first: str, second: str) -> pd.DataFrame:
    """The pair's votes won by either side (ties left out)."""
    sub = pair_votes(votes, first, second)
    return sub[sub["winner"].isin([first, second])]


def mixed_model_missing(votes: pd.DataFrame, first: str, second: str) -> str | None:
    """Why :func:`mixed_model` gives no fit for the pair (a note for the report), or None when it fits."""
    return _why_no_fit(_decisive_votes(votes, first, second), first, second)


def _why_no_fit(sub: pd.DataFrame, first: str, second: str) -> str | None:
    """:func:`mixed_model_missing` of the pair's decisive votes ``sub``."""
    if len(sub) < MIXED_MODEL_MIN_VOTES:
        return f"the mixed model for {first} vs {second} needs at least {MIXED_MODEL_MIN_VOTES} non-tie votes"
    if sub["winner"].nunique() < 2:
        return (f"all {len(sub)} non-tie votes of {first} vs {second} went to {sub['winner'].iloc[0]}: with none the "
                "other way the mixed model has no finite estimate, so it is not fitted (the sign test answers)")
    return None


def mixed_model(votes: pd.DataFrame, first: str, second: str) -> MixedModelResult | None:
    """Fit the mixed-effects logistic model for one pair by variational Bayes (``fit_vb``); 95%
    intervals are posterior mean ± 1.96 sd. None when :func:`mixed_model_missing` says why not
    (fewer than 10 non-tie votes, or all of them one way: statsmodels refuses such a fit)."""
    from statsmodels.genmod.bayes_mixed_glm import BinomialBayesMixedGLM

    sub = _decisive_votes(votes, first, second)
    if _why_no_fit(sub, first, second) is not None:
        return None
    df = pd.DataFrame({
        "first_wins": (sub["winner"] == first).astype(float).values,
        "first_left": np.where(sub["condition_a"] == first, 0.5, -0.5),
        "rater": sub["participant"].astype(str).values,
        "clip": sub["stimulus"].astype(str).values,
    })
    vc = {}
    if df["rater"].nunique() > 1:
        vc["rater"] = "0 + C(rater)"
    if df["clip"].nunique() > 1:
        vc["clip"] = "0 + C(clip)"
    formula = "first_wins ~ first_left" if df["first_left"].nunique() > 1 else "first_wins ~ 1"
    if not vc:
        vc["clip"] = "0 + C(clip)"
    model = BinomialBayesMixedGLM.from_formula(formula, vc, df)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = model.fit_vb()
    mean, sd = np.asarray(fit.fe_mean), np.asarray(fit.fe_sd)
    vc_sd = dict(zip(model.vcp_names, np.exp(np.asarray(fit.vcp_mean)), strict=True))
    pos = (float(mean[1]), (float(mean[1] - Z95 * sd[1]), float(mean[1] + Z95 * sd[1]))) if len(mean) > 1 \
        else (float("nan"), (float("nan"), float("nan")))
    return MixedModelResult(
        first, second, len(df), int(df["rater"].nunique()), int(df["clip"].nunique()),
        float(mean[0]), (float(mean[0] - Z95 * sd[0]), float(mean[0] + Z95 * sd[0])), pos[0], pos[1],
        float(vc_sd["rater"]) if "rater" in vc_sd else None,
        float(vc_sd["clip"]) if "clip" in vc_sd else None)


# --------------------------------------------------------------------------------- the analysis
@dataclass
class Analysis:
    conditions: list[str]
    tie_rule: str
    raters: int
    raters_included: int
    votes: int
    pairs: list[PairResult]
    strengths: list[Strength]
    position: PositionBias
    screening: list[RaterScreening]
    krippendorff_alpha: float
    agreement_units: int
    headline: MixedModelResult | None
    notes: list[str] = field(default_factory=list)
    clustering: list[PairClustering] = field(default_factory=list)  # rater bootstrap, ICC, design effect
    icc: float = float("nan")  # pooled over pairs (study.clustered.pooled_icc): what the planner reads
    votes_per_rater: float = float("nan")  # non-tie votes per rater per pair, pooled the same way
    odds: list[PairOdds] = field(default_factory=list)
    win_probabilities: list[WinProbability] = field(default_factory=list)
    bt_excluded: list[str] = field(default_factory=list)  # conditions without comparisons, not fitted
    position_by_pair: list[PairPosition] = field(default_factory=list)
    per_clip: list[ClipResult] = field(default_factory=list)
    strength_ratings: list[StrengthRatings] = field(default_factory=list)
    holm_family: int = 0  # configured pairs Holm corrects over
    provenance: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN and infinities become None)."""
        d = asdict(self)
        for pair, obj in zip(d["pairs"], self.pairs, strict=True):
            pair["win_rate"] = obj.win_rate
            pair["decisive"] = obj.test.trials > 0
        for row, obj in zip(d["screening"], self.screening, strict=True):
            row["attention_failure_rate"] = obj.attention_failure_rate
            row["repeat_consistency"] = obj.repeat_consistency
        if self.headline is not None:
            d["headline"]["preference_probability"] = self.headline.preference_probability
            d["headline"]["preference_probability_interval"] = self.headline.preference_probability_interval
        return _json_ready(d)

    def to_text(self) -> str:
        """A plain-text report for the terminal (no ``nan``: undefined figures read "n/a (why)")."""
        from study.report_text import analysis_text

        return analysis_text(self)


def _json_ready(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _json_ready(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_json_ready(v) for v in x]
    if isinstance(x, float | np.floating):
        return None if not math.isfinite(float(x)) else float(x)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


Votes = list[VoteRow] | list[dict[str, Any]] | pd.DataFrame


def votes_frame(rows: Votes) -> pd.DataFrame:
    """The vote table as a DataFrame (columns: ``VOTE_COLUMNS``, or those of the given dicts);
    ``winner`` is derived from the choice when absent."""
    if isinstance(rows, pd.DataFrame):
        df = rows.copy()
    else:
        df = pd.DataFrame([r.as_dict() if isinstance(r, VoteRow) else r for r in rows])
    if df.empty:
        return pd.DataFrame(columns=VOTE_COLUMNS)
    if "winner" not in df:
        df["winner"] = np.where(df["choice"] == "A", df["condition_a"],
                                np.where(df["choice"] == "B", df["condition_b"], "none"))
    for col in ("expected_choice", "repeat_of"):
        if col not in df:
            df[col] = None
    if "kind" not in df:
        df["kind"] = "normal"
    if "position" not in df:
        df["position"] = range(len(df))
    return df


def analyze_votes(rows: Votes, conditions: list[str],
                  pairs: list[tuple[str, str]], headline: tuple[str, str] | None = None, tie_rule: str = "drop",
                  max_attention_failure_rate: float = 0.15, min_repeat_consistency: float = 0.0,
                  n_boot: int = 1000, seed: int = 0, min_listened_fraction: float = 0.0,
                  min_response_ms: float = 0.0, provenance: dict[str, Any] | None = None) -> Analysis:
    """The full analysis of a vote table: screening first (:func:`screen_raters`), then everything
    on included raters' normal votes. Every rater-clustered interval uses the same ``n_boot``
    resamples of raters drawn with ``seed``."""
    df = votes_frame(rows)
    screening = screen_raters(df, max_attention_failure_rate, min_repeat_consistency, min_listened_fraction,
                              min_response_ms)
    excluded = {s.participant for s in screening if s.excluded}
    normal = df[(df["kind"] == "normal") & ~df["participant"].isin(excluded)]
    notes = []
    if normal.empty:
        notes.append("no normal votes from included raters yet")
    headline = headline or (pairs[0] if pairs else None)
    alpha, shared = krippendorff_alpha(normal)
    mm = mixed_model(normal, *headline) if headline and not normal.empty else None
    if headline and mm is None:
        notes.append(mixed_model_missing(normal, *headline) if not normal.empty else
                     f"the mixed model for {headline[0]} vs {headline[1]} needs at least "
                     f"{MIXED_MODEL_MIN_VOTES} non-tie votes")
    results = pair_results(normal, pairs, tie_rule)
    undecided = [f"{r.first} vs {r.second}" for r in results if r.test.trials == 0]
    if undecided and len(undecided) < len(results):
        notes.append(f"Holm corrects over all {len(pairs)} configured pairs; {len(undecided)} of them "
                     f"({', '.join(undecided)}) have no decisive votes and count as p = 1")
    raters = rater_order(normal)
    weights = rater_weights(len(raters), n_boot, seed) if len(raters) >= 2 else np.zeros((0, len(raters)))
    clustering = [pair_clustering(normal, raters, weights, a, b, tie_rule) for a, b in pairs]
    icc, per_rater = pooled_icc(clustering)
    bt = bradley_terry(normal, list(conditions), list(pairs), tie_rule, n_boot=n_boot, seed=seed)
    if bt.excluded and not normal.empty:
        notes.append(f"Bradley-Terry leaves out {', '.join(bt.excluded)}: no comparisons")
    return Analysis(
        conditions=list(conditions), tie_rule=tie_rule, raters=int(df["participant"].nunique()),
        raters_included=int(df["participant"].nunique()) - len(excluded), votes=len(normal),
        pairs=results, strengths=bt.strengths, position=position_bias(normal), screening=screening,
        krippendorff_alpha=alpha, agreement_units=shared, headline=mm, notes=notes, clustering=clustering,
        icc=icc, votes_per_rater=per_rater,
        odds=[pair_odds(r.first, r.second, r.test.rate, r.test.clopper_pearson, c.rater_interval)
              for r, c in zip(results, clustering, strict=True)],
        win_probabilities=bt.win_probabilities, bt_excluded=bt.excluded,
        position_by_pair=[pair_position(normal, a, b, sign_test) for a, b in pairs],
        per_clip=clip_results(normal, pairs, sign_test),
        strength_ratings=[strength_ratings(normal, a, b, raters, weights) for a, b in pairs],
        holm_family=len(pairs), provenance=dict(provenance or {}))
