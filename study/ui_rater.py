"""The rater's page (``/study``): consent (agree or decline) → instructions → practice → trials →
completion code.

One clip per trial in one A/B player (``rater_player.js``): a muted video and soundtrack A and B as
two audio elements from the trial's premuxed files; the A and B buttons (or keys) switch the audible
soundtrack at the same playback position, without a reload; space plays and pauses; loop. The
player counts the seconds each soundtrack was heard during normal playback (seeking ahead does not
count) and unlocks the answer once both reach ``LISTEN_FRACTION`` of their length; the vote carries
``listened_a_s`` / ``listened_b_s``. The strength appears only with a preference for A or B.
The participant's secret token lives in ``gr.BrowserState``; everything else is in the database,
so a reload resumes at the first unanswered trial.

Blindness: the browser only ever receives the study's public texts, trial ids, positions and
opaque media names (served from the study's media folder, which the web guard shows as a token).
The page's own event handlers are private; the public API (for scripted raters and the tests) is
the small set of ``gr.api`` endpoints below, each scoped by the caller's token.
"""

from __future__ import annotations

import html
import logging
import math
import os
import secrets
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import gradio as gr
from gradio.data_classes import FileData

from study import service
from study.db import Database
from study.join_limit import JoinLimiter
from study.rater_input import MAX_RESPONSE_MS
from study.service import NotFound, Refused, SaveFailed, StudyError, StudyInfo, TrialView, VoteAck
from webguard.clients import UNKNOWN, request_client

TOKEN_STORAGE_KEY = "vmnet_study_participant"
JOIN_KEY_STORAGE_KEY = "vmnet_study_join_key"
SAVE_FAILED_TEXT = "Saving failed — please try again."
NO_STUDY_TEXT = "No study is open at this address right now. Thank you for your interest."
CHOICES = [("Soundtrack A fits better", "A"), ("Soundtrack B fits better", "B"), ("No preference", "none")]
STRENGTHS = [("1 · barely", 1), ("2", 2), ("3 · clearly", 3), ("4", 4), ("5 · very clearly", 5)]
LISTEN_FRACTION = 0.9  # of each soundtrack's length, heard during normal playback, before the answer unlocks
PLAY_BOTH_TEXT = ("Listen to **both** soundtracks, almost to the end (skipping ahead does not count); "
                  "the answer unlocks then.")
HEARD_TEXT = "Both soundtracks heard — switch back and forth as you like, then choose."
LISTEN_FIRST_TEXT = "Please play both soundtracks first (at least 90 % of each)."
HOW_TO_TEXT = ("**▶ Play** (or the space bar) starts the clip. **A** and **B** (buttons or keys) switch the "
               "soundtrack at the same moment of the clip; *Loop* starts it again at the end.")
PLAYER_JS = (Path(__file__).with_name("rater_player.js")).read_text(encoding="utf-8")
PLAYER_CSS = (Path(__file__).with_name("rater_player.css")).read_text(encoding="utf-8")
# the Save button hands the player's listening report to the handler in place of the player's value
REPORT_JS = ("(...args) => { const p = window.vmnetStudyPlayer; "
             "args[args.length - 1] = p && p.report ? p.report() : null; return args; }")
PRIVATE = "private"
# one INFO line per public API call, "<endpoint> <handler ms>": the server-side cost of a call,
# apart from Gradio's queue and the network (bench/serve_study.py --timing-log writes it to a file)
TIMING = logging.getLogger("study.timing")
# Gradio's queue rebuilds a pandas summary of up to 10,000 past events after every event (for its
# /monitoring page) unless told to do so less often: ~5-12 ms of server CPU per API call. It also
# copies its whole event record after every event, so a long record slows every call down as a
# study goes on: the summary covers the last 500 events.
QUEUE_ANALYTICS_EVERY = "200"
QUEUE_ANALYTICS_EVENTS = "500"
QUEUE_EVERY_ATTRIBUTE = "ANAYLTICS_CACHE_FREQUENCY"  # (sic) gradio.queueing.Queue's names for the two
QUEUE_EVENTS_ATTRIBUTE = "ANALYTICS_MAX_EVENTS"


# ------------------------------------------------------------------------------ shared helpers
def _study_key(params: dict[str, Any]) -> str | None:
    """The study a link points at: ``?study=<public key>``; None means the newest open study."""
    key = str(params.get("study") or "").strip()
    return key or None


def _known(db: Database, token: str | None) -> bool:
    if not token:
        return False
    try:
        service.study_info_for(db, token)
    except NotFound:
        return False
    return True


