"""Premux every (clip, soundtrack) pair once into a browser-ready mp4 with an opaque random name.

The name (``secrets.token_hex``) says nothing about the clip, the track or the condition; only the
database knows what is behind it. Attention checks get a generated wrong soundtrack (noise or
silence) muxed the same way, so nothing in the file format tells them apart either.

Blind by construction: the files are built in a seeded random order (not clip by clip, condition
by condition), all get one fixed modification time (``FIXED_MTIME``), every candidate of a clip
is cut to the clip's length and loudness-normalised, and a trailing ``free`` box makes every file
of a clip exactly as large as its largest one. Size, time, duration and loudness then say nothing
about the condition.
"""

from __future__ import annotations

import os
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
from vmnet_core.media.mp4 import FREE_BOX_HEADER, pad_mp4

CHECK_TRACK_SR = 44100
FIXED_MTIME = 946684800  # 2000-01-01T00:00:00Z: every stimulus file's access and modification time


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
               check_kind: str | None = None, progress: Callable[[int, int], None] | None = None,
               seed: int = 0) -> dict[tuple[str, str], str]:
    """Premux every (clip, condition) pair, plus one attention-check clip per video when
    ``check_kind`` is ``noise`` or ``silence``, in an order shuffled with ``seed``; then give every
    clip's files one size and every file ``FIXED_MTIME`` (see the module docstring). Returns
    ``{(clip name, condition): media name}`` (the check's condition is
    ``study.design.CHECK_CONDITION``). ``progress(done, total)`` is called after each file."""
    settings = settings or MediaSettings()
    media_dir = Path(media_dir)
    media_dir.mkdir(parents=True, exist_ok=True)
    names: dict[tuple[str, str], str] = {}
    with tempfile.TemporaryDirectory(prefix="vmnet-study-") as tmp:
        jobs = []
        for i, clip in enumerate(clips):
            jobs += [(clip, cond, track.path) for cond, track in clip.tracks.items()]
            if check_kind in ("noise", "silence"):
                seconds = clip_duration(clip.video, settings)
                jobs.append((clip, CHECK_CONDITION,
                             write_check_track(check_kind, seconds, Path(tmp) / f"check{i}.wav", i)))
        for k in np.random.default_rng(seed).permutation(len(jobs)):
            clip, condition, music = jobs[k]
            names[(clip.name, condition)] = premux_candidate(clip.video, music, media_dir, settings)
            if progress is not None:
                progress(len(names), len(jobs))
    for clip in clips:
        equalise_files([media_dir / name for (clip_name, _), name in names.items() if clip_name == clip.name])
    return names


def equalise_files(paths: list[Path]) -> None:
    """Pad the mp4 files ``paths`` to one size (their largest, plus a free box's header when they
    differ) and give them all ``FIXED_MTIME``."""
    sizes = [p.stat().st_size for p in paths]
    if sizes and len(set(sizes)) > 1:
        target = max(sizes) + FREE_BOX_HEADER
        for path in paths:
            pad_mp4(path, target)
    for path in paths:
        os.utime(path, (FIXED_MTIME, FIXED_MTIME))
