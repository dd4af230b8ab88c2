"""What the demo's buttons do, without any Gradio: query a bundle with files and format the answers.

Every function here takes a :class:`DemoContext` (the loaded bundle, its retriever, the query cache
and a work folder), calls ``vmnet_core``'s public functions and returns plain data (rows, sentences,
paths). Errors a user can cause are raised as :class:`~vmnet_core.errors.VmnetError` with one
sentence; ``demo.app`` shows that sentence in the page.
"""

from __future__ import annotations

import dataclasses
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from demo.query_cache import CachedQuery, QueryCache, file_sha256, files_digest, owned_digest
from vmnet_core.bundle.catalog import Catalog, CatalogItem, Hit
from vmnet_core.bundle.files import CATALOG_DIR, CONFIG_FILE, MODEL_FILE, PREPROCESS_FILE, Bundle, load_bundle
from vmnet_core.bundle.filtered_search import count_visible
from vmnet_core.bundle.preview import catalog_track as preview_track
from vmnet_core.bundle.preview import preview_for_track
from vmnet_core.bundle.ranked_search import ranked_search
from vmnet_core.bundle.retrieval import Retriever, index_media_files
from vmnet_core.bundle.track_cues import cues_or_none, explain_hits, video_cue_span_s
from vmnet_core.errors import VmnetError
from vmnet_core.features.extract import discover_inputs
from vmnet_core.features.music_descriptor import music_descriptor
from vmnet_core.media import (
    MediaInfo,
    check_frame_rate,
    check_picture_limits,
    probe,
    require_audio,
    require_video,
)
from vmnet_core.starter.items import is_synthetic_item

DEFAULT_MAX_VIDEO_S = 600.0
DEFAULT_K = 10
MAX_K = 100
RESULT_HEADERS = ["rank", "score", "title", "moment", "duration", "mood", "tempo", "key", "why this track", "id"]
VIDEO_RESULT_HEADERS = ["rank", "score", "title", "moment", "duration", "tags", "id"]
ProgressCallback = Callable[[float, str], None]
PREVIEW_MAX_S = 120.0  # a preview covers at most this much of the video: a track's best moment is ~30 s
PREVIEWS, QUERY_CACHE = "previews", "query-cache"  # folders of work_dir that grow with every upload


def scratch_folders(work_dir: str | Path) -> list[Path]:
    """The folders of ``work_dir`` the demo writes per upload (previews, analysed queries): a
    janitor's to keep small. The R@K figure, made once at start, is not among them."""
    return [Path(work_dir) / PREVIEWS, Path(work_dir) / QUERY_CACHE]


@dataclass
class DemoContext:
    """Everything the handlers share: one per server.

    Attributes
    ----------
    bundle : the loaded bundle; its ``catalog`` is replaced (never edited in place) when music is added
    retriever : Retriever over ``bundle`` (holds the frame CNN once loaded)
    cache : query embeddings by content hash
    work_dir : previews and figures are written here
    max_video_s : only this many seconds from the start of a video are analysed
    """

    bundle: Bundle
    retriever: Retriever
    cache: QueryCache
    work_dir: Path
    max_video_s: float = DEFAULT_MAX_VIDEO_S
    index_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def catalog(self) -> Catalog:
        return self.bundle.catalog


def open_demo(bundle_dir: str | Path, work_dir: str | Path, max_video_s: float = DEFAULT_MAX_VIDEO_S) -> DemoContext:
    """Load the bundle and prepare the work folder and query cache.

    The cache namespace is a digest of the bundle's weights and preprocessor, so a retrained
    bundle never answers from another model's embeddings.
    """
    if max_video_s <= 0:
        raise VmnetError(f"The video length limit must be above 0 s, not {max_video_s:g} s.")
    bundle = load_bundle(bundle_dir)
    work = Path(work_dir).expanduser().absolute()
    work.mkdir(parents=True, exist_ok=True)
    namespace = files_digest([bundle.path / MODEL_FILE, bundle.path / PREPROCESS_FILE, bundle.path / CONFIG_FILE])
    return DemoContext(bundle=bundle, retriever=Retriever(bundle), cache=QueryCache(work / QUERY_CACHE, namespace),
                       work_dir=work, max_video_s=float(max_video_s))