def join_and_consent(db: Database, token: str | None, url_params: Any, join_key: str | None = None,
                     client: str | None = None, limiter: JoinLimiter | None = None) -> str:
    """The rater's "I agree": join the linked study (unless ``token`` is already a participant),
    store ``url_params`` (e.g. ``PROLIFIC_PID``; the first 16), record consent; returns the token. A
    retry with the same ``join_key`` (see :func:`study.service.join`) returns the same token. A new
    join from ``client`` counts against the study's per-client join limit in ``limiter``.
    ``url_params`` other than names with values is refused with a sentence."""
    params = service.checked_url_params(url_params)
    if not _known(db, token):
        study_key = _study_key(url_params) if params else None  # the link's study, even past the 16 kept
        token = service.join(db, study_key, params, join_key, client, limiter)
    service.consent(db, token)
    return token


def trial_payload(view: TrialView | None) -> dict:
    """A trial as the public API returns it: ids, position, flags, instruction and both videos as
    files (Gradio copies them into its cache under their opaque names); ``{"done": true}`` for None."""
    if view is None:
        return {"done": True}
    path_a, path_b = view.media_paths()
    return {"done": False, "trial_id": view.trial_id, "number": view.number, "total": view.total,
            "answered": view.answered, "practice": view.practice, "instruction": view.instruction,
            "video_a": FileData(path=str(path_a), orig_name=view.media_a).model_dump(),
            "video_b": FileData(path=str(path_b), orig_name=view.media_b).model_dump()}


def progress_html(view: TrialView) -> str:
    """The progress bar above a trial: "Trial 3 of 20" (the practice trial, first, counts and says so)."""
    done = round(100 * view.answered / max(view.total, 1))
    label = f"Trial {view.number} of {view.total}" + (" · practice (not counted)" if view.practice else "")
    return (f'<div id="study-progress" role="progressbar" aria-valuemin="0" aria-valuemax="{view.total}" '
            f'aria-valuenow="{view.answered}"><div style="font-weight:600;margin-bottom:4px">{html.escape(label)}</div>'
            '<div style="background:#e5e7eb;border-radius:4px;height:8px;overflow:hidden">'
            f'<div style="width:{done}%;background:#2563eb;height:8px"></div></div></div>')


# The key gr.BrowserState encrypts the rater's token with in the browser's storage. Gradio sends it
# to every browser (it is in the page's config), so it hides nothing and must tell nothing: a
# constant (stable, so a token survives a server restart), not derived from the database URL,
# whose hash a rater could test guesses of the path or password against. The token itself is the secret.
BROWSER_STATE_SECRET = "7c1e4f0a9b2d6e83f5a0c4d19b7e2a66"  # fixed digits, no words (a rater scan finds no name in it)


# ------------------------------------------------------------------------------------ public API
def client_of(request: gr.Request | None) -> str | None:
    """The caller's address as the server sees it (behind a reverse proxy: the forwarded one uvicorn
    trusts; an IPv6 address as its /64, :func:`webguard.clients.client_key`), for the join limit;
    None without one."""
    key = request_client(request)
    return None if key == UNKNOWN else key


