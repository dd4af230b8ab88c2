"""``examples/study.toml`` through the real parser and ``vmnet study create``; raters vote through
the service; ``vmnet study report`` writes one self-contained HTML file whose tables match the
analysis JSON and whose plots are inline SVG; ``vmnet study plan --db`` reads the study's ICC."""

from __future__ import annotations

import json
import math
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from study import service
from study.config import load_config
from study.db import open_database
from study.models import Trial
from vmnet_core.cli.main import main as run_cli
from vmnet_testkit.study_helpers import as_if_listened, make_clips, write_candidates_csv

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "study.toml"
TRUTH = {"ground_truth": 1.0, "vmnet": 0.4, "random": -1.2}  # Bradley–Terry log-strengths of the simulated raters


class Page(HTMLParser):
    """Tables by id (rows of cell texts), every src/href value, the <svg> count and the SVG text."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.links: list[str] = []
        self.svgs = 0
        self.svg_text: list[str] = []
        self._table: str | None = None
        self._cell: list[str] | None = None
        self._in_svg = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.links += [v for k, v in attrs.items() if k in ("src", "href", "xlink:href") and v is not None]
        if tag == "svg":
            self.svgs += 1
            self._in_svg += 1
        elif tag == "table":
            self._table = attrs.get("id")
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table:
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "svg":
            self._in_svg -= 1
        elif tag in ("td", "th") and self._cell is not None:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._in_svg:
            self.svg_text.append(data)


def _candidates_csv(folder: Path) -> Path:
    return write_candidates_csv(folder, make_clips(folder, n=3, seconds=1.2))  # 2 scored clips and 1 for practice


def _vote_all(url: str, raters: int = 10, careless: int = 1, seed: int = 0) -> None:
    """Raters who prefer by ``TRUTH`` (and pass attention checks), plus ``careless`` ones who always answer A."""
    rng = np.random.default_rng(seed)
    db = open_database(url)
    try:
        for r in range(raters + careless):
            token = service.join(db)
            service.consent(db, token)
            view = service.current_trial(db, token)
            while view is not None:
                with db.read() as s:
                    trial = s.get(Trial, view.trial_id)
                    a, b, expected = trial.candidate_a.condition, trial.candidate_b.condition, trial.expected_choice
                if r >= raters:
                    choice = "A"
                elif expected:
                    choice = expected
                elif rng.random() < 0.1:
                    choice = "none"
                else:
                    p_a = 1 / (1 + math.exp(TRUTH[b] - TRUTH[a]))
                    choice = "A" if rng.random() < p_a else "B"
                strength = None if choice == "none" else int(rng.integers(1, 6))
                as_if_listened(db, view.trial_id)  # the example config's wait before a vote, simulated
                service.record_vote(db, token, view.trial_id, choice, strength, 4000, True, True,
                                    listened_a_s=1.2, listened_b_s=1.2)
                view = service.current_trial(db, token)
    finally:
        db.dispose()


@pytest.fixture(scope="module")
def example_study(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    url = f"sqlite:///{folder / 'study.db'}"
    assert run_cli(["study", "create", "--candidates", str(_candidates_csv(folder)), "--config", str(EXAMPLE),
                    "--db", url, "--media-dir", str(folder / "media"), "--quiet"]) == 0
    _vote_all(url)
    return folder, url


def test_the_example_config_is_the_documented_kind_and_creates_a_study(example_study):
    config = load_config(EXAMPLE)
    assert config.name == "vmnet-vs-random-example" and config.conditions == list(TRUTH)
    assert config.attention.count == 2 and config.screening.max_attention_failure_rate == 0.15
    _, url = example_study
    db = open_database(url)
    try:
        assert [s for s in service.list_studies(db)] == [config.name]
        assert service.study_config(db).to_dict() == config.to_dict()
    finally:
        db.dispose()


def _fmt(x, spec=".3f"):
    return format(x, spec)


def test_report_is_one_self_contained_html_file_matching_the_json(example_study, tmp_path, capsys):
    _, url = example_study
    out, js = tmp_path / "report.html", tmp_path / "analysis.json"
    assert run_cli(["study", "report", "--db", url, "--out", str(out), "--bootstrap", "200", "--json", str(js)]) == 0
    d = json.loads(js.read_text())
    text = out.read_text(encoding="utf-8")
    page = Page()
    page.feed(text)
    # self-contained: no external resources (only in-page '#id' references inside the SVGs)
    assert page.links and all(link.startswith("#") for link in page.links)
    assert "<link" not in text and "<script" not in text and "@import" not in text
    assert re.findall(r"url\(([^)]*)\)", text) and all(u.startswith("#") for u in re.findall(r"url\(([^)]*)\)", text))
    assert not re.search(r"(src|href)\s*=\s*[\"']?\s*(https?:)?//", text)
    # provenance: in the JSON and in the page
    prov = d["provenance"]
    assert prov["study"] == "vmnet-vs-random-example" and prov["seed"] == 7 and prov["bootstrap_resamples"] == 200
    assert prov["screening"] == {"max_attention_failure_rate": 0.15, "min_repeat_consistency": 0.0,
                                 "min_listened_fraction": 0.5, "min_response_ms": 0}
    assert prov["version"] and prov["generated_at"].endswith("Z")
    shown = dict(page.tables["provenance"][1:])
    assert shown["study"] == prov["study"] and shown["seed"] == "7" and shown["version"] == prov["version"]
    assert shown["generated_at"] == prov["generated_at"]
    # the careless rater is screened out and shown so
    assert (d["raters"], d["raters_included"]) == (11, 10)
    screening = dict(r[:2] for r in page.tables["screening"][1:])
    assert screening["screened out"] == "1" and screening["threshold max_attention_failure_rate"] == "0.15"
    assert len(page.tables["screened_out"]) == 2
    # preference per pair: every figure of the JSON, as rounded in the page
    rows = page.tables["pairs"][1:]
    assert len(rows) == 3
    for row, pair, c in zip(rows, d["pairs"], d["clustering"], strict=True):
        t = pair["test"]
        assert row == [f"{pair['first']} vs {pair['second']}", str(pair["votes"]), str(pair["wins"]),
                       str(pair["losses"]), str(pair["ties"]), _fmt(t["rate"]), _fmt(t["p_value"], ".4f"),
                       _fmt(pair["p_holm"], ".4f"), f"[{_fmt(t['wilson'][0])}, {_fmt(t['wilson'][1])}]",
                       f"[{_fmt(t['clopper_pearson'][0])}, {_fmt(t['clopper_pearson'][1])}]",
                       f"[{_fmt(c['rater_interval'][0])}, {_fmt(c['rater_interval'][1])}]"]
    bt = page.tables["strengths"][1:]
    assert [r[:2] for r in bt] == [[s["condition"], _fmt(s["strength"], "+.3f")] for s in d["strengths"]]
    assert [r[1] for r in page.tables["win_probabilities"][1:]] == [_fmt(w["probability"])
                                                                    for w in d["win_probabilities"]]
    assert [r[1] for r in page.tables["clustering"][1:]] == [str(c["raters"]) for c in d["clustering"]]
    assert len(page.tables["per_clip"]) - 1 == len(d["per_clip"]) == 6
    assert [r[2] for r in page.tables["per_clip"][1:]] == [str(c["wins"]) for c in d["per_clip"]]
    assert [r[1] for r in page.tables["position"][1:-1]] == [str(q["a_chosen"]) for q in d["position_by_pair"]]
    assert [r[2] for r in page.tables["strength_ratings"][1:]] == [_fmt(s["mean"], "+.3f")
                                                                   for s in d["strength_ratings"]]
    # the truth orders the conditions; the best is preferred over random
    assert [s["condition"] for s in sorted(d["strengths"], key=lambda s: -s["strength"])][-1] == "random"
    # plots: five inline SVG figures with their titles and the condition names as text
    svg_text = " ".join(page.svg_text)
    assert page.svgs == 5
    for title in ("Preference per pair", "Bradley-Terry log-strength", "Position bias", "Strength ratings",
                  "Per clip"):
        assert title in svg_text
    assert all(c in svg_text for c in TRUTH)
    assert not re.search(r"\bnan\b", text, re.IGNORECASE)


def test_plan_reads_the_icc_from_the_study(example_study, tmp_path, capsys):
    _, url = example_study
    capsys.readouterr()
    assert run_cli(["study", "analyze", "--db", url, "--json", "--bootstrap", "0"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert run_cli(["study", "plan", "--db", url, "--rate", "0.6", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)[0]
    icc, m = max(d["icc"], 0.0), d["votes_per_rater"]
    assert plan["icc"] == pytest.approx(icc) and plan["votes_per_rater"] == pytest.approx(m)
    assert plan["design_effect"] == pytest.approx(1 + (m - 1) * icc)
    assert plan["votes"] == math.ceil(plan["independent_votes"] * plan["design_effect"])
    assert run_cli(["study", "plan", "--db", url, "--rate", "0.6", "--icc", "0.2", "--votes-per-rater", "3",
                    "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["design_effect"] == pytest.approx(1.4)
