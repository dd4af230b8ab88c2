"""``librosa.estimate_tuning`` on a spectrogram, bit for bit, in one compiled pass (issue 17).

The music descriptor estimates tuning four times per clip (``chroma_stft`` and ``chroma_cens`` of
each HPSS part). librosa's ``piptrack`` builds five full-size arrays (gradient, parabolic shift,
skew, pitches, magnitudes) with strided per-frequency passes, although only the peaks between
150 Hz and 4 kHz are used. :func:`estimate_tuning` visits those bins once per frame and repeats
librosa's arithmetic in the same precision (float32 spectrogram values, the parabolic shift in
float64 then stored as float32, pitches as ``(bin + shift) · sr / n_fft`` in float64 stored as
float32), then hands the peaks to ``librosa.pitch_tuning``: the returned tuning is identical
(``tests/test_music_descriptor.py`` checks it on real tracks).
"""

from __future__ import annotations

import librosa
import numba
import numpy as np

PIPTRACK_FMIN_HZ = 150.0  # librosa.piptrack's defaults, as estimate_tuning calls it
PIPTRACK_FMAX_HZ = 4000.0
PIPTRACK_THRESHOLD = 0.1  # a peak must exceed this fraction of its frame's maximum


def estimate_tuning(spectrogram: np.ndarray, sr: int, bins_per_octave: int = 12, resolution: float = 0.01) -> float:
    """``librosa.estimate_tuning(S=spectrogram, sr=sr, bins_per_octave=..., resolution=...)``.

    Parameters
    ----------
    spectrogram : np.ndarray, shape (1 + n_fft // 2, T), float32
        Magnitude or power spectrogram (librosa takes ``|S|`` either way).
    sr : int, Hz

    Returns
    -------
    float, tuning deviation in fractions of a bin, in ``[-0.5, 0.5)``.
    """
    magnitude = np.ascontiguousarray(np.abs(spectrogram), dtype=np.float32)
    n_fft = 2 * (magnitude.shape[0] - 1)
    freqs = librosa.fft_frequencies(sr=sr, n_fft=n_fft)
    fmax = min(PIPTRACK_FMAX_HZ, float(sr) / 2)
    band = np.flatnonzero((PIPTRACK_FMIN_HZ <= freqs) & (freqs < fmax))  # never bin 0 nor the last bin
    if band.size == 0 or magnitude.shape[1] == 0:
        return librosa.pitch_tuning(np.zeros(0), resolution=resolution, bins_per_octave=bins_per_octave)
    pitches, mags = _band_peaks(magnitude, int(band[0]), int(band[-1]) + 1, float(sr), n_fft)
    if pitches.size:
        threshold = np.median(mags)
        pitches = pitches[mags >= threshold]
    return librosa.pitch_tuning(pitches, resolution=resolution, bins_per_octave=bins_per_octave)


@numba.njit(cache=True, nogil=True)
def _band_peaks(s: np.ndarray, lo: int, hi: int, sr: float, n_fft: int
                ) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    """Pitch (Hz) and magnitude of every piptrack peak in bins ``[lo, hi)`` of ``s`` (F, T) float32.

    A peak is a local maximum along frequency of ``s`` where ``s`` exceeds 0.1 × its frame's
    maximum (other bins count as 0), as ``librosa.util.localmax`` compares: greater than the bin
    below, not less than the bin above. Only bins with positive pitch are returned (all of them here).
    """
    n_bins, n_frames = s.shape
    threshold = np.float32(PIPTRACK_THRESHOLD)
    count = 0
    pitches = np.empty(n_frames * (hi - lo), dtype=np.float32)
    mags = np.empty(n_frames * (hi - lo), dtype=np.float32)
    for t in range(n_frames):
        peak = s[0, t]
        for k in range(1, n_bins):
            if s[k, t] > peak:
                peak = s[k, t]
        ref = threshold * peak
        for k in range(lo, hi):  # 0 < lo, hi < n_bins: every bin has neighbours on both sides
            up, mid, down = s[k + 1, t], s[k, t], s[k - 1, t]
            here = mid if mid > ref else np.float32(0.0)
            if not (here > (down if down > ref else np.float32(0.0)) and here >= (up if up > ref else np.float32(0.0))):
                continue
            shift = np.float32(0.0)  # the parabolic-interpolation stencil: float64 maths, float32 result
            a = np.float64(np.float32(up + down)) - 2.0 * np.float64(mid)
            b = np.float64(np.float32(up - down)) / 2.0
            if not abs(b) >= abs(a):
                shift = np.float32(-b / a)
            gradient = np.float32((up - down) / np.float32(2.0))  # np.gradient, float32
            pitch = np.float32(((k + np.float64(shift)) * sr) / n_fft)
            if pitch > 0:
                pitches[count] = pitch
                mags[count] = mid + np.float32(np.float32(0.5) * gradient) * shift
                count += 1
    return pitches[:count], mags[:count]