def add_rater_api(db: Database, limiter: JoinLimiter | None = None) -> None:
    """The rater's public API (inside a Blocks context). Every call is scoped by the caller's token;
    nothing returned names a condition, track or source file."""

    def _fail(exc: StudyError) -> gr.Error:
        return gr.Error(str(exc), print_exception=False)

    def consent(token: str, url_params: dict, join_key: str = "", request: gr.Request = None) -> str:
        """Join the study (or continue as ``token``), store URL parameters, record consent; returns the
        token. ``join_key``: an unguessable key of 16-64 letters, digits, - or _ that the client makes once
        and resends with every retry, so a retried join returns the same token, not a second participant."""
        try:
            return join_and_consent(db, token or None, url_params, join_key or None, client_of(request), limiter)
        except StudyError as exc:
            raise _fail(exc) from None

    def trial(token: str) -> dict:
        """The first unanswered trial: ids, position, practice flag, instruction and both videos
        (opaque files); ``{"done": true}`` when every trial is answered."""
        started = time.perf_counter()
        try:
            view = service.current_trial(db, token)
        except StudyError as exc:
            raise _fail(exc) from None
        finally:
            TIMING.info("trial %.1f", 1000 * (time.perf_counter() - started))
        return trial_payload(view)

    def vote(token: str, trial_id: int, choice: str, strength: int | None = None, played_a: bool = False,
             played_b: bool = False, response_ms: int | None = None, listened_a_s: float | None = None,
             listened_b_s: float | None = None) -> dict:
        """Store the answer to the current trial (``choice``: A, B or none; ``strength`` 1-5 only with
        A or B; ``listened_a_s``/``listened_b_s``: seconds of each soundtrack actually played, for
        screening). Refused sooner than the study's listening time after the trial was served;
        resubmitting returns the same confirmation and stores nothing new. ``next`` is the
        trial to answer now, as ``/trial`` would return it (so a client needs one call per trial)."""
        started = time.perf_counter()
        try:
            ack = service.record_vote(db, token, trial_id, choice, strength, response_ms, played_a, played_b,
                                      listened_a_s=listened_a_s, listened_b_s=listened_b_s)
        except StudyError as exc:
            raise _fail(exc) from None
        finally:
            TIMING.info("vote %.1f", 1000 * (time.perf_counter() - started))
        return {"trial_id": ack.trial_id, "number": ack.number, "total": ack.total, "choice": ack.choice,
                "finished": ack.finished, "next": trial_payload(ack.next_trial)}

    def completion_code(token: str) -> str:
        """The completion code, once every answer is stored."""
        try:
            return service.completion_code(db, token)
        except StudyError as exc:
            raise _fail(exc) from None

    def texts(study: str = "") -> dict:
        """The public texts of the linked study (``study``: its public key; empty: the open one)."""
        try:
            info = service.study_info(db, study or None)
        except StudyError as exc:
            raise _fail(exc) from None
        return {"title": info.title, "consent": info.consent_text, "instructions": info.instructions_text,
                "strength_scale": info.strength_scale, "open": info.is_open, "contact": info.contact,
                "decline": info.decline_text}

    def completion_url(token: str) -> str:
        """Where to go once finished (the crowd platform's completion link with the code), "" when the
        study names none; like ``/completion_code``, only once every answer is stored."""
        try:
            return service.completion_url(db, token)
        except StudyError as exc:
            raise _fail(exc) from None

    for fn in (consent, trial, vote, completion_code, completion_url, texts):
        gr.api(fn, api_name=fn.__name__, concurrency_limit=None)


# ---------------------------------------------------------------------------------------- page
def player_html(view: TrialView) -> str:
    """The A/B player of one trial (driven by ``rater_player.js``): one muted video and soundtrack
    A and B as two audio elements, all three from the trial's opaque premuxed files through the
    page's file route (the web guard shows the media folder as a token)."""
    url_a, url_b = (html.escape(media_url(p)) for p in view.media_paths())
    return (f'<div class="vmp" data-trial="{int(view.trial_id)}" data-fraction="{LISTEN_FRACTION}">'
            f'<div class="vmp-stage"><video class="vmp-video" src="{url_a}" muted playsinline preload="auto" '
            'disablepictureinpicture></video></div>'
            f'<audio data-side="A" src="{url_a}" preload="auto"></audio>'
            f'<audio data-side="B" src="{url_b}" preload="auto" muted></audio>'
            '<div class="vmp-controls">'
            '<button type="button" class="vmp-play" aria-keyshortcuts="Space">▶ Play</button>'
            '<span class="vmp-sides" role="group" aria-label="Soundtrack">'
            '<button type="button" class="vmp-side" data-side="A" aria-pressed="true" aria-keyshortcuts="A">A</button>'
            '<button type="button" class="vmp-side" data-side="B" aria-pressed="false" aria-keyshortcuts="B">B</button>'
            '</span>'
            '<input type="range" class="vmp-seek" min="0" max="1000" step="1" value="0" aria-label="Position in the clip">'
            '<span class="vmp-time">0:00 / 0:00</span>'
            '<label class="vmp-looplabel"><input type="checkbox" class="vmp-loop" checked> Loop</label>'
            '</div>'
            '<div class="vmp-status"><span class="vmp-now">Soundtrack A</span> · heard '
            '<span class="vmp-heard" data-side="A">A: 0:00</span> · <span class="vmp-heard" data-side="B">B: 0:00</span>'
            '</div></div>')


def media_url(path) -> str:
    """The page-relative URL of a study media file: the mount's file route, which serves the study's
    media folders (``allowed_paths``); the web guard masks the folder in every answer."""
    return "gradio_api/file=" + quote(str(path), safe="/")


