"""EfficientNet-Lite0 frame features through ONNX Runtime: the CNN's fast CPU engine.

The folded float model (:func:`vmnet_core.features.lite0_torch.fold_for_inference`) is
exported once to ONNX (``torch.onnx.export``, needs the ``onnx`` package) into the cache
directory, keyed by the weights file's hash and the installed torch version, and later runs load
that file with only ``onnxruntime`` (torch is not imported). Same float32 arithmetic as the torch model: features agree to about
1e-5 (docs/benchmarks.md: per-clip cosine 1.0000, CPU time per frame about 0.6× eager torch).

Each session runs a call on one thread (no spinning), so several frame batches run in parallel
from a small thread pool (ONNX Runtime releases the GIL) and the ffmpeg decoder beside them never
waits for a spinning CNN thread.
"""

from __future__ import annotations

import hashlib
import os
import threading
import warnings
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from vmnet_core.atomic_io import atomic_path
from vmnet_core.paths import cache_dir

EXPORT_FORMAT = 1  # bump when the exported graph changes (folding, head, opset)
OPSET = 17


def _onnxruntime() -> Any:
    """The ``onnxruntime`` module, imported with its telemetry off (``ORT_DISABLE_TELEMETRY=1``,
    read at import): otherwise it writes a session file into ``$TMPDIR`` and may try to upload
    usage events; vmnet never reaches out and leaves nothing behind."""
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    import onnxruntime

    return onnxruntime


def onnx_runtime_available() -> bool:
    """True when ``onnxruntime`` can be imported."""
    try:
        _onnxruntime()
    except ImportError:
        return False
    return True


def _export_key(weights_path: Path) -> str:
    digest = hashlib.sha256(weights_path.read_bytes()).hexdigest()[:16]
    try:  # the installed version, read without importing torch
        version = metadata.version("torch").split("+")[0]
    except metadata.PackageNotFoundError:
        version = "none"
    return f"lite0-f{EXPORT_FORMAT}-{digest}-torch{version}"


_EXPORT_LOCK = threading.Lock()  # torch's exporter keeps global state: one export at a time per process


def exported_model_path(load_model: Callable[[], Any], weights_path: Path, input_size: int) -> Path | None:
    """The cached ONNX file of the folded model; exported now if missing. ``None`` when it is
    missing and cannot be made here (no ``onnx`` package). Safe to call from several threads.

    ``load_model`` returns the folded torch module; it is called only to export, so a cached file
    costs no torch import.
    """
    path = cache_dir() / "onnx" / f"{_export_key(weights_path)}.onnx"
    if path.is_file():
        return path
    with _EXPORT_LOCK:
        if path.is_file():
            return path
        return _export(load_model(), path, input_size)


def _export(folded_model: Any, path: Path, input_size: int) -> Path | None:
    try:
        import onnx  # noqa: F401  # torch's exporter needs it
    except ImportError:
        return None
    import torch

    class PooledHead(torch.nn.Module):
        """(B, 3, 224, 224) in [-1, 1] → (B, 1280): the last conv block, averaged over space."""

        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.model.extract_features(x).mean(dim=(2, 3))

    path.parent.mkdir(parents=True, exist_ok=True)
    example = torch.zeros(2, 3, input_size, input_size)
    with warnings.catch_warnings(), atomic_path(path) as tmp:
        warnings.simplefilter("ignore")
        torch.onnx.export(PooledHead(folded_model).eval(), example, str(tmp), dynamo=False,
                          input_names=["frames"], output_names=["features"], opset_version=OPSET,
                          dynamic_axes={"frames": {0: "batch"}, "features": {0: "batch"}})
    return path


class OnnxFrameNet:
    """One ONNX Runtime session of the pooled CNN, one thread per call, safe to call from several threads.

    ``run(x)``: x (B, 3, 224, 224) float32 in [-1, 1], C-contiguous → (B, 1280) float32.
    """

    def __init__(self, onnx_path: Path) -> None:
        ort = _onnxruntime()
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.path = onnx_path
        self._session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])

    def run(self, x: np.ndarray) -> np.ndarray:
        return self._session.run(None, {"frames": np.ascontiguousarray(x, np.float32)})[0]


def onnx_frame_net(load_model: Callable[[], Any], weights_path: Path, input_size: int) -> OnnxFrameNet | None:
    """An :class:`OnnxFrameNet` of the folded model (``load_model`` returns it; called only for the
    first export), or ``None`` when ONNX Runtime (or, for a first export, the ``onnx`` package) is
    not installed."""
    if not onnx_runtime_available():
        return None
    path = exported_model_path(load_model, weights_path, input_size)
    return None if path is None else OnnxFrameNet(path)