def warm_up(ctx: DemoContext) -> None:
    """Load the frame CNN and compile the music descriptor's kernels (numba) before the first visitor
    needs them: the first music query otherwise waits tens of seconds on a busy machine."""
    ctx.retriever.encoder.encode(np.zeros((1, 224, 224, 3), np.uint8))
    config = ctx.bundle.config.descriptors.music
    noise = np.random.default_rng(0).normal(0, 0.1, int(config.sr * 2)).astype(np.float32)
    music_descriptor(noise, config.sr, config)


# --------------------------------------------------------------------------- formatting


def format_duration(seconds: float | None) -> str:
    """``83.4`` → ``"1:23"``; ``3725`` → ``"1:02:05"``; ``None`` → ``""``."""
    if seconds is None or not math.isfinite(seconds):
        return ""
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_moment(hit: Hit) -> str:
    """The span of the item that fits best, ``"1:12–1:41"``; ``""`` when the item was indexed as one piece."""
    if hit.start_s is None or hit.end_s is None:
        return ""
    return f"{format_duration(hit.start_s)}–{format_duration(hit.end_s)}"


def _tempo(tags: dict[str, Any]) -> str:
    value = tags.get("tempo_bpm", tags.get("tempo"))
    try:
        return f"{float(value):.0f} BPM" if value not in (None, "") else ""
    except (TypeError, ValueError):
        return str(value)


def _key(tags: dict[str, Any]) -> str:
    key = str(tags.get("key", "") or "")
    mode = str(tags.get("mode", "") or "")
    return f"{key} {mode}".strip() if key and mode and mode not in key else key


def track_row(hit: Hit, why: list[str] = ()) -> list[Any]:
    """One row of the music results table (``RESULT_HEADERS``); ``why``: its "why this track" phrases."""
    tags = hit.tags
    return [hit.rank, round(hit.score, 3), hit.title, format_moment(hit), format_duration(hit.duration_s),
            str(tags.get("mood", "") or ""),
            _tempo(tags), _key(tags), "; ".join(why), hit.id]


def video_row(hit: Hit) -> list[Any]:
    """One row of the video results table (``VIDEO_RESULT_HEADERS``)."""
    shown = {k: v for k, v in hit.tags.items() if k in ("tempo_bpm", "mode", "key", "mood", "timbre", "energy")}
    tags = ", ".join(f"{k}={_short(v)}" for k, v in shown.items())
    return [hit.rank, round(hit.score, 3), hit.title, format_moment(hit), format_duration(hit.duration_s), tags, hit.id]


def _short(value: Any) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{number:.0f}" if abs(number) >= 10 else f"{number:.2f}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# --------------------------------------------------------------------------- video → music


@dataclass(frozen=True)
class QueryResult:
    """Hits for one query file and what the page says about it."""

    hits: list[Hit]
    query: CachedQuery
    status: str  # one Markdown line: what was analysed, how long it took, "from cache"
    note: str | None = None  # a warning to show (the video was longer than the analysis limit)
    why: list[list[str]] = field(default_factory=list)  # per hit: named cues that make it fit (music results)

    @property
    def from_cache(self) -> bool:
        return self.query.from_cache


def _require_file(path: str | Path | None, what: str) -> Path:
    if not path:
        raise VmnetError(f"Upload {what} first.")
    path = Path(path)
    if not path.is_file():
        raise VmnetError(f"The uploaded file {path.name} is no longer on the server; upload it again.")
    return path


def _checked_k(k: Any) -> int:
    try:
        value = int(k)
    except (TypeError, ValueError):
        raise VmnetError(f"The number of results must be a whole number, not {k!r}.") from None
    if not 1 <= value <= MAX_K:
        raise VmnetError(f"The number of results must be between 1 and {MAX_K}, not {value}.")
    return value


