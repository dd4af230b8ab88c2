"""Naive reference for the music descriptor: the official VM-NET code's way on librosa 0.11.

``csehong/VM-NET``'s ``librosa_feature.py`` runs ``librosa.effects.hpss`` on the time signal
(its own 2048-point STFT) and then calls every ``librosa.feature.*`` on each part's time signal,
so every feature recomputes its own STFT. This file does the same on librosa 0.11, with the
functions librosa has since changed restored to their librosa ≤ 0.5 definitions (``logamplitude``
→ :func:`db_relative_to_max`, ``rmse`` → RMS over the STFT, ``delta`` →
:func:`regression_delta`, ``chroma_cens`` → 12 CQT bins per octave) and the project's deliberate
choices shared with the fast path (the true sample rate for the mel filterbank, the centred clip).
It is a benchmark and cross-check, not product code.
"""

from __future__ import annotations

import librosa
import numpy as np

from vmnet_core.features.music_descriptor import (
    MusicDescriptorConfig,
    centre_clip,
    db_relative_to_max,
    regression_delta,
)


def naive_part_rows(y: np.ndarray, cfg: MusicDescriptorConfig) -> np.ndarray:
    """The 190 dB frame rows of one HPSS part computed feature by feature from its time signal."""
    sr, n_fft, hop = cfg.sr, cfg.n_fft, cfg.hop_length
    mfcc = librosa.feature.mfcc(y=y, sr=sr, hop_length=hop, n_mfcc=cfg.n_mfcc)  # n_fft 2048, 128 mels
    blocks = [
        librosa.feature.chroma_stft(y=y, sr=sr, hop_length=hop, n_fft=n_fft, n_chroma=cfg.n_chroma),
        librosa.feature.chroma_cens(y=y, sr=sr, hop_length=hop, n_chroma=cfg.n_chroma,
                                    bins_per_octave=cfg.cqt_bins_per_octave),
        librosa.feature.melspectrogram(y=y, sr=sr, hop_length=hop, n_fft=n_fft, n_mels=cfg.n_mels),
        mfcc,
        regression_delta(mfcc, width=cfg.delta_width),
        regression_delta(mfcc, width=cfg.delta_width, order=2),
        np.sqrt(np.mean(np.abs(librosa.stft(y, n_fft=n_fft, hop_length=hop)) ** 2, axis=0, keepdims=True)),
        librosa.feature.spectral_centroid(y=y, sr=sr, hop_length=hop, n_fft=n_fft),
        librosa.feature.spectral_bandwidth(y=y, sr=sr, hop_length=hop, n_fft=n_fft),
        librosa.feature.spectral_rolloff(y=y, sr=sr, hop_length=hop, n_fft=n_fft),
        librosa.feature.poly_features(y=y, sr=sr, hop_length=hop, n_fft=n_fft),
        librosa.feature.poly_features(y=y, sr=sr, hop_length=hop, n_fft=n_fft, order=2),
        librosa.feature.zero_crossing_rate(y, hop_length=hop, frame_length=n_fft),
    ]
    return np.vstack([db_relative_to_max(b, cfg) for b in blocks])


def naive_music_descriptor(y: np.ndarray, sr: int, config: MusicDescriptorConfig | None = None,
                           parts: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """(1140,) float32 descriptor, laid out as :func:`vmnet_core.features.music_descriptor.music_descriptor`.

    ``parts`` replaces ``librosa.effects.hpss`` with given (harmonic, percussive) time signals of
    the centred clip, to separate HPSS differences from feature-path differences.
    """
    cfg = config or MusicDescriptorConfig()
    clip = centre_clip(y, sr, cfg)
    harmonic, percussive = parts if parts is not None else librosa.effects.hpss(clip)
    rows = np.vstack([naive_part_rows(harmonic, cfg), naive_part_rows(percussive, cfg)])
    return np.hstack([rows.mean(axis=1), rows.var(axis=1), rows.max(axis=1)]).astype(np.float32)
