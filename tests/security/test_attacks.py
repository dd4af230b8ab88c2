"""Attacks on a launched ``python app.py`` (demo at /, rater flow at /study, admin at /admin), as an
anonymous visitor would make them: raw HTTP (httpx) and gradio_client. What is tried and why is
listed in docs/security.md; each test names the rule it shows.

One server for the module (started once: about a minute on a busy 2-core machine). The tests run
in file order: the admin export test logs in before the brute-force test locks 127.0.0.1 out.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import uuid
from pathlib import Path

import httpx
import pytest

from demo.uploads import NOT_AN_UPLOAD
from vmnet_testkit.mediagen import make_video
from vmnet_testkit.study_server import ADMIN_PASSWORD, PageSession, app_subprocess

MAX_AGE_S = 12  # the server's --upload-max-age-s: uploads older than this are removed
FILE_COMPONENTS = {"file", "video", "audio", "image", "gallery", "downloadbutton", "uploadbutton"}


@pytest.fixture(scope="module")
def served(tiny_bundle, tmp_path_factory):
    root = tmp_path_factory.mktemp("security")
    uploads = root / "gradio-tmp"
    with app_subprocess(tiny_bundle, f"sqlite:///{root / 'study.sqlite'}", root / "cache",
                        extra_args=("--upload-max-age-s", str(MAX_AGE_S), "--max-upload-mb", "5"),
                        extra_env={"GRADIO_TEMP_DIR": str(uploads)}) as srv:
        srv.root, srv.uploads, srv.bundle = root, uploads, Path(tiny_bundle)
        yield srv


def _catalog_items(bundle: Path, side: str) -> list[dict]:
    lines = (bundle / "catalog" / f"{side}.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _server_targets(srv) -> list[str]:
    """Paths an attacker would hand over: bundle files, the database, catalog media, system files,
    traversal strings and the export folder."""
    video = next(v["path"] for v in _catalog_items(srv.bundle, "video") if v.get("path"))
    return [str(srv.bundle / "config.json"), str(srv.bundle / "model.safetensors"),
            str(srv.bundle / "catalog" / "music.jsonl"), str(srv.root / "study.sqlite"), video,
            "/etc/passwd", "../../../../../../etc/passwd", "..%2f..%2f..%2fetc%2fpasswd",
            str(srv.root / "cache" / "work"), str(srv.bundle)]


def _bundle_digest(bundle: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(bundle.rglob("*")):
        if p.is_file():
            h.update(p.name.encode() + p.read_bytes())
    return h.hexdigest()


def _leaks(text: str, srv) -> list[str]:
    """Server facts found in a response: the bundle's, the study's or the upload folder, or /etc/passwd's bytes."""
    found = [s for s in (str(srv.bundle.parent), str(srv.root / "cache"), str(srv.root / "study.sqlite"),
                         str(srv.uploads)) if s in text]
    return found + (["/etc/passwd content"] if "root:x:0:0" in text else [])


def _run(http: httpx.Client, base: str, fn_index: int, data: list) -> str:
    """Join the queue with ``fn_index`` and ``data``; the whole answer (join + event stream) as text."""
    session = uuid.uuid4().hex[:11]
    joined = http.post(f"{base}gradio_api/queue/join",
                       json={"data": data, "fn_index": fn_index, "session_hash": session, "event_data": None,
                             "trigger_id": None})
    text = joined.text
    if joined.status_code != 200:
        return text
    with http.stream("GET", f"{base}gradio_api/queue/data", params={"session_hash": session}) as stream:
        for line in stream.iter_lines():
            text += "\n" + line
            if '"process_completed"' in line:
                break
    return text


def _echoes_removed(answer: str, sent: str) -> str:
    """``answer`` without Gradio's and pydantic's echoes of what the attacker sent (they are no leak)."""
    return re.sub(r"input_value='[^']*'", "input_value=<sent>", answer.replace(sent, "<sent>"))


def _argument(component: dict, target: str):
    if component.get("type") in FILE_COMPONENTS:
        return {"path": target, "meta": {"_type": "gradio.FileData"}, "orig_name": "x.mp4"}
    if component.get("type") in ("slider", "number"):
        return 5  # a valid number, so the handler itself runs with the other arguments
    return target


def test_every_handler_of_every_page_refuses_server_paths(served):
    """Bytes, never paths: every fn_index of / and /study, given server paths and traversal strings in
    every argument, reads nothing of the server, leaks no server path, and changes no bundle file."""
    before = _bundle_digest(served.bundle)
    http = httpx.Client(timeout=120)
    tried = 0
    for base in (f"{served.url}/", f"{served.url}/study/"):
        config = http.get(f"{base}config").json()
        assert not _leaks(json.dumps(config), served), base
        components = {c["id"]: c for c in config["components"]}
        for dep in config["dependencies"]:
            for target in _server_targets(served):
                data = [_argument(components.get(i, {}), target) for i in dep["inputs"]]
                answer = _echoes_removed(_run(http, base, dep["id"], data), target)
                assert not _leaks(answer, served), (base, dep["id"], target, answer[-600:])
                tried += 1
    assert tried > 50
    assert _bundle_digest(served.bundle) == before  # nothing a visitor did changed the catalog or model


