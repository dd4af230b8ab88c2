"""Rater clustering: the bootstrap over whole raters, the intraclass correlation of a rater's votes
and the design effect it implies.

A rater gives several votes per condition pair, and votes of one rater are not independent. The
bootstrap here resamples raters (all their votes together, seeded); the ICC is the one-way ANOVA
ICC(1) of the per-vote indicator "the pair's first condition won" grouped by rater.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from study.planner import design_effect


def rater_order(votes: pd.DataFrame) -> list:
    """The raters of a vote table in order of first appearance (the bootstrap's column order)."""
    return list(pd.unique(votes["participant"])) if len(votes) else []


def rater_weights(n_raters: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n_raters) counts: how often each rater is drawn in each bootstrap resample of
    ``n_raters`` raters with replacement, from ``numpy.random.default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    weights = np.zeros((max(n_boot, 0), n_raters))
    for b in range(max(n_boot, 0)):
        weights[b] = np.bincount(rng.integers(n_raters, size=n_raters), minlength=n_raters)
    return weights


def percentile_interval(draws: np.ndarray) -> tuple[float, float]:
    """2.5 and 97.5 percentiles of the finite draws (NaN, NaN when there are none); axis 0."""
    draws = np.asarray(draws, dtype=float)
    finite = draws[np.isfinite(draws)]
    if finite.size == 0:
        return float("nan"), float("nan")
    low, high = np.percentile(finite, [2.5, 97.5])
    return float(low), float(high)


def ratio_draws(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Elementwise numerator / denominator, NaN where the denominator is 0 (a resample without votes)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1), np.nan)


@dataclass
class ICC:
    """One-way ANOVA ICC(1) with unequal group sizes: (MSB − MSW) / (MSB + (n0 − 1)·MSW),
    n0 = (N − Σ nᵢ² / N) / (k − 1). ``value`` is NaN when undefined (``reason`` says why)."""

    value: float
    groups: int  # raters with at least one vote
    observations: int  # votes
    n0: float
    msb: float
    msw: float
    reason: str = ""


def icc_oneway(values: np.ndarray, groups: np.ndarray) -> ICC:
    """ICC(1) of ``values`` (shape (N,)) grouped by ``groups`` (shape (N,))."""
    values = np.asarray(values, dtype=float)
    frame = pd.DataFrame({"y": values, "g": np.asarray(groups)})
    sizes = frame.groupby("g", sort=False)["y"].size().to_numpy(dtype=float)
    means = frame.groupby("g", sort=False)["y"].transform("mean").to_numpy()
    k, n = len(sizes), len(values)
    nan = float("nan")
    if k < 2:
        return ICC(nan, k, n, nan, nan, nan, "fewer than two raters")
    if n - k < 1:
        return ICC(nan, k, n, nan, nan, nan, "no rater gave more than one vote")
    grand = values.mean()
    ssb = float(np.sum((means - grand) ** 2))  # per vote, so Σ nᵢ (ȳᵢ − ȳ)²
    ssw = float(np.sum((values - means) ** 2))
    msb, msw = ssb / (k - 1), ssw / (n - k)
    n0 = (n - float(np.sum(sizes ** 2)) / n) / (k - 1)
    denominator = msb + (n0 - 1) * msw
    if denominator <= 0:
        return ICC(nan, k, n, n0, msb, msw, "every vote is the same")
    return ICC((msb - msw) / denominator, k, n, n0, msb, msw)


@dataclass
class PairClustering:
    """One pair's rater-clustered figures: the first condition's win rate with a 95% percentile
    interval from the bootstrap over raters, the ICC of the non-tie votes and the design effect
    1 + (m − 1)·max(ICC, 0) for m = non-tie votes per rater on this pair."""

    first: str
    second: str
    raters: int
    votes_per_rater: float
    rate: float
    rater_interval: tuple[float, float]
    icc: ICC
    design_effect: float


def pair_rater_counts(votes: pd.DataFrame, raters: list, first: str, second: str) -> np.ndarray:
    """(R, 3) counts per rater (``raters`` order): first won, second won, no preference."""
    a, b = votes["condition_a"], votes["condition_b"]
    sub = votes[((a == first) & (b == second)) | ((a == second) & (b == first))]
    counts = np.zeros((len(raters), 3))
    index = {r: i for i, r in enumerate(raters)}
    for participant, winner in zip(sub["participant"], sub["winner"], strict=True):
        column = 0 if winner == first else 1 if winner == second else 2
        counts[index[participant], column] += 1
    return counts


def rate_from_counts(counts: np.ndarray, tie_rule: str) -> np.ndarray:
    """First-condition win rate from (..., 3) counts: W/(W+L) under ``drop``, (W+T/2)/(W+L+T) under ``half``."""
    wins, losses, ties = counts[..., 0], counts[..., 1], counts[..., 2]
    if tie_rule == "half":
        return ratio_draws(wins + ties / 2, wins + losses + ties)
    return ratio_draws(wins, wins + losses)


def pair_clustering(votes: pd.DataFrame, raters: list, weights: np.ndarray, first: str, second: str,
                    tie_rule: str) -> PairClustering:
    """:class:`PairClustering` for one pair from the normal votes and the bootstrap ``weights``."""
    counts = pair_rater_counts(votes, raters, first, second)
    rate = float(rate_from_counts(counts.sum(axis=0), tie_rule))
    interval = percentile_interval(rate_from_counts(weights @ counts, tie_rule)) if len(weights) \
        else (float("nan"), float("nan"))
    decisive = counts[:, 0] + counts[:, 1]
    voted = decisive > 0
    y = np.concatenate([np.r_[np.ones(int(w)), np.zeros(int(v))] for w, v in counts[voted, :2]]) \
        if voted.any() else np.zeros(0)
    groups = np.repeat(np.flatnonzero(voted), decisive[voted].astype(int))
    icc = icc_oneway(y, groups)
    m = float(decisive[voted].mean()) if voted.any() else float("nan")
    deff = design_effect(m, max(icc.value, 0.0)) if np.isfinite(icc.value) else float("nan")
    return PairClustering(first, second, int(voted.sum()), m, rate, interval, icc, deff)


def pooled_icc(rows: list[PairClustering]) -> tuple[float, float]:
    """(ICC, votes per rater) over pairs: means of the defined per-pair values weighted by each
    pair's non-tie votes (NaN, NaN when no pair has one). What ``vmnet study plan --db`` uses."""
    usable = [r for r in rows if np.isfinite(r.icc.value)]
    if not usable:
        return float("nan"), float("nan")
    w = np.array([r.icc.observations for r in usable], dtype=float)
    return (float(np.average([r.icc.value for r in usable], weights=w)),
            float(np.average([r.votes_per_rater for r in usable], weights=w)))
