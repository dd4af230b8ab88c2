"""The report's figures as inline SVG text (matplotlib, Agg; text kept as text, no metadata, no
external references)."""

from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from study.stats import Analysis


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "vmnet-study", "font.size": 9})
    return plt


def _svg(fig) -> str:
    """The figure as an ``<svg>`` element (no XML prologue, no metadata block)."""
    plt = _pyplot()
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None,
                                                                     "Format": None, "Type": None})
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def _finite(*values: float) -> bool:
    return all(v is not None and math.isfinite(v) for v in values)


def _interval_plot(title: str, xlabel: str, rows: list[tuple[str, list[tuple[float, float, float, str]]]],
                   reference: float, xlim: tuple[float, float] | None = None) -> str:
    """One row per label; each row a list of (point, low, high, series); dots with whiskers."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 0.45 * max(len(rows), 2) + 1.2))
    colours = {}
    for y, (_, marks) in enumerate(rows):
        for k, (point, low, high, series) in enumerate(marks):
            colour = colours.setdefault(series, f"C{len(colours)}")
            offset = (k - (len(marks) - 1) / 2) * 0.22
            if not _finite(point):
                continue
            if _finite(low, high):
                ax.errorbar(point, y + offset, xerr=[[point - low], [high - point]], fmt="o", color=colour,
                            capsize=3, label=series)
            else:
                ax.plot(point, y + offset, "o", color=colour, label=series)
    ax.axvline(reference, color="grey", linestyle="--", linewidth=1)
    ax.set_yticks(range(len(rows)), [label for label, _ in rows])
    ax.set_ylim(len(rows) - 0.5, -0.5)
    if xlim:
        ax.set_xlim(*xlim)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    if len(unique) > 1:
        ax.legend(unique.values(), unique.keys(), loc="best", fontsize=8)
    return _svg(fig)


def preference_plot(a: Analysis) -> str:
    """Each pair's first-condition win rate with its Wilson and rater-bootstrap 95% intervals."""
    rows = []
    for r, c in zip(a.pairs, a.clustering, strict=True):
        rows.append((f"{r.first} vs {r.second}", [(r.test.rate, *r.test.wilson, "Wilson 95%"),
                                                  (c.rate, *c.rater_interval, "rater bootstrap 95%")]))
    return _interval_plot("Preference per pair", "share of decisive votes for the first condition", rows, 0.5, (-0.02, 1.02))


def strengths_plot(a: Analysis) -> str:
    rows = [(s.condition, [(s.strength, s.low, s.high, "bootstrap 95%")]) for s in a.strengths]
    return _interval_plot("Bradley-Terry log-strength", "log-strength (centred)", rows, 0.0)


def position_plot(a: Analysis) -> str:
    rows = [(f"{q.first} vs {q.second}", [(q.rate, *q.clopper_pearson, "share A")])
            for q in a.position_by_pair]
    rows.append(("all pairs", [(a.position.test.rate, *a.position.test.clopper_pearson, "share A")]))
    return _interval_plot("Position bias", "share of decisive votes for side A (Clopper-Pearson 95%)", rows, 0.5, (-0.02, 1.02))


def per_clip_plot(a: Analysis) -> str:
    rows = [(f"{c.clip} | {c.first} vs {c.second}", [(c.rate, *c.wilson, "Wilson 95%")]) for c in a.per_clip]
    return _interval_plot("Per clip", "share of decisive votes for the first condition", rows, 0.5, (-0.02, 1.02))


def strength_distribution_plot(a: Analysis) -> str:
    """Counts of each signed strength (−5 … +5) per pair, as grouped bars."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 2.8))
    values = [v for v in range(-5, 6) if v != 0]
    rated = [s for s in a.strength_ratings if s.rated_votes]
    width = 0.8 / max(len(rated), 1)
    for k, s in enumerate(rated):
        counts = [s.distribution.get(v, 0) for v in values]
        ax.bar([v + (k - (len(rated) - 1) / 2) * width for v in values], counts, width=width,
               label=f"{s.first} vs {s.second}")
    if not rated:
        ax.text(0, 0.5, "no rated decisive votes", ha="center", va="center", color="grey")
    ax.set_xticks(values)
    ax.set_xlabel("signed strength (+: first condition chosen, -: second)")
    ax.set_ylabel("votes")
    ax.set_title("Strength ratings")
    if rated:
        ax.legend(fontsize=8)
    return _svg(fig)
