"""Per-item parts of a feature store: ``parts/<id>.npz`` written one at a time by extraction, then
consolidated into the store's arrays (:func:`consolidate`) or joined across shards (:func:`merge_stores`).

Format in docs/store-format.md; the consolidated store itself is :class:`~vmnet_core.features.store.FeatureStore`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from vmnet_core.atomic_io import (
    atomic_npy_memmap,
    atomic_path,
    atomic_save_npy,
    read_json_file,
    write_file_atomic,
)
from vmnet_core.errors import VmnetError
from vmnet_core.features.store import (
    BASE_COLUMNS,
    EXTRACTION_INFO,
    FRAME_DIM,
    FRAMES_DIR,
    MUSIC_DIM,
    PARTS_DIR,
    STATUS_ERROR,
    STATUS_OK,
    VIDEO_SPACE_EXTRACTED,
    FeatureStore,
    default_split,
    part_ids,
    write_manifest,
    write_store_info,
)


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
    write_store_info(store_dir, modalities, dims, info.get("video_space", VIDEO_SPACE_EXTRACTED),
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