def test_file_handlers_name_the_rule_and_nothing_else(served):
    """The public API with a catalog video's server path answers with the one upload sentence."""
    from gradio_client import Client

    video = next(v["path"] for v in _catalog_items(served.bundle, "video") if v.get("path"))
    client = Client(f"{served.url}/", verbose=False)
    http = httpx.Client(timeout=120)
    for api_name, args in (("/music_for_video", [video, 5, False]), ("/preview", [video, "x"]),
                           ("/videos_for_music", [video, 5])):
        started = http.post(f"{served.url}/gradio_api/call{api_name}",
                            json={"data": [{"path": args[0], "meta": {"_type": "gradio.FileData"}}, *args[1:]]})
        if started.status_code == 400:  # the guard's refusal, before Gradio copies the file (same sentence)
            text = started.json()["detail"]
        else:
            text = http.get(f"{served.url}/gradio_api/call{api_name}/{started.json()['event_id']}").text
        assert NOT_AN_UPLOAD in text, (api_name, text)
    assert "/music_for_video" in client.view_api(print_info=False, return_format="dict")["named_endpoints"]


def test_an_honest_upload_still_finds_music(served, tmp_path):
    """The same handler with a real upload (gradio_client uploads the bytes) answers."""
    from gradio_client import Client, handle_file

    clip = make_video(tmp_path / "holiday.mp4", seconds=3, seed=11)
    table, status = Client(f"{served.url}/", verbose=False).predict(handle_file(str(clip)), 3,
                                                                    api_name="/music_for_video")
    assert len(table["data"]) == 3 and "track" in status.lower()
    assert not _leaks(json.dumps(table) + status, served)


def test_private_events_cannot_be_called_by_name(served):
    """Gradio runs a private event by name through call/, call/v2/, run/ and api/; the guard lets those
    routes run only the public API (the page calls events by fn_index: queue/join, run/predict, and
    run/predict with server paths reads and leaks nothing, like queue/join)."""
    http = httpx.Client(timeout=60)
    tried = 0
    for base in (f"{served.url}/", f"{served.url}/study/"):
        config = http.get(f"{base}config").json()
        components = {c["id"]: c for c in config["components"]}
        for dep in config["dependencies"]:
            public = dep.get("api_visibility") == "public"
            routes = [f"call/{dep['api_name']}"] if public else [  # a public one by its documented route
                f"run/{dep['api_name']}", f"api/{dep['api_name']}", f"call/{dep['api_name']}",
                f"call/v2/{dep['api_name']}", "api/predict"]
            body = {"data": [None] * len(dep["inputs"]), "fn_index": dep["id"], "session_hash": "x" * 11}
            for route in routes:
                r = http.post(f"{base}gradio_api/{route}", json=body)
                assert (r.status_code == 404) != public, (base, route, dep.get("api_visibility"), r.status_code)
                tried += 1
            for target in _server_targets(served):  # the page's queue=False channel: the same checks hold
                data = [_argument(components.get(i, {}), target) for i in dep["inputs"]]
                r = http.post(f"{base}gradio_api/run/predict",
                              json={"data": data, "fn_index": dep["id"], "session_hash": "x" * 11})
                assert not _leaks(_echoes_removed(r.text, target), served), (base, dep["id"], target, r.text[-400:])
    assert tried > 40


def test_a_page_route_naming_no_event_of_the_page_is_refused_and_leaves_no_trace(served):
    """queue/join and run/predict with an fn_index that is none of the page's events, or none at all:
    before, Gradio answered a 500, closed the connection and wrote a 5-kB traceback to the server's
    log for each (a visitor could fill the log). Now a 404, a log without a trace, and the page's
    own events still run."""
    log = served.root / "cache" / "app.log"
    http = httpx.Client(timeout=60)
    for base in (f"{served.url}/", f"{served.url}/study/"):
        events = [dep["id"] for dep in http.get(f"{base}config").json()["dependencies"]]
        before = log.read_text(errors="replace")
        for route in ("queue/join", "run/predict"):
            for fn_index in (max(events) + 1, 9999, -1, 2**70, str(events[0]), float(events[0]), True, "MISSING"):
                body = {"data": [], "session_hash": uuid.uuid4().hex[:11], "event_data": None, "trigger_id": None}
                if fn_index != "MISSING":
                    body["fn_index"] = fn_index
                r = http.post(f"{base}gradio_api/{route}", json=body)
                assert r.status_code == 404 and r.json() == {"detail": "Not found."}, (base, route, fn_index, r.text)
        time.sleep(0.5)  # let the server's log catch up before reading it
        added = log.read_text(errors="replace")[len(before):]
        assert "KeyError" not in added and "FnIndexInferError" not in added, added[-2000:]
        joined = http.post(f"{base}gradio_api/queue/join",
                           json={"data": [None] * 0, "fn_index": events[0], "session_hash": uuid.uuid4().hex[:11],
                                 "event_data": None, "trigger_id": None})
        assert joined.status_code == 200 and "event_id" in joined.json(), joined.text


def test_a_stream_for_an_unknown_session_or_event_ends_cleanly_and_leaves_no_trace(served):
    """GET queue/data with a session_hash nobody has and call/NAME/EVENT_ID with an event nobody
    started: Gradio starts the event stream and then refuses it, so before each closed the
    connection mid-answer and wrote an 8-kB traceback to the server's log (a script could fill it,
    as with unknown fn_index values). Now the stream ends cleanly and the log has no trace."""
    log = served.root / "cache" / "app.log"
    http = httpx.Client(timeout=30)
    before = log.read_text(errors="replace")
    for path in ("/gradio_api/queue/data?session_hash=nobody0hash", "/gradio_api/call/preview/no-such-event",
                 "/gradio_api/call/v2/preview/no-such-event", "/study/gradio_api/queue/data?session_hash=nobody",
                 "/study/gradio_api/call/trial/no-such-event"):
        r = http.get(served.url + path)  # raises RemoteProtocolError on a connection closed mid-answer
        assert r.status_code == 200 and b"Traceback" not in r.content, (path, r.text[:300])
    time.sleep(0.5)  # let the server's log catch up before reading it
    added = log.read_text(errors="replace")[len(before):]
    assert "Traceback" not in added and "Exception in ASGI application" not in added, added[-2000:]


