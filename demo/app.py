"""The retrieval demo: one Gradio page over a bundle (mounted at ``/`` by the repository's app.py).

Tabs: find music for a video (with a preview of the track under the video), find videos for a
track, browse the model (test pairs, R@K, the card). Adding a music folder is an operator's act
(:mod:`demo.operator`, behind the admin login); every file argument is checked to be a fresh upload
(:mod:`demo.uploads`). The handlers live in
:mod:`demo.handlers` and :mod:`demo.browse`; this module only lays out the page and wires events.

Public API (``gradio_client``): ``/music_for_video``, ``/videos_for_music`` and ``/preview``
(docs/demo.md). Every other event is private. Heavy analysis shares one concurrency group
(``analysis``, ``concurrency_limit`` at a time) so extra visitors wait in Gradio's queue and see
their position; one client address may have at most ``jobs_per_client`` of them waiting or running
(:mod:`demo.fair_queue`).
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from demo import browse, handlers
from demo.fair_queue import DEFAULT_JOBS_PER_CLIENT, limit_jobs_per_client
from demo.handlers import DEFAULT_K, MAX_K, RESULT_HEADERS, VIDEO_RESULT_HEADERS, DemoContext
from demo.public_text import as_plain_html, without_server_paths
from demo.uploads import UploadCheck
from vmnet_core.bundle.filtered_search import count_visible
from vmnet_core.errors import VmnetError
from vmnet_core.starter.items import is_synthetic_item
from webguard.clients import request_client

log = logging.getLogger(__name__)

VIDEO_TYPES = [".mp4", ".mov", ".webm", ".mkv", ".avi"]
AUDIO_TYPES = [".mp3", ".wav", ".ogg", ".opus", ".flac", ".m4a"]
ANALYSIS_GROUP = "analysis"
PROGRESS = gr.Progress()  # Gradio injects a tracker for a parameter defaulting to a Progress instance


def _user_errors(fn: Callable) -> Callable:
    """Show a VmnetError's sentence in the page (gr.Error, as text: it may name a file or a track id);
    anything else as one generic sentence, with the traceback only in the server log."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except VmnetError as exc:
            raise gr.Error(as_plain_html(exc), print_exception=False) from None
        except gr.Error:
            raise
        except Exception:
            log.exception("demo handler %s failed", getattr(fn, "__name__", fn))
            raise gr.Error("Something went wrong on the server while doing that; try again, and if it happens "
                           "again the server log has the details.", print_exception=False) from None

    return wrapper