def _embed_upload(ctx: DemoContext, path: str | Path | None, what: str, kind: str, reading: str,
                  compute: Callable[[Path], tuple[np.ndarray, dict[str, Any]]],
                  on_step: ProgressCallback | None, owner: str = "") -> CachedQuery:
    """The uploaded file's embedding and facts from ``compute``, or from the cache when the same bytes came
    before as ``kind`` from the same ``owner`` (a visitor's client address; "" shares the entry with
    every caller that passes none); ``what`` names the file a person should upload, ``reading`` is the first step."""
    checked = _require_file(path, what)
    if on_step:
        on_step(0.0, reading)
    try:
        return ctx.cache.lookup_or_compute(kind, checked, compute, owner)
    except OSError as exc:
        raise VmnetError(f"The file {checked.name} could not be read ({exc.strerror or exc}); upload it again.") from None


@dataclass
class CatalogSearch:
    """One search of a catalog snapshot: the hits, how many items were searched and left out, the timing."""

    catalog: Catalog
    hits: list[Hit]
    searched: int
    left_out: int
    took: str  # "from cache" | "analysed in N s"


def _search_catalog(ctx: DemoContext, query: CachedQuery, side: str, k: int, started: float,
                    on_step: ProgressCallback | None, hidden=None) -> CatalogSearch:
    """Top-``k`` of ``side`` for ``query``, leaving out the items ``hidden(item)`` is true for."""
    catalog = ctx.catalog  # one snapshot: a music folder being added swaps in a new catalog
    searched = count_visible(catalog, side, hidden)
    if on_step:
        on_step(0.95, f"Searching {searched} {'tracks' if side == 'music' else 'videos'}")
    hits = ranked_search(catalog, query.embedding, side, k, hidden=hidden, query_cues=query.facts.get("cues"),
                         cue_weight=ctx.retriever.cue_weight)
    took = "from cache" if query.from_cache else f"analysed in {time.perf_counter() - started:.1f} s"
    return CatalogSearch(catalog, hits, searched, catalog.size(side) - searched, took)


def analysed_span_s(ctx: DemoContext) -> float:
    """Seconds from the start of a video that a query looks at: the frame cap or the length limit."""
    return min(ctx.max_video_s, ctx.bundle.config.descriptors.video.span_s)


def _check_decode_work(ctx: DemoContext, info: MediaInfo) -> None:
    """Refuse, before any decode, a video too costly to decode for a stranger (``vmnet_core.media``'s
    picture limits): the work grows with pixels × frames, not with the file's bytes. The header's
    size and rate first (free), then the frames actually packed into the seconds a query decodes
    (a demux pass): counted over a longer span, a burst of frames where the decode runs would
    average out over seconds it never reads."""
    check_picture_limits(info)
    decoded_s = min(ctx.max_video_s, max(analysed_span_s(ctx), video_cue_span_s(ctx.max_video_s)))
    check_frame_rate(info, decoded_s)


def video_query(ctx: DemoContext, path: str | Path, on_step: ProgressCallback | None = None,
                owner: str = "") -> CachedQuery:
    """The (512,) embedding of a video's pictures, from the cache when the same bytes came before
    (from the same ``owner``, see :func:`_embed_upload`).

    Only the first ``ctx.max_video_s`` seconds count; the facts say how long the video is and how
    many frames were analysed.
    """
    step = on_step or (lambda fraction, text: None)

    def compute(p: Path) -> tuple[np.ndarray, dict[str, Any]]:
        step(0.1, "Checking the file")
        info = probe(p)
        require_video(info, "there are no pictures to match, so use it in 'Find videos for a track' "
                            "instead, or upload a video")
        _check_decode_work(ctx, info)
        step(0.25, "Reading frames and looking at them (CNN)")
        # (T, 1280) from the start, and the cues from the same decode
        features, cues = ctx.retriever.video_frames_and_cues(p, max_duration_s=None, cue_span_s=ctx.max_video_s)
        fps = ctx.bundle.config.descriptors.video.fps
        features = features[:max(1, math.ceil(ctx.max_video_s * fps - 1e-9))]  # frames inside the limit
        step(0.85, "Embedding")
        embedding = ctx.retriever.embed_video_frames(features)
        return embedding, {"duration_s": info.duration_s, "frames": int(len(features)), "fps": fps,
                           "width": info.width, "height": info.height, "cues": cues}

    return _embed_upload(ctx, path, "a video", f"video-first{ctx.max_video_s:g}s", "Reading your video", compute,
                         on_step, owner)


