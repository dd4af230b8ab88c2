"""Query a bundle with media files: video → music and music → video.

A query file goes through exactly the code that built the training store: the paper's music
descriptor (:func:`vmnet_core.features.music_descriptor.music_descriptor_from_file`) or EfficientNet-Lite0
frame features (:func:`vmnet_core.features.video_descriptor.video_frame_features`), then the bundle's
fitted :class:`~vmnet_core.learn.preprocess.Preprocessor`, then the towers (``VMNet.encode_music`` /
``encode_video`` in eval mode, run in numpy: :mod:`vmnet_core.learn.towers`) into the shared space,
then :meth:`Catalog.search`. A query imports no torch when the CNN's ONNX file is cached.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from vmnet_core import media
from vmnet_core.bundle.catalog import CatalogItem, Hit
from vmnet_core.bundle.files import Bundle
from vmnet_core.bundle.ranked_search import ranked_search
from vmnet_core.bundle.segments import ItemSegments
from vmnet_core.bundle.track_cues import cue_record, cues_or_none, video_cue_span_s
from vmnet_core.errors import VmnetError
from vmnet_core.features.store import FRAME_DIM
from vmnet_core.features.video_descriptor import (
    INPUT_SIZE,
    FrameEncoder,
    encode_frame_batches,
    video_frame_features,
)
from vmnet_core.features.windows import (
    DEFAULT_HOP_S,
    DEFAULT_WINDOW_S,
    centre_window,
    frame_window_means,
    music_window_descriptors,
)

DEFAULT_MAX_QUERY_DURATION_S = 600.0
_STORE_BASE_COLUMNS = ("id", "path", "duration_s", "split", "status", "error", "title")


class Retriever:
    """Embeds media files with a bundle's model and searches its catalog.

    Parameters
    ----------
    bundle : Bundle from :func:`vmnet_core.bundle.files.load_bundle`
    encoder : FrameEncoder, optional — shared CNN; created on the first video query otherwise
    device : torch device for the CNN when it is created here
    cue_weight : weight of the named-cue fit in the ranking (None: the bundle's ``ranking.cue_weight``)
    """

    def __init__(self, bundle: Bundle, encoder: Any = None, device: str = "cpu",
                 cue_weight: float | None = None) -> None:
        self.bundle = bundle
        self.device = device
        self._encoder = encoder
        self.cue_weight = bundle.config.ranking.cue_weight if cue_weight is None else float(cue_weight)

    @property
    def encoder(self) -> Any:
        """The frame CNN (loaded on first use)."""
        if self._encoder is None:
            self._encoder = FrameEncoder(device=self.device)
        return self._encoder

    # ---- arrays → embeddings
    def embed_music_descriptors(self, descriptors: np.ndarray) -> np.ndarray:
        """(N, 1140) raw music descriptors → (N, 512) float32 unit embeddings."""
        return self.bundle.towers.encode_music(self.bundle.preprocessor.transform_music(np.atleast_2d(descriptors)))

    def embed_media_music_descriptors(self, descriptors: np.ndarray) -> np.ndarray:
        """(N, 1140) descriptors of music files (not of the training store) → (N, 512) unit embeddings.

        Applies the bundle's media-music offset when it has one (see ``Preprocessor.set_media_music_offset``).
        """
        music = self.bundle.preprocessor.transform_media_music(np.atleast_2d(descriptors))
        return self.bundle.towers.encode_music(music)

    def embed_video_vectors(self, vectors: np.ndarray) -> np.ndarray:
        """(N, Dv) pooled video vectors (store ``video.npy`` rows) → (N, 512) float32 unit embeddings."""
        return self.bundle.towers.encode_video(self.bundle.preprocessor.transform_video_vectors(np.atleast_2d(vectors)))

    def embed_video_frames(self, frames: np.ndarray) -> np.ndarray:
        """(T, 1280) per-frame CNN features → (512,) float32 unit embedding."""
        pooled = self.bundle.preprocessor.transform_video_frames(frames)[None, :]  # (1, K)
        return self.bundle.towers.encode_video(pooled)[0]

    # ---- files → embeddings
    def music_descriptor_file(self, path: str | Path) -> np.ndarray:
        """(1140,) music descriptor of an audio file or of a video's soundtrack."""
        # librosa and numba load here, on the first music query: a video query never needs them
        from vmnet_core.features.music_descriptor import music_descriptor_from_file

        return music_descriptor_from_file(_existing(path), config=self.bundle.config.descriptors.music)

    def video_frames_file(self, path: str | Path, max_duration_s: float | None = DEFAULT_MAX_QUERY_DURATION_S
                          ) -> np.ndarray:
        """(T, 1280) frame features of a video file, sampled as the bundle's store was."""
        path = self._checked_video_query(path, max_duration_s)
        sampling = self.bundle.config.descriptors.video
        return video_frame_features(path, encoder=self.encoder, fps=sampling.fps, max_frames=sampling.max_frames,
                                    max_duration_s=max_duration_s)

    def video_frames_and_cues(self, path: str | Path, max_duration_s: float | None = DEFAULT_MAX_QUERY_DURATION_S,
                              cue_span_s: float | None = None) -> tuple[np.ndarray, dict[str, Any] | None]:
        """:meth:`video_frames_file` and the video's named cues (first ``cue_span_s`` s, at most 180; a
        dict as :func:`~vmnet_core.bundle.track_cues.cues_of_file` gives, or ``None`` when they cannot
        be computed), from one decode of the file where both samplings allow it.

        The cues are computed in a thread while the CNN runs.
        """
        from vmnet_core.features.video_cues import cue_sampling, video_cues

        path = self._checked_video_query(path, max_duration_s)
        sampling = self.bundle.config.descriptors.video
        batches, cue_frames = media.iter_frame_batches_beside(
            path, media.FrameSampling(sampling.fps, sampling.max_frames, INPUT_SIZE),
            cue_sampling(video_cue_span_s(cue_span_s)), max_duration_s=max_duration_s,
            batch_frames=self.encoder.batch_size, consumer_s_per_frame=self.encoder.cpu_s_per_frame)

        def cues_when_decoded() -> dict[str, Any] | None:
            try:
                frames = cue_frames.result()
                return cue_record(video_cues(frames, cue_sampling().fps))
            except VmnetError:
                return None

        with ThreadPoolExecutor(1, thread_name_prefix="vmnet-video-cues") as beside:
            cues = beside.submit(cues_when_decoded)
            features = encode_frame_batches(self.encoder, batches)  # no frame at all: VmnetError
        return features, cues.result()

    def embed_music_file(self, path: str | Path) -> np.ndarray:
        """(512,) embedding of an audio file, or of a video file's soundtrack."""
        return self.embed_media_music_descriptors(self.music_descriptor_file(path)[None, :])[0]

    def embed_video_file(self, path: str | Path, max_duration_s: float | None = DEFAULT_MAX_QUERY_DURATION_S
                         ) -> np.ndarray:
        """(512,) embedding of a video file's pictures (longer than ``max_duration_s`` seconds is refused)."""
        return self.embed_video_frames(self.video_frames_file(path, max_duration_s))

    # ---- files → windows (segments of long media)
    def music_windows_file(self, path: str | Path, hop_s: float = DEFAULT_HOP_S) -> tuple[np.ndarray, ItemSegments]:
        """The windows of a track (or a video's soundtrack): ``(512,)`` embedding of the centre window
        (the paper's clip, the item's own embedding) and every window's embedding and span."""
        config = self.bundle.config.descriptors.music
        starts, descriptors, duration_s = music_window_descriptors(_existing(path), config, hop_s)
        embeddings = self.embed_media_music_descriptors(descriptors)  # (W, 512)
        ends = np.minimum(starts + config.clip_s, duration_s)
        return embeddings[centre_window(starts)], ItemSegments(embeddings, starts, ends)

    def video_windows_frames(self, frames: np.ndarray, hop_s: float = DEFAULT_HOP_S
                             ) -> tuple[np.ndarray, ItemSegments]:
        """The windows of a video's ``(T, 1280)`` frame features: ``(512,)`` embedding of all of them (the
        item's own) and each 29.12-s window's embedding and span (the frames sampled as the store's)."""
        fps = self.bundle.config.descriptors.video.fps
        starts, means = frame_window_means(frames, fps, hop_s=hop_s)  # (W,), (W, 1280)
        ends = np.minimum(starts + max(1, round(DEFAULT_WINDOW_S * fps)) / fps, len(frames) / fps)
        return self.embed_video_frames(frames), ItemSegments(self.embed_video_vectors(means), starts, ends)

    # ---- search
    def music_for_video(self, path: str | Path, k: int = 10,
                        max_duration_s: float | None = DEFAULT_MAX_QUERY_DURATION_S, exact: bool = False,
                        query_cues: dict[str, Any] | None = None) -> list[Hit]:
        """The ``k`` catalog tracks that fit the video at ``path`` best, best first (``exact``: skip an
        ANN index; ``query_cues``: the video's named cues, fused into the order by ``cue_weight``)."""
        self.require_side("music")
        return self.rank(self.embed_video_file(path, max_duration_s), "music", k, exact=exact, query_cues=query_cues)

    def videos_for_music(self, path: str | Path, k: int = 10, exact: bool = False,
                         query_cues: dict[str, Any] | None = None) -> list[Hit]:
        """The ``k`` catalog videos that fit the music at ``path`` (audio, or a video's soundtrack) best."""
        self.require_side("video")
        return self.rank(self.embed_music_file(path), "video", k, exact=exact, query_cues=query_cues)

    def rank(self, embedding: np.ndarray, side: str, k: int, *, exact: bool = False,
             query_cues: dict[str, Any] | None = None, hidden: Any = None) -> list[Hit]:
        """The ``k`` best visible items of ``side`` for a ``(512,)`` query embedding
        (:func:`~vmnet_core.bundle.ranked_search.ranked_search` with this retriever's ``cue_weight``)."""
        return ranked_search(self.bundle.catalog, embedding, side, k, hidden=hidden, exact=exact,
                             query_cues=query_cues, cue_weight=self.cue_weight)

    def _checked_video_query(self, path: str | Path, max_duration_s: float | None) -> Path:
        """``path`` when this bundle can embed it as a video (a bad file fails here, before the CNN loads)."""
        if int(self.bundle.preprocessor.video_in_dim) != FRAME_DIM:
            raise VmnetError(f"This bundle was trained on imported {self.bundle.preprocessor.video_in_dim}-d video "
                             "features, so it cannot embed video files; query it with music or train on "
                             "extracted videos.")
        path = _existing(path)
        info = media.probe(path, max_duration_s=max_duration_s)
        media.require_video(info, "it has no pictures to match, so use it as a music query instead")
        return path

    def require_side(self, side: str) -> None:
        """Raise a :class:`VmnetError` saying how to fill the ``side`` catalog when it is empty."""
        if self.bundle.catalog.size(side) == 0:
            flag = "--music" if side == "music" else "--videos"
            raise VmnetError(f"The bundle's {side} catalog is empty; add items with "
                             f"`vmnet index --bundle {self.bundle.path} {flag} DIR`.")


def _existing(path: str | Path) -> Path:
    """``path`` as a Path when it is a file; a one-sentence VmnetError naming it by file name otherwise."""
    path = Path(path)
    name = printable_name(path)
    if path.is_dir():
        raise VmnetError(f"{name} is a folder, not a media file; choose a video or audio file inside it.")
    if not path.is_file():
        raise VmnetError(f"The query file {name} does not exist; check the path.")
    return path


def printable_name(path: str | Path) -> str:
    """A file's name safe to print or send as UTF-8 text (undecodable bytes become U+FFFD)."""
    name = Path(path).name
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def index_store(bundle: Bundle, store: Any, split: str | None = None,
                sides: tuple[str, ...] = ("music", "video")) -> dict[str, int]:
    """Embed a feature store's items into ``bundle.catalog`` (in memory; call ``bundle.save_catalog()``).

    Each store item becomes one music and one video item with the same id (``pair_id`` = id).
    Manifest columns beyond the store's own (e.g. starter factors) become tags; a ``title``
    column, when present, is the title.

    Parameters
    ----------
    bundle : the bundle whose model embeds the items
    store : FeatureStore (``ids``, ``rows``, ``music()``, ``video()``, ``split_ids()``)
    split : only items of this split ("train", "val", "test"); all when None
    sides : which catalog sides to fill

    Returns
    -------
    dict side -> number of items added or replaced
    """
    retriever = Retriever(bundle)
    wanted = set(store.split_ids(split)) if split else None
    rows = [i for i, item_id in enumerate(store.ids) if wanted is None or item_id in wanted]
    take = np.asarray(rows, dtype=np.int64)
    items = [_store_item(store.rows[i]) for i in rows]
    added: dict[str, int] = {}
    if not rows:
        return {side: 0 for side in sides}
    if "music" in sides:
        embeddings = retriever.embed_music_descriptors(np.asarray(store.music(mmap=True))[take])
        bundle.catalog.add("music", embeddings, items,
                           segments=centre_clip_spans(embeddings, items, bundle.config.descriptors.music.clip_s))
        added["music"] = len(rows)
    if "video" in sides and "video" in store.modalities:
        bundle.catalog.add("video", retriever.embed_video_vectors(np.asarray(store.video(mmap=True))[take]),
                           items)
        added["video"] = len(rows)
    return added


def centre_clip_spans(embeddings: np.ndarray, items: list[CatalogItem], clip_s: float) -> list[ItemSegments | None]:
    """Each store item's one window: the centre clip its descriptor was taken from (None: duration unknown)."""
    spans: list[ItemSegments | None] = []
    for embedding, item in zip(embeddings, items, strict=True):
        if not item.duration_s:
            spans.append(None)
            continue
        start = max(0.0, (item.duration_s - clip_s) / 2.0)
        spans.append(ItemSegments(embedding[None, :], [start], [min(item.duration_s, start + clip_s)]))
    return spans


def _store_item(row: dict[str, str]) -> CatalogItem:
    duration = row.get("duration_s") or ""
    try:
        duration_s = float(duration) if duration else None
    except ValueError:
        duration_s = None
    tags = {k: v for k, v in row.items() if k not in _STORE_BASE_COLUMNS and v not in (None, "")}
    return CatalogItem(id=row["id"], title=row.get("title") or row["id"], path=row.get("path") or "",
                       duration_s=duration_s, tags=tags, pair_id=row["id"], split=row.get("split") or None)


@dataclass
class IndexSummary:
    """Outcome of :func:`index_media_files`: counts and the per-file error sentences."""

    added: int = 0
    skipped: int = 0  # already in the catalog (same path)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, error sentence)


def index_media_files(retriever: Retriever, side: str, inputs: Sequence[Any],
                      tags: Mapping[str, Mapping[str, Any]] | None = None, save_every: int = 20,
                      max_duration_s: float | None = DEFAULT_MAX_QUERY_DURATION_S, progress: bool = True,
                      on_error: Callable[[str, str], None] | None = None, with_cues: bool = True,
                      hop_s: float | None = DEFAULT_HOP_S) -> IndexSummary:
    """Embed media files into one side of the retriever's bundle catalog, resumably.

    Files already in the catalog (same path) are skipped, so an interrupted run picks up where it
    stopped; the catalog is saved every ``save_every`` new items, at the end, and on interruption.
    A file that fails (no audio, not a video, damaged) is reported and the run goes on.

    Parameters
    ----------
    retriever : Retriever over the bundle to fill
    side : "music" (audio files or videos' soundtracks) or "video" (videos' pictures)
    inputs : items with ``id`` and ``path`` (``vmnet_core.features.extract.discover_inputs``)
    tags : optional ``{key: {tag: value}}`` where key is an id, a file name or a path; a
        ``title`` entry becomes the item's title
    save_every : save the catalog after this many new items
    max_duration_s : longest video accepted on the video side
    on_error : called with (path, sentence) for each failed file
    with_cues : also store each item's named cues (tempo, key, cuts, grading; ``bundle.track_cues``)
        for "why this track" explanations
    hop_s : describe each file as 29.12-s windows this far apart (``vmnet_core.features.windows``), so a
        search says which part fits; ``None``: one embedding per file (the paper's centre clip)
    """
    if side not in ("music", "video"):
        raise ValueError(f"side must be 'music' or 'video', not {side!r}")
    catalog = retriever.bundle.catalog
    known_paths = {item.path for item in catalog.items(side)}
    taken = {item.id.lower() for item in catalog.items(side)}
    summary = IndexSummary()
    unsaved = 0
    bar = tqdm(inputs, desc=f"indexing {side}", unit="file", disable=not progress)
    try:
        for entry in bar:
            path = Path(entry.path).absolute()
            if str(path) in known_paths:
                summary.skipped += 1
                continue
            try:
                info = media.probe(path, max_duration_s=max_duration_s if side == "video" else None)
                embedding, windows = _embedded_file(retriever, side, path, info, max_duration_s, hop_s)
                cues = cues_or_none(path, side, max_duration_s) if with_cues else None
            except VmnetError as exc:
                summary.failed.append((str(path), str(exc)))
                if on_error is not None:
                    on_error(str(path), str(exc))
                continue
            item_id = _free_id(entry.id, taken)
            extra = _tags_for(tags or {}, item_id, path)
            title = str(extra.pop("title", "") or path.stem)
            catalog.add(side, embedding[None, :], [CatalogItem(id=item_id, title=title, path=str(path),
                                                               duration_s=info.duration_s, tags=extra, cues=cues)],
                        segments=None if windows is None else [windows])
            taken.add(item_id.lower())
            known_paths.add(str(path))
            summary.added += 1
            unsaved += 1
            if unsaved >= save_every:
                retriever.bundle.save_catalog()
                unsaved = 0
    finally:
        bar.close()
        if unsaved:
            retriever.bundle.save_catalog()
    return summary


def _embedded_file(retriever: Retriever, side: str, path: Path, info: Any, max_duration_s: float | None,
                   hop_s: float | None) -> tuple[np.ndarray, ItemSegments | None]:
    """One file's ``(512,)`` item embedding and, with ``hop_s``, its windows (VmnetError when unusable)."""
    if side == "music":
        media.require_audio(info, "there is no music to index")
        if hop_s is None:
            return retriever.embed_music_file(path), None
        return retriever.music_windows_file(path, hop_s)
    media.require_video(info, "index it with --music instead")
    if hop_s is None:
        return retriever.embed_video_file(path, max_duration_s=max_duration_s), None
    return retriever.video_windows_frames(retriever.video_frames_file(path, max_duration_s), hop_s)


def _free_id(base: str, taken: set[str]) -> str:
    item_id, n = base, 1
    while item_id.lower() in taken:
        n += 1
        item_id = f"{base}-{n}"
    return item_id


def _tags_for(tags: Mapping[str, Mapping[str, Any]], item_id: str, path: Path) -> dict[str, Any]:
    for key in (item_id, path.name, str(path), path.stem):
        if key in tags:
            return dict(tags[key])
    return {}
