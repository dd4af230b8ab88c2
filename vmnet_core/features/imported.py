"""Feature stores from precomputed vectors (``vmnet import-features``) and split files."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vmnet_core.errors import VmnetError
from vmnet_core.features.store import SPLITS, STATUS_OK, VIDEO_SPACE_IMPORTED, FeatureStore, default_split


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
