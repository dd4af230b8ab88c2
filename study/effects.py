"""Per-pair effect sizes and breakdowns a paper reports next to the sign test: the odds of the
first condition winning, position bias per pair, per-clip results and the strength ratings.
Rater-clustered intervals come from the bootstrap ``weights`` of :func:`study.clustered.rater_weights`."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import wilcoxon

from study.clustered import percentile_interval, ratio_draws


def pair_votes(votes: pd.DataFrame, first: str, second: str) -> pd.DataFrame:
    """The votes that compared ``first`` with ``second`` (either side)."""
    a, b = votes["condition_a"], votes["condition_b"]
    return votes[((a == first) & (b == second)) | ((a == second) & (b == first))]


def odds(rate: float) -> float:
    """p / (1 − p); inf at 1, NaN when ``rate`` is NaN."""
    if not np.isfinite(rate):
        return float("nan")
    return float("inf") if rate >= 1 else float(rate / (1 - rate))


@dataclass
class PairOdds:
    """Odds that ``first`` wins a vote (wins / losses under the tie rule): an odds ratio against
    even odds (1 = no preference). ``exact``: the Clopper–Pearson interval mapped through p/(1−p);
    ``rater``: the rater-bootstrap interval of the rate mapped the same way."""

    first: str
    second: str
    odds: float
    exact: tuple[float, float]
    rater: tuple[float, float]


def pair_odds(first: str, second: str, rate: float, exact_rate: tuple[float, float],
              rater_rate: tuple[float, float]) -> PairOdds:
    return PairOdds(first, second, odds(rate), (odds(exact_rate[0]), odds(exact_rate[1])),
                    (odds(rater_rate[0]), odds(rater_rate[1])))


@dataclass
class PairPosition:
    """How often side A won among the pair's non-tie votes, with the exact sign test against 1/2."""

    first: str
    second: str
    a_chosen: int
    non_tie_votes: int
    rate: float
    p_value: float
    clopper_pearson: tuple[float, float]


def pair_position(votes: pd.DataFrame, first: str, second: str, sign_test) -> PairPosition:
    sub = pair_votes(votes, first, second)
    decisive = sub[sub["choice"].isin(["A", "B"])]
    t = sign_test(int((decisive["choice"] == "A").sum()), len(decisive))
    return PairPosition(first, second, t.successes, t.trials, t.rate, t.p_value, t.clopper_pearson)


@dataclass
class ClipResult:
    """One (clip, pair): first wins, second wins, ties, the first's share of non-tie votes, the
    exact sign test and the Wilson 95% interval (votes within a clip come from different raters)."""

    clip: str
    first: str
    second: str
    wins: int
    losses: int
    ties: int
    rate: float
    p_value: float
    wilson: tuple[float, float]


def clip_results(votes: pd.DataFrame, pairs: list[tuple[str, str]], sign_test) -> list[ClipResult]:
    """:class:`ClipResult` for every clip (sorted by name) and configured pair that has votes."""
    out = []
    for clip in sorted(votes["stimulus"].astype(str).unique()) if len(votes) else []:
        in_clip = votes[votes["stimulus"].astype(str) == clip]
        for first, second in pairs:
            sub = pair_votes(in_clip, first, second)
            if sub.empty:
                continue
            wins, losses = int((sub["winner"] == first).sum()), int((sub["winner"] == second).sum())
            t = sign_test(wins, wins + losses)
            out.append(ClipResult(clip, first, second, wins, losses, int((sub["choice"] == "none").sum()),
                                  t.rate, t.p_value, t.wilson))
    return out


@dataclass
class StrengthRatings:
    """A pair's 1–5 strength ratings signed by the winner: +s when ``first`` won, −s when ``second``
    won (ties and votes without a strength left out). ``mean`` with a 95% interval from the
    bootstrap over raters; Wilcoxon signed-rank test of symmetry about 0 (scipy, two-sided);
    ``distribution``: count of each signed value −5 … +5."""

    first: str
    second: str
    rated_votes: int
    mean: float
    rater_interval: tuple[float, float]
    wilcoxon_statistic: float
    wilcoxon_p: float
    distribution: dict[int, int] = field(default_factory=dict)


def signed_strengths(votes: pd.DataFrame, first: str, second: str) -> pd.DataFrame:
    """Columns ``participant`` and ``signed`` for the pair's non-tie votes that carry a strength."""
    sub = pair_votes(votes, first, second)
    if "strength" not in sub:
        return pd.DataFrame({"participant": [], "signed": []})
    sub = sub[sub["winner"].isin([first, second]) & sub["strength"].notna()]
    sign = np.where(sub["winner"] == first, 1.0, -1.0)
    return pd.DataFrame({"participant": sub["participant"].to_numpy(),
                         "signed": sign * sub["strength"].astype(float).to_numpy()})


def strength_ratings(votes: pd.DataFrame, first: str, second: str, raters: list,
                     weights: np.ndarray) -> StrengthRatings:
    rated = signed_strengths(votes, first, second)
    values = rated["signed"].to_numpy(dtype=float)
    nan = float("nan")
    if values.size == 0:
        return StrengthRatings(first, second, 0, nan, (nan, nan), nan, nan, {})
    index = {r: i for i, r in enumerate(raters)}
    sums, counts = np.zeros(len(raters)), np.zeros(len(raters))
    np.add.at(sums, [index[p] for p in rated["participant"]], values)
    np.add.at(counts, [index[p] for p in rated["participant"]], 1.0)
    interval = percentile_interval(ratio_draws(weights @ sums, weights @ counts)) if len(weights) else (nan, nan)
    stat, p = (nan, nan)
    if np.any(values != 0):
        res = wilcoxon(values)
        stat, p = float(res.statistic), float(res.pvalue)
    distribution = {v: int(np.sum(values == v)) for v in range(-5, 6) if v != 0}
    return StrengthRatings(first, second, int(values.size), float(values.mean()), interval, stat, p, distribution)
