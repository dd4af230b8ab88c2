"""Helpers for the study tests: real clips premuxed once, databases of both kinds, a rater that answers."""

from __future__ import annotations

import csv
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

from study.config import StudyConfig
from study.create import design_for, practice_last, store_study
from study.db import Database
from study.stimuli import ClipSource, TrackSource, clip_duration, opaque_media_name, premux_all
from vmnet_testkit.ci import skip_or_fail
from vmnet_testkit.mediagen import make_audio, make_video

CONDITIONS = ("ground_truth", "vmnet", "random")


def make_clips(folder: Path, n: int = 2, seconds: float = 1.5, conditions=CONDITIONS) -> list[ClipSource]:
    """``n`` real video clips, each with one real audio track per condition (distinct tones)."""
    clips = []
    for i in range(n):
        video = make_video(folder / f"clip{i}.mp4", seconds=seconds, seed=i)
        tracks = {c: TrackSource(c, make_audio(folder / f"{c}_{i}.wav", seconds=seconds + 0.5,
                                                freq=220.0 + 110 * k + 37 * i, seed=i),
                                 f"{c}-track-{i}", f"Title of {c} {i}")
                  for k, c in enumerate(conditions)}
        clips.append(ClipSource(f"clip{i}", video, tracks))
    return clips


def write_candidates_csv(folder: Path, clips: list[ClipSource]) -> Path:
    """``folder/candidates.csv`` for ``vmnet study create --candidates``: one row per (clip, condition)."""
    path = folder / "candidates.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["video", "condition", "track", "title"])
        for clip in clips:
            for condition, track in clip.tracks.items():
                writer.writerow([clip.video.name, condition, track.path.name, track.title])
    return path


@dataclass
class Premuxed:
    clips: list[ClipSource]
    durations: list[float]
    media: dict[tuple[str, str], str]
    media_dir: Path


def premux_clips(folder: Path, n: int = 2, check_kind: str = "noise", practice: bool = True) -> Premuxed:
    """``n`` scored clips premuxed, plus (``practice``) one more marked for the practice trial (a
    study without practice leaves it out)."""
    clips = make_clips(folder, n + int(practice))
    if practice:
        clips[-1].practice = True
    media_dir = folder / "media"
    media = premux_all(clips, media_dir, check_kind=check_kind)
    return Premuxed(clips, [clip_duration(c.video) for c in clips], media, media_dir)


def make_config(name: str = "study-one", **overrides) -> StudyConfig:
    # scripted test raters answer at once and all come from 127.0.0.1: the listening wait and the join
    # limit are off here and tested on their own (tests/test_study_listening.py)
    values = {"name": name, "conditions": list(CONDITIONS), "swapped_repeats": 1, "seed": 7,
              "attention": {"count": 1, "kind": "noise"}, "min_listen_fraction": 0.0, "joins_per_client": 0}
    values.update(overrides)
    return StudyConfig.from_dict(values)


def new_study(db: Database, premuxed: Premuxed, name: str = "study-one", plan_key: str | None = None,
              **overrides) -> str:
    """Store a study over copies of the premuxed clips (own folder, new opaque names; no new muxing);
    ``plan_key`` "" stores it as studies were stored before plan keys (None: a fresh secret one)."""
    media_dir = premuxed.media_dir.parent / f"media-{secrets.token_hex(4)}"
    media_dir.mkdir()
    media = {}
    for key, file_name in premuxed.media.items():
        media[key] = opaque_media_name()
        shutil.copyfile(premuxed.media_dir / file_name, media_dir / media[key])
    config = make_config(name, **overrides)
    spec = design_for(config, sum(not c.practice for c in practice_last(config, premuxed.clips)), plan_key)
    return store_study(db, config, premuxed.clips, premuxed.durations, media, media_dir, spec)


def open_test_database(kind: str, tmp_path: Path, **kwargs) -> Database:
    """A fresh, migrated database: a SQLite file, or a database on the throwaway PostgreSQL server."""
    if kind == "sqlite":
        return Database(f"sqlite:///{tmp_path / 'study.db'}", **kwargs)
    from vmnet_testkit import pg_server

    try:
        server = pg_server.shared_server()
    except RuntimeError as exc:
        skip_or_fail(str(exc))
    return Database(server.fresh_database(), **kwargs)


def as_if_listened(db: Database, trial_id: int, seconds: float = 600.0) -> None:
    """Move a served trial's ``served_at`` ``seconds`` into the past: a simulated rater who answers at once
    is then as patient as one who listened (the server's wait before a vote, study/listening.py)."""
    from datetime import timedelta

    from sqlalchemy import update

    from study.models import Trial, utcnow

    with db.write() as s:
        s.execute(update(Trial).where(Trial.id == trial_id).values(served_at=utcnow() - timedelta(seconds=seconds)))
