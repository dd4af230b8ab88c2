"""Bradley–Terry strengths of the conditions and the win probabilities they imply, with 95%
percentile intervals from the bootstrap over raters (:mod:`study.clustered`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from study.clustered import percentile_interval, rater_order, rater_weights


@dataclass
class Strength:
    condition: str
    strength: float  # log-strength, centred to mean 0 over the fitted conditions
    low: float
    high: float


@dataclass
class WinProbability:
    """P(first beats second) = expit(θ_first − θ_second) under the fitted Bradley–Terry model."""

    first: str
    second: str
    probability: float
    low: float
    high: float


@dataclass
class BradleyTerry:
    strengths: list[Strength]  # fitted conditions only
    win_probabilities: list[WinProbability]  # configured pairs whose conditions are both fitted
    excluded: list[str]  # conditions without a single comparison: not fitted


def win_counts(votes: pd.DataFrame, index: dict[str, int], tie_rule: str) -> np.ndarray:
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


def bt_fit(counts: np.ndarray, alpha: float) -> np.ndarray:
    """Centred log-strengths from a (K, K) win-count matrix (choix ``ilsr_pairwise_dense``)."""
    import choix

    if not counts.any():
        return np.zeros(len(counts))
    params = np.asarray(choix.ilsr_pairwise_dense(counts, alpha=alpha), dtype=float)
    return params - params.mean()


def _expit(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def bradley_terry(votes: pd.DataFrame, conditions: list[str], pairs: list[tuple[str, str]] | None = None,
                  tie_rule: str = "drop", n_boot: int = 1000, seed: int = 0, alpha: float = 0.01) -> BradleyTerry:
    """Bradley–Terry log-strengths (choix's ILSR, regularisation ``alpha``; ``ilsr_pairwise_dense`` on
    win counts gives the same fit as ``ilsr_pairwise`` on the vote list) of the conditions that took
    part in at least one counted comparison, with 95% percentile intervals from ``n_boot`` bootstrap
    resamples of whole raters (:func:`study.clustered.rater_weights` with ``seed``)."""
    full = {c: i for i, c in enumerate(conditions)}
    total = win_counts(votes, full, tie_rule)
    compared = (total + total.T).sum(axis=1) > 0
    fitted = [c for c in conditions if compared[full[c]]]
    excluded = [c for c in conditions if not compared[full[c]]]
    index = {c: i for i, c in enumerate(fitted)}
    raters = rater_order(votes)
    per_rater = np.stack([win_counts(votes[votes["participant"] == r], index, tie_rule) for r in raters]) \
        if raters else np.zeros((0, len(index), len(index)))
    point = bt_fit(per_rater.sum(axis=0), alpha) if fitted else np.zeros(0)
    boots = np.full((0, len(index)), np.nan)
    if len(raters) >= 2 and n_boot > 0 and fitted:
        weights = rater_weights(len(raters), n_boot, seed)
        boots = np.stack([bt_fit(np.tensordot(w, per_rater, axes=1), alpha) for w in weights])
    strengths = []
    for c, i in index.items():
        low, high = percentile_interval(boots[:, i]) if len(boots) else (float("nan"), float("nan"))
        strengths.append(Strength(c, float(point[i]), low, high))
    probabilities = []
    for first, second in pairs or []:
        if first in index and second in index:
            i, j = index[first], index[second]
            low, high = percentile_interval(_expit(boots[:, i] - boots[:, j])) if len(boots) \
                else (float("nan"), float("nan"))
            probabilities.append(WinProbability(first, second, float(_expit(point[i] - point[j])), low, high))
    return BradleyTerry(strengths, probabilities, excluded)
