"""The retrieval catalog: embeddings plus metadata for the music and video items a bundle can return.

A catalog has two sides, ``"music"`` and ``"video"``. Each side holds an ``(N, D)`` float32 matrix
of L2-normalised embeddings (``D`` = 512 for VM-NET), one metadata record per row
(:class:`CatalogItem`) and, optionally, the raw descriptors the embeddings were computed from.
Search is exact cosine similarity by default: a numpy matrix product with ``argpartition`` (faiss's
``IndexFlatIP`` was measured slower than this on a 2-core machine and doubles the memory, see
docs/benchmarks.md). A large side can opt in to approximate search
(:meth:`Catalog.make_approximate`, faiss IVF-Flat from :mod:`vmnet_core.bundle.ann_index`), whose recall
against exact search is measured when it is built and kept with it. The row records
(:class:`CatalogItem`, :class:`Hit`) live in :mod:`vmnet_core.bundle.catalog_items`, the approximate
index's files in :mod:`vmnet_core.bundle.ann_index`; both names are importable from here.

On disk (inside a bundle's ``catalog/`` directory, format in docs/bundle-format.md):
``{side}.safetensors`` (key ``embeddings``, optional ``descriptors``), ``{side}.jsonl`` (one
item per line) and, for an approximate side, ``{side}.ivf`` with ``{side}.ivf.json``. Every file is written to a temporary name and moved into place with
``os.replace``, so a reader never sees a half-written file.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import save as safetensors_save

from vmnet_core.atomic_io import read_safetensors_arrays, write_file_atomic
from vmnet_core.bundle.ann_index import MIN_ROWS, IvfIndex, IvfStats, build_ivf, load_ann, save_ann
from vmnet_core.bundle.catalog_items import CatalogItem, Hit, hits_for, read_items
from vmnet_core.bundle.exact_search import top_k_inner_product
from vmnet_core.bundle.segments import ItemSegments, SegmentMatch, SegmentTable, items_from_candidates
from vmnet_core.errors import VmnetError

SIDES = ("music", "video")
EMBEDDING_KEY = "embeddings"
DESCRIPTOR_KEY = "descriptors"
SEGMENT_KEYS = ("segment_embeddings", "segment_rows", "segment_starts", "segment_ends")
EXACT_CHUNK_BYTES = 256 * 2**20  # bound on the (queries × rows) score block of one exact search step
MAX_PROBED_SHARE = 4  # an IVF index that must probe more than 1/4 of its cells is refused as no faster


# --------------------------------------------------------------------------- catalog


def _ids_digest(ids: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(ids).encode("utf-8")).hexdigest()


def _as_items(items: Sequence[CatalogItem | Mapping[str, Any]]) -> list[CatalogItem]:
    """The catalog's own copies: one item object added to both sides (a store's music video) stays
    two items, so cues stored on one side never show up on the other."""
    return [replace(it, tags=dict(it.tags), cues=None if it.cues is None else dict(it.cues))
            if isinstance(it, CatalogItem) else CatalogItem.from_mapping(it) for it in items]


def _l2_normalise(x: np.ndarray) -> np.ndarray:
    """(N, D) rows scaled to unit length, as a new float32 array (no other (N, D) temporary)."""
    norms = np.sqrt(np.einsum("ij,ij->i", x, x, dtype=np.float64))[:, None]  # (N, 1)
    if np.any(norms == 0) or not np.all(np.isfinite(norms)):
        raise ValueError("embeddings must be finite and non-zero to be compared by cosine")
    return np.divide(x, norms, dtype=np.float32)


class _Side:
    """Rows of one side: embeddings (N, D), items, optional descriptors (N, Dd), id -> row index.

    ``target_recall`` is set when the side searches approximately; ``ann`` is then its index, or
    ``None`` while it needs a (re)build (after rows were removed, or a stale file on load).
    ``segments`` holds the side's windows once any item was added with them (the index then
    covers segments, not items).
    """

    def __init__(self, dim: int) -> None:
        self.embeddings = np.zeros((0, dim), np.float32)
        self.descriptors: np.ndarray | None = None
        self.items: list[CatalogItem] = []
        self.row_of: dict[str, int] = {}
        self.target_recall: float | None = None
        self.ann: IvfIndex | None = None
        self.segments: SegmentTable | None = None

    def search_matrix(self) -> np.ndarray:
        """The rows a search scans: the segments when the side has them, else the items' embeddings."""
        return self.embeddings if self.segments is None else self.segments.embeddings