def _failing_event(http: httpx.Client, base: str, dep: dict, data: list) -> bool:
    """Send one page event the way the page does; True when Gradio answered it with an error."""
    body = {"data": data, "fn_index": dep["id"], "session_hash": uuid.uuid4().hex[:11], "event_data": None,
            "trigger_id": None}
    if dep.get("queue") is False:
        answer = http.post(f"{base}gradio_api/run/predict", json=body)
        return answer.status_code == 500 and "error" in answer.json()
    joined = http.post(f"{base}gradio_api/queue/join", json=body)
    assert joined.status_code == 200, joined.text
    with http.stream("GET", f"{base}gradio_api/queue/data", params={"session_hash": body["session_hash"]}) as s:
        for line in s.iter_lines():
            if '"process_completed"' in line:
                return '"success":false' in line.replace(" ", "")
    return False


def test_events_made_to_fail_write_a_bounded_log(served):
    """Every event of / and /study sent with one input too few (each of the others a 100-kB string),
    and the demo's row click without its event data: Gradio answers each with an error, and used to
    write a 1.3-2.6-kB traceback for each, echoing every input it got (here megabytes), so a script
    could fill the disk. Now at most 5 tracebacks a minute are written, each cut to 4 kB
    (webguard.error_log; the line counting the rest comes with the next minute's first error), and
    the page still answers."""
    log = served.root / "cache" / "app.log"
    http = httpx.Client(timeout=60)
    time.sleep(0.5)
    before = log.stat().st_size
    failed = []
    for base in (f"{served.url}/", f"{served.url}/study/"):
        for dep in http.get(f"{base}config").json()["dependencies"]:
            if dep["inputs"]:
                failed.append(_failing_event(http, base, dep, ["x" * 100_000] * (len(dep["inputs"]) - 1)))
            elif dep.get("api_name") == "pick_row":
                failed.append(_failing_event(http, base, dep, []))
    assert len(failed) >= 20 and all(failed), failed
    time.sleep(0.5)  # let the server's log catch up before reading it
    added = log.read_bytes()[before:].decode(errors="replace")
    # two windows at most may meet in this test: 2 x 5 tracebacks of at most 4,000 characters, one line between
    assert added.count("Traceback (most recent call last)") <= 10 and len(added) < 2 * 5 * 4000 + 2000, \
        (len(added), added[:3000])
    honest = http.post(f"{served.url}/gradio_api/run/predict",
                       json={"data": [None], "fn_index": next(d["id"] for d in http.get(f"{served.url}/config").json()[
                           "dependencies"] if d.get("api_name") == "_track_path"), "session_hash": "h" * 11})
    assert honest.status_code == 200 and honest.json()["data"] == [None], honest.text


def test_no_route_makes_the_server_fetch_a_url(served, tmp_path):
    """Gradio downloads a file object whose path is an http(s) URL, in any input of any event, into
    its upload folder before a handler runs: no size bound, outside the upload budget, from any
    public address (found 2026-12-07: one queue/join of the demo's search, and one of the rater's
    consent with the file object inside its URL parameters, each stored a 200-MB file served at a
    public address). Every visitor route now refuses such a body with a sentence, however the URL is
    spelled or nested, before Gradio reads it; an upload named by its path still passes."""
    http = httpx.Client(timeout=60)
    url = "https://pypi.org/simple/numpy/"

    def file_at(path: str) -> dict:
        return {"path": path, "meta": {"_type": "gradio.FileData"}, "orig_name": "clip.mp4"}

    bodies = []
    for base in (f"{served.url}/", f"{served.url}/study/"):
        config = http.get(f"{base}config").json()
        public = {d["api_name"] for d in config["dependencies"] if d.get("api_visibility") == "public"}
        for dep in config["dependencies"]:
            n = max(len(dep["inputs"]), 1)
            for data in ([file_at(url)] + [None] * (n - 1), [{"nested": [file_at("HTTP://pypi.org/x")]}] * n):
                body = {"data": data, "fn_index": dep["id"], "session_hash": uuid.uuid4().hex[:11],
                        "event_data": None, "trigger_id": None}
                routes = ["queue/join", "run/predict"]
                if dep.get("api_name") in public:
                    routes += [f"call/{dep['api_name']}", f"run/{dep['api_name']}"]
                bodies += [(f"{base}gradio_api/{route}", json.dumps(body)) for route in routes]
    escaped = json.dumps({"data": [file_at("x"), 5, False], "fn_index": 0, "session_hash": "e" * 11})
    bodies.append((f"{served.url}/gradio_api/queue/join", escaped.replace('"x"', '"https:\\/\\/pypi.org\\/simple\\/"')))
    for where, body in bodies:
        r = http.post(where, content=body, headers={"content-type": "application/json"})
        assert r.status_code == 400 and "does not fetch files from URLs" in r.json()["detail"], (where, r.text[:300])
    assert len(bodies) > 60
    from gradio_client import Client, handle_file

    clip = make_video(tmp_path / "by-bytes.mp4", seconds=3, seed=12)  # bytes uploaded, then named by path: passes
    table, _ = Client(f"{served.url}/", verbose=False).predict(handle_file(str(clip)), 3, api_name="/music_for_video")
    assert len(table["data"]) == 3


