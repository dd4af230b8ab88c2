"""The rater's page (``/study``): consent → instructions → practice → trials → completion code.

One clip per trial, one player at a time: "Soundtrack A" or "Soundtrack B" shows the premuxed mp4
of that side. The answer unlocks once both were played to the end (the players' ``end`` events).
The participant's secret token lives in ``gr.BrowserState``; everything else is in the database,
so a reload resumes at the first unanswered trial.

Blindness: the browser only ever receives the study's public texts, trial ids, positions and
opaque media names (copied by Gradio into its cache under the same opaque name). The page's own
event handlers are private; the public API (for scripted raters and the tests) is the small set of
``gr.api`` endpoints below, each scoped by the caller's token.
"""

from __future__ import annotations

import hashlib
import html
import logging
import os
import secrets
import time
from typing import Any

import gradio as gr
from gradio.data_classes import FileData

from study import service
from study.db import Database
from study.join_limit import JoinLimiter
from study.service import NotFound, Refused, SaveFailed, StudyError, TrialView, VoteAck

TOKEN_STORAGE_KEY = "vmnet_study_participant"
JOIN_KEY_STORAGE_KEY = "vmnet_study_join_key"
SAVE_FAILED_TEXT = "Saving failed — please try again."
NO_STUDY_TEXT = "No study is open at this address right now. Thank you for your interest."
CHOICES = [("Soundtrack A fits better", "A"), ("Soundtrack B fits better", "B"), ("No preference", "none")]
STRENGTHS = [("1 · barely", 1), ("2", 2), ("3 · clearly", 3), ("4", 4), ("5 · very clearly", 5)]
PLAY_BOTH_TEXT = "Play **both** soundtracks to the end; the answer unlocks then."
PAUSE_PLAYERS_JS = ("() => { document.querySelectorAll('#study-trial video').forEach(v => v.pause()); "
                    "return []; }")
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


def join_and_consent(db: Database, token: str | None, url_params: dict[str, Any], join_key: str | None = None,
                     client: str | None = None, limiter: JoinLimiter | None = None) -> str:
    """The rater's "I agree": join the linked study (unless ``token`` is already a participant),
    store ``url_params`` (e.g. ``PROLIFIC_PID``), record consent; returns the token. A retry with
    the same ``join_key`` (see :func:`study.service.join`) returns the same token. A new join from
    ``client`` counts against the study's per-client join limit in ``limiter``."""
    if not _known(db, token):
        token = service.join(db, _study_key(url_params), url_params, join_key, client, limiter)
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


def _storage_secret(db_url: str) -> str:
    """A stable BrowserState secret (so tokens survive a server restart), not the URL itself."""
    return hashlib.sha256(f"vmnet-study:{db_url}".encode()).hexdigest()[:32]


# ------------------------------------------------------------------------------------ public API
def client_of(request: gr.Request | None) -> str | None:
    """The caller's IP address as the server sees it (behind a reverse proxy: the forwarded one
    uvicorn trusts), for the join limit."""
    client = getattr(request, "client", None) if request is not None else None
    return getattr(client, "host", None) or None


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
            return join_and_consent(db, token or None, dict(url_params or {}), join_key or None,
                                    client_of(request), limiter)
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
             played_b: bool = False, response_ms: int | None = None) -> dict:
        """Store the answer to the current trial (``choice``: A, B or none); resubmitting returns the
        same confirmation and stores nothing new. ``next`` is the trial to answer now, as ``/trial``
        would return it (so a client needs one call per trial)."""
        started = time.perf_counter()
        try:
            ack = service.record_vote(db, token, trial_id, choice, strength, response_ms, played_a, played_b)
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
                "strength_scale": info.strength_scale, "open": info.is_open}

    for fn in (consent, trial, vote, completion_code, texts):
        gr.api(fn, api_name=fn.__name__, concurrency_limit=None)


