"""The load study's study, its stored votes and the checks: acknowledged votes against stored ones,
one participant per rater, resumes, latency figures, and comparisons of the analysis."""

from __future__ import annotations

import math
import time

from sqlalchemy import func, select

from study.db import Database
from study.models import Participant, Vote
from study.service import study_config
from study.stats import analyze_votes
from vmnet_testkit.study_helpers import new_study
from vmnet_testkit.study_load.raters import RaterReport

FIXED_TRIALS = 3  # besides the normal trials: one practice, one attention check, one swapped repeat
STUDY_NAME = "load-study"


def make_study(db_url: str, premuxed, trials: int, name: str = STUDY_NAME) -> None:
    """Store a study whose sessions have ``trials`` trials (practice, check and repeat included)."""
    db = Database(db_url)
    try:
        new_study(db, premuxed, name, trials_per_participant=trials - FIXED_TRIALS)
    finally:
        db.dispose()



def clips_needed(trials: int) -> int:
    """Clips for ``trials - 3`` distinct normal (clip, pair) trials with three conditions."""
    if trials < FIXED_TRIALS + 1:
        raise SystemExit(f"--trials must be at least {FIXED_TRIALS + 1}")
    return math.ceil((trials - FIXED_TRIALS) / 3)



def stored_votes(db_url: str) -> list[tuple[str, int, str]]:
    """Every stored vote as (token, trial_id, choice), practice included."""
    db = Database(db_url, migrate=False)
    try:
        with db.read() as s:
            return [tuple(row) for row in s.execute(
                select(Participant.token, Vote.trial_id, Vote.choice).join(Participant, Vote.participant_id == Participant.id))]
    finally:
        db.dispose()



def participant_count(db_url: str) -> int:
    """Participants in the database (one per rater when joins are idempotent)."""
    db = Database(db_url, migrate=False)
    try:
        with db.read() as s:
            return s.scalar(select(func.count(Participant.id)))
    finally:
        db.dispose()



def wait_for_votes(db_url: str, n: int, timeout_s: float = 600.0) -> int:
    """Poll until at least ``n`` votes are stored (or ``timeout_s`` passed); returns the count seen."""
    deadline = time.monotonic() + timeout_s
    while (count := len(stored_votes(db_url))) < n and time.monotonic() < deadline:
        time.sleep(0.05)
    return count



def check(reports: list[RaterReport], db_url: str, trials: int) -> dict:
    """Acknowledged vs stored votes and the client-side figures; ``ok`` when nothing is off."""
    acked = sorted((r.token, t, c) for r in reports for t, c in r.acked)
    stored = sorted(stored_votes(db_url))
    participants = participant_count(db_url)
    lat = sorted(ms for r in reports for ms in r.vote_ms)
    by_position = [sorted(r.vote_ms[i] for r in reports if len(r.vote_ms) > i)
                   for i in range(max((len(r.vote_ms) for r in reports), default=0))]

    def pct(q: float, values: list[float] = lat) -> float:
        return round(values[min(len(values) - 1, int(q * len(values)))], 1) if values else float("nan")

    problems = [f"rater {r.rater}: {r.error}" for r in reports if r.error]
    problems += [f"rater {r.rater}: {e}" for r in reports for e in r.resume_errors]
    problems += [f"rater {r.rater}: {len(r.acked)} of {trials} trials" for r in reports
                 if not r.error and (len(r.acked) != trials or not r.code)]
    if participants != len(reports):
        problems.append(f"{participants} participants joined for {len(reports)} raters")
    if acked != stored:
        problems.append(f"acknowledged != stored: {len(set(acked) - set(stored))} acked but not stored, "
                        f"{len(set(stored) - set(acked))} stored but not acked, "
                        f"{len(stored) - len(set(stored))} duplicates")
    return {"raters": len(reports), "participants": participants, "trials": trials, "acked": len(acked),
            "stored": len(stored),
            "duplicates": len(stored) - len(set(stored)), "vote_p50_ms": pct(0.50), "vote_p95_ms": pct(0.95),
            "vote_max_ms": round(lat[-1], 1) if lat else float("nan"),
            "vote_p95_ms_by_position": [pct(0.95, v) for v in by_position],  # each rater's 1st vote, 2nd, ...
            "reconnects": sum(r.reconnects for r in reports), "save_failed": sum(r.save_failed for r in reports),
            "problems": problems, "ok": not problems}



def analysis_of(db, rows: list) -> dict:
    """The study's analysis (its configured pairs, tie rule, screening) of these vote rows, as a dict."""
    c = study_config(db, STUDY_NAME)
    return analyze_votes(rows, c.conditions, c.condition_pairs, c.headline_pair, c.tie_rule,
                         c.screening.max_attention_failure_rate, c.screening.min_repeat_consistency,
                         n_boot=200, seed=c.seed).to_dict()



def analysis_difference(a, b, path: str = "") -> list[str]:
    """Where two analysis dicts differ: counts and texts exactly, floats beyond a relative 1e-4
    (the headline mixed model's fit varies in the 6th digit between identical runs)."""
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return [f"{path}: keys {sorted(a)} vs {sorted(b)}"]
        return [d for k in a for d in analysis_difference(a[k], b[k], f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} vs {len(b)} items"]
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in analysis_difference(x, y, f"{path}[{i}]")]
    if isinstance(a, float) and isinstance(b, float) and not isinstance(a, bool):
        return [] if math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-9) else [f"{path}: {a} vs {b}"]
    return [] if a == b else [f"{path}: {a!r} vs {b!r}"]



def analysis_summary(analysis) -> dict:
    """The analysis in one line per pair: "first vs second" -> wins/losses/ties."""
    return {f"{p.first} vs {p.second}": f"{p.wins}/{p.losses}/{p.ties}" for p in analysis.pairs}



def analysis_summary_dict(analysis: dict) -> dict:
    """:func:`analysis_summary` of an analysis already turned into a dict."""
    return {f"{p['first']} vs {p['second']}": f"{p['wins']}/{p['losses']}/{p['ties']}" for p in analysis["pairs"]}
