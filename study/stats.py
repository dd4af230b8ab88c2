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
from scipy.stats import binom, binomtest

from study.listening import listening_reasons
from study.vote_row import VOTE_COLUMNS, VoteRow

ALPHA = 0.05
Z95 = 1.959963984540054


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


def holm(p_values: list[float]) -> list[float]:
    """Holm-adjusted p-values (statsmodels ``multipletests(method='holm')``)."""
    if not p_values:
        return []
    from statsmodels.stats.multitest import multipletests

    return [float(p) for p in multipletests(p_values, alpha=ALPHA, method="holm")[1]]


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
    """Per condition pair: counts, sign test, intervals and Holm-adjusted p-values across pairs."""
    out = []
    for first, second in pairs:
        sub = _pair_votes(votes, first, second)
        wins = int((sub["winner"] == first).sum())
        losses = int((sub["winner"] == second).sum())
        ties = int((sub["choice"] == "none").sum())
        k, n = apply_tie_rule(wins, losses, ties, tie_rule)
        out.append(PairResult(first, second, len(sub), wins, losses, ties, tie_rule, sign_test(k, n)))
    tested = [r for r in out if r.test.trials > 0]
    for r, p in zip(tested, holm([r.test.p_value for r in tested]), strict=True):
        r.p_holm = p
        r.significant_holm = p <= ALPHA
    return out


def _pair_votes(votes: pd.DataFrame, first: str, second: str) -> pd.DataFrame:
    a, b = votes["condition_a"], votes["condition_b"]
    return votes[((a == first) & (b == second)) | ((a == second) & (b == first))]


# ------------------------------------------------------------------------------------ Bradley–Terry
@dataclass
class Strength:
    condition: str
    strength: float  # log-strength, centred to mean 0 over conditions
    low: float
    high: float


def _win_counts(votes: pd.DataFrame, index: dict[str, int], tie_rule: str) -> np.ndarray:
    """(K, K) matrix: entry [i, j] counts votes where condition i beat condition j. Under the ``half``
    tie rule a tie adds 0.5 each way."""
    counts = np.zeros((len(index), len(index)))
    for a, b, w in zip(votes["condition_a"], votes["condition_b"], votes["winner"], strict=True):
        if a not in index or b not in index:
            continue
        if w in (a, b):
            counts[index[w], index[b if w == a else a]] += 1
        elif tie_rule == "half":
            counts[index[a], index[b]] += 0.5
            counts[index[b], index[a]] += 0.5
    return counts


def _bt_fit(counts: np.ndarray, alpha: float) -> np.ndarray:
    import choix

    if not counts.any():
        return np.zeros(len(counts))
    params = np.asarray(choix.ilsr_pairwise_dense(counts, alpha=alpha), dtype=float)
    return params - params.mean()


def bradley_terry(votes: pd.DataFrame, conditions: list[str], tie_rule: str = "drop", n_boot: int = 1000,
                  seed: int = 0, alpha: float = 0.01) -> list[Strength]:
    """Bradley–Terry log-strengths (choix's ILSR, regularisation ``alpha``; ``ilsr_pairwise_dense`` on
    win counts gives the same fit as ``ilsr_pairwise`` on the vote list) with 95% percentile
    intervals from ``n_boot`` bootstrap resamples of whole raters."""
    index = {c: i for i, c in enumerate(conditions)}
    raters = list(votes["participant"].unique())
    per_rater = np.stack([_win_counts(g, index, tie_rule) for _, g in votes.groupby("participant", sort=False)]) \
        if raters else np.zeros((0, len(index), len(index)))
    point = _bt_fit(per_rater.sum(axis=0), alpha)
    if len(raters) < 2 or n_boot <= 0:
        nan = float("nan")
        return [Strength(c, float(point[i]), nan, nan) for c, i in index.items()]
    rng = np.random.default_rng(seed)
    boots = np.empty((n_boot, len(index)))
    for b in range(n_boot):
        weights = np.bincount(rng.integers(len(raters), size=len(raters)), minlength=len(raters))
        boots[b] = _bt_fit(np.tensordot(weights, per_rater, axes=1), alpha)
    low, high = np.percentile(boots, [2.5, 97.5], axis=0)
    return [Strength(c, float(point[i]), float(low[i]), float(high[i])) for c, i in index.items()]


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