def _table(headers: list[str], rows: list[list[Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=headers)


def _catalog_line(ctx: DemoContext) -> str:
    catalog = ctx.catalog
    synthetic = catalog.size("music") - count_visible(catalog, "music", is_synthetic_item)
    hidden = f" (+{synthetic} synthetic training tracks, shown on request)" if synthetic else ""
    return (f"Bundle `{ctx.bundle.path.name}` · catalog: **{catalog.size('music') - synthetic} tracks**{hidden}, "
            f"**{catalog.size('video')} videos** · videos are analysed up to their first "
            f"{handlers.format_duration(handlers.analysed_span_s(ctx))}.")


def _warm_up(ctx: DemoContext) -> None:
    try:
        handlers.warm_up(ctx)
    except Exception:  # a failed warm-up only costs the first visitor time; their query reports any error
        log.warning("demo warm-up failed", exc_info=True)


def build_demo(bundle_dir: str | Path, work_dir: str | Path, music_dir: str | Path | None = None,
               max_video_s: float = handlers.DEFAULT_MAX_VIDEO_S, concurrency_limit: int = 2,
               jobs_per_client: int = DEFAULT_JOBS_PER_CLIENT, warm_up: bool = True) -> gr.Blocks:
    """The demo page over the bundle in ``bundle_dir``.

    Parameters
    ----------
    bundle_dir : a bundle directory (``vmnet_core.bundle.files``)
    work_dir : query cache, previews and figures go here
    music_dir : index this folder of tracks into the catalog before serving (resumable)
    max_video_s : analyse at most this many seconds from the start of a video (longer ones get a note)
    concurrency_limit : heavy analyses (CNN, music descriptor, mux, indexing) running at once
    jobs_per_client : heavy analyses one client address may have waiting or running (0: no bound;
        :mod:`demo.fair_queue`)
    warm_up : load the CNN and compile the music descriptor in the background right away
    """
    ctx = handlers.open_demo(bundle_dir, work_dir, max_video_s)
    if music_dir is not None:
        report = handlers.index_music_folder(ctx, music_dir, progress=True)
        print(f"vmnet demo: {report.sentence()}", flush=True)
    if warm_up:
        threading.Thread(target=_warm_up, args=(ctx,), name="vmnet-demo-warm-up", daemon=True).start()

    with gr.Blocks(title="vmnet · music for your video", analytics_enabled=False) as demo:
        uploads = UploadCheck(lambda: demo.upload_file_set, gr.utils.get_upload_folder())
        gr.Markdown("# vmnet · video ↔ music retrieval\n"
                    "Drop a video to find music that fits it, or a track to find videos for it. "
                    "The model is VM-NET (Hong, Im, Yang, ICMR 2018); see *Browse the model* for what this "
                    "bundle was trained on and how well it does.")
        gr.Markdown(_catalog_line(ctx))
        with gr.Tabs():
            with gr.Tab("Find music for a video", id="music"):
                _music_tab(ctx, uploads, concurrency_limit)
            with gr.Tab("Find videos for a track", id="videos"):
                _videos_tab(ctx, uploads, concurrency_limit)
            with gr.Tab("Browse the model", id="browse"):
                _browse_tab(ctx, demo)
    # api_open=False: a direct run/<name> call may not skip the queue and its limits (docs/security.md)
    demo.queue(default_concurrency_limit=8, max_size=256, api_open=False)
    limit_jobs_per_client(demo, ANALYSIS_GROUP, jobs_per_client)
    demo.vmnet_context = ctx  # for in-process tools and tests
    return demo


# --------------------------------------------------------------------------- tab 1: video → music


def _music_tab(ctx: DemoContext, uploads: UploadCheck, concurrency_limit: int) -> None:
    with gr.Row():
        with gr.Column(scale=2):
            video = gr.File(label="Your video (mp4, mov, webm, mkv, avi)", file_types=VIDEO_TYPES, type="filepath",
                            height=180, elem_id="query-video")
            k = gr.Slider(1, MAX_K, value=DEFAULT_K, step=1, label="How many tracks (K)")
            training = gr.Checkbox(False, label="Include the synthetic training tracks",
                                   info="the starter corpus's procedural clips; off: the real music library only",
                                   elem_id="include-training")
            find = gr.Button("Find music", variant="primary")
        with gr.Column(scale=3):
            status = gr.Markdown("Upload a video: the best-fitting tracks appear here.", elem_id="music-status")
            table = gr.Dataframe(headers=RESULT_HEADERS, datatype=["number", "number", "str", "str", "str", "str",
                                                                   "str", "str", "str", "str"],
                                 value=_table(RESULT_HEADERS, []), interactive=False, label="Tracks, best first", elem_id="music-results",
                                 wrap=True, max_height=420,
                                 column_widths=["5%", "7%", "15%", "10%", "7%", "8%", "7%", "8%", "22%", "11%"])
            with gr.Row():
                track = gr.Dropdown(label="Listen to / preview", choices=[], allow_custom_value=True, scale=3)
                preview_button = gr.Button("Preview on my video", variant="secondary", scale=1, elem_id="preview-button")
            player = gr.Audio(label="Track", interactive=False, buttons=[], elem_id="track-player")
    with gr.Row():
        preview = gr.Video(label="Your video with this track", interactive=False, buttons=[], height=320,
                           elem_id="preview-video")
    download = gr.DownloadButton("Download the mp4", value=None)

    @_user_errors
    def music_for_video(video: str | None, k: float, include_training: bool = False, request: gr.Request = None,
                        progress=PROGRESS) -> tuple[pd.DataFrame, str]:
        result = handlers.music_for_video(ctx, uploads.check(video), k, on_step=lambda f, text: progress(f, desc=text),
                                          include_training=bool(include_training), owner=request_client(request))
        if result.note:
            gr.Warning(result.note)
        rows = [handlers.track_row(h, why) for h, why in zip(result.hits, result.why, strict=True)]
        return _table(RESULT_HEADERS, rows), result.status

    def fill_picker(rows: pd.DataFrame):
        hits = _shown_results(rows)
        if not hits:
            return gr.update(choices=[], value=None), None
        choices = [(f"{h.rank} · {h.title} ({float(h.score):.3f})" + (f" · {h.moment}" if h.moment else ""), str(h.id))
                   for h in hits]
        first = str(hits[0].id)
        return gr.update(choices=choices, value=first), _track_path(first)

    def _track_path(track_id: str | None) -> str | None:
        try:
            return handlers.catalog_track(ctx, track_id).path
        except VmnetError:
            return None

    def pick_row(evt: gr.SelectData):
        row = evt.row_value or []
        return gr.update(value=str(row[-1])) if row else gr.skip()

    @_user_errors
    def preview_track(video: str | None, track_id: str | None, request: gr.Request = None) -> tuple[str, str]:
        path = str(handlers.preview_on_video(ctx, uploads.check(video), track_id, owner=request_client(request)))
        return path, path

    def clear():
        return (_table(RESULT_HEADERS, []), "Upload a video: the best-fitting tracks appear here.",
                gr.update(choices=[], value=None), None, None, None)

    search = gr.on([find.click, video.upload], music_for_video, [video, k, training], [table, status],
                   api_name="music_for_video", concurrency_limit=concurrency_limit, concurrency_id=ANALYSIS_GROUP)
    search.then(fill_picker, table, [track, player], api_visibility="private", queue=False)
    rerank = gr.on([k.release, training.input], _unless_empty(music_for_video), [video, k, training], [table, status],
                   api_visibility="private", concurrency_limit=concurrency_limit, concurrency_id=ANALYSIS_GROUP)
    rerank.then(fill_picker, table, [track, player], api_visibility="private", queue=False)
    table.select(pick_row, None, track, api_visibility="private", queue=False)
    track.change(_track_path, track, player, api_visibility="private", queue=False)
    preview_button.click(preview_track, [video, track], [preview, download], api_name="preview",
                         concurrency_limit=concurrency_limit, concurrency_id=ANALYSIS_GROUP)
    video.clear(clear, None, [table, status, track, player, preview, download], api_visibility="private",
                queue=False)


def _shown_results(rows: pd.DataFrame | None) -> list[Any]:
    """The results table the page sends back (rows with an ``id`` column), as row tuples: at most
    :data:`MAX_K`, each id once. The table comes from the visitor's browser, so it may be anything:
    a script that sent 30,000 rows naming one catalog video had the gallery built, file by file on
    the server's event loop, for 43 s while every other visitor waited."""
    if rows is None or len(rows) == 0 or "id" not in rows:
        return []
    shown, seen = [], set()
    for row in rows.head(10 * MAX_K).itertuples(index=False):
        if str(row.id) not in seen:
            seen.add(str(row.id))
            shown.append(row)
        if len(shown) == MAX_K:
            break
    return shown


def _unless_empty(fn: Callable) -> Callable:
    """``fn`` when a file was given; otherwise leave the outputs as they are (e.g. moving K first)."""

    @functools.wraps(fn)
    def wrapper(path: str | None, *args: Any, **kwargs: Any) -> Any:
        return fn(path, *args, **kwargs) if path else (gr.skip(), gr.skip())

    return wrapper


# --------------------------------------------------------------------------- tab 2: music → video


def _videos_tab(ctx: DemoContext, uploads: UploadCheck, concurrency_limit: int) -> None:
    with gr.Row():
        with gr.Column(scale=2):
            audio = gr.File(label="A track (mp3, wav, ogg, opus, flac, m4a) or a video whose soundtrack to use",
                            file_types=AUDIO_TYPES + VIDEO_TYPES, type="filepath", elem_id="query-track")
            k = gr.Slider(1, MAX_K, value=DEFAULT_K, step=1, label="How many videos (K)")
            find = gr.Button("Find videos", variant="primary")
        with gr.Column(scale=3):
            status = gr.Markdown("Upload a track: the videos that fit it best appear here.", elem_id="videos-status")
            gallery = gr.Gallery(label="Videos, best first (click to play)", columns=3, height=360,
                                 allow_preview=True, buttons=[], elem_id="video-results")
            table = gr.Dataframe(headers=VIDEO_RESULT_HEADERS, value=_table(VIDEO_RESULT_HEADERS, []),
                                 datatype=["number", "number", "str", "str", "str", "str", "str"], interactive=False,
                                 label="Details", wrap=True, max_height=300,
                                 column_widths=["7%", "8%", "18%", "11%", "8%", "34%", "14%"])

    @_user_errors
    def videos_for_music(track: str | None, k: float, request: gr.Request = None,
                         progress=PROGRESS) -> tuple[pd.DataFrame, str]:
        result = handlers.videos_for_music(ctx, uploads.check(track), k, on_step=lambda f, text: progress(f, desc=text),
                                           owner=request_client(request))
        return _table(VIDEO_RESULT_HEADERS, [handlers.video_row(h) for h in result.hits]), result.status

    def fill_gallery(rows: pd.DataFrame):
        catalog = ctx.catalog
        items = []
        for row in _shown_results(rows):
            if catalog.has("video", str(row.id)):
                path = catalog.item("video", str(row.id)).path
                if path and Path(path).is_file():
                    items.append((path, f"{row.rank}. {row.title} ({float(row.score):.3f})"))
        return items

    search = gr.on([find.click, audio.upload], videos_for_music, [audio, k], [table, status],
                   api_name="videos_for_music", concurrency_limit=concurrency_limit, concurrency_id=ANALYSIS_GROUP)
    search.then(fill_gallery, table, gallery, api_visibility="private", queue=False)
    rerank = k.release(_unless_empty(videos_for_music), [audio, k], [table, status], api_visibility="private",
                       concurrency_limit=concurrency_limit, concurrency_id=ANALYSIS_GROUP)
    rerank.then(fill_gallery, table, gallery, api_visibility="private", queue=False)


# --------------------------------------------------------------------------- tab 3: browse the model


def _browse_tab(ctx: DemoContext, demo: gr.Blocks) -> None:
    choices = browse.pair_choices(ctx.catalog)
    headers, rows = browse.recall_table(ctx.bundle.metrics)
    _, source = browse.evaluation_blocks(ctx.bundle.metrics)
    curve = browse.recall_curve(ctx.catalog, ctx.work_dir / "figures" / f"recall-{ctx.cache.root.name}.png")

    gr.Markdown("### A held-out test pair\nPick a pair the model never saw in training: where does its own "
                "soundtrack rank for its video, and its video for its soundtrack?")
    with gr.Row():
        pair = gr.Dropdown(choices=choices, value=choices[0][1] if choices else None, label="Test pair",
                           scale=3, interactive=bool(choices))
        k = gr.Slider(1, MAX_K, value=DEFAULT_K, step=1, label="Neighbours shown (K)", scale=2)
    summary = gr.Markdown("" if choices else "This bundle's catalog holds no test pairs.")
    with gr.Row():
        pair_video = gr.Video(label="The pair's video", interactive=False, buttons=[], height=260)
        pair_music = gr.Audio(label="The pair's soundtrack", interactive=False, buttons=[])
    with gr.Row():
        v2m = gr.Dataframe(headers=browse.NEIGHBOUR_HEADERS, value=_table(browse.NEIGHBOUR_HEADERS, []),
                           label="Tracks for its video", interactive=False, max_height=360)
        m2v = gr.Dataframe(headers=browse.NEIGHBOUR_HEADERS, value=_table(browse.NEIGHBOUR_HEADERS, []),
                           label="Videos for its soundtrack", interactive=False, max_height=360)

    gr.Markdown(f"### Recall@K ({source or 'no evaluation recorded'})\nThe share of test queries whose true "
                "partner is among the top K, both directions; numbers compare only at the same gallery size.")
    gr.Dataframe(value=_table(headers, rows), headers=headers, interactive=False, label="R@K")
    if curve is not None:
        gr.Image(value=str(curve), label="R@K curve over this catalog's test pairs", interactive=False, buttons=[])
    with gr.Accordion("Model card", open=False):
        gr.Markdown(without_server_paths(ctx.bundle.card))

    @_user_errors
    def show_pair(video_id: str | None, k: float):
        if not video_id:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        report = browse.pair_report(ctx.catalog, video_id, int(k))
        playable = [p if p and Path(p).is_file() else None for p in (report.video.path, report.music.path)]
        return (report.summary(), playable[0], playable[1],
                _table(browse.NEIGHBOUR_HEADERS, report.neighbours["video_to_music"]),
                _table(browse.NEIGHBOUR_HEADERS, report.neighbours["music_to_video"]))

    gr.on([demo.load, pair.change, k.release], show_pair, [pair, k], [summary, pair_video, pair_music, v2m, m2v],
          api_visibility="private")