def heard_enough(report: Any, trial_id: int) -> tuple[float, float] | None:
    """``(seconds heard of A, of B)`` from the player's ``report`` on ``trial_id`` when both reach
    ``LISTEN_FRACTION`` of their length; None otherwise (no report, another trial, too little)."""
    if not isinstance(report, dict):
        return None
    try:
        if int(report.get("trial")) != int(trial_id):
            return None
        heard = float(report["a"]), float(report["b"])
        lengths = float(report["duration_a"]), float(report["duration_b"])
    except (TypeError, ValueError, KeyError, OverflowError):  # OverflowError: a trial of infinity
        return None
    if not all(math.isfinite(x) and x >= 0 for x in (*heard, *lengths)) or min(lengths) <= 0:
        return None
    if heard[0] < LISTEN_FRACTION * lengths[0] or heard[1] < LISTEN_FRACTION * lengths[1]:
        return None
    return heard


def build_rater_page(db: Database, limiter: JoinLimiter | None = None) -> gr.Blocks:
    """The rater's Blocks over the app's one ``db`` (mount at ``/study`` with the studies' media
    folders in ``allowed_paths``); the busy timeout a rater's write waits for is ``db``'s. New joins
    count against the studies' per-client limits in ``limiter`` (default: a fresh one)."""
    limiter = limiter if limiter is not None else JoinLimiter()

    with gr.Blocks(title="Soundtrack study", analytics_enabled=False) as page:
        token = gr.BrowserState(None, storage_key=TOKEN_STORAGE_KEY, secret=BROWSER_STATE_SECRET)
        # made on the first visit and kept in the browser: a second "I agree" (after a lost answer,
        # or a reload before the token arrived) joins as the same participant
        join_key = gr.BrowserState(None, storage_key=JOIN_KEY_STORAGE_KEY, secret=BROWSER_STATE_SECRET)
        trial_state = gr.State(None)  # {trial_id, shown_at, strength_scale} of the trial on screen
        heard_state = gr.State(None)  # the player's report once both soundtracks were heard enough

        title = gr.Markdown("# Soundtrack study", elem_id="study-title")
        notice = gr.Markdown("", visible=False, elem_id="study-notice")

        with gr.Column(visible=False, elem_id="study-consent") as consent_box:
            consent_text = gr.Markdown()
            contact_text = gr.Markdown(elem_id="study-contact")
            with gr.Row():
                agree_btn = gr.Button("I agree and want to take part", variant="primary", elem_id="study-agree")
                decline_btn = gr.Button("I do not want to take part", variant="secondary", elem_id="study-decline")
        with gr.Column(visible=False, elem_id="study-declined") as declined_box:
            declined_text = gr.Markdown(elem_id="study-declined-text")
        with gr.Column(visible=False, elem_id="study-instructions") as intro_box:
            intro_text = gr.Markdown()
            start_btn = gr.Button("Start", variant="primary", elem_id="study-start")
        with gr.Column(visible=False, elem_id="study-trial") as trial_box:
            progress = gr.HTML()
            gr.Markdown(HOW_TO_TEXT, elem_id="study-howto")
            instruction = gr.Markdown(visible=False, elem_id="study-instruction")
            with gr.Row(equal_height=False):
                with gr.Column(scale=3, min_width=320):
                    player = gr.HTML("", elem_id="study-player", js_on_load=PLAYER_JS, css_template=PLAYER_CSS,
                                     apply_default_css=False)
                with gr.Column(scale=2, min_width=280):
                    played_text = gr.Markdown(PLAY_BOTH_TEXT, elem_id="study-played")
                    choice = gr.Radio(CHOICES, label="Which soundtrack fits the video better?", interactive=False,
                                      elem_id="study-choice")
                    strength = gr.Radio(STRENGTHS, label="How clearly? (optional)", interactive=False, visible=False,
                                        elem_id="study-strength")
                    next_btn = gr.Button("Save and continue", variant="primary", interactive=False,
                                         elem_id="study-next")
        with gr.Column(visible=False, elem_id="study-done") as done_box:
            done_text = gr.Markdown(elem_id="study-code")

        screens = [consent_box, declined_box, intro_box, trial_box, done_box]
        trial_outputs = [trial_state, heard_state, progress, instruction, player, played_text, choice, strength,
                         next_btn]
        everything = [token, title, notice, consent_text, contact_text, declined_text, intro_text, done_text, *screens,
                      *trial_outputs]

        def show(screen: gr.Column | None, extra: dict | None = None) -> dict:
            """Show one screen (None: none), clear the notice, plus the ``extra`` updates."""
            out = {box: gr.update(visible=box is screen) for box in screens}
            out[notice] = gr.update(value="", visible=False)
            return {**out, **(extra or {})}

        def problem(message: str, extra: dict | None = None) -> dict:
            """Keep the screen as it is and show ``message`` above it."""
            return {notice: gr.update(value=f"**{message}**", visible=True), **(extra or {})}

        def texts(info: StudyInfo) -> dict:
            return {title: f"# {info.title}", consent_text: info.consent_text, intro_text: info.instructions_text,
                    contact_text: contact_markdown(info)}

        def trial_screen(view: TrialView, strength_scale: bool) -> dict:
            return show(trial_box, {
                trial_state: {"trial_id": view.trial_id, "shown_at": time.time(), "strength_scale": strength_scale},
                heard_state: None,
                progress: progress_html(view),
                instruction: gr.update(value=f"**{view.instruction}**" if view.instruction else "",
                                       visible=bool(view.instruction)),
                player: player_html(view),
                played_text: PLAY_BOTH_TEXT,
                choice: gr.update(value=None, interactive=False),
                strength: gr.update(value=None, interactive=False, visible=False),
                next_btn: gr.update(interactive=False),
            })

        def next_screen(tok: str, ack: VoteAck | None = None) -> dict:
            """The trial to answer now (the one ``ack`` names, else asked for), or the completion code
            once every answer is stored."""
            info = service.study_info_for(db, tok)
            view = ack.next_trial if ack is not None else service.current_trial(db, tok)
            if view is not None:
                return trial_screen(view, info.strength_scale)
            return show(done_box, {done_text: done_markdown(service.completion_code(db, tok),
                                                            service.completion_url(db, tok))})

        def on_load(tok: str | None, key: str | None, request: gr.Request) -> dict:
            return {**_on_load(tok, request), join_key: key or secrets.token_urlsafe(24)}

        def _on_load(tok: str | None, request: gr.Request) -> dict:
            params = dict(request.query_params) if request is not None else {}
            try:
                if _known(db, tok):
                    info = service.study_info_for(db, tok)
                    try:
                        return {**next_screen(tok), **texts(info)}
                    except Refused:  # joined but not consented yet
                        return {**show(consent_box), **texts(info)}
                info = service.study_info(db, _study_key(params))
            except NotFound:
                return {**show(None), token: None, notice: gr.update(value=NO_STUDY_TEXT, visible=True)}
            except StudyError as exc:
                return {**show(None), **problem(str(exc))}
            if not info.is_open:
                return {**show(None), token: None, notice: gr.update(value=NO_STUDY_TEXT, visible=True)}
            return {**show(consent_box), token: None, **texts(info)}

        def on_agree(tok: str | None, key: str | None, request: gr.Request) -> dict:
            params = dict(request.query_params) if request is not None else {}
            try:
                tok = join_and_consent(db, tok, params, key, client_of(request), limiter)
            except StudyError as exc:
                return problem(str(exc))
            return {**show(intro_box), token: tok}

        def on_decline(request: gr.Request) -> dict:
            """The rater does not agree: nothing is stored; the decline text and the contact."""
            params = dict(request.query_params) if request is not None else {}
            try:
                info = service.study_info(db, _study_key(params))
            except StudyError as exc:
                return problem(str(exc))
            return show(declined_box, {declined_text: declined_markdown(info)})

        def on_start(tok: str | None) -> dict:
            try:
                return next_screen(tok)
            except StudyError as exc:
                return problem(str(exc))

        def on_heard(current: dict | None, evt: gr.EventData) -> dict:
            """The player says both soundtracks were heard enough: unlock the answer."""
            report = getattr(evt, "_data", None)
            if not current or heard_enough(report, current["trial_id"]) is None:
                return {played_text: gr.update()}  # a stale or short report unlocks nothing
            return {heard_state: report, played_text: HEARD_TEXT, choice: gr.update(interactive=True),
                    next_btn: gr.update(interactive=True)}

        def on_choice(picked: str | None, current: dict | None) -> dict:
            """The strength goes with A or B only: shown then, hidden and cleared with no preference."""
            show_it = bool(current and current.get("strength_scale")) and picked in ("A", "B")
            return {strength: gr.update(visible=show_it, interactive=show_it, **({} if show_it else {"value": None}))}

        def on_lock() -> dict:
            return {next_btn: gr.update(interactive=False, value="Saving…")}

        def on_submit(tok: str | None, current: dict | None, heard: dict | None, picked: str | None,
                      how_clear: int | None, report: Any = None) -> dict:
            unlock = {next_btn: gr.update(interactive=True, value="Save and continue")}
            if not current:
                return on_start(tok)
            listened = heard_enough(report, current["trial_id"]) or heard_enough(heard, current["trial_id"])
            if listened is None:
                return problem(LISTEN_FIRST_TEXT, unlock)
            if picked not in ("A", "B", "none"):
                return problem("Please choose soundtrack A, soundtrack B or no preference.", unlock)
            # a tab left open for days still saves: the time is clamped to the service's limit (a day)
            response_ms = min(int(max(0.0, time.time() - current["shown_at"]) * 1000), MAX_RESPONSE_MS)
            try:
                ack = service.record_vote(db, tok, current["trial_id"], picked,
                                          int(how_clear) if how_clear and picked != "none" else None,
                                          response_ms, True, True,
                                          listened_a_s=round(listened[0], 3), listened_b_s=round(listened[1], 3))
            except SaveFailed:
                return problem(SAVE_FAILED_TEXT, unlock)
            except StudyError as exc:
                return problem(str(exc), unlock)
            try:
                return {**next_screen(tok, ack), **{next_btn: gr.update(interactive=False, value="Save and continue")}}
            except SaveFailed:
                return problem(SAVE_FAILED_TEXT, unlock)
            except StudyError as exc:
                return problem(str(exc), unlock)

        page.load(on_load, [token, join_key], [*everything, join_key], api_visibility=PRIVATE)
        agree_btn.click(on_agree, [token, join_key], everything, api_visibility=PRIVATE)
        decline_btn.click(on_decline, None, everything, api_visibility=PRIVATE)
        start_btn.click(on_start, [token], everything, api_visibility=PRIVATE)
        player.submit(on_heard, [trial_state], [heard_state, played_text, choice, next_btn], api_visibility=PRIVATE)
        choice.input(on_choice, [choice, trial_state], [strength], queue=False, api_visibility=PRIVATE)
        next_btn.click(on_lock, None, [next_btn], queue=False, api_visibility=PRIVATE).then(
            on_submit, [token, trial_state, heard_state, choice, strength, player], everything,
            js=REPORT_JS, api_visibility=PRIVATE)
        add_rater_api(db, limiter)

    # api_open=False: a direct run/<name> call may not skip the queue and its limits (docs/security.md)
    page.queue(default_concurrency_limit=16, api_open=False)
    _limit_queue_analytics(page)
    return page


