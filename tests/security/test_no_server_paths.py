"""Server paths never reach a visitor (docs/security.md): a launched ``python app.py`` taken through
the honest flows of the demo (upload a video, get tracks, hear one, preview it on the video, browse
a test pair) and of the rater (consent, trials, votes), by raw HTTP as the page's own JavaScript
makes them and by gradio_client. Every answer is scanned for the server's folders, and every file
the pages name is fetched through its opaque URL, so the flows are shown to still work.

One server for the module, with the default upload age (the attack suite's 12-s age would remove
an upload in the middle of a flow on a busy machine).
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import httpx
import pytest

from demo.uploads import NOT_AN_UPLOAD
from study.db import Database
from vmnet_testkit.mediagen import make_video
from vmnet_testkit.study_helpers import as_if_listened
from vmnet_testkit.study_server import ROOT, PageRater, PageSession, app_subprocess, player_media

OPAQUE = re.compile(r"/vm-[0-9a-f]{12}/")


@pytest.fixture(scope="module")
def served(tiny_bundle, tmp_path_factory):
    root = tmp_path_factory.mktemp("no-paths")
    with app_subprocess(tiny_bundle, f"sqlite:///{root / 'study.sqlite'}", root / "cache",
                        extra_env={"GRADIO_TEMP_DIR": str(root / "gradio-tmp")}) as srv:
        srv.root, srv.bundle, srv.uploads = root, Path(tiny_bundle), root / "gradio-tmp"
        yield srv


def _server_folders(srv) -> dict[str, str]:
    """What a visitor must never read, by name."""
    return {"the upload/cache folder": str(srv.uploads), "the study's media": str(srv.root / "cache" / "work" / "study"),
            "the cache": str(srv.root / "cache"), "the bundle": str(srv.bundle),
            "the bundle's folder": str(srv.bundle.parent), "the temp folder": tempfile.gettempdir().rstrip("/") + "/",
            "the home folder": str(Path.home()).rstrip("/") + "/", "the repository": str(ROOT)}


def _leaks(text: str, srv) -> list[str]:
    return [name for name, folder in _server_folders(srv).items() if folder in text]


def _files(value, page_url: str = "") -> list[dict]:
    """Every FileData inside a JSON answer, and (given the page's URL) every file the rater page's
    A/B player plays."""
    if page_url:
        return _files(value) + player_media(value, page_url)
    if isinstance(value, dict):
        found = [value] if (value.get("meta") or {}).get("_type") == "gradio.FileData" else []
        return found + [f for v in value.values() for f in _files(v)]
    if isinstance(value, list):
        return [f for v in value for f in _files(v)]
    return []


def _fetch_all(http: httpx.Client, answer, received: list[str], page_url: str = "") -> int:
    """Fetch every file ``answer`` names through its URL; each must be opaque and served. Returns how many."""
    files = _files(answer, page_url)
    for f in files:
        assert OPAQUE.match(f["path"]) and OPAQUE.search(f["url"]), f
        fetched = http.get(f["url"])
        assert fetched.status_code == 200 and fetched.content, (f["url"], fetched.status_code)
        received.append(json.dumps(dict(fetched.headers)))
    return len(files)


def _upload(http: httpx.Client, base: str, clip: Path, received: list[str]) -> dict:
    r = http.post(f"{base}gradio_api/upload", files={"files": (clip.name, clip.read_bytes(), "video/mp4")})
    received.append(r.text)
    path = r.raise_for_status().json()[0]
    assert OPAQUE.match(path), path
    return {"path": path, "url": None, "orig_name": clip.name, "size": clip.stat().st_size,
            "mime_type": "video/mp4", "meta": {"_type": "gradio.FileData"}}


def test_the_demo_flow_works_and_names_no_server_folder(served, tmp_path):
    """Upload a video, get tracks, hear the first, preview it on the video, browse a test pair: every
    answer (page, config, upload, event streams, file headers) is free of server folders, and every
    file the page is given plays through its opaque URL."""
    http = httpx.Client(timeout=300)
    base = f"{served.url}/"
    received = [http.get(base).text, http.get(f"{base}config").text, http.get(f"{base}gradio_api/info").text]
    page = PageSession(base, http)
    video = _upload(http, base, make_video(tmp_path / "holiday.mp4", seconds=3, seed=5), received)
    table, status = page.call("query-video", "upload", [video, 3, False])
    assert len(table["data"]) == 3 and "track" in status.lower()
    picker, player = page.call("query-video", "upload", [table], chained=1)  # fills the picker and the player
    track = picker["value"]
    preview, download = page.call("preview-button", "click", [video, track])
    pair = next(c for c in page.config["components"] if c.get("props", {}).get("label") == "Test pair")
    pair_view = page.call(None, "load", [pair["props"]["value"], 3])
    shown_at_start = [c.get("props", {}).get("value") for c in page.config["components"]]
    fetched = sum(_fetch_all(http, answer, received) for answer in (player, preview, download, pair_view,
                                                                     shown_at_start))
    assert fetched >= 5  # the track, the preview (twice), the pair's video and soundtrack, the R@K figure
    received += page.received
    assert not _leaks("\n".join(received), served)


def test_gradio_client_round_trips_the_opaque_paths(served, tmp_path):
    """gradio_client uploads, sends the opaque path back, and downloads the result by it."""
    from gradio_client import Client, handle_file

    clip = make_video(tmp_path / "trip.mp4", seconds=3, seed=8)
    client = Client(f"{served.url}/", verbose=False)
    table, _status = client.predict(handle_file(str(clip)), 3, api_name="/music_for_video")
    preview, download = client.predict(handle_file(str(clip)), str(table["data"][0][-1]), api_name="/preview")
    local = Path(preview["video"] if isinstance(preview, dict) else preview)
    assert local.is_file() and local.read_bytes()[4:8] == b"ftyp" and Path(download).is_file()
    assert not _leaks(json.dumps(client.view_api(print_info=False, return_format="dict")), served)


def test_the_rater_flow_works_and_names_no_server_folder(served):
    """Consent, start, play both, vote, on the page and through the public API: the stimuli play
    through opaque URLs and nothing names the study's media folder or any other."""
    http = httpx.Client(timeout=120)
    base = f"{served.url}/study/"
    received = [http.get(base).text, http.get(f"{base}config").text, http.get(f"{base}gradio_api/info").text]
    rater = PageRater(PageSession(base, http))
    rater.load()
    rater.agree()
    shown = rater.start()
    fetched = _fetch_all(http, shown, received, base)
    rater.play_both()
    rater.save("A")
    view = rater.page.api("trial", rater.token)
    fetched += _fetch_all(http, view, received)
    assert fetched == 5  # the first trial's video, soundtrack A and B, then A and B of the next one by the API
    db = Database(served.db_url)
    as_if_listened(db, view["trial_id"])  # the study's wait before a vote (tests/test_study_listening.py)
    db.dispose()
    rater.page.api("vote", rater.token, view["trial_id"], "B", None, True, True, 900, None, None)
    received += rater.page.received
    assert not _leaks("\n".join(received), served)


def test_a_token_opens_nothing_that_its_folder_would_not(served, tmp_path):
    """A visitor who learns a token gains no path: a file not made for this page, a traversal behind
    the token, or another page's file are refused as their real paths would be."""
    http = httpx.Client(timeout=120)
    received: list[str] = []
    rater = PageRater(PageSession(f"{served.url}/study/", http))
    rater.load()
    rater.agree()
    stimulus = _files(rater.start(), f"{served.url}/study/")[0]
    token = OPAQUE.match(stimulus["path"]).group(0)
    for target in (f"{token}../../../../etc/passwd", f"{token}..%2f..%2f..%2fetc%2fpasswd", stimulus["path"]):
        assert http.get(f"{served.url}/gradio_api/file={target}").status_code == 404, target  # not the demo's
    page = PageSession(f"{served.url}/", http)
    with pytest.raises(RuntimeError, match=re.escape(NOT_AN_UPLOAD[:40])):
        page.call("query-video", "upload", [{**stimulus, "url": None}, 3, False])  # the study's file is no upload here
    video = _upload(http, f"{served.url}/", make_video(tmp_path / "mine.mp4", seconds=2, seed=3), received)
    sideways = {**video, "path": video["path"].rsplit("/", 2)[0] + "/../" + "/".join(video["path"].rsplit("/", 2)[1:])}
    with pytest.raises(RuntimeError, match=re.escape(NOT_AN_UPLOAD[:40])):
        page.call("query-video", "upload", [sideways, 3, False])
    assert not _leaks("\n".join(page.received + rater.page.received), served)


CUT_MARKS = ("...", "…", "\\u2026")


def _cut_leaks(text: str, srv) -> list[str]:
    """A server folder shown cut short: a leading piece of 9 characters or more ("/" and 8 more) of
    a folder, or of what follows a shorter hidden folder inside it (``/tmp`` is masked, the rest of
    ``/tmp/pytest-of-x/...`` must not show either), anywhere; or a trailing piece of 8 or more just
    after a cut mark."""
    folders = [f.rstrip("/") for f in _server_folders(srv).values()]
    rests = {f for f in folders} | {f[len(g):] for f in folders for g in folders if f.startswith(g + "/")}
    found = [r[:9] for r in rests if len(r) >= 9 and r[:9] in text]
    return found + [mark + f[-k:] for f in folders for k in range(8, len(f) + 1) for mark in CUT_MARKS
                    if mark + f[-k:] in text]


def _stream(http: httpx.Client, url: str, received: list[str]) -> str:
    text = http.get(url).text
    received.append(text)
    return text


def test_a_token_glued_to_text_or_echoed_cut_short_names_no_server_folder(served, tmp_path):
    """The audit's two leaks, and their kin, on the launched server. (1) A track id ``Z/vm-…`` made
    the guard put the upload folder back where the mask, which hides a folder only as whole path
    components, could not find it again: the preview's "not in the catalog" sentence showed it. (2) A
    string sent where a table is due came back in pydantic's message cut to ``'/tmp/…/gradio-t...'``,
    a piece of a folder the mask did not know. Every token the visitor can learn (the upload folder's;
    the working directory's once showed in Gradio's message for a relative file path, which the guard
    now refuses) is sent glued to text, climbing out with ``..``, and where pydantic echoes it cut
    short: no answer names a server folder or a piece of one, and a 2-MB id is not echoed whole."""
    http = httpx.Client(timeout=120)
    base = f"{served.url}/"
    received: list[str] = []
    video = _upload(http, base, make_video(tmp_path / "mine.mp4", seconds=2, seed=4), received)
    picker = next(d["id"] for d in http.get(f"{base}config").json()["dependencies"] if d.get("api_name") == "fill_picker")

    def predict(value) -> str:  # the page's own queue=False channel, the table argument replaced by `value`
        r = http.post(f"{base}gradio_api/run/predict", json={"data": [value], "fn_index": picker, "session_hash": "s17"})
        received.append(r.text)
        return r.text

    relative = predict({"path": "x", "meta": {"_type": "gradio.FileData"}})  # once showed the working dir's token
    assert "not uploaded to this page" in relative, relative  # now refused before Gradio reads it
    tokens = {OPAQUE.match(video["path"]).group(0).rstrip("/")} | set(re.findall(r"/vm-[0-9a-f]{12}", relative))
    assert len(tokens) == 1, relative

    def preview(track: str) -> str:
        event = http.post(f"{base}gradio_api/call/preview", json={"data": [video, track]})
        received.append(event.text)
        return _stream(http, f"{base}gradio_api/call/preview/{event.json()['event_id']}", received)

    for token in sorted(tokens):
        for track in (f"Z{token}", f"Z{token}/a", f"x:{token}/", f"{token}.bak", f"{token}/../../x", "Z" * 40 + f":{token}"):
            answer = preview(track)
            assert "not in the catalog" in answer and track[:20] in answer, (track, answer)
        for value in (f"{token}/" + "Z" * 40, "Z" * 40 + f":{token}", "Z" * 40 + token, f"{token}.bak",
                      {"path": f"{token}/" + "Z" * 40}, {"path": f"{token}/" + "Z" * 40, "meta": {"_type": "gradio.FileData"}},
                      {"path": f"{token}/../" + "Z" * 40, "meta": {"_type": "gradio.FileData"}}):
            answer = predict(value)
            assert "input_value=" in answer or "error" in answer or "not uploaded to this page" in answer, value
    long_id = preview("Z" * 900_000)  # under the 1-MB bound on a visitor's request body
    assert "not in the catalog" in long_id and len(long_id) < 2_000, len(long_id)
    text = "\n".join(received)
    assert not _leaks(text, served) and not _cut_leaks(text, served)
