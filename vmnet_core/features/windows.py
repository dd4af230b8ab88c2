"""Overlapping analysis windows over a long track or video: where each catalog segment starts.

A 3–5-minute track is described as windows of the paper's 29.12-s clip (one music descriptor
each), so a search can say *where* in the track the fit is. The windows are laid on a grid centred
on the middle of the media, so one window is exactly the paper's centre clip (the item's own,
track-level descriptor), plus one window flush with each end when the grid leaves more than a
quarter hop uncovered there. Media no longer than one window is one window starting at 0.
The hop (:data:`DEFAULT_HOP_S`) was chosen by measurement (docs/benchmarks.md, "Segments").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vmnet_core.errors import VmnetError
from vmnet_core.features.music_config import MusicDescriptorConfig
from vmnet_core.media import decode_audio, probe

DEFAULT_WINDOW_S = 29.12  # the paper's clip (349,440 samples at 12 kHz)
DEFAULT_HOP_S = 7.28      # a quarter window: see docs/benchmarks.md ("Segments") for the measurement


def window_starts(duration_s: float, window_s: float = DEFAULT_WINDOW_S, hop_s: float = DEFAULT_HOP_S) -> np.ndarray:
    """Start times (s) of the windows over media of ``duration_s`` seconds, ``(W,)`` float64, increasing.

    A grid ``centre ± j·hop`` (``centre = (duration − window) / 2``) inside ``[0, duration − window]``,
    plus 0 and ``duration − window`` when the grid misses them by more than ``hop / 4``;
    ``[0.0]`` when the media is no longer than one window.
    """
    if not (window_s > 0 and hop_s > 0):
        raise VmnetError(f"Window and hop must be above 0 s, not {window_s:g} s and {hop_s:g} s.")
    duration_s = float(duration_s)
    if not np.isfinite(duration_s) or duration_s <= window_s + 1e-6:
        return np.zeros(1)
    last = duration_s - window_s
    centre = last / 2.0
    n = int(np.floor(centre / hop_s + 1e-9))
    grid = centre + hop_s * np.arange(-n, n + 1)
    starts = list(grid)
    if grid[0] > hop_s / 4:
        starts.insert(0, 0.0)
    if last - grid[-1] > hop_s / 4:
        starts.append(last)
    return np.asarray(starts, dtype=np.float64)


def centre_window(starts: np.ndarray) -> int:
    """Index of the middle window of :func:`window_starts` (the paper's centre clip)."""
    grid_like = np.asarray(starts, dtype=np.float64)
    middle = (grid_like[0] + grid_like[-1]) / 2.0
    return int(np.argmin(np.abs(grid_like - middle)))


def music_window_descriptors(path: str | Path, config: MusicDescriptorConfig | None = None,
                             hop_s: float = DEFAULT_HOP_S) -> tuple[np.ndarray, np.ndarray, float]:
    """The paper's music descriptor of every window of an audio file (or a video's soundtrack).

    The file is decoded once (mono, ``config.sr``); window ``i`` covers ``[starts[i], starts[i] + clip_s]``.

    Returns
    -------
    starts : (W,) float64 seconds
    descriptors : (W, 1140) float32
    duration_s : the file's duration in seconds
    """
    from vmnet_core.features.music_descriptor import music_descriptor  # librosa: only when music is described

    cfg = config or MusicDescriptorConfig()
    info = probe(path)
    y = decode_audio(path, sr=cfg.sr)
    duration_s = max(info.duration_s, len(y) / cfg.sr) if len(y) else info.duration_s
    starts = window_starts(len(y) / cfg.sr, cfg.clip_s, hop_s)
    if len(starts) == 1:
        return starts, music_descriptor(y, cfg.sr, cfg)[None, :], duration_s
    n = cfg.n_samples
    rows = [music_descriptor(y[int(round(s * cfg.sr)):][:n], cfg.sr, cfg) for s in starts]
    return starts, np.stack(rows).astype(np.float32), duration_s


def frame_window_means(frames: np.ndarray, fps: float, window_s: float = DEFAULT_WINDOW_S,
                       hop_s: float = DEFAULT_HOP_S) -> tuple[np.ndarray, np.ndarray]:
    """Mean of per-frame vectors over each window of a video's frames.

    Parameters
    ----------
    frames : (T, K) per-frame vectors sampled at ``fps`` frames per second (already transformed)
    fps : frames per second

    Returns
    -------
    starts : (W,) float64 seconds
    means : (W, K) float32, window ``i`` averaging the frames in ``[starts[i], starts[i] + window_s)``
    """
    frames = np.asarray(frames, dtype=np.float64)
    if frames.ndim != 2 or len(frames) == 0:
        raise VmnetError("A video needs at least one frame to be cut into windows.")
    starts = window_starts(len(frames) / fps, window_s, hop_s)
    sums = np.concatenate([np.zeros((1, frames.shape[1])), np.cumsum(frames, axis=0)])  # (T + 1, K)
    width = max(1, int(round(window_s * fps)))
    first = np.minimum(np.round(starts * fps).astype(np.int64), len(frames) - 1)
    last = np.minimum(first + width, len(frames))
    means = (sums[last] - sums[first]) / (last - first)[:, None]
    return starts, means.astype(np.float32)
