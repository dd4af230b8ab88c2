"""Content-hash cache for query embeddings: the same file uploaded twice is answered without analysis.

An entry is keyed by the SHA-256 of the file's bytes, inside a namespace that names the bundle
(its weights and preprocessor) and the kind of analysis ("video" pictures, "music" sound), so a
retrained bundle never reuses old vectors::

    ROOT/<namespace>/<kind>/<sha256>.json   facts about the query (duration, frames analysed, ...)
    ROOT/<namespace>/<kind>/<sha256>.npy    the (512,) float32 embedding

Both files are written to a temporary name and moved into place with ``os.replace``; the ``.npy``
goes last, so an entry exists only once it is whole. A query that fails is never written.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vmnet_core.atomic_io import atomic_save_npy, write_file_atomic

CHUNK_BYTES = 1 << 20


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def files_digest(paths: list[Path], length: int = 16) -> str:
    """Short hex SHA-256 over several files' bytes (e.g. a bundle's weights), in the given order."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            while chunk := handle.read(CHUNK_BYTES):
                digest.update(chunk)
    return digest.hexdigest()[:length]


def owned_digest(owner: str, sha256: str) -> str:
    """``sha256`` (hex) as it is kept for ``owner``: itself for no owner, else the SHA-256 of both."""
    return sha256 if not owner else hashlib.sha256(f"{owner}\0{sha256}".encode()).hexdigest()


@dataclass(frozen=True)
class CachedQuery:
    """A query's embedding and the facts recorded with it; ``from_cache`` says whether it was stored."""

    sha256: str
    embedding: np.ndarray  # (D,) float32
    facts: dict[str, Any]
    from_cache: bool


class QueryCache:
    """Embeddings of query files on disk, keyed by content hash.

    Parameters
    ----------
    root : directory holding the cache (created on first write)
    namespace : names what produced the embeddings (e.g. a digest of the bundle's weights)
    """

    def __init__(self, root: str | Path, namespace: str) -> None:
        self.root = Path(root) / namespace

    def _paths(self, kind: str, sha256: str) -> tuple[Path, Path]:
        folder = self.root / kind
        return folder / f"{sha256}.npy", folder / f"{sha256}.json"

    def get(self, kind: str, sha256: str) -> CachedQuery | None:
        """The stored entry, or ``None`` when absent or unreadable (it is then recomputed)."""
        npy_path, json_path = self._paths(kind, sha256)
        if not (npy_path.is_file() and json_path.is_file()):
            return None
        try:
            embedding = np.load(npy_path, allow_pickle=False)
            facts = json.loads(json_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if embedding.ndim != 1 or not np.all(np.isfinite(embedding)) or not isinstance(facts, dict):
            return None
        return CachedQuery(sha256, embedding.astype(np.float32, copy=False), facts, from_cache=True)

    def put(self, kind: str, sha256: str, embedding: np.ndarray, facts: dict[str, Any]) -> None:
        """Store an entry atomically (facts first, the embedding last)."""
        npy_path, json_path = self._paths(kind, sha256)
        npy_path.parent.mkdir(parents=True, exist_ok=True)
        vector = np.ascontiguousarray(embedding, dtype=np.float32)
        write_file_atomic(json_path, json.dumps(facts))
        atomic_save_npy(npy_path, vector)

    def lookup_or_compute(self, kind: str, path: str | Path,
                          compute: Callable[[Path], tuple[np.ndarray, dict[str, Any]]], owner: str = "") -> CachedQuery:
        """The entry for the file at ``path``; on a miss ``compute(path) -> (embedding, facts)`` runs
        and its result is stored. An exception from ``compute`` propagates and stores nothing.

        ``owner`` (e.g. the client address of a public demo's visitor) keeps entries apart: the same
        bytes from another owner are a miss, so a fast answer tells no one that someone else sent them."""
        path = Path(path)
        sha256 = owned_digest(owner, file_sha256(path))
        found = self.get(kind, sha256)
        if found is not None:
            return found
        embedding, facts = compute(path)
        self.put(kind, sha256, embedding, facts)
        return CachedQuery(sha256, np.asarray(embedding, dtype=np.float32), dict(facts), from_cache=False)

    def entries(self, kind: str) -> list[str]:
        """Hashes of the complete entries of ``kind``."""
        folder = self.root / kind
        if not folder.is_dir():
            return []
        return sorted(p.stem for p in folder.glob("*.npy") if (folder / f"{p.stem}.json").is_file())