def mixed_model(votes: pd.DataFrame, first: str, second: str) -> MixedModelResult | None:
    """Fit the mixed-effects logistic model for one pair by variational Bayes (``fit_vb``); 95%
    intervals are posterior mean ± 1.96 sd. None when fewer than 10 non-tie votes."""
    from statsmodels.genmod.bayes_mixed_glm import BinomialBayesMixedGLM

    sub = _pair_votes(votes, first, second)
    sub = sub[sub["winner"].isin([first, second])]
    if len(sub) < 10:
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


# ------------------------------------------------------------------------------------ planner
def sign_test_power(n: int | np.ndarray, rate: float, alpha: float = ALPHA) -> np.ndarray | float:
    """Exact power of the two-sided sign test with ``n`` non-tie votes (scalar or array) when the
    true rate is ``rate``: P(k >= c) + P(k <= n - c), with ``c`` the smallest count whose two-sided
    p-value under 1/2 is at most ``alpha``."""
    n_arr = np.atleast_1d(np.asarray(n, dtype=np.int64))
    c = binom.isf(alpha / 2, n_arr, 0.5) + 1  # reject when k >= c (or k <= n - c)
    power = binom.sf(c - 1, n_arr, rate) + binom.cdf(n_arr - c, n_arr, rate)
    power = np.where(n_arr > 0, power, 0.0)
    return float(power[0]) if np.ndim(n) == 0 else power


def votes_for_power(rate: float, power: float = 0.8, alpha: float = ALPHA, rule: str = "stable") -> int:
    """Independent non-tie votes the exact sign test needs to reach ``power`` at true rate ``rate``.

    Exact power is saw-toothed in ``n``. ``rule="stable"`` (default) gives the smallest ``n`` from
    which every larger ``n`` reaches ``power`` too; ``rule="first"`` the smallest ``n`` that reaches it.
    """
    if not 0 < rate < 1 or rate == 0.5:
        raise ValueError("rate must lie in (0, 1) and differ from 0.5")
    if rule not in ("stable", "first"):
        raise ValueError("rule must be 'stable' or 'first'")
    approx = ((Z95 * 0.5 + 0.8416 * math.sqrt(rate * (1 - rate))) / abs(rate - 0.5)) ** 2  # normal approx.
    horizon = int(4 * approx) + 200  # the saw-tooth's dips shrink as n grows; far past any crossing
    n = np.arange(1, horizon + 1)
    reached = sign_test_power(n, rate, alpha) >= power
    if rule == "first":
        return int(n[np.argmax(reached)])
    failing = np.flatnonzero(~reached)
    return int(n[failing[-1] + 1]) if failing.size else 1


def design_effect(votes_per_rater: float, icc: float) -> float:
    """1 + (m − 1) · ICC: how much clustering of ``m`` votes per rater inflates the votes needed."""
    return 1.0 + (max(votes_per_rater, 1.0) - 1.0) * icc


