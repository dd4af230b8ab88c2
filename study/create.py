"""Create a study: pick clips and candidate soundtracks, premux them, store the study and its plan.

Two routes to the clips and candidates:

* from a bundle (``clips_from_bundle``): clips from the bundle's video catalog split (or a folder);
  ``ground_truth`` = the clip's own music, ``vmnet`` (or any condition listed under ``[models]``)
  = that model's best track other than the ground truth, ``random`` = a seeded random other track;
* from an explicit candidates CSV (``clips_from_csv``), which needs no model:
  ``video,condition,track[,title,track_id]``, paths relative to the CSV's folder.
"""

from __future__ import annotations

import csv
import secrets
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sqlalchemy import select

from study.config import StudyConfig
from study.db import Database
from study.design import CHECK_CONDITION, DesignSpec
from study.models import Candidate, Stimulus, Study
from study.slots import add_slots
from study.stimuli import ClipSource, TrackSource, clip_duration, premux_all
from vmnet_core.errors import VmnetError

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v")


# ------------------------------------------------------------------------------- explicit route
def clips_from_csv(path: str | Path) -> list[ClipSource]:
    """Clips and candidates from a CSV with columns ``video, condition, track`` (optional ``title``,
    ``track_id``, ``name``); relative paths are read from the CSV's folder. One row per candidate."""
    path = Path(path)
    if not path.is_file():
        raise VmnetError(f"The candidates list {path} does not exist.")
    clips: dict[str, ClipSource] = {}
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = {"video", "condition", "track"} - set(reader.fieldnames or [])
        if missing:
            raise VmnetError(f"The candidates list {path.name} needs the columns video, condition and track "
                             f"(missing: {', '.join(sorted(missing))}).")
        for line, row in enumerate(reader, start=2):
            video = _resolve(row["video"], path.parent, f"{path.name} line {line}")
            track = _resolve(row["track"], path.parent, f"{path.name} line {line}")
            name = (row.get("name") or "").strip() or video.stem
            clip = clips.setdefault(name, ClipSource(name, video))
            if clip.video != video:
                raise VmnetError(f"{path.name} line {line}: the clip name {name!r} is used for two different videos.")
            condition = row["condition"].strip()
            if condition in clip.tracks:
                raise VmnetError(f"{path.name} line {line}: clip {name!r} has two {condition!r} candidates.")
            clip.tracks[condition] = TrackSource(condition, track, (row.get("track_id") or "").strip() or track.stem,
                                                 (row.get("title") or "").strip() or track.stem)
    if not clips:
        raise VmnetError(f"The candidates list {path.name} has no rows.")
    return list(clips.values())


def _resolve(value: str, base: Path, where: str) -> Path:
    p = Path((value or "").strip()).expanduser()
    p = p if p.is_absolute() else base / p
    if not p.is_file():
        raise VmnetError(f"{where}: the file {p} does not exist.")
    return p.resolve()


# --------------------------------------------------------------------------------- bundle route
def clips_from_bundle(bundle_dir: str | Path, config: StudyConfig) -> list[ClipSource]:
    """Clips and candidates from a trained bundle (see the module docstring)."""
    from vmnet_core.bundle.files import load_bundle

    bundle = load_bundle(bundle_dir)
    catalog = bundle.catalog
    music = catalog.items("music")
    if not music:
        raise VmnetError(f"The bundle {bundle_dir} has an empty music catalog; index music into it first.")
    rng = np.random.default_rng(config.seed)
    clips = _pick_clips(bundle, config, rng)
    models = {name: Path(p) for name, p in config.models.items()}
    retrievers: dict[str, object] = {}
    for clip, video_id, own_music in clips:
        chosen: set[str] = {own_music.id} if own_music is not None else set()
        for condition in config.conditions:
            if condition == "ground_truth":
                if own_music is None:
                    track = TrackSource(condition, clip.video, f"own:{clip.name}", f"{clip.name} (own soundtrack)")
                else:
                    track = _track(condition, own_music)
            elif condition == "random":
                continue  # after the model picks, so it differs from them
            elif condition == "vmnet" or condition in models:
                hits = _model_hits(condition, bundle, models, retrievers, clip, video_id)
                exclude = {own_music.id} if own_music is not None else set()
                pick = next((h for h in hits if h.id not in exclude), None)
                if pick is None:
                    raise VmnetError(f"The {condition} model found no track other than the ground truth for {clip.name}.")
                chosen.add(pick.id)
                track = TrackSource(condition, Path(pick.path), pick.id, pick.title)
            else:
                raise VmnetError(f"The condition {condition!r} has no source: use ground_truth, vmnet, random, "
                                 "list it under [models] with a bundle path, or use the candidates CSV route.")
            clip.tracks[condition] = track
        if "random" in config.conditions:
            pool = [m for m in music if m.id not in chosen and m.path]
            if not pool:
                raise VmnetError("The bundle's music catalog has no track left for the random condition.")
            clip.tracks["random"] = _track("random", pool[int(rng.integers(len(pool)))])
    return [c for c, _, _ in clips]