def test_no_route_makes_the_server_copy_or_read_a_server_file(served):
    """Gradio hashes and copies a file object's ``path`` that is no URL into its upload folder, in any
    input of any event, before a handler runs: its own "was it uploaded?" check is off for mounted apps,
    and the demo's own check comes after. So /etc/passwd named in a results table or the rater's API
    landed in the upload folder, and /dev/zero held Gradio's event loop for good: the whole server
    stopped answering (bypass audit, 2026-12-07). The guard now refuses, with the upload sentence, a
    visitor's file object whose path (relative or not, symlinks resolved) is outside the upload folder."""
    http = httpx.Client(timeout=20)

    def file_at(path: str) -> dict:
        return {"path": path, "meta": {"_type": "gradio.FileData"}, "orig_name": "x.mp4"}

    before = {p for p in served.uploads.rglob("*") if p.is_file()}
    targets = ["/etc/passwd", str(served.bundle / "config.json"), "app.py", "../../../../../../etc/passwd",
               f"{served.uploads}/../study.sqlite", "/proc/self/environ"]
    tried = 0
    for base in (f"{served.url}/", f"{served.url}/study/"):
        for dep in http.get(f"{base}config").json()["dependencies"]:
            n = max(len(dep["inputs"]), 1)
            for target in targets:
                data = [{"headers": ["a"], "data": [[file_at(target)]]}] + [file_at(target)] * (n - 1)
                body = {"data": data, "fn_index": dep["id"], "session_hash": uuid.uuid4().hex[:11]}
                route = "run/predict" if dep.get("queue") is False else "queue/join"
                r = http.post(f"{base}gradio_api/{route}", json=body)
                assert r.status_code == 400 and NOT_AN_UPLOAD in r.json()["detail"], (base, dep["id"], target, r.text)
                tried += 1
    assert tried > 100
    after = {p for p in served.uploads.rglob("*") if p.is_file()}
    assert not {p.name for p in after - before} & {"passwd", "config.json", "app.py", "study.sqlite", "environ"}
    r = http.post(f"{served.url}/gradio_api/run/predict",  # before: no answer again, from any route
                  json={"data": [{"headers": ["a"], "data": [[file_at("/dev/zero")]]}], "fn_index": 1,
                        "session_hash": "z" * 11})
    assert r.status_code == 400 and NOT_AN_UPLOAD in r.json()["detail"], r.text
    assert http.get(f"{served.url}/config", timeout=5).status_code == 200


def test_no_route_writes_a_sessions_state_to_the_upload_folder(served):
    """Gradio's ``GET gradio_api/deep_link?session_hash=S`` writes the whole state of session S (every
    component's props, a results table sent back included) to ``<upload folder>/deep_links/<hash>/``,
    for any session, no login, outside the upload budget. The pages have no deep-link button: a
    script pairing a 0.8-MB results table to the picker with a deep link wrote 0.9 MB a pair, about
    33 MB a second from one client on loopback (bypass audit), and the janitor's size bound then
    removed honest uploads first. The route is closed now (404) and nothing is written."""
    http = httpx.Client(timeout=20)
    config = http.get(f"{served.url}/config").json()
    picker = next(d for d in config["dependencies"] if d.get("api_name") == "fill_picker")
    headers = next(c for c in config["components"] if c["id"] == picker["inputs"][0])["props"]["value"]["headers"]
    for base in (f"{served.url}/", f"{served.url}/study/"):
        session = uuid.uuid4().hex[:11]
        if base == f"{served.url}/":
            rows = [[r + 1, 0.5, f"t{r}-" + "x" * 4000] + ["a"] * (len(headers) - 3) for r in range(50)]
            r = http.post(f"{base}gradio_api/run/predict", json={
                "data": [{"headers": headers, "data": rows, "metadata": None}], "fn_index": picker["id"],
                "session_hash": session, "event_data": None, "trigger_id": None})
            assert r.status_code == 200, r.text  # the session now holds a 200-kB state
        for url in (f"{base}gradio_api/deep_link", f"{base}gradio_api/deep_link/"):
            answer = http.get(url, params={"session_hash": session})
            assert answer.status_code == 404, (url, answer.text[:200])
    assert not (served.uploads / "deep_links").exists() or not any((served.uploads / "deep_links").rglob("*"))


def test_malformed_requests_write_a_bounded_log(served):
    """uvicorn writes a warning for every malformed request ("Invalid HTTP request received.") and two for
    every request asking for a WebSocket upgrade; one client sent 1,000-2,000 a second on loopback, 165-300 kB
    of log a second (bypass audit). Each such message is now written at most 5 times a minute and counted."""
    import socket

    log = served.root / "cache" / "app.log"
    time.sleep(0.5)
    before = log.stat().st_size
    host, port = served.url.removeprefix("http://").split(":")
    upgrade = b"GET /robots.txt HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
    for request in [b"GARBAGE \x00\x01 HTTP/1.1\r\n\r\n"] * 300 + [upgrade] * 300:
        with socket.create_connection((host, int(port)), timeout=10) as conn:
            conn.sendall(request)
            conn.recv(65536)
    time.sleep(0.5)
    added = log.read_bytes()[before:].decode(errors="replace")
    assert len(added) < 3000, (len(added), added[:1000])
    assert httpx.get(f"{served.url}/config", timeout=10).status_code == 200


