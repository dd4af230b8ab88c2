"""A rater who reads this code and knows a study's config cannot rebuild which soundtrack is which.

The trial plan is a pure function of the stored design and the rater's slot (study/design.py). Its
config, seed included, may be public: the default study's is in study/pages.py. A hostile rater
who rebuilds the plan from it, walks their own session through the public API and labels each
file they are served with the condition the plan puts there, de-blinds the study; and, as each
file keeps its name for every rater, everyone after them. The secret plan key drawn at creation
stops that; a study stored without one (as before keys) shows the attack works.
"""

from __future__ import annotations

from collections import Counter

import httpx
import pytest
from gradio_client import Client
from sqlalchemy import select

from study.create import design_for, practice_last
from study.db import Database
from study.design import plan_slot
from study.models import Candidate, Study
from vmnet_testkit.study_helpers import make_config, new_study, premux_clips
from vmnet_testkit.study_server import study_in_thread

RATERS = 3  # sessions the attacker walks (slots 0, 1, 2: each join takes the lowest free slot)


@pytest.fixture(scope="module")
def premuxed(tmp_path_factory):
    return premux_clips(tmp_path_factory.mktemp("clips"), n=3)


def _walk_session(client: Client, study_key: str) -> list[tuple[str, str]]:
    """Join as a new rater and answer every trial at once; the (file A, file B) names of each trial, in order."""
    token = client.predict("", {"study": study_key}, "", api_name="/consent")
    served = []
    view = client.predict(token, api_name="/trial")
    while not view.get("done"):
        served.append((view["video_a"]["orig_name"], view["video_b"]["orig_name"]))
        view = client.predict(token, view["trial_id"], "A", None, True, True, 3000, 9.0, 9.0, api_name="/vote")["next"]
    return served


def _rebuilt_plans(premuxed, sessions: int) -> list:
    """The plans of the first ``sessions`` slots as the attacker rebuilds them from the public config."""
    config = make_config("any name")
    spec = design_for(config, sum(not c.practice for c in practice_last(config, premuxed.clips)), plan_key="")
    return [plan_slot(spec, slot) for slot in range(sessions)]


def _fits(planned: list, served: list[tuple[str, str]]) -> bool:
    """Whether a rebuilt plan fits what a session was served: the same pairs of trials share a file
    (a file is one clip under one soundtrack; the plan says which trials share one, the names show it)."""
    def sharing(files: list[set]) -> list[list[bool]]:
        return [[bool(a & b) for b in files] for a in files]
    planned_files = [{(t.stimulus, t.condition_a), (t.stimulus, t.condition_b)} for t in planned]
    return len(planned) == len(served) and sharing(planned_files) == sharing([set(pair) for pair in served])


def _attackers_labels(plans: list, sessions: list[list[tuple[str, str]]]) -> dict[str, str]:
    """Each served file's condition as the attacker reads it off the rebuilt plans: the condition they
    most often put where the file was served."""
    votes: dict[str, Counter] = {}
    for planned_trials, served in zip(plans, sessions, strict=True):
        for planned, (file_a, file_b) in zip(planned_trials, served, strict=False):
            votes.setdefault(file_a, Counter())[planned.condition_a] += 1
            votes.setdefault(file_b, Counter())[planned.condition_b] += 1
    return {name: counter.most_common(1)[0][0] for name, counter in votes.items()}


def _right_share(db: Database, study: str, labels: dict[str, str]) -> float:
    with db.read() as s:
        study_id = s.scalar(select(Study.id).where(Study.name == study))
        truth = dict(s.execute(select(Candidate.media_file, Candidate.condition)
                               .where(Candidate.study_id == study_id)).all())
    return sum(truth[name] == condition for name, condition in labels.items()) / len(labels)


def test_a_rater_who_knows_the_config_and_seed_cannot_tell_which_file_is_which_condition(tmp_path, premuxed):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    db = Database(url)
    new_study(db, premuxed, "before-keys", plan_key="")
    new_study(db, premuxed, "keyed")
    with db.read() as s:
        keys = dict(s.execute(select(Study.name, Study.public_key)).all())
        stored = dict(s.execute(select(Study.name, Study.design)).all())
    assert stored["before-keys"]["plan_key"] == "" and len(stored["keyed"]["plan_key"]) == 32
    with study_in_thread(url, tmp_path / "work") as srv:
        client = Client(srv.study, verbose=False, download_files=False)
        walked = {study: [_walk_session(client, keys[study]) for _ in range(RATERS)] for study in keys}
    plans = _rebuilt_plans(premuxed, RATERS)
    fits = {study: [_fits(p, served) for p, served in zip(plans, walked[study], strict=True)] for study in walked}
    right = {study: _right_share(db, study, _attackers_labels(plans, walked[study])) for study in walked}
    db.dispose()
    # without a key the public config rebuilds every session and names every file's condition
    assert fits["before-keys"] == [True] * RATERS and right["before-keys"] == 1.0
    # with one the rebuild fits none of them (by chance: under 1 in 5,000 per session), so the
    # attacker has no plan to read conditions off; its labels are guesses
    assert fits["keyed"] == [False] * RATERS, right


def _browser_state_secrets(page_url: str) -> set[str]:
    config = httpx.get(page_url.rstrip("/") + "/config", timeout=30).raise_for_status().json()
    return {c["props"]["secret"] for c in config["components"] if c.get("type") == "browserstate"}


def test_the_rater_page_config_tells_nothing_of_the_database(tmp_path, premuxed):
    """Gradio hands every browser the key its BrowserState encrypts with: it must not be made from the
    database URL (a rater could test guesses of the path, or of a PostgreSQL password, against it)."""
    seen = []
    for name in ("one", "two"):
        url = f"sqlite:///{tmp_path / name / 'study.db'}"
        (tmp_path / name).mkdir()
        db = Database(url)
        new_study(db, premuxed)
        db.dispose()
        with study_in_thread(url, tmp_path / name / "work") as srv:
            seen.append(_browser_state_secrets(srv.study))
    assert len(seen[0]) == 1 and seen[0] == seen[1]  # the same on any database: it carries nothing of it
