"""Lay a track's downbeat on a video's strongest early cut: where in the track the preview starts.

- **Beats**: librosa's dynamic-programming beat tracker (``librosa.beat.beat_track``, Ellis 2007),
  the same one behind the ``tempo_bpm`` cue (:func:`vmnet_core.features.music_cues.tracked_beats`;
  its tempo agreement with the labelled library is in docs/cues.md). Its typical failure is an
  octave error (half or double tempo), which still puts every tracked beat on a real beat, so
  alignment survives it.
- **Downbeats**: librosa has no downbeat tracker; we assume 4/4 and take the bar phase (beat
  ``p, p+4, p+8 …``, ``p`` in 0–3) whose beats carry the most onset strength, the accent a bar's
  first beat usually has.
- **Video event**: the strongest hard cut in the first :data:`EVENT_SEARCH_S` seconds
  (:func:`vmnet_core.features.video_cues.detect_cuts` at :data:`EVENT_FPS` frames per second);
  without a cut, the steepest rise of frame-to-frame change (a motion onset); none on a still video.
- **Offset**: the music starts at ``downbeat − event`` for the downbeat that keeps the start
  nearest the wanted start (the chosen segment's), never before 0; with no event, a downbeat at 0.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from vmnet_core.features.music_cues import CUE_SR, HOP, tracked_beats
from vmnet_core.features.video_cues import detect_cuts, frame_changes
from vmnet_core.media import decode_audio, probe, sample_frames

EVENT_SEARCH_S = 6.0   # look for the video's event in its first seconds
EVENT_FPS = 25.0       # frames per second sampled for it (40-ms resolution)
EVENT_FRAME_SIZE = 64  # square side of those frames (pixels)
BEATS_PER_BAR = 4
MUSIC_CONTEXT_S = 12.0  # seconds of music analysed around the wanted start (beats before and after it)
MIN_MOTION_RISE = 0.01  # a motion onset raises the mean luma change by at least this (full scale)


@dataclass(frozen=True)
class BeatGrid:
    """Beats of an excerpt, in seconds of the whole track."""

    tempo_bpm: float
    beats: np.ndarray      # (B,) seconds
    downbeats: np.ndarray  # (D,) seconds, every fourth beat in the accented phase


@dataclass(frozen=True)
class Alignment:
    """Where the music starts under the video and why (seconds)."""

    music_start_s: float          # offset into the track where the preview's audio begins
    wanted_start_s: float         # the start asked for (the best segment's)
    video_event_s: float | None   # the cut / motion onset a downbeat lands on (None: still video)
    downbeat_s: float | None      # that downbeat, in track time (None: no beat found)
    tempo_bpm: float

    def as_dict(self) -> dict[str, float | None]:
        return asdict(self)


def beat_grid(y: np.ndarray, sr: int, offset_s: float = 0.0) -> BeatGrid:
    """Beats and downbeats of mono audio ``y`` ``(S,)`` at ``sr`` Hz that starts ``offset_s`` s into its track."""
    tempo, frames, envelope = tracked_beats(np.asarray(y, np.float32), sr)
    if len(frames) == 0:
        return BeatGrid(0.0, np.zeros(0), np.zeros(0))
    times = offset_s + frames * HOP / sr
    strength = envelope[np.minimum(frames, len(envelope) - 1)]
    phase = int(np.argmax([strength[p::BEATS_PER_BAR].mean() if len(strength[p::BEATS_PER_BAR]) else -1.0
                           for p in range(BEATS_PER_BAR)]))
    return BeatGrid(tempo, times, times[phase::BEATS_PER_BAR])


def beat_grid_near(music: str | Path, start_s: float, context_s: float = MUSIC_CONTEXT_S) -> BeatGrid:
    """The beat grid of a music file from about one bar before ``start_s`` to ``context_s`` after it."""
    begin = max(0.0, start_s - 3.0)
    y = decode_audio(music, sr=CUE_SR, offset_s=begin, duration_s=context_s + (start_s - begin))
    return beat_grid(y, CUE_SR, offset_s=begin)


def strongest_change_s(frames: np.ndarray, fps: float) -> float | None:
    """Time (s) of the strongest hard cut in ``(T, H, W, 3)`` uint8 frames, else of the steepest rise
    of frame change (a motion onset); ``None`` when neither stands out (a still or evenly moving shot)."""
    if len(frames) < 3:
        return None
    pixel, histogram = frame_changes(frames)
    cuts = detect_cuts(pixel, histogram)
    if len(cuts):
        return float((cuts[np.argmax(pixel[cuts])] + 1) / fps)
    smooth = np.convolve(pixel, np.ones(3) / 3, mode="same")
    rise = np.diff(smooth)
    best = int(np.argmax(rise)) if len(rise) else 0
    if not len(rise) or rise[best] < MIN_MOTION_RISE:
        return None
    return float((best + 1) / fps)


def video_event_s(video: str | Path, search_s: float = EVENT_SEARCH_S) -> float | None:
    """:func:`strongest_change_s` over the first ``search_s`` seconds of a video file."""
    frames = sample_frames(video, fps=EVENT_FPS, max_frames=int(np.ceil(search_s * EVENT_FPS)),
                           size=EVENT_FRAME_SIZE)
    return strongest_change_s(frames, EVENT_FPS)


def aligned_start(wanted_start_s: float, downbeats: np.ndarray, event_s: float | None) -> tuple[float, float | None]:
    """``(music_start_s, downbeat_s)``: the start nearest ``wanted_start_s`` that puts a downbeat at
    ``event_s`` seconds into the video (at 0 when ``event_s`` is None); never below 0.
    ``(wanted_start_s, None)`` when there are no downbeats."""
    event = 0.0 if event_s is None else float(event_s)
    candidates = np.asarray(downbeats, np.float64) - event
    ok = candidates >= 0.0
    if not np.any(ok):
        return float(wanted_start_s), None
    best = int(np.argmin(np.where(ok, np.abs(candidates - wanted_start_s), np.inf)))
    return float(candidates[best]), float(downbeats[best])


def align_music_to_video(video: str | Path, music: str | Path, wanted_start_s: float = 0.0) -> Alignment:
    """Where ``music`` should start under ``video`` so a downbeat meets the video's first strong event."""
    event = video_event_s(video)
    grid = beat_grid_near(music, wanted_start_s + (event or 0.0))
    start, downbeat = aligned_start(wanted_start_s, grid.downbeats, event)
    duration = probe(music).duration_s
    start = min(start, max(0.0, duration - 0.5))
    return Alignment(music_start_s=round(start, 3), wanted_start_s=float(wanted_start_s), video_event_s=event,
                     downbeat_s=downbeat, tempo_bpm=round(grid.tempo_bpm, 2))
