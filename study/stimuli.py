"""Premux every (clip, soundtrack) pair once into a browser-ready mp4 with an opaque random name.

The name (``secrets.token_hex``) says nothing about the clip, the track or the condition; only the
database knows what is behind it. Attention checks get a generated wrong soundtrack (noise or
silence) muxed the same way, so nothing in the file format tells them apart either.
"""

from __future__ import annotations

import secrets
import tempfile
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from study.config import MediaSettings
from study.design import CHECK_CONDITION
from vmnet_core.media import mux_music_onto_video, probe

CHECK_TRACK_SR = 44100


@dataclass
class TrackSource:
    """A candidate soundtrack for one clip; ``condition`` stays hidden from raters."""

    condition: str
    path: Path
    track_id: str = ""
    title: str = ""


@dataclass
class ClipSource:
    """A video clip and its candidate soundtracks, one per condition."""

    name: str
    video: Path
    tracks: dict[str, TrackSource] = field(default_factory=dict)
    practice: bool = False  # kept for the practice trial, out of every scored trial


def opaque_media_name() -> str:
    """A random file name that carries no information: 32 hex digits + ``.mp4``."""
    return f"{secrets.token_hex(16)}.mp4"


def write_check_track(kind: str, seconds: float, path: str | Path, seed: int = 0) -> Path:
    """Write the obviously wrong soundtrack of an attention check: ``noise`` (white noise at about
    -20 dBFS RMS) or ``silence`` (a very faint noise floor, so loudness normalisation stays defined)."""
    rng = np.random.default_rng(seed)
    n = max(1, int(round(seconds * CHECK_TRACK_SR)))
    level = 0.1 if kind == "noise" else 1e-4
    y = np.clip(rng.normal(0.0, level, n), -1.0, 1.0)
    path = Path(path)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(CHECK_TRACK_SR)
        w.writeframes((y * 32767).astype("<i2").tobytes())
    return path


def premux_candidate(video: str | Path, music: str | Path, media_dir: str | Path,
                     settings: MediaSettings | None = None) -> str:
    """Lay ``music`` under ``video`` into ``media_dir/<opaque>.mp4``; returns the opaque file name."""
    settings = settings or MediaSettings()
    name = opaque_media_name()
    mux_music_onto_video(video, music, Path(media_dir) / name, fade_s=settings.fade_s,
                         loudness_lufs=settings.loudness_lufs, max_duration_s=settings.max_duration_s)
    return name


def clip_duration(video: str | Path, settings: MediaSettings | None = None) -> float:
    """The clip's length in seconds (refused by ``probe`` when above ``settings.max_duration_s``)."""
    settings = settings or MediaSettings()
    return float(probe(video, settings.max_duration_s).duration_s)


def premux_all(clips: list[ClipSource], media_dir: str | Path, settings: MediaSettings | None = None,
               check_kind: str | None = None,
               progress: Callable[[int, int], None] | None = None) -> dict[tuple[str, str], str]:
    """Premux every (clip, condition) pair, plus one attention-check clip per video when
    ``check_kind`` is ``noise`` or ``silence``; returns ``{(clip name, condition): media name}``
    (the check's condition is ``study.design.CHECK_CONDITION``). ``progress(done, total)`` is called
    after each file."""
    settings = settings or MediaSettings()
    media_dir = Path(media_dir)
    media_dir.mkdir(parents=True, exist_ok=True)
    with_check = check_kind in ("noise", "silence")
    total = sum(len(c.tracks) for c in clips) + (len(clips) if with_check else 0)
    names: dict[tuple[str, str], str] = {}
    with tempfile.TemporaryDirectory(prefix="vmnet-study-") as tmp:
        for i, clip in enumerate(clips):
            jobs = [(cond, track.path) for cond, track in clip.tracks.items()]
            if with_check:
                seconds = clip_duration(clip.video, settings)
                jobs.append((CHECK_CONDITION, write_check_track(check_kind, seconds, Path(tmp) / f"check{i}.wav", i)))
            for condition, music in jobs:
                names[(clip.name, condition)] = premux_candidate(clip.video, music, media_dir, settings)
                if progress is not None:
                    progress(len(names), total)
    return names