def test_the_operators_handlers_refuse_callers_without_the_login(served):
    """Every fn_index of /admin and /admin-music, by every route, without logging in: refused, and
    nothing is indexed."""
    http = httpx.Client(timeout=60)
    before = _bundle_digest(served.bundle)
    for base in (f"{served.url}/admin/", f"{served.url}/admin-music/"):
        assert http.get(f"{base}config").status_code == 401
        for fn_index in range(12):
            body = {"data": ["/etc"], "fn_index": fn_index, "session_hash": "y" * 11, "trigger_id": None}
            for route in ("queue/join", "run/predict", "call/add_folder", "api/predict"):
                r = http.post(f"{base}gradio_api/{route}", json=body)
                assert r.status_code in (401, 403, 404), (base, route, fn_index, r.status_code)
    assert _bundle_digest(served.bundle) == before


@pytest.mark.parametrize("prefix", ["", "/study", "/admin"])
def test_file_routes_serve_no_server_file(served, prefix):
    """Bundle files, weights, catalog metadata, the database, catalog media by their path, system files
    and traversals: 404 (or the admin's login) through every mount's file route and Gradio's other
    file-reading routes."""
    http = httpx.Client(timeout=30)
    for target in _server_targets(served):
        for route in (f"/gradio_api/file={target}", f"/gradio_api/file/{target}",
                      f"/gradio_api/proxy=http://127.0.0.1:1{target}"):
            r = http.get(f"{served.url}{prefix}{route}")
            assert r.status_code in (401, 403, 404), (prefix, route, r.status_code)
            assert not _leaks(r.text, served) and b"SQLite format" not in r.content


def test_the_public_page_has_no_folder_indexing(served):
    """Indexing a folder is an operator's act: no such control or handler on the public page."""
    config = httpx.get(f"{served.url}/config", timeout=30).json()
    labels = " ".join(str(c.get("props", {}).get("label", "")) for c in config["components"])
    assert "Folder on the server" not in labels and "Add my music folder" not in json.dumps(config)


def _login(http: httpx.Client, base: str, password: str) -> httpx.Response:
    return http.post(f"{base}/admin/login", data={"username": "admin", "password": password})


def test_admin_exports_only_through_the_logged_in_admin(served):
    """The CSV exports: the admin downloads them; the same URL through / or /study, or without the
    login, is refused."""
    admin = httpx.Client(timeout=120)
    assert _login(admin, served.url, ADMIN_PASSWORD).status_code == 200
    page = PageSession(served.admin, admin)
    studies = page.call(None, "load", [None])[0]
    name = studies.get("value") if isinstance(studies, dict) else None
    votes, _people, notice = page.call("admin-export", "click", [name])
    assert votes and not notice, notice
    url_path = votes["url"].split("/admin/", 1)[1] if "/admin/" in votes["url"] else f"gradio_api/file={votes['path']}"
    assert admin.get(f"{served.url}/admin/{url_path}").status_code == 200
    anonymous = httpx.Client(timeout=30)
    for prefix in ("", "/study", "/admin"):
        r = anonymous.get(f"{served.url}{prefix}/{url_path}")
        assert r.status_code in (401, 403, 404) and "participant" not in r.text, (prefix, r.status_code)