def _long_video_note(facts: dict[str, Any]) -> str | None:
    """The warning for a video whose end was not analysed (the length limit or the frame cap)."""
    duration, fps = float(facts["duration_s"]), float(facts["fps"])
    analysed = min(duration, int(facts["frames"]) / fps)
    if duration - analysed <= 1.0 / fps:
        return None
    return f"Your video is {format_duration(duration)} long; only its first {format_duration(analysed)} were analysed."


def music_for_video(ctx: DemoContext, path: str | Path | None, k: Any = DEFAULT_K,
                    on_step: ProgressCallback | None = None, include_training: bool = False,
                    owner: str = "") -> QueryResult:
    """Top-``k`` catalog tracks for the video at ``path``, best first, each with why it fits.

    The starter corpus's synthetic training tracks are left out unless ``include_training``;
    ``owner``: the visitor the query is cached for (:func:`_embed_upload`).
    """
    k = _checked_k(k)
    hidden = None if include_training else is_synthetic_item
    started = time.perf_counter()
    query = video_query(ctx, path, on_step, owner)
    found = _search_catalog(ctx, query, "music", k, started, on_step, hidden)
    hits = found.hits
    facts = query.facts
    cues = facts["cues"] if "cues" in facts else cues_or_none(path, "video", ctx.max_video_s)  # older cache entry
    note = _long_video_note(facts)
    status = (f"**{_plural(len(hits), 'track')}** for your {format_duration(facts['duration_s'])} video "
              f"({_plural(int(facts['frames']), 'frame')} at {facts['fps']:g} per second; {found.took}), "
              f"out of {found.searched} in the catalog"
              + ("." if not found.left_out else
                 f" ({_plural(found.left_out, 'synthetic training track')} left out)."))
    if note:
        status += f" {note}"
    return QueryResult(hits=hits, query=query, status=status, note=note,
                       why=explain_hits(found.catalog, "music", hits, cues))


# --------------------------------------------------------------------------- music → video


def music_query(ctx: DemoContext, path: str | Path, on_step: ProgressCallback | None = None,
                owner: str = "") -> CachedQuery:
    """The (512,) embedding of an audio file or of a video's soundtrack (cached by content hash and ``owner``)."""
    step = on_step or (lambda fraction, text: None)

    def compute(p: Path) -> tuple[np.ndarray, dict[str, Any]]:
        step(0.1, "Checking the file")
        info = probe(p)
        require_audio(info, "there is no music to search with, so upload an audio file or a video with sound")
        step(0.3, "Listening (music descriptor)")
        embedding = ctx.retriever.embed_music_file(p)
        cues = cues_or_none(p, "music") if ctx.retriever.cue_weight > 0 else None  # only ranking needs them
        return embedding, {"duration_s": info.duration_s, "has_video": info.has_video, "cues": cues}

    return _embed_upload(ctx, path, "an audio file (or a video with sound)", "music", "Reading your track", compute,
                         on_step, owner)


def videos_for_music(ctx: DemoContext, path: str | Path | None, k: Any = DEFAULT_K,
                     on_step: ProgressCallback | None = None, owner: str = "") -> QueryResult:
    """Top-``k`` catalog videos for the music at ``path`` (audio, or a video's soundtrack), cached for ``owner``."""
    k = _checked_k(k)
    started = time.perf_counter()
    query = music_query(ctx, path, on_step, owner)
    found = _search_catalog(ctx, query, "video", k, started, on_step)
    what = "soundtrack" if query.facts.get("has_video") else "track"
    status = (f"**{_plural(len(found.hits), 'video')}** for your {format_duration(query.facts['duration_s'])} "
              f"{what} ({found.took}), out of {found.searched} in the catalog.")
    return QueryResult(hits=found.hits, query=query, status=status)


