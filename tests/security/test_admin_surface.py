"""The operator's mounts (``/admin``, ``/admin-music``) and their login, attacked by a stranger
without the password: every Gradio route with no cookie, a forged one, the other mount's and one
logged out; tries sent at once; large login bodies; logins and logouts from another site's page.
What was tried and why is listed in docs/security.md.

One launched ``python app.py --music-root DIR`` for the module. Each test sends its wrong passwords
from addresses of its own (``X-Forwarded-For``, trusted from 127.0.0.1) and all together stay under
the throttle's overall bound, so no test locks another out.
"""

from __future__ import annotations

import functools
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from study import service
from study.db import Database
from study.pages import DEFAULT_STUDY_NAME
from vmnet_testkit.browser import chromium
from vmnet_testkit.study_server import ADMIN_PASSWORD, app_subprocess
from webguard import LoginAges, LoginThrottle

ADMIN_MOUNTS = ("/admin", "/admin-music")
FREE_TRIES = 5  # webguard.LoginThrottle's default
# every route of a mounted Gradio app that reads or changes something (gradio.routes), as a stranger sends it
DATA_ROUTES = [("GET", "/config"), ("GET", "/gradio_api/info"), ("GET", "/gradio_api/info?all_endpoints=true"),
               ("GET", "/gradio_api/openapi.json"), ("GET", "/gradio_api/queue/data?session_hash=abc"),
               ("GET", "/gradio_api/upload_progress?upload_id=abc"), ("GET", "/gradio_api/file=/etc/passwd"),
               ("POST", "/gradio_api/queue/join"), ("POST", "/gradio_api/run/predict"),
               ("POST", "/gradio_api/api/predict"), ("POST", "/gradio_api/call/add_folder"),
               ("POST", "/gradio_api/call/v2/refresh"), ("POST", "/gradio_api/run/set_open"),
               ("POST", "/gradio_api/upload"), ("POST", "/gradio_api/component_server"),
               ("GET", "/gradio_api/deep_link?session_hash=abc"), ("GET", "/gradio_api/startup-events"),
               ("GET", "/gradio_api/queue/status"), ("GET", "/monitoring/summary")]


@pytest.fixture(scope="module")
def served(tiny_bundle, tmp_path_factory):
    root = tmp_path_factory.mktemp("admin-surface")
    music_root = root / "music"
    music_root.mkdir()
    with app_subprocess(tiny_bundle, f"sqlite:///{root / 'study.sqlite'}", root / "cache",
                        extra_args=("--music-root", str(music_root)),
                        extra_env={"GRADIO_TEMP_DIR": str(root / "gradio-tmp")}) as srv:
        srv.root, srv.uploads, srv.music_root = root, root / "gradio-tmp", music_root
        yield srv


def _from(address: str, **headers: str) -> httpx.Client:
    return httpx.Client(timeout=60, headers={"X-Forwarded-For": address, **headers})


def _log_in(http: httpx.Client, url: str, mount: str) -> dict[str, str]:
    answer = http.post(f"{url}{mount}/login", data={"username": "admin", "password": ADMIN_PASSWORD})
    assert answer.status_code == 200, answer.text
    return dict(answer.cookies)


def _holding(cookies: dict[str, str], **headers: str) -> httpx.Client:
    return httpx.Client(timeout=60, cookies=cookies, headers=headers)


def _files_under(folder) -> int:
    return sum(len(files) for _, _, files in os.walk(folder))


def _study_is_open(srv) -> bool:
    return service.progress(Database(srv.db_url), DEFAULT_STUDY_NAME).is_open


def test_the_admin_mounts_give_a_stranger_nothing_whatever_cookie_is_sent(served):
    """Every route that reads or changes something, on both admin mounts, with no cookie, a forged
    one, the other mount's and one logged out: refused (401 or the guard's 404), nothing uploaded,
    no study opened or closed, no folder indexed."""
    http = _from("192.0.2.31", **{"Sec-Fetch-Site": "same-origin"})
    logged_out = _log_in(http, served.url, "/admin")
    assert _holding(logged_out).get(f"{served.url}/admin/logout").status_code == 302
    own = {mount: _log_in(http, served.url, mount) for mount in ADMIN_MOUNTS}
    before = (_files_under(served.uploads), _study_is_open(served))
    body = {"data": [served.music_root.as_posix()], "fn_index": 0, "session_hash": "abc", "event_id": "x"}
    for mount in ADMIN_MOUNTS:
        other = own["/admin-music" if mount == "/admin" else "/admin"]
        forged = {name: uuid.uuid4().hex for name in own[mount]}
        for cookies in ({}, forged, other, logged_out):
            for method, route in DATA_ROUTES:
                upload = route.endswith("upload")
                with _holding(cookies) as stranger:
                    answer = stranger.request(method, f"{served.url}{mount}{route}",
                                              json=body if method == "POST" and not upload else None,
                                              files={"files": ("a.txt", b"x" * 1000)} if upload else None)
                assert answer.status_code in (401, 404), (mount, route, cookies, answer.status_code, answer.text[:200])
        assert _holding(own[mount]).get(f"{served.url}{mount}/config").status_code == 200
    assert (_files_under(served.uploads), _study_is_open(served)) == before
    assert not any(served.music_root.iterdir())


