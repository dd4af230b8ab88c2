"""Does a video's cut rhythm land on a piece of music's beat? The pulse cue of both sides.

Editors cut music videos on the beat: a shot lasts a whole number of beats (usually 1, 2 or 4),
so a clip whose cuts repeat every ``P`` seconds fits music that pulses every ``P``, ``P/2`` and
``P/4`` seconds. Both sides are measured without naming a tempo, because a beat tracker's tempo
is often off by 2×, 3/2× or 4/3× (docs/cues.md) while the periodicity it is read from is not:

- music: :func:`onset_periodicity`, the autocorrelation of the onset-strength envelope at every lag
  from :data:`PULSE_MIN_S` to :data:`PULSE_MAX_S` seconds, standardised over those lags (so a
  track that is periodic everywhere does not fit every clip) and kept on a log-spaced grid;
- video: the period of its cuts (``VideoCues.rhythm_bpm``, refined from the cut times);
- :func:`pulse_fit`: the music's periodicity at the clip's period and at its halves and quarters.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

PULSE_MIN_S, PULSE_MAX_S = 0.25, 8.0   # lags kept (seconds): 240 … 7.5 repetitions per minute
PULSE_GRID_STEP = 0.02                 # relative spacing of the kept lags (a log grid, 175 lags)
PULSE_TOLERANCE = 0.05                 # relative gap between a clip's period and a music lag that still counts
BEATS_PER_SHOT = (1, 2, 4)             # a shot lasts this many beats: the lags the music is read at are P / n
PROFILE_DECIMALS = 2                   # the profile is stored (catalog JSON) rounded to this
PERIODIC_SPREAD = 0.1                  # autocorrelation spread over the lags below which onsets are not periodic


def pulse_lags_s() -> np.ndarray:
    """``(G,)`` float64: the lags (seconds) of a stored profile, from :data:`PULSE_MIN_S` up by
    :data:`PULSE_GRID_STEP` to at most :data:`PULSE_MAX_S`."""
    return _GRID.copy()


def _grid() -> np.ndarray:
    count = int(np.floor(np.log(PULSE_MAX_S / PULSE_MIN_S) / np.log1p(PULSE_GRID_STEP) + 1e-9)) + 1
    grid = PULSE_MIN_S * np.power(1.0 + PULSE_GRID_STEP, np.arange(count))
    grid.flags.writeable = False
    return grid


_GRID = _grid()


def onset_periodicity(envelope: np.ndarray, frame_rate_hz: float) -> tuple[float, ...]:
    """How strongly an onset-strength envelope repeats at each lag of :func:`pulse_lags_s`.

    ``envelope``: ``(F,)`` onset strength at ``frame_rate_hz`` frames per second. Returns ``G``
    values (rounded to :data:`PROFILE_DECIMALS`): the envelope's autocorrelation standardised over
    the lags from :data:`PULSE_MIN_S` to :data:`PULSE_MAX_S` (mean 0, standard deviation 1), each grid
    lag taking the largest value within half a grid step; all zeros for a flat or too short envelope.
    Onsets that hardly repeat (the correlation's spread over those lags below :data:`PERIODIC_SPREAD`,
    e.g. noise; every track of the real library spreads 0.12–0.32) are scaled down in proportion, so
    standardising does not blow their noise up into beats. (A beatless pad whose envelope swells
    smoothly still reads a false beat at short lags: docs/cues.md, "What is still weak".)
    """
    lags = _GRID
    x = np.asarray(envelope, np.float64).ravel()
    x = x - x.mean() if x.size else x
    longest = int(np.ceil(PULSE_MAX_S * (1.0 + PULSE_GRID_STEP) * frame_rate_hz))
    if x.size <= int(np.ceil(PULSE_MIN_S * frame_rate_hz)) + 1 or float(np.dot(x, x)) <= 1e-12:
        return tuple(0.0 for _ in lags)
    size = int(2 ** np.ceil(np.log2(2 * x.size)))
    spectrum = np.fft.rfft(x, size)
    acf = np.fft.irfft(spectrum * np.conj(spectrum), size)[: min(longest + 1, x.size)]
    acf /= acf[0]
    lag_s = np.arange(acf.size) / frame_rate_hz
    band = (lag_s >= PULSE_MIN_S) & (lag_s <= PULSE_MAX_S)
    spread = float(acf[band].std())
    if spread <= 1e-12:
        return tuple(0.0 for _ in lags)
    z = (acf - acf[band].mean()) / spread * min(1.0, spread / PERIODIC_SPREAD)
    half = 1.0 + PULSE_GRID_STEP / 2.0
    values = []
    for lag in lags:
        near = (lag_s >= lag / half) & (lag_s <= lag * half)
        nearest = int(round(lag * frame_rate_hz))
        values.append(float(z[near].max()) if near.any() else float(z[nearest]) if nearest < z.size else 0.0)
    return tuple(round(v, PROFILE_DECIMALS) for v in values)


def pulse_fit(period_s: float, profile: Sequence[float] | None) -> float | None:
    """How well music with periodicity ``profile`` (from :func:`onset_periodicity`) fits cuts every
    ``period_s`` seconds: the mean over ``n`` in :data:`BEATS_PER_SHOT` of the profile's largest value
    within :data:`PULSE_TOLERANCE` of ``period_s / n`` (lags outside the grid are skipped).

    Standardised units: 0 is the music's typical lag, 2–4 a clear beat. ``None`` when there is no
    opinion: no period, no profile (cues stored before profiles), or no lag on the grid.
    """
    values = np.asarray(profile if profile is not None else (), np.float64).ravel()
    if not period_s or period_s <= 0 or values.size != _GRID.size:
        return None
    windows = _read_windows(float(period_s))
    return float(np.mean([values[window].max() for window in windows])) if windows else None


@lru_cache(maxsize=4096)
def _read_windows(period_s: float) -> tuple[np.ndarray, ...]:
    """Grid indices within :data:`PULSE_TOLERANCE` of each ``period_s / n`` on the grid (the nearest
    one where none is that close); one array per ``n`` in :data:`BEATS_PER_SHOT`. Cached: a video
    query reads every candidate track at the same period."""
    windows = []
    for n in BEATS_PER_SHOT:
        lag = period_s / n
        if lag < PULSE_MIN_S / (1.0 + PULSE_TOLERANCE) or lag > PULSE_MAX_S * (1.0 + PULSE_TOLERANCE):
            continue
        near = np.flatnonzero((_GRID >= lag / (1.0 + PULSE_TOLERANCE)) & (_GRID <= lag * (1.0 + PULSE_TOLERANCE)))
        windows.append(near if near.size else np.array([np.argmin(np.abs(np.log(_GRID / lag)))]))
    return tuple(windows)