def test_no_other_site_reads_an_answer_or_rides_the_admins_login(served):
    """Same origin only: Gradio echoes any Origin with credentials allowed once the Host is not
    localhost, and sets its login cookie SameSite=None; a page on another site could then read the
    admin's exports with the admin's cookie. No answer may grant another origin anything."""
    public_host = {"Host": "study.example.org"}
    evil = {**public_host, "Origin": "https://evil.example"}
    admin = httpx.Client(timeout=60, headers=public_host)
    login = _login(admin, served.url, ADMIN_PASSWORD)
    assert login.status_code == 200
    cookies = login.headers.get_list("set-cookie")
    assert cookies and not any("samesite=none" in c.lower() for c in cookies), cookies
    assert any("samesite=lax" in c.lower() for c in cookies), cookies
    preflight = {**evil, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    answers = [admin.get(f"{served.url}/admin/config", headers=evil),
               admin.request("OPTIONS", f"{served.url}/admin/gradio_api/queue/join", headers=preflight),
               admin.get(f"{served.url}/config", headers=evil), admin.get(f"{served.url}/study/config", headers=evil),
               admin.request("OPTIONS", f"{served.url}/gradio_api/queue/join", headers=preflight)]
    assert answers[0].status_code == 200 and "components" in answers[0].json()  # the admin's own page still works
    for answer in answers:
        granted = {k: v for k, v in answer.headers.items() if k.lower().startswith("access-control-")}
        assert not granted, (str(answer.url), granted)


def test_request_bodies_are_capped_whatever_their_type(served):
    """The 16 MB cap on what the guard reads holds for every body type FastAPI would parse as JSON
    (none declared, any application/*+json), not only application/json."""
    http = httpx.Client(timeout=120)
    body = b'{"data": [], "fn_index": 0, "pad": "' + b" " * (17 * 1024 * 1024) + b'"}'
    for ctype in ("application/json", "application/vnd.x+json", "text/plain", None):
        headers = {"content-type": ctype} if ctype else {}
        r = http.post(f"{served.url}/gradio_api/queue/join", content=body, headers=headers)
        assert r.status_code == 413, (ctype, r.status_code)
    small = http.post(f"{served.url}/gradio_api/queue/join", content=b'{"fn_index": 0}')
    assert small.status_code == 422  # small: read as ever, and answered by FastAPI (the guard answers 404 or 413)
    # a form or multipart type streams through on the upload route only: elsewhere FastAPI would
    # read it whole and echo it back in its 422
    for route, ctype in (("/gradio_api/queue/join", "multipart/form-data; boundary=x"),
                         ("/study/gradio_api/run/predict", "multipart/form-dataX"),
                         ("/gradio_api/run/predict", "application/x-www-form-urlencoded")):
        r = http.post(f"{served.url}{route}", content=body, headers={"content-type": ctype})
        assert r.status_code == 413, (route, ctype, r.status_code)


def _fed_back(http: httpx.Client, url: str, output_type: str, rows: list[list], route: str = "run/predict") -> list:
    """Send the page's private "fill from the results table" event (outside the queue, by fn_index
    through run/predict, as the page's own script does; or through ``route``) a table of ``rows``;
    its first output (through run/predict)."""
    config = http.get(f"{url}/config").json()
    types = {c["id"]: c["type"] for c in config["components"]}
    event = next(d for d in config["dependencies"] if d.get("queue") is False and len(d["inputs"]) == 1
                 and types[d["inputs"][0]] == "dataframe" and types[d["outputs"][0]] == output_type)
    table = {"headers": ["rank", "score", "title", "moment", "duration", "tags", "id"], "data": rows, "metadata": None}
    r = http.post(f"{url}/gradio_api/{route}",
                  json={"data": [table], "fn_index": event["id"], "session_hash": uuid.uuid4().hex[:11]})
    assert r.status_code == 200, f"{r.status_code} {r.text[:300]}"
    return r.json()["data"][0] if route == "run/predict" else r.json()


def test_a_results_table_sent_back_is_read_no_further_than_the_page_shows(served):
    """The gallery and the track picker are filled from the results table the browser sends back.
    A script sent 30,000 rows naming one catalog video, and the server built 30,000 gallery items on
    its event loop (43 s in which no other visitor got an answer); at most MAX_K rows are read now,
    each id once, and such a page event's body is at most 1 MB (30,000 rows: 1.3 MB) and 20,000 JSON
    values (webguard.sessions; 2,000 rows are about 17,000)."""
    from demo.handlers import MAX_K

    http = httpx.Client(timeout=300)
    video = next(v["id"] for v in _catalog_items(served.bundle, "video") if v.get("path"))
    gallery = _fed_back(http, served.url, "gallery", [[1, 0.5, "t", "", "", "", video]] * 2_000)
    assert len(gallery) == 1
    picker = _fed_back(http, served.url, "dropdown", [[i, 0.5, "t", "", "", "", f"id-{i}"] for i in range(2_000)])
    assert len(picker["choices"]) == MAX_K and picker["choices"][-1][1] == f"id-{MAX_K - 1}"
    # and what such an event may send is bounded before Gradio parses it on its event loop
    for route in ("run/predict", "queue/join"):  # the same event is reached by both
        with pytest.raises(AssertionError, match="413"):
            _fed_back(http, served.url, "gallery", [[1, 0.5, "t", "", "", "", video]] * 30_000, route)


def test_a_visitor_cannot_tell_whether_someone_else_sent_a_file(served, tmp_path):
    """The query cache was shared by content: a stranger who sent the same bytes as another visitor
    got "from cache" at once, so anyone could test whether a given video had been sent to the demo.
    Each visitor (client address) now has entries of their own; their own repeat still hits."""
    from gradio_client import Client, handle_file

    from vmnet_testkit.queue_share import catalog_clips, fresh_copy

    clip = fresh_copy(catalog_clips(served.bundle, 1)[0], tmp_path / "private-holiday.mp4")
    sender, stranger = (Client(served.url, verbose=False, headers={"X-Forwarded-For": address})
                        for address in ("192.0.2.10", "2001:db8:9:9::1"))

    def status(client: Client) -> str:
        return client.predict(handle_file(str(clip)), 3, False, api_name="/music_for_video")[1]

    assert "analysed in" in status(sender)
    assert "analysed in" in status(stranger) and "from cache" not in status(Client(
        served.url, verbose=False, headers={"X-Forwarded-For": "198.51.100.77"}))
    assert "from cache" in status(sender) and "from cache" in status(stranger)


def test_a_direct_call_waits_in_the_queue_like_everyone(served, tmp_path):
    """Gradio's run/<name> (and run/predict) run a queued event at once, past the queue and its
    concurrency limit; they are closed for queued events, and a body naming a private event by
    fn_index on a public name is refused. The queued route (call/<name>) still answers."""
    http = httpx.Client(timeout=120)
    config = http.get(f"{served.url}/config").json()
    search = next(d for d in config["dependencies"] if d.get("api_name") == "music_for_video")
    private = next(d for d in config["dependencies"] if d.get("api_visibility") != "public")
    clip = make_video(tmp_path / "rush.mp4", seconds=2, seed=31)
    video = {"path": _upload(http, f"{served.url}/", clip.name, clip.read_bytes()), "meta": {"_type": "gradio.FileData"},
             "orig_name": clip.name}
    for route, body in (("run/music_for_video", {"data": [video, 3]}),
                        ("run/predict", {"data": [video, 3, False], "fn_index": search["id"], "session_hash": "q" * 11})):
        r = http.post(f"{served.url}/gradio_api/{route}", json=body)
        assert r.status_code == 404 and "queue" in r.text.lower(), (route, r.status_code, r.text[:200])
    for route in ("run/music_for_video", "api/music_for_video", "call/music_for_video"):
        for index in (private["id"], str(private["id"]), True):
            r = http.post(f"{served.url}/gradio_api/{route}", json={"data": [None], "fn_index": index})
            assert r.status_code == 404 and r.content == b'{"detail":"Not found."}', (route, index, r.status_code)
    started = http.post(f"{served.url}/gradio_api/call/music_for_video", json={"data": [video, 3]})
    assert started.status_code == 200 and "event_id" in started.json()


def test_the_rater_page_takes_no_upload_and_head_tells_no_length(served):
    """The rater page has no upload box, so its upload route is closed; a HEAD answer carries no
    length (the masked GET's length minus it would tell how long the hidden folders' names are)."""
    http = httpx.Client(timeout=60)
    r = http.post(f"{served.url}/study/gradio_api/upload", files={"files": ("x.mp4", os.urandom(5000))})
    assert r.status_code == 404 and r.content == b'{"detail":"Not found."}'
    assert http.post(f"{served.url}/gradio_api/upload", files={"files": ("x.mp4", os.urandom(5000))}).status_code == 200
    answered = 0
    for page in ("/", "/study/", "/config", "/study/config"):
        head, get = http.head(f"{served.url}{page}"), http.get(f"{served.url}{page}")
        if head.status_code == 405:  # routes that take GET only
            continue
        assert head.status_code == get.status_code == 200
        assert head.headers.get("content-length") in (None, str(len(get.content))), page
        answered += 1
    assert answered >= 1


def test_previews_are_removed_once_old(served, tmp_path):
    """What the demo makes per upload (its previews, its analysed queries) is cleaned like the
    uploads themselves: gone within a sweep after --upload-max-age-s."""
    from gradio_client import Client, handle_file

    clip = make_video(tmp_path / "weekend.mp4", seconds=3, seed=21)
    client = Client(f"{served.url}/", verbose=False)
    table, _status = client.predict(handle_file(str(clip)), 3, api_name="/music_for_video")
    client.predict(handle_file(str(clip)), str(table["data"][0][-1]), api_name="/preview")
    demo_work = served.root / "cache" / "work" / "demo"
    made = [p for folder in ("previews", "query-cache") for p in (demo_work / folder).rglob("*") if p.is_file()]
    assert any(p.suffix == ".mp4" for p in made) and any(p.suffix == ".npy" for p in made), made
    deadline = time.monotonic() + 4 * MAX_AGE_S
    while any(p.exists() for p in made) and time.monotonic() < deadline:
        time.sleep(1)
    assert not [p for p in made if p.exists()]


def _upload(http: httpx.Client, base: str, name: str, body: bytes) -> str:
    r = http.post(f"{base}gradio_api/upload", files={"files": (name, body)})
    r.raise_for_status()
    return r.json()[0]


def test_a_visitor_cannot_fetch_or_detect_another_visitors_upload(served):
    """Gradio's upload folder is content-addressed and shared: a stranger holding the same bytes and
    guessing the name another visitor sent them under got a 200 from the file route (a 404 had nobody
    sent them). Only the client an upload answer named a path to may fetch it now."""
    sender, stranger = (httpx.Client(timeout=60, headers={"X-Forwarded-For": address})
                        for address in ("192.0.2.31", "2001:db8:31::7"))
    private = b"RIFF" + uuid.uuid4().bytes * 4096  # bytes nobody else has sent
    sent = _upload(sender, f"{served.url}/", "holiday.mp4", private)
    assert sender.get(f"{served.url}/gradio_api/file={sent}").content == private  # the sender's page plays it
    probe = _upload(stranger, f"{served.url}/", "probe.bin", private)
    guess = probe.rsplit("/", 1)[0] + "/holiday.mp4"
    assert guess == sent  # the same folder: the name was all the stranger had to guess
    assert stranger.get(f"{served.url}/gradio_api/file={guess}").status_code == 404  # as had nobody sent it
    assert stranger.get(f"{served.url}/gradio_api/file={probe}").content == private  # its own upload plays
    # sending those bytes under that name makes the path the stranger's own: no answer depends on others
    assert _upload(stranger, f"{served.url}/", "holiday.mp4", private) == sent
    assert stranger.get(f"{served.url}/gradio_api/file={sent}").content == private


def test_uploaded_html_and_svg_never_run_as_pages(served):
    http = httpx.Client(timeout=30)
    for name, body in (("evil.html", b"<script>alert(document.cookie)</script>"),
                       ("evil.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>')):
        path = _upload(http, f"{served.url}/", name, body)
        r = http.get(f"{served.url}/gradio_api/file={path}")
        assert r.status_code == 200
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["content-disposition"].startswith("attachment")
        assert "sandbox" in r.headers["content-security-policy"]


def test_uploads_are_removed_once_old(served):
    """Upload cleanup: an upload is gone (file and URL) within a sweep after --upload-max-age-s."""
    http = httpx.Client(timeout=30)
    shown = _upload(http, f"{served.url}/", "leftover.mp4", os.urandom(200_000))
    path = served.uploads / Path(shown).parent.name / Path(shown).name  # the visitor sees /vm-<token>/<hash>/name
    assert path.is_file() and str(served.uploads) not in shown
    deadline = time.monotonic() + 4 * MAX_AGE_S
    while path.exists() and time.monotonic() < deadline:
        time.sleep(1)
    assert not path.exists()
    assert http.get(f"{served.url}/gradio_api/file={shown}").status_code == 404
    page = http.get(f"{served.url}/config").text  # files the page shows from its start (a figure) stay
    left = [p for p in served.uploads.rglob("*") if p.is_file() and p.name not in page
            and time.time() - p.stat().st_mtime > 4 * MAX_AGE_S]
    assert left == []


def test_admin_login_is_throttled(served):
    """Brute force: a few wrong passwords, then 429 with "wait N s", even for the right password;
    a password in the URL is refused outright."""
    http = httpx.Client(timeout=30)
    assert http.post(f"{served.url}/admin/login?password={ADMIN_PASSWORD}",
                     data={"username": "admin", "password": "x"}).status_code == 400
    codes = [_login(http, served.url, f"guess-{i}").status_code for i in range(8)]
    assert codes[:5] == [400] * 5 and codes[-1] == 429, codes
    locked = _login(http, served.url, ADMIN_PASSWORD)
    assert locked.status_code == 429
    detail = locked.json()["detail"]
    assert detail.startswith("Too many wrong passwords; wait ") and int(locked.headers["retry-after"]) > 0


def _multipart(parts: list[tuple[str, str | None, bytes]], boundary: str = "vmnetB0und") -> tuple[bytes, dict]:
    """A raw multipart body of ``(field name, filename or None, bytes)`` parts and its header."""
    body = b""
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + data + b"\r\n"
    return body + f"--{boundary}--\r\n".encode(), {"content-type": f"multipart/form-data; boundary={boundary}"}


def test_an_upload_holds_a_few_files_and_no_large_field(served):
    """Gradio bounds each file by --max-upload-mb but keeps a plain form field whole in memory and
    takes 1,000 files a request: a 100-MB field cost the server 307 MB with a 5-MB limit, and 1,000
    empty files a request made 20,000 files from 2.3 MB of body. A visitor's upload now holds at most
    4 parts and no field over 64 kB (413, nothing kept); one file goes through as before."""
    http = httpx.Client(timeout=60, headers={"X-Forwarded-For": "192.0.2.77"})
    before = sum(len(files) for _, _, files in os.walk(served.uploads))
    tag = uuid.uuid4().hex[:8]

    def field_bomb():  # 20 MB of one plain field, streamed: four times the server's upload limit
        yield b'--vmnetB0und\r\nContent-Disposition: form-data; name="junk"\r\n\r\n'
        for _ in range(20):
            yield b"a" * 2**20
        yield b"\r\n--vmnetB0und--\r\n"

    _, header = _multipart([])
    field = http.post(f"{served.url}/gradio_api/upload", content=field_bomb(), headers=header)
    assert field.status_code == 413 and "no form field over 64 kB" in field.text, field.text[:200]
    many, header = _multipart([("files", f"{tag}-{i}.mp4", b"") for i in range(1000)])
    refused = http.post(f"{served.url}/gradio_api/upload", content=many, headers=header)
    assert refused.status_code == 413 and "at most 4 files" in refused.text, refused.text[:200]
    assert not any(tag in name for _, _, files in os.walk(served.uploads) for name in files)
    one, header = _multipart([("files", f"{tag}.mp4", os.urandom(3000))])
    sent = http.post(f"{served.url}/gradio_api/upload", content=one, headers=header)
    assert sent.status_code == 200 and len(sent.json()) == 1
    assert sum(len(files) for _, _, files in os.walk(served.uploads)) <= before + 1


def test_upload_progress_is_answered_only_for_an_upload_that_began(served):
    """Gradio's upload_progress keeps an entry for every upload_id it is asked about, for good
    (3,000 requests with 4-kB ids: 30 MB). The guard hands it only ids of uploads that began (waiting
    3 s, as Gradio does) and refuses ids no page makes at once; the page's progress stream works."""
    http = httpx.Client(timeout=60)
    start = time.monotonic()
    long_id = http.get(f"{served.url}/gradio_api/upload_progress", params={"upload_id": "a" * 4096})
    assert long_id.status_code == 404 and time.monotonic() - start < 2
    unknown = http.get(f"{served.url}/gradio_api/upload_progress", params={"upload_id": uuid.uuid4().hex[:13]})
    assert unknown.status_code == 404 and unknown.content == b'{"detail":"Not found."}'  # not Gradio's
    body, header = _multipart([("files", "clip.mp4", os.urandom(3000))])
    assert http.post(f"{served.url}/gradio_api/upload", params={"upload_id": "b" * 4096}, content=body,
                     headers=header).status_code == 400
    upload_id = uuid.uuid4().hex[:13]
    assert http.post(f"{served.url}/gradio_api/upload", params={"upload_id": upload_id}, content=body,
                     headers=header).status_code == 200
    with http.stream("GET", f"{served.url}/gradio_api/upload_progress", params={"upload_id": upload_id}) as stream:
        assert stream.status_code == 200
        assert any('"done"' in line for line in stream.iter_lines())


def test_routes_that_restart_the_queue_or_count_others_events_are_closed(served):
    """On a mounted app Gradio runs its startup events in the lifespan but never marks them run, so the
    first visitor to GET startup-events ran the queue's start again (answer `true`: a second
    processing loop, running jobs dropped from its job table, the thread limiter replaced);
    queue/status told anyone how many of others' events wait. Neither is used by the pages."""
    http = httpx.Client(timeout=60)
    for prefix in ("", "/study"):
        for route in ("startup-events", "queue/status"):
            r = http.get(f"{served.url}{prefix}/gradio_api/{route}")
            assert r.status_code == 404 and r.content == b'{"detail":"Not found."}', (prefix, route, r.text)
        assert http.get(f"{served.url}{prefix}/").status_code == 200
