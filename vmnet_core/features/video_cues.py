"""Named, interpretable cues of a video: motion, cuts, light, colour and visual rhythm.

Beside the paper's CNN descriptor (which describes *what* is on screen), these describe *how* it
is filmed and graded, the properties that transfer between procedural clips and real footage and
that music is matched on by people (fast cutting ↔ fast tempo, dark cold grading ↔ minor key).
Every cue is a plain number with a unit; :class:`VideoCues` carries them with their names.

Frames come from :func:`vmnet_core.media.sample_frames` at a few frames per second (8 by
default, enough to see cuts and rhythms up to 240 per minute); the frame-level functions take any
``(T, H, W, 3)`` uint8 RGB array, so callers that already hold frames reuse them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from vmnet_core.errors import VmnetError
from vmnet_core.media import FrameSampling, sample_frames

CUE_FPS = 8.0             # frames per second sampled for the cues
CUE_FRAME_SIZE = 64       # square side (pixels) of the sampled frames
CUE_MAX_S = 180.0         # at most this many seconds are analysed (from the start)
CUT_HISTOGRAM_MIN = 0.2   # a cut changes at least this share of the colour histogram ...
CUT_MOTION_RATIO = 3.0    # ... and the pixels by this many times the clip's median frame change
PULSE_MIN_VARIATION = 1.0  # frame change must vary this much (std / mean) to carry a rhythm without cuts
RHYTHM_MIN_S, RHYTHM_MAX_S = 0.25, 8.0  # periods searched for visual rhythm (240 … 7.5 per minute)
SHOT_SUBDIVISIONS = (4, 3, 2)  # a cut train's period may span this many shots of one length (shot_unit_s)
SHOT_MIN_FRAMES = 4.0     # a shot length read from cuts spans at least this many sampled frames


@dataclass(frozen=True)
class VideoCues:
    """Interpretable cues of one video (units in the comments)."""

    motion_energy: float     # mean absolute luma change per second between frames, cuts excluded (full scale/s)
    cut_rate: float          # hard cuts per minute
    brightness: float        # mean Rec. 601 luma, 0 (black) … 1 (white)
    saturation: float        # mean HSV saturation, 0 (grey) … 1 (pure colour)
    warmth: float            # mean (R − B) / 255, −1 (blue, cold) … +1 (orange, warm)
    colourfulness: float     # Hasler–Süsstrunk M on 0–255 RGB (≈ 0 grey, 33 moderately, 59 quite, 82+ highly)
    rhythm_bpm: float        # period of the strongest repetition of frame change, in beats per minute (0: none)
    rhythm_strength: float   # autocorrelation of the frame-change curve at that period, 0 … 1
    duration_s: float        # seconds analysed

    def as_dict(self) -> dict[str, float]:
        """``{name: value}`` in the field order."""
        return asdict(self)


def luma(frames: np.ndarray) -> np.ndarray:
    """Rec. 601 luma of RGB frames ``(..., 3)`` uint8 → ``(...)`` float32 in [0, 1]."""
    rgb = frames.astype(np.float32) / 255.0
    return rgb @ np.array([0.299, 0.587, 0.114], np.float32)


def colour_statistics(frames: np.ndarray) -> dict[str, float]:
    """Brightness, saturation, warmth and colourfulness of ``(T, H, W, 3)`` uint8 RGB frames.

    Colourfulness is Hasler & Süsstrunk's (2003) ``M = σ_rgyb + 0.3·μ_rgyb`` over each frame's
    pixels (``rg = R − G``, ``yb = (R + G)/2 − B`` on the 0–255 scale), averaged over frames.
    Returns ``{"brightness", "saturation", "warmth", "colourfulness"}`` (units in :class:`VideoCues`).
    """
    frames = _checked(frames)
    rgb = frames.astype(np.float32)
    high, low = rgb.max(axis=-1), rgb.min(axis=-1)
    saturation = np.where(high > 0, (high - low) / np.maximum(high, 1e-6), 0.0)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    rg, yb = r - g, 0.5 * (r + g) - b
    axes = (1, 2)
    spread = np.sqrt(rg.var(axis=axes) + yb.var(axis=axes))
    centre = np.sqrt(rg.mean(axis=axes) ** 2 + yb.mean(axis=axes) ** 2)
    return {
        "brightness": float(luma(frames).mean()),
        "saturation": float(saturation.mean()),
        "warmth": float((r - b).mean() / 255.0),
        "colourfulness": float((spread + 0.3 * centre).mean()),
    }


def frame_changes(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How much each frame differs from the one before.

    Parameters
    ----------
    frames : (T, H, W, 3) uint8 RGB

    Returns
    -------
    pixel_change : (T - 1,) float32, mean absolute luma difference, 0 … 1
    histogram_change : (T - 1,) float32, share of the 4×4×4 RGB colour histogram that moved
        (half the L1 distance of the normalised histograms), 0 … 1
    """
    frames = _checked(frames)
    y = luma(frames)
    pixel = np.abs(np.diff(y, axis=0)).mean(axis=(1, 2))
    bins = (frames // 64).astype(np.int32)
    codes = (bins[..., 0] * 16 + bins[..., 1] * 4 + bins[..., 2]).reshape(len(frames), -1)
    hist = np.stack([np.bincount(c, minlength=64) for c in codes]).astype(np.float32)
    hist /= hist.sum(axis=1, keepdims=True)
    histogram = 0.5 * np.abs(np.diff(hist, axis=0)).sum(axis=1)
    return pixel.astype(np.float32), histogram.astype(np.float32)


def detect_cuts(pixel_change: np.ndarray, histogram_change: np.ndarray) -> np.ndarray:
    """Indices ``i`` of frame changes (frame ``i`` → ``i + 1``) that are hard cuts.

    A cut moves at least :data:`CUT_HISTOGRAM_MIN` of the colour histogram and changes the pixels
    by at least :data:`CUT_MOTION_RATIO` times the clip's median change (camera moves change the
    pixels steadily, a cut changes them at once). Returns ``(C,)`` int64, increasing.
    """
    if pixel_change.size == 0:
        return np.zeros(0, np.int64)
    floor = CUT_MOTION_RATIO * float(np.median(pixel_change))
    return np.flatnonzero((histogram_change >= CUT_HISTOGRAM_MIN) & (pixel_change >= max(floor, 0.02)))


def visual_rhythm(change: np.ndarray, fps: float) -> tuple[float, float]:
    """The strongest periodicity of a frame-change curve.

    Parameters
    ----------
    change : (T - 1,) frame-change curve (e.g. pixel change with cuts as spikes)
    fps : frames per second of the curve

    Returns
    -------
    (rhythm_bpm, strength): 60 / period in repetitions per minute for the autocorrelation peak with
    period in [:data:`RHYTHM_MIN_S`, :data:`RHYTHM_MAX_S`], and its normalised autocorrelation
    (0 … 1); ``(0.0, 0.0)`` when the curve is flat or too short to repeat twice.
    """
    x = np.asarray(change, np.float64) - float(np.mean(change)) if len(change) else np.zeros(0)
    energy = float(np.dot(x, x))
    lo, hi = max(1, int(round(RHYTHM_MIN_S * fps))), int(round(RHYTHM_MAX_S * fps))
    hi = min(hi, len(x) // 2)
    if energy <= 1e-12 or hi <= lo:
        return 0.0, 0.0
    acf = np.array([np.dot(x[:-lag], x[lag:]) for lag in range(1, hi + 1)]) / energy  # lag 1 … hi
    peaks = [lag for lag in range(lo, hi + 1)
             if acf[lag - 1] > 0 and acf[lag - 1] >= acf[lag - 2 if lag > 1 else 0]
             and (lag == hi or acf[lag - 1] >= acf[lag])]
    if not peaks:
        return 0.0, 0.0
    best = max(peaks, key=lambda lag: acf[lag - 1])
    # the first lag whose peak is nearly as strong as the best is the period (not a multiple of it)
    period = next(lag for lag in peaks if acf[lag - 1] >= 0.9 * acf[best - 1])
    return 60.0 * fps / period, float(min(1.0, acf[period - 1]))


def cut_period_s(cuts: np.ndarray, fps: float, rough_period_s: float) -> float:
    """The period of cuts that repeat about every ``rough_period_s`` seconds, finer than the frame grid.

    ``cuts``: ``(C,)`` indices from :func:`detect_cuts` at ``fps``. The period is first brought down
    to the shot length (:func:`shot_unit_s`), then each cut is numbered by the whole number of
    periods since the first, and the period is the least-squares slope of the cut times on those
    numbers (frame times are 1/fps apart; a dozen cuts time the period to about 1 %). Fewer than
    three cuts, cuts all in one period, or cuts off that beat by more than a quarter of the shot
    length (an irregular edit) leave ``rough_period_s`` as it is.
    """
    times = (np.asarray(cuts, np.float64) + 1.0) / fps
    if len(times) < 3 or rough_period_s <= 0:
        return rough_period_s
    unit = shot_unit_s(np.diff(times), fps, rough_period_s)
    counts = np.round((times - times[0]) / unit)
    if np.unique(counts).size < 2:
        return rough_period_s
    slope, offset = np.polyfit(counts, times, 1)
    misfit = float(np.abs(times - (slope * counts + offset)).max())
    return float(slope) if slope > 0 and misfit <= 0.25 * unit else rough_period_s


def shot_unit_s(gaps_s: np.ndarray, fps: float, rough_period_s: float) -> float:
    """The shot length of an edit whose cut train repeats every ``rough_period_s`` seconds.

    Sampled at ``fps``, cuts every 1.09 s fall 9, 9 and 8 frames apart, so the train repeats
    exactly only every third shot, and that multiple is the autocorrelation's strongest peak. The
    unit is the finest ``rough_period_s / n`` (``n`` in :data:`SHOT_SUBDIVISIONS`, at least
    :data:`SHOT_MIN_FRAMES` frames long) that every gap between cuts (``gaps_s``, ``(C - 1,)``
    seconds) fills a whole number of times (within a frame or a fifth of the unit, whichever is
    more), with at least a third of the gaps filling it once (shots of one unit); else
    ``rough_period_s``.
    """
    gaps_s = np.asarray(gaps_s, np.float64)
    for n in SHOT_SUBDIVISIONS:
        unit = rough_period_s / n
        if unit * fps < SHOT_MIN_FRAMES:
            continue
        multiples = gaps_s / unit
        whole = np.round(multiples)
        if ((whole >= 1).all() and (np.abs(multiples - whole) * unit <= max(0.2 * unit, 1.0 / fps)).all()
                and np.mean(whole == 1) >= 1.0 / 3.0):
            return unit
    return rough_period_s


def rhythm_curve(pixel_change: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """The curve whose periodicity is the visual rhythm, ``(T - 1,)``.

    With two or more cuts: the cuts as unit spikes (their spacing is the rhythm). Without: the
    pixel change itself when it pulses (standard deviation at least :data:`PULSE_MIN_VARIATION`
    times its mean, e.g. flashes or a bouncing subject), else zeros (a steady move has no rhythm;
    encoder and resampling ripples stay below that).
    """
    if len(cuts) >= 2:
        curve = np.zeros_like(pixel_change)
        curve[cuts] = 1.0
        return curve
    mean = float(pixel_change.mean()) if pixel_change.size else 0.0
    if mean <= 0 or float(pixel_change.std()) < PULSE_MIN_VARIATION * mean:
        return np.zeros_like(pixel_change)
    return pixel_change


def video_cues(frames: np.ndarray, fps: float) -> VideoCues:
    """All cues of ``(T, H, W, 3)`` uint8 RGB frames sampled at ``fps`` frames per second."""
    frames = _checked(frames)
    if fps <= 0:
        raise VmnetError(f"The frame rate must be positive, not {fps}.")
    duration_s = len(frames) / fps
    pixel, histogram = frame_changes(frames)
    cuts = detect_cuts(pixel, histogram)
    steady = np.delete(pixel, cuts)
    motion = float(steady.mean() * fps) if steady.size else 0.0
    rhythm_bpm, strength = visual_rhythm(rhythm_curve(pixel, cuts), fps)
    if rhythm_bpm > 0 and len(cuts) >= 2:  # the rhythm is the cuts': time it from them, not the lag grid
        rhythm_bpm = 60.0 / cut_period_s(cuts, fps, 60.0 / rhythm_bpm)
    return VideoCues(motion_energy=motion, cut_rate=60.0 * len(cuts) / duration_s,
                     rhythm_bpm=rhythm_bpm, rhythm_strength=strength, duration_s=duration_s,
                     **colour_statistics(frames))


def cue_sampling(max_duration_s: float = CUE_MAX_S, fps: float = CUE_FPS, size: int = CUE_FRAME_SIZE
                 ) -> FrameSampling:
    """The frames the cues look at: ``fps`` per second of the first ``max_duration_s`` seconds,
    ``size``×``size`` pixels (centre square)."""
    return FrameSampling(fps=fps, max_frames=int(np.ceil(max_duration_s * fps)), size=size)


def video_cues_from_file(path: str | Path, fps: float = CUE_FPS, size: int = CUE_FRAME_SIZE,
                         max_duration_s: float = CUE_MAX_S) -> VideoCues:
    """The cues of a video file, from the frames of :func:`cue_sampling` decoded by ffmpeg.
    Raises :class:`VmnetError` when the file has no decodable video."""
    sampling = cue_sampling(max_duration_s, fps, size)
    return video_cues(sample_frames(path, fps=fps, max_frames=sampling.max_frames, size=size), fps)


def _checked(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
        raise VmnetError(f"Frames must be a (T, H, W, 3) RGB array with at least one frame, not shape {frames.shape}.")
    if frames.dtype != np.uint8:
        raise VmnetError(f"Frames must be uint8 RGB (0–255), not {frames.dtype}.")
    return frames