def plan_votes(rate: float, votes_per_rater: float = 1.0, icc: float = 0.0, power: float = 0.8,
               alpha: float = ALPHA, tie_share: float = 0.0) -> dict[str, float]:
    """Votes to collect for one pair: exact sign-test votes × design effect ÷ (1 − expected tie share)."""
    independent = votes_for_power(rate, power, alpha)
    deff = design_effect(votes_per_rater, icc)
    total = math.ceil(independent * deff / max(1e-9, 1.0 - tie_share))
    return {"rate": rate, "independent_votes": independent, "design_effect": deff, "votes": total,
            "raters": math.ceil(total / max(votes_per_rater, 1.0))}


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

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN becomes None)."""
        d = asdict(self)
        for pair, obj in zip(d["pairs"], self.pairs, strict=True):
            pair["win_rate"] = obj.win_rate
        for row, obj in zip(d["screening"], self.screening, strict=True):
            row["attention_failure_rate"] = obj.attention_failure_rate
            row["repeat_consistency"] = obj.repeat_consistency
        if self.headline is not None:
            d["headline"]["preference_probability"] = self.headline.preference_probability
            d["headline"]["preference_probability_interval"] = self.headline.preference_probability_interval
        return _json_ready(d)

    def to_text(self) -> str:
        """A plain-text report for the terminal."""
        lines = [f"raters: {self.raters} ({self.raters_included} included), normal votes analysed: {self.votes}, "
                 f"tie rule: {self.tie_rule}", "", "pair                               votes  wins-losses-ties  "
                 "win rate  p (exact)  p (Holm)  Wilson 95%        Clopper-Pearson 95%"]
        for r in self.pairs:
            t = r.test
            lines.append(f"{r.first + ' vs ' + r.second:34s} {r.votes:5d}  {r.wins:4d}-{r.losses:<4d}-{r.ties:<4d}     "
                         f"{t.rate:7.3f}  {t.p_value:9.4f}  {r.p_holm:8.4f}  [{t.wilson[0]:.3f}, {t.wilson[1]:.3f}]"
                         f"    [{t.clopper_pearson[0]:.3f}, {t.clopper_pearson[1]:.3f}]")
        lines += ["", "Bradley-Terry log-strength (95% bootstrap over raters):"]
        lines += [f"  {s.condition:20s} {s.strength:+.3f}  [{s.low:+.3f}, {s.high:+.3f}]" for s in self.strengths]
        p = self.position
        lines += ["", f"position bias: A chosen in {p.first_chosen} of {p.non_tie_votes} non-tie votes "
                      f"(rate {p.test.rate:.3f}, p {p.test.p_value:.4f})",
                  f"Krippendorff's alpha (nominal): {self.krippendorff_alpha:.3f} over {self.agreement_units} shared units"]
        h = self.headline
        if h is not None:
            lo, hi = h.preference_probability_interval
            lines.append(f"mixed model {h.first} vs {h.second}: P({h.first} preferred) {h.preference_probability:.3f} "
                         f"[{lo:.3f}, {hi:.3f}], position logit {h.position_logit:+.3f} "
                         f"[{h.position_interval[0]:+.3f}, {h.position_interval[1]:+.3f}] "
                         f"({h.votes} votes, {h.raters} raters, {h.clips} clips)")
        excluded = [s for s in self.screening if s.excluded]
        lines.append(f"screened out: {len(excluded)} rater(s)")
        lines += [f"  rater {s.participant}: {s.reason}" for s in excluded]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


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
                  min_response_ms: float = 0.0) -> Analysis:
    """The full analysis of a vote table: screening first (:func:`screen_raters`), then everything
    on included raters' normal votes."""
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
        notes.append(f"the mixed model for {headline[0]} vs {headline[1]} needs at least 10 non-tie votes")
    return Analysis(
        conditions=list(conditions), tie_rule=tie_rule, raters=int(df["participant"].nunique()),
        raters_included=int(df["participant"].nunique()) - len(excluded), votes=len(normal),
        pairs=pair_results(normal, pairs, tie_rule),
        strengths=bradley_terry(normal, list(conditions), tie_rule, n_boot=n_boot, seed=seed)
        if not normal.empty else [Strength(c, 0.0, float("nan"), float("nan")) for c in conditions],
        position=position_bias(normal), screening=screening, krippendorff_alpha=alpha, agreement_units=shared,
        headline=mm, notes=notes)
