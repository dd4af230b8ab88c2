"""The plain-text report of a :class:`study.stats.Analysis` (``vmnet study analyze``). Undefined
figures never print as ``nan``: they read ``n/a`` with the reason."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from study.stats import Analysis


def num(x: float | None, spec: str = ".3f", why: str = "no data") -> str:
    """``format(x, spec)``, or ``n/a (why)`` when ``x`` is None, NaN or infinite."""
    if x is None or not math.isfinite(x):
        return f"n/a ({why})"
    return format(x, spec)


def interval(bounds: tuple[float, float], spec: str = ".3f", why: str = "no data") -> str:
    """``[low, high]`` or ``n/a (why)`` when either end is undefined."""
    low, high = bounds
    if low is not None and math.isfinite(low) and high == math.inf:
        return f"[{format(low, spec)}, inf)"
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return f"n/a ({why})"
    return f"[{format(low, spec)}, {format(high, spec)}]"


NO_BOOT = "fewer than 2 raters or no bootstrap"


def _pairs(a: Analysis) -> list[str]:
    lines = ["pair                               votes  wins-losses-ties  win rate  p (exact)  p (Holm)  "
             "Wilson 95%        Clopper-Pearson 95%  rater bootstrap 95%"]
    for r, c in zip(a.pairs, a.clustering or [None] * len(a.pairs), strict=True):
        head = f"{r.first + ' vs ' + r.second:34s} {r.votes:5d}  {r.wins:4d}-{r.losses:<4d}-{r.ties:<4d}     "
        t = r.test
        if t.trials == 0:
            lines.append(head + ("no decisive votes (all ties)" if r.ties else "no votes yet"))
            continue
        boot = interval(c.rater_interval, why=NO_BOOT) if c is not None else "n/a (not computed)"
        lines.append(head + f"{t.rate:7.3f}  {t.p_value:9.4f}  {num(r.p_holm, '8.4f')}  "
                            f"{interval(t.wilson)}    {interval(t.clopper_pearson)}    {boot}")
    lines.append(f"Holm correction over the {a.holm_family or len(a.pairs)} configured pair(s).")
    return lines


def _clustering(a: Analysis) -> list[str]:
    lines = ["", "rater clustering (non-tie votes; ICC(1) one-way ANOVA; design effect 1+(m-1)*max(ICC,0)):"]
    for c in a.clustering:
        why = c.icc.reason or "no data"
        lines.append(f"  {c.first + ' vs ' + c.second:32s} raters {c.raters:3d}  votes/rater "
                     f"{num(c.votes_per_rater, '.2f', 'no votes')}  ICC {num(c.icc.value, '+.3f', why)}  "
                     f"design effect {num(c.design_effect, '.2f', why)}")
    lines.append(f"  pooled ICC {num(a.icc, '+.3f', 'no pair has a defined ICC')} at "
                 f"{num(a.votes_per_rater, '.2f', 'no votes')} votes per rater per pair "
                 "(vmnet study plan --db reads these)")
    return lines


def _effects(a: Analysis) -> list[str]:
    lines = ["", "effect sizes: odds of the first condition winning (1 = no preference)"]
    for o in a.odds:
        why = "no decisive votes" if not math.isfinite(o.odds) and not o.odds == math.inf else "no losses"
        lines.append(f"  {o.first + ' vs ' + o.second:32s} odds {num(o.odds, '.3f', why)}  "
                     f"exact {interval(o.exact, why='no decisive votes')}  "
                     f"rater bootstrap {interval(o.rater, why=NO_BOOT)}")
    lines.append("Bradley-Terry win probability P(first beats second) (95% bootstrap over raters):")
    for w in a.win_probabilities:
        lines.append(f"  {w.first + ' vs ' + w.second:32s} {w.probability:.3f}  {interval((w.low, w.high), why=NO_BOOT)}")
    lines += ["Bradley-Terry log-strength (95% bootstrap over raters):"]
    lines += [f"  {s.condition:20s} {s.strength:+.3f}  {interval((s.low, s.high), '+.3f', NO_BOOT)}"
              for s in a.strengths]
    if a.bt_excluded:
        lines.append(f"  not fitted (no comparisons): {', '.join(a.bt_excluded)}")
    return lines


def _position_and_strength(a: Analysis) -> list[str]:
    p = a.position
    lines = ["", f"position bias: A chosen in {p.first_chosen} of {p.non_tie_votes} non-tie votes "
                 f"(rate {num(p.test.rate, why='no decisive votes')}, p {p.test.p_value:.4f})"]
    for q in a.position_by_pair:
        lines.append(f"  {q.first + ' vs ' + q.second:32s} A chosen {q.a_chosen} of {q.non_tie_votes} "
                     f"(rate {num(q.rate, why='no decisive votes')} "
                     f"{interval(q.clopper_pearson, why='no decisive votes')}, p {q.p_value:.4f})")
    lines.append("strength ratings, signed (+ first condition won, - second; ties and unrated left out):")
    for s in a.strength_ratings:
        if not s.rated_votes:
            lines.append(f"  {s.first + ' vs ' + s.second:32s} n/a (no rated decisive votes)")
            continue
        lines.append(f"  {s.first + ' vs ' + s.second:32s} {s.rated_votes} rated, mean {s.mean:+.3f} "
                     f"{interval(s.rater_interval, '+.3f', NO_BOOT)}, Wilcoxon p "
                     f"{num(s.wilcoxon_p, '.4f', 'every value is 0')}")
    return lines


def _per_clip(a: Analysis) -> list[str]:
    lines = ["", "per clip (first condition's wins-losses-ties, rate, exact p):"]
    for c in a.per_clip:
        lines.append(f"  {c.clip[:24]:24s} {c.first + ' vs ' + c.second:32s} {c.wins}-{c.losses}-{c.ties}  "
                     f"{num(c.rate, why='no decisive votes')}  p {c.p_value:.4f}")
    return lines


def _rest(a: Analysis) -> list[str]:
    lines = [f"Krippendorff's alpha (nominal): {num(a.krippendorff_alpha, why='fewer than 2 raters share a unit')}"
             f" over {a.agreement_units} shared units"]
    h = a.headline
    if h is not None:
        lo, hi = h.preference_probability_interval
        lines.append(f"mixed model {h.first} vs {h.second}: P({h.first} preferred) {h.preference_probability:.3f} "
                     f"{interval((lo, hi))}, position logit {num(h.position_logit, '+.3f', 'one side only')} "
                     f"{interval(h.position_interval, '+.3f', 'one side only')} "
                     f"({h.votes} votes, {h.raters} raters, {h.clips} clips)")
    excluded = [s for s in a.screening if s.excluded]
    lines.append(f"screened out: {len(excluded)} rater(s)")
    lines += [f"  rater {s.participant}: {s.reason}" for s in excluded]
    lines += [f"note: {n}" for n in a.notes]
    if a.provenance:
        lines.append("provenance: " + ", ".join(f"{k}={v}" for k, v in a.provenance.items()))
    return lines


def analysis_text(a: Analysis) -> str:
    """The whole report, one section after another."""
    lines = [f"raters: {a.raters} ({a.raters_included} included), normal votes analysed: {a.votes}, "
             f"tie rule: {a.tie_rule}", ""]
    lines += _pairs(a) + _clustering(a) + _effects(a) + _position_and_strength(a) + _per_clip(a) + [""] + _rest(a)
    return "\n".join(lines)
