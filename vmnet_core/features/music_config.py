"""The music descriptor's settings, apart from its code so a bundle's config can name them without
importing librosa and numba (seconds of start-up)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MusicDescriptorConfig:
    """How the music descriptor is computed; the defaults are the paper's (official code's)."""

    sr: int = 12000                # analysis sample rate (Hz)
    clip_s: float = 29.12          # centre clip length (s): 349,440 samples at 12 kHz
    n_fft: int = 512               # STFT window (samples)
    hop_length: int = 256          # STFT / CQT / ZCR hop (samples)
    hpss_n_fft: int = 2048         # STFT of the mix for HPSS (librosa.effects.hpss, as the official code)
    hpss_hop_length: int = 512     # its hop (samples)
    hpss_kernel_size: int = 31     # median-filter length for HPSS (frames and bins)
    n_chroma: int = 12             # chroma_stft and chroma_cens rows
    n_mels: int = 96               # mel rows
    n_mfcc: int = 20               # MFCC rows (and Δ, Δ² rows each)
    delta_width: int = 9           # regression width of the MFCC deltas (frames)
    mfcc_own_stft: bool = False    # True: librosa.feature.mfcc(y=part) as the official code (2048-pt
                                   # STFT, 128 mels; slower); False: from the shared spectrogram's mel
    rolloff_percent: float = 0.85  # spectral rolloff energy fraction
    cqt_fmin_hz: float = 32.703195662574764  # chroma_cens CQT lowest bin (C1)
    cqt_n_octaves: int = 7         # chroma_cens CQT octaves
    cqt_bins_per_octave: int = 12  # chroma_cens CQT resolution (librosa ≤ 0.6 default; 0.11's is 36)
    cens_win_len_smooth: int = 41  # chroma_cens smoothing window (frames)
    top_db: float = 80.0           # dB floor below each feature's maximum
    amin: float = 1e-10            # magnitude floor before the log
    db_reference: str = "feature"  # "feature": max over the feature's whole matrix (official code); "row"
    pad_short: bool = False        # True: zero-pad audio shorter than clip_s to clip_s (official code);
                                   # False: statistics over the audio that is there (docs/music-descriptor.md)

    @property
    def n_samples(self) -> int:
        """Samples in the analysed clip (``round(clip_s * sr)``)."""
        return int(round(self.clip_s * self.sr))
