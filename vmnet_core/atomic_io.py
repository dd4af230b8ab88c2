"""Small-file I/O shared by the feature store, the catalog and the bundle.

- :func:`atomic_path` / :func:`write_file_atomic`: a file appears at its path only once it is
  complete (written to a temporary sibling, flushed to disk, then ``os.replace``d), with the
  permissions ``open()`` would have given it; a killed writer leaves at most a ``.NAME.*.tmp``.
  Every atomic write in vmnet goes through :func:`atomic_path`: :func:`atomic_save_npy` and
  :func:`atomic_npy_memmap` for ``.npy`` arrays, ``with atomic_path(p) as tmp: torch.save(obj, tmp)``
  for checkpoints, and so on.
- :func:`read_json_file` / :func:`read_safetensors_arrays`: read one file or raise a
  :class:`VmnetError` naming what is missing or damaged.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import safe_open

from vmnet_core.errors import VmnetError


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_current_umask()
"""Mode of files written here: what ``open()`` would give (``mkstemp`` alone gives 0o600)."""


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` only if the block succeeds.

    The block writes the temporary file however it likes (``np.save``, a memmap, ``csv``, an
    ffmpeg process: ``suffix`` lets a tool pick its format from the name); it is synced to disk
    before the rename, and removed if the block raises.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_file_atomic(path: str | Path, data: bytes | str) -> Path:
    """Write ``data`` (``str`` as UTF-8) to ``path`` atomically (see :func:`atomic_path`)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def atomic_save_npy(path: str | Path, array: np.ndarray) -> None:
    """Save ``array`` as ``.npy`` at ``path`` through a temporary file and ``os.replace``."""
    with atomic_path(Path(path)) as tmp, open(tmp, "wb") as handle:
        np.save(handle, np.ascontiguousarray(array), allow_pickle=False)


@contextlib.contextmanager
def atomic_npy_memmap(path: str | Path, shape: tuple[int, ...], dtype: str = "float32") -> Iterator[np.ndarray]:
    """Yield a writable memory-mapped ``.npy`` array that appears at ``path`` only when complete.

    Lets consolidation fill an N×D array row by row without holding it all in memory.
    """
    with atomic_path(Path(path)) as tmp:
        array = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
        yield array
        array.flush()
        del array


def read_json_file(path: str | Path, what: str) -> Any:
    """Read a JSON file, raising :class:`VmnetError` naming ``what`` when it is missing or not JSON."""
    path = Path(path)
    if not path.is_file():
        raise VmnetError(f"The {what} is missing: {path} does not exist.")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise VmnetError(f"The {what} {path} is not valid JSON ({exc}); restore or rebuild it.") from None


def read_safetensors_arrays(path: str | Path, what: str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Read all arrays and the metadata of a safetensors file as numpy, or raise :class:`VmnetError`.

    Returns
    -------
    arrays : dict of name -> np.ndarray
    metadata : dict of str -> str (empty when the file has none)
    """
    path = Path(path)
    if not path.is_file():
        raise VmnetError(f"The {what} is missing: {path} does not exist.")
    try:
        with safe_open(str(path), framework="numpy") as handle:
            metadata = dict(handle.metadata() or {})
            arrays = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
    except Exception as exc:  # safetensors raises its own error types for truncated/garbage files
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise VmnetError(f"The {what} {path} is damaged or truncated ({reason}); rebuild it.") from None
    return arrays, metadata
