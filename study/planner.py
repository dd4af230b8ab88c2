"""Votes a condition pair needs: exact power of the two-sided sign test, the design effect of
clustering votes within raters, and the expected share of ties."""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import binom, norm

from vmnet_core.errors import VmnetError

ALPHA = 0.05
Z95 = 1.959963984540054
MAX_VOTES = 1_000_000  # plans beyond this are refused: the effect is too small to measure by votes


def sign_test_power(n: int | np.ndarray, rate: float, alpha: float = ALPHA) -> np.ndarray | float:
    """Exact power of the two-sided sign test with ``n`` non-tie votes (scalar or array) when the
    true rate is ``rate``: P(k >= c) + P(k <= n - c), with ``c`` the smallest count whose two-sided
    p-value under 1/2 is at most ``alpha``."""
    n_arr = np.atleast_1d(np.asarray(n, dtype=np.int64))
    c = binom.isf(alpha / 2, n_arr, 0.5) + 1  # reject when k >= c (or k <= n - c)
    power = binom.sf(c - 1, n_arr, rate) + binom.cdf(n_arr - c, n_arr, rate)
    power = np.where(n_arr > 0, power, 0.0)
    return float(power[0]) if np.ndim(n) == 0 else power


def check_target(rate: float, power: float, alpha: float = ALPHA) -> None:
    """Refuse, with one sentence, a target no number of votes can meet."""
    if not 0 < rate < 1 or rate == 0.5:
        raise VmnetError(f"The true rate {rate} must lie strictly between 0 and 1 and differ from 0.5.")
    if not 0 < power < 1:
        raise VmnetError(f"The power {power} must lie strictly between 0 and 1 (no finite study has power 1).")
    if not 0 < alpha < 1:
        raise VmnetError(f"The significance level {alpha} must lie strictly between 0 and 1.")
    if power <= alpha:
        raise VmnetError(f"The power {power} must exceed the significance level {alpha}; "
                         "a test that never rejects already has less power than that.")


def votes_for_power(rate: float, power: float = 0.8, alpha: float = ALPHA, rule: str = "stable") -> int:
    """Independent non-tie votes the exact sign test needs to reach ``power`` at true rate ``rate``.

    Exact power is saw-toothed in ``n``. ``rule="stable"`` (default) gives the smallest ``n`` from
    which every larger ``n`` reaches ``power`` too; ``rule="first"`` the smallest ``n`` that reaches it.
    Raises :class:`VmnetError` for a target no study can meet (power 1, rate 0.5) or one that needs
    more than ``MAX_VOTES`` votes.
    """
    check_target(rate, power, alpha)
    if rule not in ("stable", "first"):
        raise ValueError("rule must be 'stable' or 'first'")
    approx = ((Z95 * 0.5 + abs(float(norm.ppf(power))) * math.sqrt(rate * (1 - rate))) / abs(rate - 0.5)) ** 2  # normal approx.
    horizon = int(4 * approx) + 200  # the saw-tooth's dips shrink as n grows; far past any crossing
    if horizon > 4 * MAX_VOTES:
        raise VmnetError(f"A true rate of {rate} needs more than {MAX_VOTES:,} votes for power {power}; "
                         "plan for a larger effect.")
    n = np.arange(1, horizon + 1)
    reached = sign_test_power(n, rate, alpha) >= power
    if not reached.any():
        raise VmnetError(f"No study of up to {horizon:,} votes reaches power {power} at a true rate of {rate}; "
                         "plan for a larger effect or a lower power.")
    if rule == "first":
        return int(n[np.argmax(reached)])
    failing = np.flatnonzero(~reached)
    if failing.size and failing[-1] + 1 >= len(n):
        raise VmnetError(f"Power {power} at a true rate of {rate} is not reached for good within {horizon:,} "
                         "votes; plan for a larger effect or a lower power.")
    return int(n[failing[-1] + 1]) if failing.size else 1


def design_effect(votes_per_rater: float, icc: float) -> float:
    """1 + (m − 1) · ICC: how much clustering of ``m`` votes per rater inflates the votes needed."""
    return 1.0 + (max(votes_per_rater, 1.0) - 1.0) * icc


def plan_votes(rate: float, votes_per_rater: float = 1.0, icc: float = 0.0, power: float = 0.8,
               alpha: float = ALPHA, tie_share: float = 0.0, deff: float | None = None) -> dict[str, float]:
    """Votes to collect for one pair: exact sign-test votes × design effect ÷ (1 − expected tie share).
    ``deff`` given (e.g. estimated from a study's votes) replaces 1 + (m − 1)·ICC."""
    if not 0 <= tie_share < 1:
        raise VmnetError(f"The tie share {tie_share} must lie in [0, 1).")
    if not -1 < icc <= 1:
        raise VmnetError(f"The ICC {icc} must lie in (-1, 1].")
    if deff is not None and not deff > 0:
        raise VmnetError(f"The design effect {deff} must be positive.")
    independent = votes_for_power(rate, power, alpha)
    deff = design_effect(votes_per_rater, icc) if deff is None else float(deff)
    total = math.ceil(independent * deff / (1.0 - tie_share))
    return {"rate": rate, "independent_votes": independent, "design_effect": deff, "votes": total,
            "raters": math.ceil(total / max(votes_per_rater, 1.0))}