# --------------------------------------------------------------------------- tracks and previews


def catalog_track(ctx: DemoContext, track_id: str | None) -> CatalogItem:
    """The music item ``track_id``, with a sentence when it is unknown or its file is gone."""
    return preview_track(ctx.catalog, track_id)


def _safe_name(text: str, limit: int = 60) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")
    return (cleaned or "file")[:limit]


def preview_on_video(ctx: DemoContext, video_path: str | Path | None, track_id: str | None, owner: str = "") -> Path:
    """An H.264/AAC mp4 of the uploaded video with the chosen track's best moment under it, a downbeat on
    the video's first strong cut, trimmed, faded and loudness-matched (``vmnet_core.bundle.preview``,
    as ``vmnet preview``), of at most the video's first :data:`PREVIEW_MAX_S` seconds (and
    ``ctx.max_video_s``); made once per (video bytes, track, ``owner``) and reused."""
    video = _require_file(video_path, "a video")
    item = catalog_track(ctx, track_id)
    try:
        digest = owned_digest(owner, file_sha256(video))[:16]
    except OSError as exc:
        raise VmnetError(f"The file {video.name} could not be read ({exc.strerror or exc}); upload it again.") from None
    out = ctx.work_dir / PREVIEWS / digest / f"{_safe_name(video.stem)}-with-{_safe_name(item.id)}.mp4"
    if out.is_file():
        return out
    _check_decode_work(ctx, probe(video))  # before any decode, even when an older query cache answers below
    embedding = video_query(ctx, video, owner=owner).embedding  # from the query cache after a search
    return preview_for_track(ctx.catalog, video, item.id, out, video_embedding=embedding,
                             keep_first_s=min(PREVIEW_MAX_S, ctx.max_video_s)).path


# --------------------------------------------------------------------------- adding a music folder


@dataclass(frozen=True)
class FolderReport:
    """Outcome of indexing a folder: counts, failures and the files that are new in the catalog."""

    folder: Path
    added: int
    skipped: int
    failed: list[tuple[str, str]]
    new_paths: list[str]

    def sentence(self) -> str:
        text = (f"Added {_plural(self.added, 'track')} from {self.folder}"
                + (f" ({self.skipped} already in the catalog)" if self.skipped else "") + ".")
        if self.failed:
            path, reason = self.failed[0]
            more = f" and {len(self.failed) - 1} more" if len(self.failed) > 1 else ""
            text += f" {_plural(len(self.failed), 'file')} could not be used: {Path(path).name}: {reason}{more}"
        return text


def index_music_folder(ctx: DemoContext, folder: str | Path | None, progress: bool = False) -> FolderReport:
    """Index every audio file (and video soundtrack) under ``folder`` into the music catalog.

    The work happens on a fresh copy of the catalog, saved into the bundle as it goes (resumable:
    files already indexed are skipped); searches keep using the old catalog until the new one is
    swapped in at the end. One folder is indexed at a time.
    """
    text = str(folder or "").strip().strip("'\"")
    if not text:
        raise VmnetError("Type the path of a folder of music on the server first.")
    root = Path(text).expanduser()
    if not root.is_dir():
        raise VmnetError(f"{root} is not a folder on the server; give the full path of a folder of music files.")
    inputs = discover_inputs(root, modality="music")
    with ctx.index_lock:
        bundle = ctx.bundle
        before = {item.path for item in bundle.catalog.items("music")}
        fresh = Catalog.load(bundle.path / CATALOG_DIR, dim=bundle.catalog.dim)
        working = dataclasses.replace(bundle, catalog=fresh)
        summary = index_media_files(Retriever(working), "music", inputs, progress=progress)
        bundle.catalog = fresh  # one attribute swap: searches see the old or the new catalog, whole
    new_paths = [item.path for item in fresh.items("music") if item.path not in before]
    return FolderReport(folder=root.absolute(), added=summary.added, skipped=summary.skipped,
                        failed=list(summary.failed), new_paths=new_paths)