def _track(condition: str, item) -> TrackSource:
    if not item.path or not Path(item.path).is_file():
        raise VmnetError(f"The catalog track {item.id} points to {item.path!r}, which does not exist here.")
    return TrackSource(condition, Path(item.path), item.id, item.title)


def _pick_clips(bundle, config: StudyConfig, rng: np.random.Generator):
    """[(ClipSource without tracks, catalog video id or None, own music item or None)]."""
    catalog = bundle.catalog
    music_by_pair = {m.pair_id or m.id: m for m in catalog.items("music")}
    extra = 1 if config.practice and not config.practice_clip else 0  # a clip of its own for the practice trial
    if config.videos.source == "folder":
        folder = Path(config.videos.folder).expanduser()
        if not folder.is_dir():
            raise VmnetError(f"videos.folder {folder} is not a folder.")
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
        if not files:
            raise VmnetError(f"videos.folder {folder} holds no video files.")
        drawn = bool(config.videos.count) and config.videos.count + extra <= len(files)
        if drawn:  # else every file, and the practice clip is the last (study.create.practice_last)
            files = _with_practice(sorted(rng.choice(files, size=config.videos.count + extra, replace=False).tolist()),
                                   extra, rng)
        return [(ClipSource(f.stem, f.resolve(), practice=drawn and bool(extra) and i == len(files) - 1), None, None)
                for i, f in enumerate(files)]
    videos = [v for v in catalog.items("video") if v.split == config.videos.split and v.path]
    if not videos:
        raise VmnetError(f"The bundle's video catalog has no {config.videos.split!r} items with a file path.")
    count = config.videos.count or len(videos) - extra
    if count + extra > len(videos):
        more = " and one more for the practice trial" if extra else ""
        raise VmnetError(f"videos.count is {count}{more}, but the {config.videos.split!r} split has only "
                         f"{len(videos)} videos; lower videos.count{' or set practice = false' if extra else ''}.")
    picked = _with_practice(sorted(rng.choice(len(videos), size=count + extra, replace=False).tolist()), extra, rng)
    out = []
    for n, i in enumerate(picked):
        v = videos[i]
        own = music_by_pair.get(v.pair_id or v.id)
        if "ground_truth" in config.conditions and own is None:
            raise VmnetError(f"The video {v.id} has no paired music item in the catalog for ground_truth.")
        out.append((ClipSource(v.id, Path(v.path), practice=bool(extra) and n == len(picked) - 1), v.id, own))
    return out


def _with_practice(picked: list, extra: int, rng: np.random.Generator) -> list:
    """``picked`` (sorted) with, when ``extra``, one item drawn at random moved to the end: the
    practice clip."""
    if not extra or not picked:
        return picked
    k = int(rng.integers(len(picked)))
    return [*picked[:k], *picked[k + 1:], picked[k]]


def _model_hits(condition: str, bundle, models: dict[str, Path], retrievers: dict[str, object], clip: ClipSource,
                video_id: str | None, k: int = 10):
    """The model's top-k music for the clip: from the stored catalog embedding when the clip is a
    catalog item of that bundle, else by embedding the video file."""
    from vmnet_core.bundle.files import load_bundle
    from vmnet_core.bundle.retrieval import Retriever

    if condition not in retrievers:
        model_bundle = load_bundle(models[condition]) if condition in models else bundle
        retrievers[condition] = Retriever(model_bundle)
    retriever = retrievers[condition]
    catalog = retriever.bundle.catalog
    if video_id is not None and catalog.has("video", video_id):
        return catalog.search(catalog.embedding("video", video_id), side="music", k=k)
    return retriever.music_for_video(clip.video, k=k)


# ---------------------------------------------------------------------------------------- create
def design_for(config: StudyConfig, n_clips: int, plan_key: str | None = None) -> DesignSpec:
    """The trial-plan spec a config gives for ``n_clips`` scored clips (plus, with ``practice``,
    the practice clip after them), with a fresh secret ``plan_key`` unless one is given: the config
    and its seed may be public (the default study's are in this code), the plan must not be."""
    return DesignSpec(
        n_stimuli=n_clips, pairs=tuple(config.condition_pairs), trials_per_participant=config.trials_per_participant,
        attention_checks=config.attention.count, attention_kind=config.attention.kind,
        attention_reference=config.attention_reference, swapped_repeats=config.swapped_repeats,
        practice=config.practice, seed=config.seed, practice_clip=config.practice,
        plan_key=secrets.token_hex(16) if plan_key is None else plan_key)