class Catalog:
    """Music and video items with their embeddings; cosine search, exact unless a side opts out.

    Parameters
    ----------
    dim : int
        Embedding width (512 for VM-NET).
    """

    def __init__(self, dim: int = 512) -> None:
        self.dim = int(dim)
        self._sides = {side: _Side(self.dim) for side in SIDES}

    # ---- inspection
    def _side(self, side: str) -> _Side:
        if side not in self._sides:
            raise ValueError(f"side must be one of {SIDES}, not {side!r}")
        return self._sides[side]

    def size(self, side: str) -> int:
        """Number of items on ``side``."""
        return len(self._side(side).items)

    def ids(self, side: str) -> list[str]:
        """Item ids of ``side`` in row order."""
        return [item.id for item in self._side(side).items]

    def items(self, side: str) -> list[CatalogItem]:
        """Item records of ``side`` in row order (the list is a copy; the items are not)."""
        return list(self._side(side).items)

    def row(self, side: str, item_id: str) -> int:
        """The row of ``item_id`` on ``side`` in :meth:`ids` / :meth:`embeddings` order (``KeyError`` when absent)."""
        return self._side(side).row_of[item_id]

    def item(self, side: str, item_id: str) -> CatalogItem:
        """The record of ``item_id`` on ``side`` (``KeyError`` when absent)."""
        return self._side(side).items[self.row(side, item_id)]

    def set_exposure_offsets(self, side: str, offsets: Mapping[str, float]) -> None:
        """Give each item of ``side`` its offset from ``offsets`` (id → fused-score units) and every
        other item 0: a balance replaces the last one (:mod:`vmnet_core.bundle.exposure`)."""
        data = self._side(side)
        data.items = [replace(item, exposure_offset=float(offsets.get(item.id, 0.0))) for item in data.items]

    def embedding(self, side: str, item_id: str) -> np.ndarray:
        """``(dim,)`` float32 unit embedding of ``item_id`` on ``side`` (read-only; ``KeyError`` when absent)."""
        return self.embeddings(side)[self.row(side, item_id)]

    def has(self, side: str, item_id: str) -> bool:
        """Whether ``side`` holds an item with this id."""
        return item_id in self._side(side).row_of

    def embeddings(self, side: str) -> np.ndarray:
        """``(N, dim)`` float32 L2-normalised embeddings of ``side`` (read-only view)."""
        view = self._side(side).embeddings.view()
        view.flags.writeable = False
        return view

    def descriptors(self, side: str) -> np.ndarray | None:
        """``(N, Dd)`` raw descriptors of ``side`` when they were stored, else ``None``."""
        return self._side(side).descriptors

    def segments(self, side: str) -> SegmentTable | None:
        """``side``'s segment rows (windows of long items), or ``None`` when it holds one row per item."""
        return self._side(side).segments

    def search_rows(self, side: str) -> int:
        """Rows a search of ``side`` scans: its segments when it has them, else its items."""
        return len(self._side(side).search_matrix())

    def best_match(self, side: str, item_id: str, query: np.ndarray) -> SegmentMatch:
        """The span of ``item_id``'s media that fits the ``(dim,)`` ``query`` best, with its score
        (``KeyError`` when absent; an unknown span when the item has no windows)."""
        data = self._side(side)
        row = self.row(side, item_id)
        q = _l2_normalise(np.asarray(query, dtype=np.float32).reshape(1, -1))[0]
        if data.segments is None:
            return SegmentMatch(float(data.embeddings[row] @ q), None, None)
        return data.segments.best_match(q, row)

    # ---- changes
    def add(self, side: str, embeddings: np.ndarray, items: Sequence[CatalogItem | Mapping[str, Any]],
            descriptors: np.ndarray | None = None, normalise: bool = True,
            segments: Sequence[ItemSegments | None] | None = None) -> None:
        """Add (or replace, by id) items on ``side``.

        Parameters
        ----------
        side : "music" or "video"
        embeddings : (N, dim) array
            One row per item; normalised to unit length here.
        items : sequence of N CatalogItem or dicts with CatalogItem's keys
        descriptors : (N, Dd) array, optional
            Raw model inputs; a side either stores them for every row or for none.
        normalise : bool
            Scale rows to unit length (False only for rows known to be unit already, e.g. on load).
        segments : sequence of N ItemSegments (or None), optional
            The windows of each item (:mod:`vmnet_core.bundle.segments`); search then ranks items by
            their best window and says where it is. An item without them is one window, itself.
        """
        data = self._side(side)
        records = _as_items(items)
        matrix = np.asarray(embeddings, dtype=np.float32)
        if matrix.ndim == 1:
            matrix = matrix[None, :]
        if matrix.ndim != 2 or matrix.shape[1] != self.dim:
            raise ValueError(f"embeddings must have shape (N, {self.dim}); got {matrix.shape}")
        if matrix.shape[0] != len(records):
            raise ValueError(f"{matrix.shape[0]} embeddings but {len(records)} items")
        matrix = _l2_normalise(matrix) if normalise and len(records) else matrix
        private = not (isinstance(embeddings, np.ndarray) and np.may_share_memory(matrix, embeddings))
        extra = None
        if descriptors is not None:
            extra = np.asarray(descriptors, dtype=np.float32)
            if extra.ndim != 2 or extra.shape[0] != len(records):
                raise ValueError(f"descriptors must have shape ({len(records)}, D); got {extra.shape}")
        if not data.items:
            data.descriptors = None  # an emptied side may take rows with or without descriptors
        else:
            if (extra is None) != (data.descriptors is None):
                raise ValueError(f"the {side} side {'has' if data.descriptors is not None else 'has no'} "
                                 "descriptors; add rows the same way")
            if extra is not None and extra.shape[1] != data.descriptors.shape[1]:
                raise ValueError(f"descriptor width {extra.shape[1]} != stored {data.descriptors.shape[1]}")

        windows = self._windows_for(data, matrix, segments, normalise)

        new_rows: list[int] = []
        new_items: list[CatalogItem] = []
        fresh_index: dict[str, int] = {}  # duplicate ids within this call: the last one wins
        replace_pos: dict[int, int] = {}
        for i, record in enumerate(records):
            if record.id in data.row_of:
                replace_pos[data.row_of[record.id]] = i
            elif record.id in fresh_index:
                new_rows[fresh_index[record.id]] = i
                new_items[fresh_index[record.id]] = record
            else:
                fresh_index[record.id] = len(new_rows)
                new_rows.append(i)
                new_items.append(record)

        if replace_pos:
            rows = np.fromiter(replace_pos.keys(), dtype=np.int64)
            src = np.fromiter(replace_pos.values(), dtype=np.int64)
            data.embeddings[rows] = matrix[src]
            if extra is not None:
                data.descriptors[rows] = extra[src]
            for row, i in replace_pos.items():
                data.items[row] = records[i]
            if data.segments is not None:
                data.segments.replace_rows({row: windows[i] for row, i in replace_pos.items()})
                data.ann = None  # segment numbers moved; an approximate side is rebuilt on save
            if data.ann is not None:
                data.ann.replace(matrix[src], rows)
        if new_rows:
            take = np.asarray(new_rows, dtype=np.int64)
            first_new_row = len(data.items)
            # all rows new (and so in order): no selection copy; a private matrix is kept as is
            block = matrix if len(take) == len(matrix) else matrix[take]
            if first_new_row == 0 and (private or block is not matrix):
                data.embeddings = np.ascontiguousarray(block)
            else:
                data.embeddings = np.concatenate([data.embeddings, block])
            if extra is not None:
                data.descriptors = extra[take] if data.descriptors is None else np.concatenate(
                    [data.descriptors, extra[take]])
            for record in new_items:
                data.row_of[record.id] = len(data.items)
                data.items.append(record)
            if data.segments is not None:
                segment_block, numbers = data.segments.append(first_new_row, [windows[i] for i in new_rows])
                if data.ann is not None:
                    data.ann.append(segment_block, numbers)
            elif data.ann is not None:
                data.ann.append(block, np.arange(first_new_row, len(data.items)))

    def _windows_for(self, data: _Side, matrix: np.ndarray, segments: Sequence[ItemSegments | None] | None,
                     normalise: bool) -> list[ItemSegments] | None:
        """Each added row's windows (unit rows), starting the side's segment table when it has none yet;
        ``None`` when the side stays one row per item."""
        if segments is not None and len(segments) != len(matrix):
            raise ValueError(f"{len(segments)} segment sets for {len(matrix)} items")
        if data.segments is None and (segments is None or all(s is None for s in segments)):
            return None
        if data.segments is None:  # the first windows on this side: every earlier item becomes one window
            data.segments = SegmentTable.one_per_row(data.embeddings) if data.items else \
                SegmentTable.one_per_row(np.zeros((0, self.dim), np.float32))
            data.ann = None  # it covered items; rebuilt over segments on save
        nan = np.full(1, np.nan, np.float32)
        out = []
        for i, given in enumerate(segments if segments is not None else [None] * len(matrix)):
            if given is None:
                out.append(ItemSegments(matrix[i:i + 1], nan, nan))
                continue
            if given.embeddings.shape[1] != self.dim:
                raise ValueError(f"segment embeddings must have width {self.dim}; got {given.embeddings.shape}")
            emb = _l2_normalise(given.embeddings) if normalise else given.embeddings
            out.append(ItemSegments(emb, given.starts, given.ends))
        return out

    def remove(self, side: str, ids: Iterable[str]) -> int:
        """Remove the items with these ids from ``side``; returns how many were removed."""
        data = self._side(side)
        drop = {data.row_of[i] for i in ids if i in data.row_of}
        if not drop:
            return 0
        keep = np.asarray([r for r in range(len(data.items)) if r not in drop], dtype=np.int64)
        data.embeddings = data.embeddings[keep]
        if data.descriptors is not None:
            data.descriptors = data.descriptors[keep]
        if data.segments is not None:
            data.segments.remove_rows(keep, len(data.items))
        data.items = [data.items[r] for r in keep]
        data.row_of = {item.id: r for r, item in enumerate(data.items)}
        data.ann = None  # rows were renumbered; an approximate side is rebuilt on save
        return len(drop)

    # ---- search
    def search(self, query: np.ndarray, side: str = "music", k: int = 10,
               exact: bool = False) -> list[Hit] | list[list[Hit]]:
        """Rank ``side``'s items by cosine similarity to ``query``.

        Parameters
        ----------
        query : (dim,) or (Q, dim) array
            Query embedding(s); normalised to unit length here.
        side : "music" or "video"
            The side whose items are returned.
        k : int
            Number of hits per query (fewer when the side is smaller).
        exact : bool
            Search exactly even when the side has an approximate index.

        Returns
        -------
        list of Hit for a (dim,) query; list of Q such lists for a (Q, dim) query.
        """
        data = self._side(side)
        if k < 1:
            raise ValueError("k must be at least 1")
        q = np.asarray(query, dtype=np.float32)
        single = q.ndim == 1
        q = q[None, :] if single else q
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise ValueError(f"query must have shape ({self.dim},) or (Q, {self.dim}); got {np.shape(query)}")
        if not data.items:
            raise VmnetError(f"The {side} catalog is empty; add items first with "
                             f"`vmnet index --bundle BUNDLE --{'music' if side == 'music' else 'videos'} DIR`.")
        q = np.ascontiguousarray(_l2_normalise(q))
        k = min(int(k), len(data.items))
        if data.segments is not None:
            results = self._search_segments(data, q, k, exact)
        else:
            if data.ann is not None and not exact:
                scores, rows = data.ann.search(q, k)
            else:
                scores, rows = self._exact_top_k(data.embeddings, q, k)
            results = [hits_for(data.items, row_list, score_list)
                       for row_list, score_list in zip(rows.tolist(), scores.tolist(), strict=True)]
        return results[0] if single else results

    @staticmethod
    def _search_segments(data: _Side, queries: np.ndarray, k: int, exact: bool) -> list[list[Hit]]:
        """Items ranked by their best segment, each hit with that segment's span."""
        table = data.segments
        found: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        if data.ann is not None and not exact:
            for q in queries:  # widen the candidate list until it holds k distinct items
                m = min(len(table), 4 * k + 32)
                while True:
                    scores, segs = data.ann.search(q[None, :], m)
                    picked = items_from_candidates(scores[0], segs[0], table.rows, k)
                    if len(picked[1]) == k or m >= len(table):
                        break
                    m = min(len(table), 4 * m)
                found.append(picked)
        else:
            step = max(1, EXACT_CHUNK_BYTES // (4 * max(1, len(table))))
            for i in range(0, len(queries), step):
                scores, rows, segs = table.top_items(queries[i:i + step], k)
                found.extend(zip(scores, rows, segs, strict=True))
        return [hits_for(data.items, rows.tolist(), scores.tolist(), [table.match(s) for s in segs.tolist()])
                for scores, rows, segs in found]

    @staticmethod
    def _exact_top_k(embeddings: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """:func:`top_k_inner_product` over query chunks, so the score block stays bounded."""
        step = max(1, EXACT_CHUNK_BYTES // (4 * max(1, embeddings.shape[0])))
        parts = [top_k_inner_product(embeddings, queries[i:i + step], k) for i in range(0, len(queries), step)]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    # ---- approximate search
    def make_approximate(self, side: str, target_recall: float = 0.95, nlist: int | None = None,
                         seed: int = 0) -> IvfStats:
        """Build an IVF-Flat index for ``side`` and search it from now on (saved with the catalog).

        ``nprobe`` is tuned to the smallest setting whose measured recall@10 against exact search
        reaches ``target_recall``; the returned stats hold the measured figure.
        """
        data = self._side(side)
        ann = build_ivf(data.search_matrix(), target_recall=target_recall, nlist=nlist, seed=seed)
        stats = ann.stats
        if stats.nprobe > stats.nlist // MAX_PROBED_SHARE:
            raise VmnetError(f"Approximate search does not pay off on this {side} catalog: reaching recall "
                             f"{target_recall} needs {stats.nprobe} of its {stats.nlist} cells, i.e. scanning most "
                             "of it (its embeddings are not clustered); it keeps exact search.")
        data.ann, data.target_recall = ann, float(target_recall)
        return stats

    def _rebuild_approximate(self, side: str) -> None:
        """Rebuild a dropped approximate index, or fall back to exact when the side became too small."""
        data = self._side(side)
        if self.search_rows(side) < MIN_ROWS:
            warnings.warn(f"The {side} side now holds {self.search_rows(side):,} rows, fewer than the {MIN_ROWS:,} "
                          "approximate search needs; it searches exactly from now on.", stacklevel=3)
            self.make_exact(side)
            return
        try:
            self.make_approximate(side, target_recall=data.target_recall)
        except VmnetError as exc:
            warnings.warn(str(exc), stacklevel=3)
            self.make_exact(side)

    def make_exact(self, side: str) -> None:
        """Drop ``side``'s approximate index: exact search from now on."""
        data = self._side(side)
        data.ann, data.target_recall = None, None

    def approximate_stats(self, side: str) -> IvfStats | None:
        """The approximate index's build figures, or ``None`` when ``side`` searches exactly."""
        ann = self._side(side).ann
        return None if ann is None else ann.stats

    # ---- persistence
    def save(self, directory: str | Path) -> Path:
        """Write ``{side}.safetensors``, ``{side}.jsonl`` (and an approximate side's index) into ``directory``.

        An approximate side whose index was dropped (rows removed) is rebuilt here first.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for side, data in self._sides.items():
            if data.target_recall is not None and data.ann is None:
                self._rebuild_approximate(side)
            arrays = {EMBEDDING_KEY: np.ascontiguousarray(data.embeddings, dtype=np.float32)}
            if data.descriptors is not None:
                arrays[DESCRIPTOR_KEY] = np.ascontiguousarray(data.descriptors, dtype=np.float32)
            if data.segments is not None:
                table = data.segments
                arrays.update(zip(SEGMENT_KEYS, (table.embeddings, table.rows, table.starts, table.ends), strict=True))
            ids = [item.id for item in data.items]
            revision = os.urandom(8).hex()  # ties an approximate index to this exact write
            metadata = {"count": str(len(ids)), "ids_sha256": _ids_digest(ids), "revision": revision}
            write_file_atomic(directory / f"{side}.safetensors", safetensors_save(arrays, metadata=metadata))
            lines = "".join(json.dumps(item.to_dict(), ensure_ascii=False) + "\n" for item in data.items)
            write_file_atomic(directory / f"{side}.jsonl", lines)
            save_ann(directory, side, data.ann, revision)
        return directory

    @classmethod
    def load(cls, directory: str | Path, dim: int = 512) -> Catalog:
        """Read a catalog written by :meth:`save`; an absent directory gives an empty catalog.

        Raises :class:`VmnetError` when a file is missing, damaged, or the files disagree. A stale
        or damaged approximate index only warns: that side searches exactly until the next save
        rebuilds it.
        """
        directory = Path(directory)
        catalog = cls(dim=dim)
        if not directory.exists():
            return catalog
        for side in SIDES:
            tensor_path, items_path = directory / f"{side}.safetensors", directory / f"{side}.jsonl"
            if not tensor_path.exists() and not items_path.exists():
                continue
            arrays, metadata = read_safetensors_arrays(tensor_path, f"{side} catalog embeddings file")
            items = read_items(items_path, side)
            embeddings = arrays.get(EMBEDDING_KEY)
            if embeddings is None or embeddings.ndim != 2:
                raise VmnetError(f"{tensor_path} holds no '{EMBEDDING_KEY}' matrix; rebuild the catalog.")
            if embeddings.shape[1] != dim:
                raise VmnetError(f"{tensor_path} holds {embeddings.shape[1]}-d embeddings but the model makes "
                                 f"{dim}-d ones; re-index this catalog with the bundle's model.")
            ids = [item.id for item in items]
            if embeddings.shape[0] != len(items) or metadata.get("ids_sha256", _ids_digest(ids)) != _ids_digest(ids):
                raise VmnetError(f"{tensor_path.name} and {items_path.name} in {directory} disagree (an interrupted "
                                 "write?); run `vmnet index` again to rebuild them.")
            if len(set(ids)) != len(ids):
                raise VmnetError(f"{items_path} lists the same id twice; rebuild the catalog.")
            if len(items):
                catalog.add(side, embeddings, items, descriptors=arrays.get(DESCRIPTOR_KEY), normalise=False)
            data = catalog._side(side)
            data.segments = _loaded_segments(arrays, len(items), dim, tensor_path)
            data.target_recall, data.ann = load_ann(directory, side, metadata.get("revision"), dim,
                                                    len(data.search_matrix()))
        return catalog


def _loaded_segments(arrays: dict[str, np.ndarray], n_items: int, dim: int, path: Path) -> SegmentTable | None:
    """The segment table stored in a side's safetensors file (``None`` in catalogs without windows)."""
    if not any(key in arrays for key in SEGMENT_KEYS):
        return None
    parts = [arrays.get(key) for key in SEGMENT_KEYS]
    if any(part is None for part in parts) or parts[0].ndim != 2 or parts[0].shape[1] != dim or \
            not len(parts[0]) == len(parts[1]) == len(parts[2]) == len(parts[3]):
        raise VmnetError(f"The segment arrays in {path} are incomplete or mis-shaped; rebuild the catalog "
                         "with `vmnet index`.")
    table = SegmentTable(*parts)
    if not table.check_covers(n_items):
        raise VmnetError(f"The segments in {path} do not match its items (every item needs at least one); "
                         "rebuild the catalog with `vmnet index`.")
    return table
