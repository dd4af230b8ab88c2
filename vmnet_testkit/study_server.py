"""Serve the study for tests: the study mounts in a uvicorn thread, or the real ``python app.py``
in a subprocess; plus a raw caller of the page's own (private) event handlers, as a browser calls them."""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin

import httpx

from vmnet_testkit.processes import free_port, stop_process

ROOT = Path(__file__).resolve().parents[1]
ADMIN_PASSWORD = "test-admin-secret"


@dataclass
class Served:
    url: str  # http://127.0.0.1:PORT (no trailing slash)
    db_url: str
    password: str
    mounted: Any = None  # study.pages.MountedStudy of an in-thread server (None for a subprocess)

    @property
    def study(self) -> str:
        return f"{self.url}/study/"

    @property
    def admin(self) -> str:
        return f"{self.url}/admin/"


def wait_until_up(url: str, timeout_s: float = 120.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=5).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not come up within {timeout_s:.0f} s")


@contextmanager
def study_in_thread(db_url: str, work_dir: Path, bundle_dir: Path | None = None,
                    password: str = ADMIN_PASSWORD, guarded: bool = False) -> Iterator[Served]:
    """The study pages on a fresh FastAPI app in a uvicorn thread, mounted by the same
    ``study.pages.mount_study`` that ``app.py`` calls (the database should already hold a study
    when ``bundle_dir`` is None); ``guarded``: behind app.py's web guard, as ``python app.py``
    serves them (without the upload janitor)."""
    import uvicorn
    from fastapi import FastAPI

    from study.pages import mount_study

    app = FastAPI()
    mounted = mount_study(app, db_url, bundle_dir or work_dir / "no-bundle", work_dir, password)
    if guarded:
        from app import guard_server, parse_args

        guard_server(app, parse_args([]), bundle_dir or work_dir / "no-bundle", janitor=False)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           timeout_graceful_shutdown=2))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_up(f"{url}/study/config", 60)
        yield Served(url, db_url, password, mounted)
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        mounted.db.dispose()


@contextmanager
def app_subprocess(bundle_dir: Path, db_url: str, cache_dir: Path, password: str = ADMIN_PASSWORD,
                   log: Path | None = None, extra_args: tuple[str, ...] = (),
                   extra_env: dict[str, str] | None = None) -> Iterator[Served]:
    """The real ``python app.py --bundle B --db URL --port P --admin-password X EXTRA_ARGS`` with its
    cache directory in ``cache_dir`` (``extra_env`` added to its environment)."""
    port = free_port()
    env = {**os.environ, "VMNET_CACHE": str(cache_dir), "GRADIO_ANALYTICS_ENABLED": "False",
           "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", **(extra_env or {})}
    cache_dir.mkdir(parents=True, exist_ok=True)
    log = log or cache_dir / "app.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--bundle", str(bundle_dir), "--db", db_url,
                                 "--port", str(port), "--admin-password", password, *extra_args],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}"
            try:
                wait_until_up(f"{url}/study/config", 480, proc)  # a bound for a busy machine, not a timing
            except RuntimeError as exc:
                raise RuntimeError(f"{exc}; log:\n{log.read_text(errors='replace')[-3000:]}") from None
            yield Served(url, db_url, password)
        finally:
            stop_process(proc)


class PageSession:
    """One browser tab of a mounted Gradio page, driven through the same queue protocol the page's
    JavaScript uses: ``call(elem_id, event, data)`` runs the handler that ``event`` on the component
    with ``elem_id`` triggers (private handlers included) and returns the raw output payload."""

    def __init__(self, page_url: str, client: httpx.Client | None = None):
        self.page_url = page_url.rstrip("/") + "/"
        self.http = client or httpx.Client(timeout=60)
        self.config = self.http.get(self.page_url + "config").raise_for_status().json()
        self.session_hash = uuid.uuid4().hex[:11]
        self.received: list[str] = []  # every raw response body, for blindness scans

    def component_id(self, elem_id: str) -> int:
        for comp in self.config["components"]:
            if comp.get("props", {}).get("elem_id") == elem_id:
                return comp["id"]
        raise KeyError(elem_id)

    def dependency(self, elem_id: str | None, event: str) -> dict:
        """The event listener for (component, event); ``elem_id`` None means the page's own ``load``."""
        target = None if elem_id is None else self.component_id(elem_id)
        for dep in self.config["dependencies"]:
            for t_id, t_event in dep["targets"]:
                if t_event == event and (target is None or t_id == target):
                    return dep
        raise KeyError(f"{elem_id}.{event}")

    def then_of(self, dep: dict) -> dict:
        """The listener chained after ``dep`` with ``.then``."""
        return next(d for d in self.config["dependencies"] if d.get("trigger_after") == dep["id"])

    def call(self, elem_id: str | None, event: str, data: list, chained: int = 0, event_data: Any = None) -> list:
        """Run the handler of (component, event), or with ``chained`` = n the n-th one ``.then``-chained
        after it (a chained step that runs outside the queue is skipped over); ``event_data``: what the
        page's JavaScript sends with the event (``trigger(event, data)``)."""
        dep = self.dependency(elem_id, event)
        for _ in range(chained):
            dep = self.then_of(dep)
        trigger = None if elem_id is None else self.component_id(elem_id)
        body = {"data": data, "fn_index": dep["id"], "session_hash": self.session_hash, "event_data": event_data,
                "trigger_id": trigger}
        joined = self.http.post(self.page_url + "gradio_api/queue/join", json=body)
        self.received.append(joined.text)
        if joined.status_code == 400:  # refused before the queue (the guard, the queue share): the page shows why
            raise RuntimeError(f"refused: {joined.json().get('detail')}")
        joined.raise_for_status()
        with self.http.stream("GET", self.page_url + "gradio_api/queue/data",
                              params={"session_hash": self.session_hash}) as stream:
            for line in stream.iter_lines():
                if not line.startswith("data:"):
                    continue
                self.received.append(line)
                msg = json.loads(line[5:])
                if msg.get("msg") == "process_completed":
                    if not msg.get("success", False):
                        raise RuntimeError(f"handler failed: {msg.get('output')}")
                    return msg["output"]["data"]
        raise RuntimeError("the event stream closed without a result")

    def inputs_of(self, elem_id: str | None, event: str) -> list[int]:
        return list(self.dependency(elem_id, event)["inputs"])

    def outputs_of(self, elem_id: str | None, event: str) -> list[int]:
        return list(self.dependency(elem_id, event)["outputs"])

    def api(self, api_name: str, *data):
        """Call a public API endpoint the way any HTTP client can (``/gradio_api/call/<name>``);
        returns its result, raises RuntimeError with the server's message on an error event. The body is
        ASCII JSON, so strings a UTF-8 encoder refuses (a lone surrogate) go as ``\\ud800`` escapes."""
        started = self.http.post(f"{self.page_url}gradio_api/call/{api_name}", content=json.dumps({"data": list(data)}),
                                 headers={"Content-Type": "application/json"})
        self.received.append(started.text)
        started.raise_for_status()
        event_id = started.json()["event_id"]
        text = self.http.get(f"{self.page_url}gradio_api/call/{api_name}/{event_id}").text
        self.received.append(text)
        event, payload = None, None
        for line in text.splitlines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:") and event in ("complete", "error"):
                payload = json.loads(line[5:]) if line[5:].strip() not in ("", "null") else None
                break
        if event != "complete":
            raise RuntimeError(f"{api_name} failed: {payload}")
        return payload[0] if isinstance(payload, list) and len(payload) == 1 else payload