def practice_last(config: StudyConfig, clips: list[ClipSource]) -> list[ClipSource]:
    """``clips`` in the order a study stores them: the scored clips, then (when ``config.practice``)
    the one practice clip, marked ``practice``. The practice clip is the one named
    ``config.practice_clip``, else one marked ``practice`` (``clips_from_bundle`` draws an extra
    clip for it), else the last clip; without practice, clips marked ``practice`` are left out."""
    if not config.practice:
        return [c for c in clips if not c.practice]
    if config.practice_clip:
        named = [c for c in clips if c.name == config.practice_clip]
        if not named:
            raise VmnetError(f"practice_clip {config.practice_clip!r} is not one of the study's clips.")
        chosen = named[0]
    else:
        chosen = next((c for c in clips if c.practice), clips[-1] if clips else None)
    scored = [c for c in clips if c is not chosen and not c.practice]
    if chosen is None or not scored:
        raise VmnetError("The practice trial needs a clip of its own, kept out of the scored trials: give at "
                         "least two clips, or set practice = false.")
    return [*scored, ClipSource(chosen.name, chosen.video, dict(chosen.tracks), practice=True)]


def _check_clips(config: StudyConfig, clips: list[ClipSource]) -> None:
    if not clips:
        raise VmnetError("A study needs at least one clip.")
    names = [c.name for c in clips]
    if len(set(names)) != len(names):
        raise VmnetError("Two clips have the same name; give each clip its own name.")
    for clip in clips:
        missing = [c for c in config.conditions if c not in clip.tracks]
        if missing:
            raise VmnetError(f"Clip {clip.name!r} has no candidate for {', '.join(missing)}.")


def _ensure_new_name(db: Database, name: str) -> None:
    with db.read() as s:
        if s.scalar(select(Study.id).where(Study.name == name)) is not None:
            raise VmnetError(f"A study named {name!r} already exists in this database; choose another name.")


def create_study(db: Database, config: StudyConfig, clips: list[ClipSource], media_root: str | Path,
                 progress: Callable[[int, int], None] | None = None) -> str:
    """Premux every candidate into a fresh opaque folder under ``media_root``, store the study, its
    clips, candidates and the first planned slots; returns the study's name."""
    _check_clips(config, clips)
    clips = [ClipSource(c.name, c.video, {k: c.tracks[k] for k in config.conditions}, c.practice)
             for c in practice_last(config, clips)]
    spec = design_for(config, sum(not c.practice for c in clips))
    _ensure_new_name(db, config.name)
    media_dir = (Path(media_root).expanduser() / secrets.token_hex(8)).resolve()
    durations = [clip_duration(c.video, config.media) for c in clips]
    check_kind = config.attention.kind if config.attention.count else None
    media = premux_all(clips, media_dir, config.media, check_kind, progress, seed=config.seed)
    return store_study(db, config, clips, durations, media, media_dir, spec)


def store_study(db: Database, config: StudyConfig, clips: list[ClipSource], durations: list[float],
                media: dict[tuple[str, str], str], media_dir: Path, spec: DesignSpec | None = None) -> str:
    """Write the study rows for already-premuxed media (``{(clip name, condition): file name}``);
    ``durations`` go with ``clips``. The practice clip (see :func:`practice_last`) is stored last."""
    by_name = dict(zip((c.name for c in clips), durations, strict=True))
    clips = practice_last(config, clips)
    durations = [by_name[c.name] for c in clips]
    spec = spec or design_for(config, sum(not c.practice for c in clips))
    with db.write() as s:
        if s.scalar(select(Study.id).where(Study.name == config.name)) is not None:
            raise VmnetError(f"A study named {config.name!r} already exists in this database; choose another name.")
        study = Study(name=config.name, public_key=secrets.token_urlsafe(12), seed=config.seed,
                      media_dir=str(media_dir), config=config.to_dict(), design=spec.to_dict())
        s.add(study)
        s.flush()
        for ordinal, (clip, duration) in enumerate(zip(clips, durations, strict=True)):
            stimulus = Stimulus(study_id=study.id, ordinal=ordinal, name=clip.name, source_path=str(clip.video),
                                duration_s=float(duration))
            study.stimuli.append(stimulus)
            s.flush()
            for condition, track in clip.tracks.items():
                s.add(Candidate(study_id=study.id, stimulus_id=stimulus.id, condition=condition,
                                track_id=track.track_id or track.path.stem, track_title=track.title or track.path.stem,
                                track_path=str(track.path), media_file=media[(clip.name, condition)]))
            if (clip.name, CHECK_CONDITION) in media:
                s.add(Candidate(study_id=study.id, stimulus_id=stimulus.id, condition=CHECK_CONDITION,
                                track_id=CHECK_CONDITION, track_title=f"attention check ({config.attention.kind})",
                                track_path="", media_file=media[(clip.name, CHECK_CONDITION)]))
        s.flush()
        add_slots(s, study, 0, config.participants or spec.replicate_size)
        return study.name