def test_login_tries_sent_at_once_are_counted_as_they_begin(served):
    """The throttle counted a wrong password once Gradio had answered it and checked the wait when a
    request arrived, so tries sent together all passed: 60 concurrent wrong passwords from one address
    were all checked, past the 5 free tries and the overall bound of 50. Now at most the free tries
    are checked; the rest get 429."""
    go = threading.Event()

    def held_form(password: str):
        go.wait(30)  # every request has arrived (its headers) before any body is sent
        yield f"username=admin&password={password}".encode()

    def guess(i: int) -> int:
        with _from("198.51.100.40") as http:
            return http.post(f"{served.url}/admin/login", content=held_form(f"guess-{i}"),
                             headers={"content-type": "application/x-www-form-urlencoded"}).status_code

    with ThreadPoolExecutor(12) as pool:
        answers = [pool.submit(guess, i) for i in range(12)]
        threading.Timer(2.0, go.set).start()
        codes = [a.result() for a in answers]
    assert codes.count(400) <= FREE_TRIES and codes.count(429) >= 12 - FREE_TRIES, codes


def test_a_try_counted_when_it_began_is_given_back_when_it_logs_in():
    """Each try counts as failed from when it begins; a login that succeeds takes its own count back, so
    the admin's logins never bring the overall lock closer."""
    throttle = LoginThrottle(global_tries=2)
    for _ in range(5):
        throttle.succeeded("admin", throttle.failed("admin"))
    throttle.failed("stranger")
    assert throttle.wait_s("someone") == 0


def test_a_login_body_is_a_few_fields(served):
    """A login form holds a user name and a password, but Starlette keeps up to 1,000 fields of 1 MB
    each in memory: 300 such fields to /admin/login cost the server 272 MB for one wrong password,
    before any login. A login body over 64 kB is refused (413) and counts as no try."""
    junk = {f"f{i}": "a" * 100_000 for i in range(20)}
    for mount in ADMIN_MOUNTS:
        with _from("198.51.100.41") as http:
            answer = http.post(f"{served.url}{mount}/login", data={"username": "admin", "password": "x", **junk})
            assert answer.status_code == 413, (mount, answer.status_code, answer.text[:200])
    with _from("198.51.100.41") as http:  # no try was counted: the right password still logs in
        assert _log_in(http, served.url, "/admin")


def test_a_stranger_sends_the_admin_mounts_no_large_body(served):
    """The guard reads a body before Gradio checks the login: a stranger's 15-MB body to /admin's
    queue was held whole, then answered 401 (a visitor mount takes 1 MB). The admin's pages send a
    study name or a folder, so their mounts take 1 MB too."""
    body = b'{"data": ["' + b"a" * 2_000_000 + b'"], "fn_index": 0, "session_hash": "abc"}'
    for mount in ADMIN_MOUNTS:
        answer = httpx.post(f"{served.url}{mount}/gradio_api/queue/join", content=body,
                            headers={"content-type": "application/json"}, timeout=60)
        assert answer.status_code == 413, (mount, answer.status_code, answer.text[:200])


def test_another_sites_page_can_neither_log_in_nor_log_the_admin_out(served):
    """A top-level GET from another site carries the admin's SameSite=Lax cookie (a page of the same
    site, another port or subdomain, sends it with anything), so a link on any page the admin opened
    logged every admin session out; a cross-site form could send wrong passwords from
    each visitor's address. Both are refused (403); the admin's own logout ends the login on the
    server, on both admin mounts, and the old cookies open nothing."""
    http = _from("198.51.100.42", **{"Sec-Fetch-Site": "same-origin"})
    admin = _holding(_log_in(http, served.url, "/admin"))
    for elsewhere in ("cross-site", "same-site"):  # another site; another port or subdomain of this one
        other_page = {"Sec-Fetch-Site": elsewhere}
        assert admin.get(f"{served.url}/admin/logout", headers=other_page).status_code == 403
        assert admin.get(f"{served.url}/admin/config").status_code == 200
        for mount in ADMIN_MOUNTS:
            answer = httpx.post(f"{served.url}{mount}/login", headers=other_page,
                                data={"username": "admin", "password": ADMIN_PASSWORD})
            assert answer.status_code == 403 and not answer.cookies, (mount, elsewhere, answer.status_code)
    old_cookies = dict(admin.cookies)
    music_page = _holding(_log_in(http, served.url, "/admin-music"))
    assert admin.get(f"{served.url}/admin/logout").status_code == 302  # typed in: no Sec-Fetch-Site
    assert _holding(old_cookies).get(f"{served.url}/admin/config").status_code == 401
    # Gradio ends the logins of the mount logged out of; the guard ends the other mount's too
    assert music_page.get(f"{served.url}/admin-music/config").status_code == 401