# ---------------------------------------------------------------------------------------- page
def build_rater_page(db: Database, limiter: JoinLimiter | None = None) -> gr.Blocks:
    """The rater's Blocks over the app's one ``db`` (mount at ``/study`` with the studies' media
    folders in ``allowed_paths``); the busy timeout a rater's write waits for is ``db``'s. New joins
    count against the studies' per-client limits in ``limiter`` (default: a fresh one)."""
    limiter = limiter if limiter is not None else JoinLimiter()

    with gr.Blocks(title="Soundtrack study", analytics_enabled=False) as page:
        token = gr.BrowserState(None, storage_key=TOKEN_STORAGE_KEY, secret=_storage_secret(db.url))
        # made on the first visit and kept in the browser: a second "I agree" (after a lost answer,
        # or a reload before the token arrived) joins as the same participant
        join_key = gr.BrowserState(None, storage_key=JOIN_KEY_STORAGE_KEY, secret=_storage_secret(db.url))
        trial_state = gr.State(None)  # {trial_id, media_a, media_b, shown_at} of the trial on screen
        played_state = gr.State(None)  # {trial_id, A: bool, B: bool}: played to the end

        title = gr.Markdown("# Soundtrack study", elem_id="study-title")
        notice = gr.Markdown("", visible=False, elem_id="study-notice")

        with gr.Column(visible=False, elem_id="study-consent") as consent_box:
            consent_text = gr.Markdown()
            agree_btn = gr.Button("I agree and want to take part", variant="primary", elem_id="study-agree")
        with gr.Column(visible=False, elem_id="study-instructions") as intro_box:
            intro_text = gr.Markdown()
            start_btn = gr.Button("Start", variant="primary", elem_id="study-start")
        with gr.Column(visible=False, elem_id="study-trial") as trial_box:
            progress = gr.HTML()
            instruction = gr.Markdown(visible=False, elem_id="study-instruction")
            with gr.Row():
                side_a_btn = gr.Button("Soundtrack A", variant="primary", elem_id="study-side-a")
                side_b_btn = gr.Button("Soundtrack B", variant="secondary", elem_id="study-side-b")
            player_a = gr.Video(label="Soundtrack A", interactive=False, buttons=[], elem_id="study-player-a")
            player_b = gr.Video(label="Soundtrack B", interactive=False, buttons=[], visible=False,
                                elem_id="study-player-b")
            played_text = gr.Markdown(PLAY_BOTH_TEXT, elem_id="study-played")
            choice = gr.Radio(CHOICES, label="Which soundtrack fits the video better?", interactive=False,
                              elem_id="study-choice")
            strength = gr.Radio(STRENGTHS, label="How clearly? (optional)", interactive=False,
                                elem_id="study-strength")
            next_btn = gr.Button("Save and continue", variant="primary", interactive=False, elem_id="study-next")
        with gr.Column(visible=False, elem_id="study-done") as done_box:
            done_text = gr.Markdown(elem_id="study-code")

        screens = [consent_box, intro_box, trial_box, done_box]
        trial_outputs = [trial_state, played_state, progress, instruction, side_a_btn, side_b_btn, player_a,
                         player_b, played_text, choice, strength, next_btn]
        everything = [token, title, notice, consent_text, intro_text, done_text, *screens, *trial_outputs]

        def show(screen: gr.Column | None, extra: dict | None = None) -> dict:
            """Show one screen (None: none), clear the notice, plus the ``extra`` updates."""
            out = {box: gr.update(visible=box is screen) for box in screens}
            out[notice] = gr.update(value="", visible=False)
            return {**out, **(extra or {})}

        def problem(message: str, extra: dict | None = None) -> dict:
            """Keep the screen as it is and show ``message`` above it."""
            return {notice: gr.update(value=f"**{message}**", visible=True), **(extra or {})}

        def trial_screen(view: TrialView, strength_scale: bool) -> dict:
            path_a, path_b = view.media_paths()
            return show(trial_box, {
                trial_state: {"trial_id": view.trial_id, "media_a": view.media_a, "media_b": view.media_b,
                              "shown_at": time.time()},
                played_state: {"trial_id": view.trial_id, "A": False, "B": False},
                progress: progress_html(view),
                instruction: gr.update(value=f"**{view.instruction}**" if view.instruction else "",
                                       visible=bool(view.instruction)),
                side_a_btn: gr.update(variant="primary"), side_b_btn: gr.update(variant="secondary"),
                player_a: gr.update(value=str(path_a), visible=True),
                player_b: gr.update(value=str(path_b), visible=False),
                played_text: PLAY_BOTH_TEXT,
                choice: gr.update(value=None, interactive=False),
                strength: gr.update(value=None, interactive=False, visible=strength_scale),
                next_btn: gr.update(interactive=False),
            })

        def next_screen(tok: str, ack: VoteAck | None = None) -> dict:
            """The trial to answer now (the one ``ack`` names, else asked for), or the completion code
            once every answer is stored."""
            info = service.study_info_for(db, tok)
            view = ack.next_trial if ack is not None else service.current_trial(db, tok)
            if view is not None:
                return trial_screen(view, info.strength_scale)
            code = service.completion_code(db, tok)
            return show(done_box, {done_text: "## Thank you!\n\nAll your answers are saved. "
                                                f"Your completion code is:\n\n# `{code}`"})

        def on_load(tok: str | None, key: str | None, request: gr.Request) -> dict:
            return {**_on_load(tok, request), join_key: key or secrets.token_urlsafe(24)}

        def _on_load(tok: str | None, request: gr.Request) -> dict:
            params = dict(request.query_params) if request is not None else {}
            try:
                if _known(db, tok):
                    info = service.study_info_for(db, tok)
                    base = {title: f"# {info.title}", consent_text: info.consent_text,
                            intro_text: info.instructions_text}
                    try:
                        return {**next_screen(tok), **base}
                    except Refused:  # joined but not consented yet
                        return {**show(consent_box), **base}
                info = service.study_info(db, _study_key(params))
            except NotFound:
                return {**show(None), token: None, notice: gr.update(value=NO_STUDY_TEXT, visible=True)}
            except StudyError as exc:
                return {**show(None), **problem(str(exc))}
            if not info.is_open:
                return {**show(None), token: None, notice: gr.update(value=NO_STUDY_TEXT, visible=True)}
            return {**show(consent_box), token: None, title: f"# {info.title}", consent_text: info.consent_text,
                    intro_text: info.instructions_text}

        def on_agree(tok: str | None, key: str | None, request: gr.Request) -> dict:
            params = dict(request.query_params) if request is not None else {}
            try:
                tok = join_and_consent(db, tok, params, key, client_of(request), limiter)
            except StudyError as exc:
                return problem(str(exc))
            return {**show(intro_box), token: tok}

        def on_start(tok: str | None) -> dict:
            try:
                return next_screen(tok)
            except StudyError as exc:
                return problem(str(exc))

        def on_side(side: str) -> dict:
            return {player_a: gr.update(visible=side == "A"), player_b: gr.update(visible=side == "B"),
                    side_a_btn: gr.update(variant="primary" if side == "A" else "secondary"),
                    side_b_btn: gr.update(variant="primary" if side == "B" else "secondary")}

        def on_end(side: str, current: dict | None, played: dict | None) -> dict:
            if not current:
                return {}
            if not played or played.get("trial_id") != current["trial_id"]:
                played = {"trial_id": current["trial_id"], "A": False, "B": False}
            played = {**played, side: True}
            both = played["A"] and played["B"]
            other = "B" if side == "A" else "A"
            text = ("Both soundtracks played — choose below." if both else
                    f"Soundtrack {side} played. Now play soundtrack {other} to the end.")
            out = {played_state: played, played_text: text}
            if both:
                out.update({choice: gr.update(interactive=True), strength: gr.update(interactive=True),
                            next_btn: gr.update(interactive=True)})
            return out

        def on_lock() -> dict:
            return {next_btn: gr.update(interactive=False, value="Saving…")}

        def on_submit(tok: str | None, current: dict | None, played: dict | None, picked: str | None,
                      how_clear: int | None) -> dict:
            unlock = {next_btn: gr.update(interactive=True, value="Save and continue")}
            if not current:
                return on_start(tok)
            played = played if played and played.get("trial_id") == current["trial_id"] else {}
            if not (played.get("A") and played.get("B")):
                return problem("Please play both soundtracks to the end first.", unlock)
            if picked not in ("A", "B", "none"):
                return problem("Please choose soundtrack A, soundtrack B or no preference.", unlock)
            response_ms = int(max(0.0, time.time() - current["shown_at"]) * 1000)
            try:
                ack = service.record_vote(db, tok, current["trial_id"], picked,
                                          int(how_clear) if how_clear and picked != "none" else None,
                                          response_ms, True, True)
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
        start_btn.click(on_start, [token], everything, api_visibility=PRIVATE)
        side_a_btn.click(lambda: on_side("A"), None, [player_a, player_b, side_a_btn, side_b_btn],
                         js=PAUSE_PLAYERS_JS, api_visibility=PRIVATE)
        side_b_btn.click(lambda: on_side("B"), None, [player_a, player_b, side_a_btn, side_b_btn],
                         js=PAUSE_PLAYERS_JS, api_visibility=PRIVATE)
        end_outputs = [played_state, played_text, choice, strength, next_btn]
        player_a.end(lambda cur, pl: on_end("A", cur, pl), [trial_state, played_state], end_outputs,
                     api_visibility=PRIVATE)
        player_b.end(lambda cur, pl: on_end("B", cur, pl), [trial_state, played_state], end_outputs,
                     api_visibility=PRIVATE)
        next_btn.click(on_lock, None, [next_btn], queue=False, api_visibility=PRIVATE).then(
            on_submit, [token, trial_state, played_state, choice, strength], everything, api_visibility=PRIVATE)
        add_rater_api(db, limiter)

    page.queue(default_concurrency_limit=16)
    _limit_queue_analytics(page)
    return page


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
