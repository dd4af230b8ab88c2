"""The study admin (``/admin``, mounted behind a login): progress, the analysis with a win-rate plot,
the votes and participants CSV downloads, and opening or closing a study.

Every handler is private (no public API); the login in front of the mount refuses anonymous
callers of the page, its config and its queue alike.
"""

from __future__ import annotations

import math
import re
import tempfile
from pathlib import Path

import gradio as gr

from study import service
from study.db import Database
from study.export import participants_csv, votes_csv
from study.service import StudyError, StudyProgress
from study.stats import Analysis
from vmnet_core.atomic_io import write_file_atomic

PRIVATE = "private"
ANALYSIS_BOOTSTRAP = 500


def progress_markdown(p: StudyProgress) -> str:
    """The progress counts as Markdown tables."""
    state = "open to new raters" if p.is_open else "closed to new raters"
    lines = [f"**{p.study}** is {state}.", "",
             "| planned slots | planned again | joined | consented | finished | screened out | analysable votes |",
             "|---:|---:|---:|---:|---:|---:|---:|",
             f"| {p.planned_slots} | {p.replanned_slots} | {p.participants} | {p.consented} | {p.finished} "
             f"| {p.screened_out} | {p.votes} |"]
    if p.votes_by_pair:
        lines += ["", "| condition pair | votes |", "|---|---:|"]
        lines += [f"| {pair} | {n} |" for pair, n in p.votes_by_pair.items()]
    return "\n".join(lines)