def done_markdown(code: str, url: str) -> str:
    """The last screen: thanks, the completion code and, when the study has one, the link back to
    the crowd platform (its completion URL, which carries the code)."""
    text = f"## Thank you!\n\nAll your answers are saved. Your completion code is:\n\n# `{code}`"
    if url:
        text += f"\n\n[Return to the study platform to finish]({url}) (the link carries your code)."
    return text


def contact_markdown(info: StudyInfo) -> str:
    """The researcher's contact under the consent text (empty when the study gives none)."""
    return f"**Contact:** {info.contact}" if info.contact else ""


def declined_markdown(info: StudyInfo) -> str:
    """What a rater who does not agree reads: the decline text and the researcher's contact."""
    return "## You did not take part\n\n" + info.decline_text + (
        f"\n\n**Questions?** {info.contact}" if info.contact else "")


def _limit_queue_analytics(page: gr.Blocks) -> None:
    """Give ``page``'s queue the analytics interval and record size above (an operator's
    ``GRADIO_ANALYTICS_CACHE_FREQUENCY`` / ``GRADIO_ANALYTICS_MAX_EVENTS`` still win), without
    changing the process environment. Gradio reads these two once, into its ``Queue``."""
    queue = page._queue
    if not hasattr(queue, QUEUE_EVERY_ATTRIBUTE) or not hasattr(queue, QUEUE_EVENTS_ATTRIBUTE):
        raise RuntimeError("this Gradio's queue has no analytics settings to limit; update study/ui_rater.py")
    setattr(queue, QUEUE_EVERY_ATTRIBUTE,
            int(os.environ.get("GRADIO_ANALYTICS_CACHE_FREQUENCY", QUEUE_ANALYTICS_EVERY)))
    setattr(queue, QUEUE_EVENTS_ATTRIBUTE,
            max(1, int(os.environ.get("GRADIO_ANALYTICS_MAX_EVENTS", QUEUE_ANALYTICS_EVENTS))))
