"""``vmnet study report``: the analysis as one self-contained HTML file (inline CSS, inline SVG
plots, no external resources) with the tables and figures a paper needs. Numbers are those of
``Analysis.to_dict()``, rounded to 3 decimals (p-values 4); undefined ones read "n/a"."""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from study import plots
from vmnet_core.atomic_io import write_file_atomic

if TYPE_CHECKING:
    from study.stats import Analysis

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.4}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.8em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}
.na{color:#888}.note{color:#555;font-size:.9em}figure{margin:1em 0}svg{max-width:100%;height:auto}
"""


def cell(x: Any, spec: str = ".3f", why: str = "no data") -> str:
    """One table cell's text: a number formatted with ``spec``, text escaped, or "n/a (why)"."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return f'<span class="na">n/a ({html.escape(why)})</span>'
    if isinstance(x, bool) or not isinstance(x, int | float):
        return html.escape(str(x))
    return format(x, spec) if isinstance(x, float) else str(x)


def span(bounds: Any, spec: str = ".3f", why: str = "no data", open_high: bool = False) -> str:
    """``[low, high]``; with ``open_high``, a finite low and a missing high read ``[low, ∞)`` (an odds
    interval whose rate reaches 1)."""
    if open_high and bounds is not None and bounds[0] is not None and math.isfinite(bounds[0]) and bounds[1] is None:
        return f"[{format(bounds[0], spec)}, ∞)"
    if bounds is None or any(b is None or not math.isfinite(b) for b in bounds):
        return f'<span class="na">n/a ({html.escape(why)})</span>'
    return f"[{format(bounds[0], spec)}, {format(bounds[1], spec)}]"


def table(table_id: str, header: list[str], rows: list[list[str]], left: int = 1) -> str:
    """An HTML table; the first ``left`` columns are left-aligned labels. Cells are already HTML."""
    def row(cells: list[str], tag: str) -> str:
        return "<tr>" + "".join(f'<{tag}{" class=l" if i < left else ""}>{c}</{tag}>'
                                for i, c in enumerate(cells)) + "</tr>"
    return (f'<table id="{table_id}"><thead>{row([html.escape(h) for h in header], "th")}</thead><tbody>'
            + "".join(row(r, "td") for r in rows) + "</tbody></table>")


def _pair(x: dict[str, Any]) -> str:
    return html.escape(f"{x['first']} vs {x['second']}")


NO_BOOT = "fewer than 2 raters"


def _preference(d: dict[str, Any]) -> str:
    rows = []
    for r, c in zip(d["pairs"], d["clustering"], strict=True):
        t = r["test"]
        if not r["decisive"]:
            why = "no decisive votes" if r["ties"] else "no votes yet"
            rows.append([_pair(r), cell(r["votes"]), cell(r["wins"]), cell(r["losses"]), cell(r["ties"])]
                        + [cell(None, why=why)] * 6)
            continue
        rows.append([_pair(r), cell(r["votes"]), cell(r["wins"]), cell(r["losses"]), cell(r["ties"]),
                     cell(t["rate"]), cell(t["p_value"], ".4f"), cell(r["p_holm"], ".4f"), span(t["wilson"]),
                     span(t["clopper_pearson"]), span(c["rater_interval"], why=NO_BOOT)])
    return table("pairs", ["pair", "votes", "first wins", "second wins", "ties", "win rate", "p (exact)",
                           "p (Holm)", "Wilson 95%", "Clopper-Pearson 95%", "rater bootstrap 95%"], rows)


def _clustering(d: dict[str, Any]) -> str:
    rows = [[_pair(c), cell(c["raters"]), cell(c["votes_per_rater"], ".2f", "no votes"),
             cell(c["icc"]["value"], "+.3f", c["icc"]["reason"] or "no data"),
             cell(c["design_effect"], ".2f", c["icc"]["reason"] or "no data")] for c in d["clustering"]]
    return table("clustering", ["pair", "raters", "decisive votes per rater", "ICC(1)", "design effect"], rows)


def _effects(d: dict[str, Any]) -> str:
    odds = [[_pair(o), cell(o["odds"], why="no decisive votes or no losses"),
             span(o["exact"], why="no decisive votes", open_high=True),
             span(o["rater"], why=NO_BOOT, open_high=True)] for o in d["odds"]]
    probs = [[_pair(w), cell(w["probability"]), span((w["low"], w["high"]), why=NO_BOOT)]
             for w in d["win_probabilities"]]
    return (table("odds", ["pair", "odds (first wins)", "exact 95%", "rater bootstrap 95%"], odds)
            + table("win_probabilities", ["pair", "BT P(first beats second)", "bootstrap 95%"], probs))


def _strengths(d: dict[str, Any]) -> str:
    rows = [[html.escape(s["condition"]), cell(s["strength"], "+.3f"), span((s["low"], s["high"]), "+.3f", NO_BOOT)]
            for s in d["strengths"]]
    excluded = (f'<p class="note">Not fitted (no comparisons): {html.escape(", ".join(d["bt_excluded"]))}</p>'
                if d["bt_excluded"] else "")
    return table("strengths", ["condition", "BT log-strength", "bootstrap 95%"], rows) + excluded


def _position(d: dict[str, Any]) -> str:
    rows = [[_pair(q), cell(q["a_chosen"]), cell(q["non_tie_votes"]), cell(q["rate"], why="no decisive votes"),
             span(q["clopper_pearson"], why="no decisive votes"), cell(q["p_value"], ".4f")]
            for q in d["position_by_pair"]]
    p = d["position"]
    rows.append(["all pairs", cell(p["first_chosen"]), cell(p["non_tie_votes"]),
                 cell(p["test"]["rate"], why="no decisive votes"), span(p["test"]["clopper_pearson"],
                                                                         why="no decisive votes"),
                 cell(p["test"]["p_value"], ".4f")])
    return table("position", ["pair", "A chosen", "decisive votes", "share A", "Clopper-Pearson 95%", "p (exact)"],
                 rows)


def _strength_ratings(d: dict[str, Any]) -> str:
    rows = [[_pair(s), cell(s["rated_votes"]), cell(s["mean"], "+.3f", "no rated votes"),
             span(s["rater_interval"], "+.3f", NO_BOOT), cell(s["wilcoxon_p"], ".4f", "no nonzero values")]
            for s in d["strength_ratings"]]
    return table("strength_ratings", ["pair", "rated decisive votes", "mean signed strength", "rater bootstrap 95%",
                                      "Wilcoxon p"], rows)


def _per_clip(d: dict[str, Any]) -> str:
    rows = [[html.escape(c["clip"]), _pair(c), cell(c["wins"]), cell(c["losses"]), cell(c["ties"]),
             cell(c["rate"], why="no decisive votes"), cell(c["p_value"], ".4f"), span(c["wilson"])]
            for c in d["per_clip"]]
    return table("per_clip", ["clip", "pair", "first wins", "second wins", "ties", "win rate", "p (exact)",
                              "Wilson 95%"], rows, left=2)


def _agreement(d: dict[str, Any]) -> str:
    rows = [["Krippendorff's alpha (nominal)", cell(d["krippendorff_alpha"], why="too few shared units"),
             f"{d['agreement_units']} shared units"]]
    h = d["headline"]
    if h is not None:
        rows.append([html.escape(f"mixed model: P({h['first']} preferred over {h['second']})"),
                     cell(h["preference_probability"]), span(h["preference_probability_interval"])])
        rows.append(["mixed model: position logit", cell(h["position_logit"], "+.3f", "one side only"),
                     span(h["position_interval"], "+.3f", "one side only")])
    return table("agreement", ["figure", "value", "95% / detail"], rows)


def _screening(d: dict[str, Any]) -> str:
    excluded = [s for s in d["screening"] if s["excluded"]]
    rows = [["raters", cell(d["raters"])], ["included", cell(d["raters_included"])],
            ["screened out", cell(len(excluded))]]
    rows += [[html.escape(f"threshold {k}"), cell(v, "g")] for k, v in d["provenance"].get("screening", {}).items()]
    reasons = table("screened_out", ["rater", "reason"],
                    [[cell(s["participant"]), html.escape(s["reason"])] for s in excluded], left=2) if excluded else ""
    return table("screening", ["", "value"], rows) + reasons


def _provenance(d: dict[str, Any]) -> str:
    rows = [[html.escape(k), html.escape(str(v))] for k, v in d["provenance"].items() if k != "screening"]
    return table("provenance", ["field", "value"], rows, left=2)


def _figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption class=note>{html.escape(caption)}</figcaption></figure>"


def report_html(analysis: Analysis) -> str:
    """The whole page as text."""
    d = analysis.to_dict()
    name = d["provenance"].get("study", "study")
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in d["notes"])
    parts = [
        f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>{html.escape(str(name))}: preference study"
        f"</title><style>{CSS}</style></head><body>",
        f"<h1>Preference study {html.escape(str(name))}</h1>",
        f"<p>{d['raters']} raters ({d['raters_included']} included), {d['votes']} normal votes analysed, "
        f"tie rule <b>{html.escape(d['tie_rule'])}</b>; Holm correction over the {d['holm_family']} configured "
        f"pair(s); rater-bootstrap intervals from {html.escape(str(d['provenance'].get('bootstrap_resamples', '?')))}"
        " resamples of whole raters.</p>",
        "<h2>Preference per pair</h2>", _preference(d), _figure(plots.preference_plot(analysis),
                                                               "Win rate of the first condition; 0.5 = no preference."),
        "<h2>Rater clustering</h2>", _clustering(d),
        f'<p class="note">Pooled ICC {cell(d["icc"], "+.3f", "undefined")} at '
        f'{cell(d["votes_per_rater"], ".2f", "no votes")} decisive votes per rater per pair '
        "(what <code>vmnet study plan --db</code> uses).</p>",
        "<h2>Effect sizes</h2>", _effects(d),
        "<h2>Bradley-Terry strengths</h2>", _strengths(d), _figure(plots.strengths_plot(analysis),
                                                                  "Centred log-strengths, bootstrap over raters."),
        "<h2>Position bias</h2>", _position(d), _figure(plots.position_plot(analysis), "Share of decisive votes for A."),
        "<h2>Strength ratings</h2>", _strength_ratings(d),
        _figure(plots.strength_distribution_plot(analysis), "Signed 1-5 strengths of decisive votes."),
        "<h2>Per clip</h2>", _per_clip(d), _figure(plots.per_clip_plot(analysis), "Per (clip, pair)."),
        "<h2>Agreement and mixed model</h2>", _agreement(d),
        "<h2>Screening</h2>", _screening(d),
        "<h2>Notes</h2>", f"<ul>{notes}</ul>" if notes else "<p>none</p>",
        "<h2>Provenance</h2>", _provenance(d), "</body></html>",
    ]
    return "\n".join(parts)


def write_report(analysis: Analysis, out: str | Path) -> Path:
    """Write :func:`report_html` to ``out`` atomically; returns the path."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_file_atomic(out, report_html(analysis))
    return out