def plot_analysis(analysis: Analysis, path: str | Path) -> Path:
    """Win rate of each pair's first condition with its Wilson 95% interval (left) and the
    Bradley–Terry log-strengths with bootstrap 95% intervals (right), as a PNG."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    rows = max(len(analysis.pairs), len(analysis.strengths), 3)
    fig, (ax_pairs, ax_bt) = plt.subplots(1, 2, figsize=(12, 0.55 * rows + 2.0), gridspec_kw={"width_ratios": [3, 2]})
    labels = [f"{r.first} vs {r.second}\n({r.wins}-{r.losses}, {r.ties} ties)" for r in analysis.pairs]
    for y, r in enumerate(analysis.pairs):
        rate, (low, high) = r.test.rate, r.test.wilson
        if r.test.trials == 0 or not math.isfinite(rate):
            ax_pairs.text(0.5, y, "no votes yet", ha="center", va="center", color="grey")
            continue
        colour = "tab:green" if r.significant_holm else "tab:blue"
        ax_pairs.errorbar(rate, y, xerr=[[rate - low], [high - rate]], fmt="o", color=colour, capsize=4)
    ax_pairs.axvline(0.5, color="grey", linestyle="--", linewidth=1)
    ax_pairs.set_yticks(range(len(labels)), labels)
    ax_pairs.set_xlim(0, 1)
    ax_pairs.set_ylim(len(labels) - 0.5, -0.5)
    ax_pairs.set_xlabel("share of votes for the first condition\n(Wilson 95%; green: Holm p ≤ 0.05)")
    ax_pairs.set_title("Pairwise win rates")
    strengths = analysis.strengths
    for y, s in enumerate(strengths):
        if math.isfinite(s.low) and math.isfinite(s.high):
            ax_bt.errorbar(s.strength, y, xerr=[[s.strength - s.low], [s.high - s.strength]], fmt="o",
                           color="tab:purple", capsize=4)
        else:
            ax_bt.plot(s.strength, y, "o", color="tab:purple")
    ax_bt.axvline(0.0, color="grey", linestyle="--", linewidth=1)
    ax_bt.set_yticks(range(len(strengths)), [s.condition for s in strengths])
    ax_bt.set_ylim(len(strengths) - 0.5, -0.5)
    ax_bt.set_xlabel("Bradley–Terry log-strength\n(bootstrap 95% over raters)")
    ax_bt.set_title(f"{analysis.votes} votes, {analysis.raters_included} raters included")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _file_stem(study: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", study).strip("._") or "study"


def build_admin_page(db: Database) -> gr.Blocks:
    """The admin Blocks over the app's one ``db`` (mount at ``/admin`` with ``auth``)."""
    out_dir = Path(tempfile.mkdtemp(prefix="vmnet-admin-"))

    with gr.Blocks(title="Study admin", analytics_enabled=False) as page:
        gr.Markdown("# Preference study — admin")
        with gr.Row():
            study = gr.Dropdown(label="Study", choices=[], interactive=True, scale=3, elem_id="admin-study")
            refresh_btn = gr.Button("Refresh", scale=1, elem_id="admin-refresh")
        notice = gr.Markdown("", elem_id="admin-notice")
        progress = gr.Markdown(elem_id="admin-progress")
        with gr.Row():
            open_btn = gr.Button("Open to new raters", elem_id="admin-open")
            close_btn = gr.Button("Close to new raters", variant="stop", elem_id="admin-close")
        gr.Markdown("## Analysis")
        analyze_btn = gr.Button("Run the analysis", variant="primary", elem_id="admin-analyze")
        plot = gr.Image(label="Win rates and strengths", type="filepath", interactive=False, buttons=["download"])
        report = gr.Code(label="Report", language=None, interactive=False, elem_id="admin-report")
        gr.Markdown("## Downloads")
        export_btn = gr.Button("Prepare the CSV files", elem_id="admin-export")
        with gr.Row():
            votes_file = gr.File(label="Votes (one row per vote)", interactive=False)
            people_file = gr.File(label="Participants", interactive=False)

        def refresh(current: str | None):
            try:
                names = service.list_studies(db)
                chosen = current if current in names else (names[-1] if names else None)
                text = progress_markdown(service.progress(db, chosen)) if chosen else "No study in this database yet."
            except StudyError as exc:
                return gr.update(), "", f"**{exc}**"
            return gr.update(choices=names, value=chosen), text, ""

        def set_open(name: str | None, is_open: bool):
            if not name:
                return gr.update(), "**Choose a study first.**"
            try:
                service.set_open(db, name, is_open)
                return progress_markdown(service.progress(db, name)), ""
            except StudyError as exc:
                return gr.update(), f"**{exc}**"

        def analyze(name: str | None):
            if not name:
                return None, "", "**Choose a study first.**"
            try:
                analysis = service.analyze(db, name, n_boot=ANALYSIS_BOOTSTRAP)
            except StudyError as exc:
                return None, "", f"**{exc}**"
            png = plot_analysis(analysis, out_dir / f"{_file_stem(name)}-analysis.png")
            return str(png), analysis.to_text(), ""

        def export(name: str | None):
            if not name:
                return None, None, "**Choose a study first.**"
            try:
                votes, people = votes_csv(db, name), participants_csv(db, name)
            except StudyError as exc:
                return None, None, f"**{exc}**"
            stem = _file_stem(name)
            votes_path, people_path = out_dir / f"{stem}-votes.csv", out_dir / f"{stem}-participants.csv"
            write_file_atomic(votes_path, votes)
            write_file_atomic(people_path, people)
            return str(votes_path), str(people_path), ""

        page.load(refresh, [study], [study, progress, notice], api_visibility=PRIVATE)
        refresh_btn.click(refresh, [study], [study, progress, notice], api_visibility=PRIVATE)
        study.input(refresh, [study], [study, progress, notice], api_visibility=PRIVATE)
        open_btn.click(lambda name: set_open(name, True), [study], [progress, notice], api_visibility=PRIVATE)
        close_btn.click(lambda name: set_open(name, False), [study], [progress, notice], api_visibility=PRIVATE)
        analyze_btn.click(analyze, [study], [plot, report, notice], api_visibility=PRIVATE)
        export_btn.click(export, [study], [votes_file, people_file, notice], api_visibility=PRIVATE)

    # api_open=False: a direct run/<name> call may not skip the queue and its limits (docs/security.md)
    page.queue(default_concurrency_limit=4, api_open=False)
    return page
