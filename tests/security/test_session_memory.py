"""What one client can make the server keep in Gradio's per-session state is bounded
(webguard.sessions, docs/security.md), shown on a launched server.

Gradio keeps a state per ``session_hash`` (which the client picks), holding every input value of the
session's events until 10,000 newer sessions push it out. A script that sent each event under a
fresh hash, its input a 1-MB body of empty lists, had the server keep 24-26 MB a request (1.65 GB a
minute from one address). Now a client keeps at most ``SESSIONS_PER_CLIENT`` sessions per page,
and an event of more than ``EVENT_MAX_VALUES`` JSON values is refused."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from vmnet_testkit.hostile_media import rss_mb
from vmnet_testkit.processes import app_pid
from vmnet_testkit.study_server import app_subprocess
from webguard.sessions import EVENT_MAX_VALUES, SESSIONS_PER_CLIENT

WARM_UP = SESSIONS_PER_CLIENT + 4  # requests before the baseline: the client's kept sessions are full
FLOOD = 200  # requests after it, each under a fresh session hash
LISTS = EVENT_MAX_VALUES - 100  # empty lists in each request's input: over 1 MB kept per session without the bound
MAX_GROWTH_MB = 100  # without the bound: FLOOD x over 1 MB


@pytest.fixture(scope="module")
def served(tiny_bundle, tmp_path_factory):
    root = tmp_path_factory.mktemp("session-memory")
    with app_subprocess(tiny_bundle, f"sqlite:///{root / 'study.sqlite'}", root / "cache") as srv:
        yield srv


def _event(config: dict, api_name: str) -> dict:
    return next(d for d in config["dependencies"] if d.get("api_name") == api_name)


def _send(http: httpx.Client, base: str, route: str, dep: dict, first_input) -> httpx.Response:
    """One page event under a fresh session hash, its first input ``first_input``, compact JSON."""
    data = [first_input] + [None] * (len(dep["inputs"]) - 1)
    body = {"data": data, "fn_index": dep["id"], "session_hash": uuid.uuid4().hex[:11], "event_data": None,
            "trigger_id": None}
    return http.post(f"{base}gradio_api/{route}", content=json.dumps(body, separators=(",", ":")),
                     headers={"content-type": "application/json"})


def test_fresh_sessions_from_one_client_keep_no_more_memory(served):
    """The track player's ``queue=False`` event (run/predict) keeps its input, here nearly
    ``EVENT_MAX_VALUES`` empty lists, in the session: with a fresh hash each time, the server's memory stays put once the
    client's few sessions are full."""
    http = httpx.Client(timeout=120)
    base = f"{served.url}/"
    player = _event(http.get(f"{base}config").json(), "_track_path")
    nested = [[] for _ in range(LISTS)]
    pid = app_pid(served.url)
    for _ in range(WARM_UP):
        assert _send(http, base, "run/predict", player, nested).status_code == 200
    before = rss_mb(pid)
    for _ in range(FLOOD):
        assert _send(http, base, "run/predict", player, nested).status_code == 200
    grown = rss_mb(pid) - before
    assert grown < MAX_GROWTH_MB, f"{grown:.0f} MB kept for {FLOOD} sessions"
    assert http.get(f"{base}config", timeout=10).status_code == 200


def test_an_event_of_too_many_values_is_refused_on_every_page_route(served):
    """One value more than ``EVENT_MAX_VALUES`` (3 bytes of body, 64 of memory each) is refused with
    413 and a sentence, through both of the page's routes, on the demo and the rater page."""
    http = httpx.Client(timeout=120)
    too_many = [[] for _ in range(EVENT_MAX_VALUES)]
    for base, name in ((f"{served.url}/", "_track_path"), (f"{served.study}", "on_choice")):
        dep = _event(http.get(f"{base}config").json(), name)
        for route in ("run/predict", "queue/join"):
            answer = _send(http, base, route, dep, too_many)
            assert answer.status_code == 413, (base, route, answer.status_code, answer.text[:200])
            assert f"at most {EVENT_MAX_VALUES:,} values" in answer.json()["detail"]