def test_a_login_ends_after_its_lifetime(tiny_bundle, tmp_path):
    """Gradio's login tokens never expire: a copied cookie opened /admin until the server restarted.
    The guard gives the cookie a Max-Age and, past it, takes the token out of every request, so the
    old cookie opens nothing and the admin logs in again (a server of its own, logins of 20 s)."""
    lifetime_s = 20.0
    with app_subprocess(tiny_bundle, f"sqlite:///{tmp_path / 'study.sqlite'}", tmp_path / "cache",
                        extra_args=("--study-only", "--admin-login-hours", str(lifetime_s / 3600))) as srv:
        with httpx.Client(timeout=60) as http:
            answer = http.post(f"{srv.url}/admin/login", data={"username": "admin", "password": ADMIN_PASSWORD})
            logged_in_at = time.monotonic()
            assert answer.status_code == 200, answer.text
            assert all("Max-Age=20" in c for c in answer.headers.get_list("set-cookie")), answer.headers
            copied = dict(answer.cookies)
            assert _holding(copied).get(f"{srv.url}/admin/config").status_code == 200
            time.sleep(max(0.0, logged_in_at + lifetime_s + 1 - time.monotonic()))
            assert _holding(copied).get(f"{srv.url}/admin/config").status_code == 401
            assert _holding(_log_in(http, srv.url, "/admin")).get(f"{srv.url}/admin/config").status_code == 200


def test_login_ages_keep_only_live_tokens_they_handed_out():
    """Tokens are noted from the login answer's Set-Cookie and dropped from a Cookie header once older
    than the lifetime, or when never handed out; other cookies stay. A logout holding a live token
    ends every login (both mounts); one without ends nothing."""
    now = [0.0]
    ages = LoginAges(100, clock=lambda: now[0])
    headers = ages.handed_out([(b"set-cookie", b"access-token-abc=T1; HttpOnly; Path=/"), (b"x-other", b"1")])
    assert headers == [(b"set-cookie", b"access-token-abc=T1; HttpOnly; Path=/; Max-Age=100"), (b"x-other", b"1")]
    now[0] = 50.0
    ages.handed_out([(b"set-cookie", b"access-token-unsecure-abc=T2; HttpOnly")])
    cookie = b"theme=dark; access-token-abc=T1; access-token-unsecure-abc=T2; access-token-x=never-seen"
    assert ages.fresh_cookies(cookie) == b"theme=dark; access-token-abc=T1; access-token-unsecure-abc=T2"
    now[0] = 120.0
    assert ages.fresh_cookies(cookie) == b"theme=dark; access-token-unsecure-abc=T2"
    ages.handed_out([(b"set-cookie", b"access-token-def=T3")])  # forgets T1: it stays dropped
    assert ages.fresh_cookies(cookie) == b"theme=dark; access-token-unsecure-abc=T2"
    ages.logged_out(b"access-token-abc=T1; access-token-x=never-seen")
    assert ages.fresh_cookies(b"access-token-def=T3") == b"access-token-def=T3"
    ages.logged_out(b"theme=dark;access-token-def=T3")
    assert ages.fresh_cookies(cookie + b"; access-token-def=T3") == b"theme=dark"


@contextmanager
def _page_served_from(folder):
    """``folder`` served on another port of this host: another origin of the same site."""
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def test_no_other_page_frames_the_logged_in_admin(served, tmp_path):
    """A page of the same site (here another port of the host) gets the admin's SameSite=Lax cookie in
    its frames, so it could show the logged-in admin page under buttons of its own (clickjacking).
    In Chromium, logged in, such a page's frame of /admin stays empty; the admin's own tab works."""
    (tmp_path / "index.html").write_text(f'<iframe id="f" src="{served.url}/admin/" width="900" height="600"></iframe>')
    with _page_served_from(tmp_path) as other_origin, chromium() as browser:
        context = browser.new_context()
        answer = context.request.post(f"{served.url}/admin/login", form={"username": "admin", "password": ADMIN_PASSWORD},
                                      headers={"X-Forwarded-For": "198.51.100.43"})
        assert answer.status == 200, answer.text()
        own_tab = context.new_page()
        own_tab.goto(f"{served.url}/admin/")
        own_tab.wait_for_selector("#admin-open", timeout=60_000)  # logged in: the admin page itself
        page = context.new_page()
        page.goto(other_origin)
        framed = []
        for _ in range(20):  # the admin page took about a second to show in a frame it was allowed in
            page.wait_for_timeout(500)
            framed = [f for f in page.frames if f != page.main_frame]
            assert framed and not any(f.query_selector("#admin-open") or f.query_selector("input[type=password]")
                                      for f in framed), [(f.url, f.content()[:200]) for f in framed]
        context.close()
