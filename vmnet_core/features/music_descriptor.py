"""The paper's 1140-d music descriptor (VM-NET, Hong, Im & Yang, ICMR 2018, arXiv 1704.06761).

As the official code (``csehong/VM-NET``, ``data/audio_feature_extractor/librosa_feature.py``)
defines it: mono at 12 kHz, the centre 29.12 s, STFT with ``n_fft`` 512 and hop 256, harmonic–
percussive separation, and on each part 190 frame rows (chroma_stft 12, chroma_cens 12, mel 96,
MFCC 20, ΔMFCC 20, Δ²MFCC 20, RMS, spectral centroid, bandwidth, rolloff, poly order-1 2,
poly order-2 3, zero-crossing rate), each feature in dB relative to its maximum, summarised over
time by mean, variance and max: 2 × 190 × 3 = 1140. The vector is laid out as the official code
lays it out, statistic-major: ``[means(380) | variances(380) | maxima(380)]``, harmonic rows before
percussive rows inside each statistic; :func:`music_descriptor_names` spells every entry.

Shared intermediates are computed once (see ``docs/music-descriptor.md`` for every deliberate
difference from the official code): one 2048-point STFT of the mix for HPSS (exactly as
``librosa.effects.hpss``), then per part one 512-point spectrogram feeds every spectral feature;
only chroma_cens (constant-Q) and the zero-crossing rate use the part's samples. Tuning is
estimated by :mod:`vmnet_core.features.tuning` (librosa's result, bit for bit, in one pass).
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from pathlib import Path

import librosa
import numba
import numpy as np
import scipy.fft
import scipy.signal
import scipy.sparse
from numpy.lib.stride_tricks import sliding_window_view

from vmnet_core.errors import VmnetError
from vmnet_core.features.music_config import MusicDescriptorConfig
from vmnet_core.features.tuning import estimate_tuning
from vmnet_core.media import decode_audio, probe

PARTS = ("harmonic", "percussive")
TUNING_N_FFT = 2048  # librosa.estimate_tuning(y=...)'s spectrogram for chroma_cens (hop n_fft / 4)
MIN_SAMPLES = 4096  # shortest analysed audio (0.34 s at 12 kHz): shorter audio is zero-padded up to it
STATS = ("mean", "var", "max")


def feature_rows(config: MusicDescriptorConfig | None = None) -> list[tuple[str, int]]:
    """The per-part features in vector order as ``(name, n_rows)``; 190 rows with the defaults."""
    cfg = config or MusicDescriptorConfig()
    return [
        ("chroma_stft", cfg.n_chroma), ("chroma_cens", cfg.n_chroma), ("mel", cfg.n_mels),
        ("mfcc", cfg.n_mfcc), ("mfcc_delta", cfg.n_mfcc), ("mfcc_delta2", cfg.n_mfcc),
        ("rms", 1), ("spectral_centroid", 1), ("spectral_bandwidth", 1), ("spectral_rolloff", 1),
        ("poly1", 2), ("poly2", 3), ("zcr", 1),
    ]


@lru_cache(maxsize=8)
def _names(config: MusicDescriptorConfig) -> tuple[str, ...]:
    rows = [f"{name}_{i}" if n > 1 else name for name, n in feature_rows(config) for i in range(n)]
    return tuple(f"{part}.{row}.{stat}" for stat in STATS for part in PARTS for row in rows)


def music_descriptor_names(config: MusicDescriptorConfig | None = None) -> list[str]:
    """Names of the descriptor's entries in vector order, e.g. ``"harmonic.mfcc_3.var"``.

    Multi-row features are indexed from 0 (``chroma_*_0`` is C, ``mfcc_0`` the energy coefficient,
    ``poly1_0`` the slope, ``poly2_0`` the quadratic coefficient). Returns 1140 names with the
    defaults.
    """
    return list(_names(config or MusicDescriptorConfig()))


def music_descriptor(y: np.ndarray, sr: int, config: MusicDescriptorConfig | None = None) -> np.ndarray:
    """The paper's music descriptor of a waveform.

    Parameters
    ----------
    y : np.ndarray, shape (S,) or (C, S)
        Audio samples (channels are averaged to mono), any length; the centre ``config.clip_s``
        seconds are used. Shorter audio is used as it is (statistics over its own frames), or
        zero-padded on both sides to ``clip_s`` when ``config.pad_short`` (the official code).
    sr : int
        Sample rate of ``y`` in Hz; resampled to ``config.sr`` when different.
    config : MusicDescriptorConfig, optional
        Defaults to the paper's settings.

    Returns
    -------
    np.ndarray, shape (1140,), float32
        ``[means | variances | maxima]`` of the 2 × 190 dB frame rows (see
        :func:`music_descriptor_names`); always finite, also for silence.
    """
    cfg = config or MusicDescriptorConfig()
    clip = centre_clip(y, sr, cfg)
    rows = np.concatenate([_part_rows(part, stft, cfg) for part, stft in hpss_parts(clip, cfg)])  # (2R, T)
    stats = [rows.mean(axis=1), rows.var(axis=1), rows.max(axis=1)]
    return np.concatenate(stats).astype(np.float32)


def music_descriptor_from_file(path: str | Path, config: MusicDescriptorConfig | None = None) -> np.ndarray:
    """The music descriptor of the centre ``config.clip_s`` seconds of an audio or video file.

    Decodes only that window (through ffmpeg, mono at ``config.sr``); returns ``(1140,)`` float32.
    Raises :class:`VmnetError` when the file cannot be read or has no audio stream.
    """
    cfg = config or MusicDescriptorConfig()
    info = probe(path)
    offset_s = max(0.0, (info.duration_s - cfg.clip_s) / 2.0)
    y = decode_audio(path, sr=cfg.sr, offset_s=offset_s, duration_s=cfg.clip_s)
    return music_descriptor(y, cfg.sr, cfg)


# ---------------------------------------------------------------------------------------------
# Input preparation


def _mono(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y, dtype=np.float32)
    if y.ndim == 2:
        y = y.mean(axis=0)
    if y.ndim != 1:
        raise VmnetError(f"Audio must be a 1-D (samples) or 2-D (channels, samples) array, not {y.ndim}-D.")
    if y.size == 0:
        raise VmnetError("The audio is empty; give at least one sample.")
    if not np.all(np.isfinite(y)):
        raise VmnetError("The audio contains NaN or infinite samples; decode it again or clean it first.")
    return y


def centre_clip(y: np.ndarray, sr: int, config: MusicDescriptorConfig | None = None) -> np.ndarray:
    """The analysed clip: mono, resampled to ``config.sr``, the centre ``config.n_samples``.

    Parameters
    ----------
    y : np.ndarray, shape (S,) or (C, S)
    sr : int, Hz

    Returns
    -------
    np.ndarray, shape (min(S', config.n_samples),) float32 for S' samples at ``config.sr``; audio
    shorter than the clip is returned whole (only audio under :data:`MIN_SAMPLES` is zero-padded up
    to it), or zero-padded on both sides to ``config.n_samples`` when ``config.pad_short``.
    """
    cfg = config or MusicDescriptorConfig()
    y = _mono(y)
    if sr <= 0:
        raise VmnetError(f"The sample rate must be positive, not {sr}.")
    if sr != cfg.sr:
        y = librosa.resample(y, orig_sr=sr, target_sr=cfg.sr)
    n = cfg.n_samples
    if y.size >= n:
        start = (y.size - n) // 2
        return np.ascontiguousarray(y[start:start + n])
    if not cfg.pad_short:
        n = max(y.size, min(n, max(MIN_SAMPLES, cfg.hpss_n_fft)))  # only a few STFT frames of padding
    left = (n - y.size) // 2
    return np.pad(y, (left, n - y.size - left))


# ---------------------------------------------------------------------------------------------
# Harmonic–percussive separation


def median_filter_1d(x: np.ndarray, size: int, axis: int) -> np.ndarray:
    """Running median of odd length ``size`` along ``axis`` of a 2-D array, with mirrored edges.

    Equal to ``scipy.ndimage.median_filter`` with a 1-D ``size`` along ``axis`` and
    ``mode="reflect"`` (as ``librosa.decompose.hpss`` calls it), several times faster: a sorted
    window slides along each row, so each step moves a few values instead of re-sorting the window.
    """
    if size % 2 == 0:
        raise ValueError(f"median size must be odd, got {size}")
    half = size // 2
    rows = x if axis in (1, -1) else x.T
    padded = np.pad(rows, ((0, 0), (half, half)), mode="symmetric")  # scipy "reflect" == numpy "symmetric"
    out = _sliding_median_rows(padded, size)
    return out if axis in (1, -1) else np.ascontiguousarray(out.T)


@numba.njit(cache=True, nogil=True)
def _sliding_median_rows(padded: np.ndarray, size: int) -> np.ndarray:  # pragma: no cover - compiled
    """Median of every ``size``-long window along each row of ``padded`` (R, n + size - 1) → (R, n).

    The window is kept sorted; each step finds where the leaving and the entering value go by
    counting the smaller values (branch-free compares the compiler vectorises), then shifts the
    values between those two places by one.
    """
    half = size // 2
    n = padded.shape[1] - size + 1
    out = np.empty((padded.shape[0], n), dtype=padded.dtype)
    window = np.empty(size, dtype=padded.dtype)
    for r in range(padded.shape[0]):
        row = padded[r]
        window[:] = row[:size]
        window.sort()
        out[r, 0] = window[half]
        for i in range(1, n):
            leaving, entering = row[i - 1], row[i - 1 + size]
            at_leaving = 0  # index of (the first copy of) the leaving value
            at_entering = 0  # index the entering value would take with the leaving one still there
            for j in range(size):
                at_leaving += window[j] < leaving
                at_entering += window[j] < entering
            if at_entering > at_leaving:
                for j in range(at_leaving, at_entering - 1):
                    window[j] = window[j + 1]
                window[at_entering - 1] = entering
            else:
                for j in range(at_leaving, at_entering, -1):
                    window[j] = window[j - 1]
                window[at_entering] = entering
            out[r, i] = window[half]
    return out


def hpss_parts(clip: np.ndarray, config: MusicDescriptorConfig | None = None
               ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Harmonic and percussive parts of a clip, as ``librosa.effects.hpss`` separates them.

    One STFT of the mix (``hpss_n_fft``/``hpss_hop_length``), soft masks from
    :func:`hpss_masks`, inverse STFT per part; then each part's feature STFT (``n_fft``/
    ``hop_length``), which is the masked STFT itself when both grids are the same.

    Returns
    -------
    [(harmonic (S,) float32, harmonic STFT (1 + n_fft // 2, T) complex64), (percussive ..., ...)]
    """
    cfg = config or MusicDescriptorConfig()
    n_fft, hop = cfg.hpss_n_fft, cfg.hpss_hop_length
    mix = librosa.stft(clip, n_fft=n_fft, hop_length=hop)                          # (F', T') complex64
    same_grid = (n_fft, hop) == (cfg.n_fft, cfg.hop_length)
    parts = []
    for mask in hpss_masks(np.abs(mix), cfg.hpss_kernel_size):
        masked = mix * mask
        part = librosa.istft(masked, hop_length=hop, n_fft=n_fft, length=clip.size)
        stft = masked if same_grid else librosa.stft(part, n_fft=cfg.n_fft, hop_length=cfg.hop_length)
        parts.append((part, stft))
    return parts


def hpss_masks(magnitude: np.ndarray, kernel_size: int = 31) -> tuple[np.ndarray, np.ndarray]:
    """Soft masks of ``librosa.decompose.hpss`` (power 2, margin 1) for a magnitude spectrogram.

    Parameters
    ----------
    magnitude : np.ndarray, shape (F, T)
    kernel_size : int
        Median length along time (harmonic) and frequency (percussive).

    Returns
    -------
    (harmonic_mask, percussive_mask), each shape (F, T), summing to 1.
    """
    harmonic = median_filter_1d(magnitude, kernel_size, axis=1)
    percussive = median_filter_1d(magnitude, kernel_size, axis=0)
    # librosa.util.softmask(·, ·, power=2, split_zeros=True) for both masks, sharing the work
    scale = np.maximum(harmonic, percussive)
    silent = scale < np.finfo(scale.dtype).tiny
    scale[silent] = 1.0
    harmonic_power = (harmonic / scale) ** 2
    percussive_power = (percussive / scale) ** 2
    total = harmonic_power + percussive_power
    total[silent] = 1.0
    masks = harmonic_power / total, percussive_power / total
    for mask in masks:
        mask[silent] = 0.5
    return masks


# ---------------------------------------------------------------------------------------------
# Per-part features


def _part_rows(y: np.ndarray, stft: np.ndarray, cfg: MusicDescriptorConfig) -> np.ndarray:
    """The 190 dB frame rows of one HPSS part: its samples ``(S,)`` feed chroma_cens and the
    zero-crossing rate, its complex STFT ``(F, T)`` every other feature; returns ``(190, T)``."""
    sr = cfg.sr
    magnitude = np.abs(stft)
    power = magnitude ** 2
    with warnings.catch_warnings():  # tuning estimates on silent parts warn about empty pitch sets
        warnings.simplefilter("ignore", UserWarning)
        chroma_stft = librosa.feature.chroma_stft(S=power, sr=sr, n_chroma=cfg.n_chroma,
                                                  tuning=estimate_tuning(power, sr, bins_per_octave=cfg.n_chroma))
        chroma_cens = _chroma_cens(y, cfg)
    mel = librosa.feature.melspectrogram(S=power, sr=sr, n_mels=cfg.n_mels)
    if cfg.mfcc_own_stft:
        mfcc = librosa.feature.mfcc(y=y, sr=sr, hop_length=cfg.hop_length, n_mfcc=cfg.n_mfcc)
    else:
        mfcc = librosa.feature.mfcc(S=librosa.power_to_db(mel), n_mfcc=cfg.n_mfcc)
    blocks = [
        chroma_stft,
        chroma_cens,
        mel,
        mfcc,
        regression_delta(mfcc, width=cfg.delta_width, order=1),
        regression_delta(mfcc, width=cfg.delta_width, order=2),
        np.sqrt(power.mean(axis=0, keepdims=True)),  # librosa ≤ 0.5 rmse: RMS over the spectrogram
        librosa.feature.spectral_centroid(S=magnitude, sr=sr),
        librosa.feature.spectral_bandwidth(S=magnitude, sr=sr),
        librosa.feature.spectral_rolloff(S=magnitude, sr=sr, roll_percent=cfg.rolloff_percent),
        poly_features(magnitude, sr, order=1),
        poly_features(magnitude, sr, order=2),
        librosa.feature.zero_crossing_rate(y, frame_length=cfg.n_fft, hop_length=cfg.hop_length),
    ]
    n_frames = stft.shape[1]
    return np.concatenate([db_relative_to_max(b[:, :n_frames], cfg) for b in blocks])


def regression_delta(data: np.ndarray, width: int = 9, order: int = 1) -> np.ndarray:
    """``librosa.feature.delta`` as librosa ≤ 0.5 (the official code's) computed it.

    Each frame's slope of a least-squares line over ``width`` frames (edges repeated); ``order``
    2 applies it twice. librosa ≥ 0.6 fits Savitzky–Golay polynomials instead, which agrees for
    ``order=1`` away from the edges but not for ``order=2``.

    Parameters
    ----------
    data : np.ndarray, shape (R, T)

    Returns
    -------
    np.ndarray, shape (R, T)
    """
    if width < 3 or width % 2 != 1:
        raise ValueError(f"width must be an odd integer >= 3, got {width}")
    half = width // 2
    slope = np.arange(half, -half - 1, -1.0)
    slope /= np.sum(slope ** 2)
    delta = np.pad(data, [(0, 0), (width, width)], mode="edge")
    for _ in range(order):
        delta = scipy.signal.lfilter(slope, 1, delta, axis=-1)
    return delta[:, -half - 1 - data.shape[1]: -half - 1]


def poly_features(magnitude: np.ndarray, sr: int, order: int) -> np.ndarray:
    """``librosa.feature.poly_features(S=magnitude, sr=sr, order=order)`` with the fit precomputed.

    Every frame fits the same polynomial in frequency, so ``np.polyfit``'s scaled least-squares
    solve reduces to one cached pseudo-inverse applied to all frames at once.

    Parameters
    ----------
    magnitude : np.ndarray, shape (1 + n_fft // 2, T)

    Returns
    -------
    np.ndarray, shape (order + 1, T), float64; highest power first, as ``np.polyfit``.
    """
    projection, scale = _poly_projection(sr, 2 * (magnitude.shape[0] - 1), order)
    return (projection @ magnitude) / scale[:, None]


@lru_cache(maxsize=16)
def _poly_projection(sr: int, n_fft: int, order: int) -> tuple[np.ndarray, np.ndarray]:
    freq = librosa.fft_frequencies(sr=sr, n_fft=n_fft)
    vander = np.vander(freq, order + 1)
    scale = np.sqrt((vander * vander).sum(axis=0))      # np.polyfit's column scaling
    return np.linalg.pinv(vander / scale, rcond=len(freq) * np.finfo(freq.dtype).eps), scale


def db_relative_to_max(block: np.ndarray, config: MusicDescriptorConfig | None = None) -> np.ndarray:
    """``10·log10(|x|)`` relative to the block's maximum ``|x|``, floored ``top_db`` below it.

    The official code's ``librosa.logamplitude(x, ref_power=np.max)`` (librosa ≤ 0.5): magnitudes
    ``|x|`` (so signed rows such as MFCCs count by size), reference = max over the whole feature
    matrix (or per row when ``config.db_reference == "row"``). Always finite, in ``[-top_db, 0]``.

    Parameters
    ----------
    block : np.ndarray, shape (R, T)

    Returns
    -------
    np.ndarray, shape (R, T), float64, dB
    """
    cfg = config or MusicDescriptorConfig()
    magnitude = np.maximum(np.abs(block.astype(np.float64)), cfg.amin)
    if cfg.db_reference == "feature":
        reference = magnitude.max()
    elif cfg.db_reference == "row":
        reference = magnitude.max(axis=1, keepdims=True)
    else:
        raise ValueError(f"db_reference must be 'feature' or 'row', got {cfg.db_reference!r}")
    return np.maximum(10.0 * np.log10(magnitude / reference), -cfg.top_db)


def _chroma_cens(y: np.ndarray, cfg: MusicDescriptorConfig) -> np.ndarray:
    """``librosa.feature.chroma_cens(y=y, ...)`` with the CQT from :func:`cqt_magnitude`; ``(12, T)``."""
    bins_per_octave = cfg.cqt_bins_per_octave
    tuning = estimate_tuning(np.abs(librosa.stft(y, n_fft=TUNING_N_FFT)), cfg.sr, bins_per_octave=bins_per_octave)
    cqt = cqt_magnitude(y, cfg.sr, cfg.hop_length, cfg.cqt_fmin_hz, cfg.cqt_n_octaves * bins_per_octave,
                        bins_per_octave, float(tuning))
    return librosa.feature.chroma_cens(
        C=cqt, sr=cfg.sr, hop_length=cfg.hop_length, fmin=cfg.cqt_fmin_hz, n_chroma=cfg.n_chroma,
        n_octaves=cfg.cqt_n_octaves, bins_per_octave=bins_per_octave, win_len_smooth=cfg.cens_win_len_smooth)


# ---------------------------------------------------------------------------------------------
# Constant-Q transform with a reused filter basis


def cqt_magnitude(y: np.ndarray, sr: int, hop_length: int, fmin: float, n_bins: int,
                  bins_per_octave: int, tuning: float) -> np.ndarray:
    """``np.abs(librosa.cqt(y, ...))`` (librosa 0.11 defaults otherwise) with its basis built once.

    librosa rebuilds and sparsifies the same one-octave filter basis for every octave of every
    call; the octaves differ only by the sample rate, which halves with the frequencies, so one
    octave's basis serves all of them (scaled by ``sqrt(2**i)``) and is cached per tuning.
    librosa's optional early downsampling (never used at 12 kHz with hop 256) is not done.

    Parameters
    ----------
    y : np.ndarray, shape (S,), float32
    tuning : float
        Deviation from A440 in fractions of a bin (as from ``librosa.estimate_tuning``).

    Returns
    -------
    np.ndarray, shape (n_bins, 1 + S // hop_length), float32
    """
    n_octaves = int(np.ceil(n_bins / bins_per_octave))
    basis, n_fft, lengths = _cqt_basis(sr, fmin, n_bins, bins_per_octave, round(tuning, 6))
    if hop_length % 2 ** (n_octaves - 1):
        raise ValueError(f"hop_length {hop_length} must be divisible by 2**(n_octaves - 1)")
    octave_y, octave_hop = y, hop_length
    responses = []
    for octave in range(n_octaves):
        frames = sliding_window_view(np.pad(octave_y, n_fft // 2), n_fft)[::octave_hop]  # (T_i, n_fft)
        spectrum = scipy.fft.rfft(frames, axis=-1)                       # = librosa.stft(window="ones").T
        responses.append(np.abs(basis.dot(spectrum.T)) * np.sqrt(2.0 ** octave))  # (bpo, T_i)
        if octave < n_octaves - 1:
            octave_hop //= 2
            octave_y = librosa.resample(octave_y, orig_sr=2, target_sr=1, res_type="soxr_hq", scale=True)
    n_frames = min(r.shape[1] for r in responses)
    stacked = np.concatenate([r[:, :n_frames] for r in reversed(responses)])[-n_bins:]
    return (stacked / np.sqrt(lengths)[:, None]).astype(np.float32)


@lru_cache(maxsize=128)
def _cqt_basis(sr: int, fmin: float, n_bins: int, bins_per_octave: int, tuning: float):
    """Top-octave sparse FFT basis ``(bpo, n_fft // 2 + 1)``, FFT size and all filter lengths of a CQT."""
    freqs = librosa.cqt_frequencies(n_bins, fmin=fmin * 2.0 ** (tuning / bins_per_octave),
                                    bins_per_octave=bins_per_octave)
    ratio = 2.0 ** (2.0 / bins_per_octave)  # relative bandwidth of equal-tempered bins, as librosa's
    alpha = np.full(n_bins, (ratio - 1.0) / (ratio + 1.0))
    lengths, cutoff = librosa.filters.wavelet_lengths(freqs=freqs, sr=sr, alpha=alpha)
    if cutoff > sr / 2.0:
        raise ValueError(f"the CQT's top filter reaches {cutoff:.0f} Hz, above the Nyquist frequency")
    top = slice(-min(bins_per_octave, n_bins), None)
    filters, top_lengths = librosa.filters.wavelet(freqs=freqs[top], sr=sr, alpha=alpha[top], pad_fft=True)
    n_fft = filters.shape[1]
    filters *= top_lengths[:, None] / float(n_fft)
    fft_basis = np.fft.fft(filters, n=n_fft, axis=1)[:, : n_fft // 2 + 1]
    basis = librosa.util.sparsify_rows(fft_basis, quantile=0.01, dtype=np.complex64)
    return scipy.sparse.csr_matrix(basis), n_fft, lengths
