"""HTML injection: text an outsider controls (a music file's name from the internet, a track id, a
crowd rater's URL parameter) is shown as text in every page, never as markup (docs/security.md).

Gradio renders a gr.Error/gr.Warning message as HTML and a gr.Markdown value as Markdown with HTML in
it, both sanitized of scripts: an ``<img>`` still loads (a beacon to any host), a ``style`` attribute
still covers the page. The launched server (one for the module) indexes music files whose names are
such markup; Chromium shows the pages and watches for scripts, dialogs and requests to the beacon host.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from demo.browse import PairReport
from study.export import safe_cell
from vmnet_core.bundle.catalog_items import CatalogItem
from vmnet_testkit.browser import chromium
from vmnet_testkit.mediagen import make_audio, make_video
from vmnet_testkit.study_server import ADMIN_PASSWORD, app_subprocess

pytestmark = pytest.mark.browser

WAIT_MS = 180_000
BEACON = "127.0.0.1:9/"  # nothing listens there; a request to it means markup rendered
GONE = "<img src=\\\\127.0.0.1:9\\gone onerror=window.__xss=1>"  # a track whose file goes after indexing
COVER = "<b id=injected style=position:fixed;inset:0;background:red>cover"
BROKEN = ["<img src=\\\\127.0.0.1:9\\report onerror=window.__xss=1>.mp3", f"{COVER}.flac"]  # not media


@pytest.fixture(scope="module")
def served(tiny_bundle, tmp_path_factory):
    """``python app.py`` over a copy of the bundle (``--music-dir`` indexes into it) with a track named
    ``GONE`` whose file is removed once indexed, and a ``--music-root`` holding ``BROKEN``."""
    root = tmp_path_factory.mktemp("html-injection")
    bundle = root / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    music, drop = root / "music", root / "roots" / "drop"
    make_audio(music / f"{GONE}.wav", seconds=4, seed=3)
    drop.mkdir(parents=True)
    for name in BROKEN:
        (drop / name).write_bytes(b"not a media file\n" * 50)
    with app_subprocess(bundle, f"sqlite:///{root / 'study.sqlite'}", root / "cache",
                        extra_args=("--music-dir", str(music), "--music-root", str(root / "roots")),
                        extra_env={"GRADIO_TEMP_DIR": str(root / "gradio-tmp")}) as srv:
        (music / f"{GONE}.wav").unlink()
        srv.root, srv.drop, srv.gone_id = root, drop, _music_id(bundle, GONE)
        yield srv


def _music_id(bundle: Path, title: str) -> str:
    lines = (bundle / "catalog" / "music.jsonl").read_text().splitlines()
    return next(item["id"] for item in map(json.loads, lines) if item["title"] == title)


@pytest.fixture(scope="module")
def browser():
    with chromium() as running:
        yield running


@pytest.fixture
def page(browser):
    """A fresh tab that records scripts run (``window.__xss``), dialogs and requests to the beacon host."""
    tab = browser.new_page(viewport={"width": 1400, "height": 1600})
    tab.seen = []
    tab.on("request", lambda request: tab.seen.append(request.url) if BEACON in request.url else None)
    tab.on("dialog", lambda dialog: (tab.seen.append(f"dialog: {dialog.message}"), dialog.dismiss()))
    yield tab
    tab.close()


def _markup_in(page, selector: str) -> list[str]:
    """Elements an injection would make inside ``selector``, and whether a script ran."""
    return page.evaluate("""(selector) => {
        const found = [...document.querySelectorAll(selector)].flatMap(box =>
            [...box.querySelectorAll('img, b, a, form, svg, style, details, iframe, [style]')].map(e => e.outerHTML));
        return window.__xss ? [...found, 'window.__xss was set'] : found;
    }""", selector)


def test_a_track_name_in_a_visitors_error_message_is_text(served, page, tmp_path):
    """An operator indexed a file named like an ``<img>`` tag, then the file went: a visitor who
    previews it reads the sentence naming it (a toast) with the tag as text; so does a visitor who
    types such a track id into the track box."""
    video = make_video(tmp_path / "holiday.mp4", seconds=3, size=(160, 120), seed=4)
    for typed in (served.gone_id, "<img src=\\\\127.0.0.1:9\\typed onerror=window.__xss=1>"):
        page.goto(served.url + "/")
        page.locator("#query-video input[type=file]").set_input_files(str(video), timeout=WAIT_MS)
        page.wait_for_function("() => /analysed in|from cache/.test(document.getElementById('music-status').innerText)",
                               timeout=WAIT_MS)
        box = page.locator("input[role=combobox]").first
        box.fill(typed)
        box.press("Enter")
        page.click("#preview-button")
        page.wait_for_selector("[data-testid=toast-text]", timeout=WAIT_MS)
        page.wait_for_timeout(500)  # time for an injected image to ask for its source
        shown = page.inner_text("[data-testid=toast-text]")
        assert "<img src=" in shown, shown
        assert _markup_in(page, "[data-testid=toast-text]") == [] and page.seen == []


def test_file_names_in_the_operators_folder_report_are_text(served, page):
    """The operator indexes a downloaded folder whose broken files are named like tags: the report
    names them as text; nothing covers the page or loads from the beacon host."""
    page.goto(served.url + "/admin-music/", wait_until="domcontentloaded")
    page.get_by_label("username").fill("admin", timeout=WAIT_MS)
    page.get_by_label("password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Login").click()
    page.locator("#music-folder textarea, #music-folder input").first.fill(str(served.drop), timeout=WAIT_MS)
    page.locator("#music-folder-add").click()
    page.wait_for_function("() => document.getElementById('music-folder-report').innerText.includes('could not')",
                           timeout=WAIT_MS)
    page.wait_for_timeout(500)
    shown = page.inner_text("#music-folder-report")
    assert "2 files could not be used" in shown and ("<img src=" in shown or COVER in shown), shown
    assert _markup_in(page, "#music-folder-report .md") == [] and page.seen == []


def test_a_test_pairs_title_is_text_in_the_browse_summary():
    """A catalog video's title (its file name) in the browse tab's Markdown summary is escaped."""
    video = CatalogItem(id="v", title="<b style=position:fixed>x ![i](\\\\127.0.0.1:9\\t)")
    ranks = {d: {"catalog": 1, "gallery": 1} for d in ("video_to_music", "music_to_video")}
    summary = PairReport(video, CatalogItem(id="m", title="m"), ranks, ranks, {}).summary()
    rendered = MarkdownIt("commonmark", {"html": True}).render(summary.splitlines()[0])  # as Gradio's marked would
    assert rendered == "<p><strong>&lt;b style=position:fixed&gt;x ![i](\\\\127.0.0.1:9\\t)</strong></p>\n", rendered


@pytest.mark.parametrize("text", [" =1+1", '"=HYPERLINK(""x"")', "'+1", "\u00a0@SUM(A1)", "\n=1", "\uff1d1+1"])
def test_a_formula_behind_blanks_or_quotes_is_exported_as_text(text):
    """A rater's URL parameter that a spreadsheet would still read as a formula once it trims the
    leading blanks or quotes gets the ``'`` prefix too."""
    assert safe_cell(text) == "'" + text