PLAYER_TRIAL = re.compile(r'data-trial="(\d+)"')
PLAYER_MEDIA = re.compile(r'src="(gradio_api/file=[^"]+)"')


def player_media(value: Any, page_url: str) -> list[dict]:
    """The media files the rater page's A/B player plays, from any answer holding its markup: each
    as a FileData-like dict (``path`` as the visitor sees it, absolute ``url``), the video first,
    then soundtrack A and B."""
    if isinstance(value, dict):
        return [f for v in value.values() for f in player_media(v, page_url)]
    if isinstance(value, list):
        return [f for v in value for f in player_media(v, page_url)]
    if not isinstance(value, str) or 'class="vmp"' not in value:
        return []
    return [{"path": unquote(html.unescape(src)).split("file=", 1)[1], "url": urljoin(page_url, html.unescape(src)),
             "meta": {"_type": "gradio.FileData"}} for src in PLAYER_MEDIA.findall(value)]


class PageRater:
    """A rater clicking through the page: consent, start, play A and B (the player reports both
    heard), choose, save."""

    def __init__(self, page: PageSession):
        self.page = page
        self.token = None
        self.join_key = None  # the page's BrowserState pair: token and join key
        self.trial_id = None  # the trial the player shows (from its markup)
        self.report = None  # what the player would send with Save

    def outputs(self, elem_id, event, data, chained=0, event_data=None) -> dict:
        dep = self.page.dependency(elem_id, event)
        for _ in range(chained):
            dep = self.page.then_of(dep)
        values = self.page.call(elem_id, event, data, chained, event_data)
        out = dict(zip(dep["outputs"], values, strict=True))
        player = out.get(self.page.component_id("study-player"))
        shown = PLAYER_TRIAL.search(str(player.get("value") if isinstance(player, dict) else player))
        if shown:
            self.trial_id, self.report = int(shown.group(1)), None
        return out

    def load(self) -> dict:
        out = self.outputs(None, "load", [self.token, self.join_key])
        self.join_key = out[self.page.dependency(None, "load")["inputs"][1]]
        return out

    def agree(self) -> dict:
        out = self.outputs("study-agree", "click", [self.token, self.join_key])
        self.token = out[self.page.dependency(None, "load")["inputs"][0]]
        return out

    def decline(self) -> dict:
        return self.outputs("study-decline", "click", [])

    def start(self) -> dict:
        return self.outputs("study-start", "click", [self.token])

    def play_both(self, heard_s: float = 10.0, duration_s: float = 10.0) -> dict:
        """The player's report after hearing ``heard_s`` of each ``duration_s``-long soundtrack."""
        self.report = {"trial": self.trial_id, "a": heard_s, "b": heard_s, "duration_a": duration_s,
                       "duration_b": duration_s}
        return self.outputs("study-player", "submit", [None], event_data=self.report)

    def choose(self, choice: str) -> dict:
        """Pick an answer (the page then shows or hides the strength)."""
        return self.outputs("study-choice", "input", [choice, None])

    def save(self, choice: str | None, strength: int | None = None) -> dict:
        return self.outputs("study-next", "click", [self.token, None, None, choice, strength, self.report], chained=1)

    def notice(self, out: dict) -> str:
        value = out.get(self.page.component_id("study-notice"))
        return value.get("value", "") if isinstance(value, dict) else ""
