"""The starter corpus: short procedural music videos whose sound and picture share hidden factors.

``generate_corpus`` writes ``clips/<id>.mp4`` (H.264 + AAC, through :func:`vmnet_core.media.write_video`)
and ``manifest.csv`` (the store's base columns, then the factors and nuisance of every clip) into one
folder, plus ``corpus.json`` with the parameters. Clip *i* depends only on (seed, i), so a corpus is
the same whatever the number of workers, and an interrupted run resumes: clips already on disk are
kept when ``corpus.json`` matches. See docs/starter-corpus.md for the factors and their mappings.
"""

from __future__ import annotations

import json
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from vmnet_core.errors import VmnetError
from vmnet_core.features.store import STATUS_ERROR, STATUS_OK, default_split, write_manifest
from vmnet_core.media import write_video
from vmnet_core.starter.audio_synth import synthesize_music
from vmnet_core.starter.factors import (
    ClipFactors,
    Nuisance,
    clip_columns,
    clip_rngs,
    nuisance_from_seed,
    sample_factors,
    sample_nuisance,
)
from vmnet_core.starter.visuals import render_frames

DEFAULT_SECONDS = 30.0          # ≥ the music descriptor's 29.12-s window, so no zero padding
DEFAULT_FPS = 8.0
DEFAULT_SIZE = (160, 160)       # (width, height); square, as the CNN's centre crop sees it
DEFAULT_SR = 22050
DEFAULT_PRESET = "ultrafast"
CLIPS_DIR = "clips"
CORPUS_INFO = "corpus.json"
CORPUS_FORMAT = "vmnet-starter-corpus/1"


def clip_id(index: int) -> str:
    """The id (and file stem) of clip ``index``: ``starter-00000``, ``starter-00001``, …"""
    return f"starter-{index:05d}"


def generate_clip(factors: ClipFactors, path: str | Path, seconds: float, seed: int, *,
                  nuisance: Nuisance | None = None, fps: float = DEFAULT_FPS,
                  size: tuple[int, int] = DEFAULT_SIZE, sr: int = DEFAULT_SR,
                  preset: str = DEFAULT_PRESET) -> Path:
    """Render one clip with the given factors to an mp4 at ``path`` and return the path.

    seed : picks the nuisance (key, melody, voicing, layout, background) unless ``nuisance`` is given.
    seconds : clip length; fps : frame rate; size : (width, height) in pixels, both even;
    sr : audio sample rate in Hz; preset : x264 speed preset.
    """
    _check_length(seconds, fps)
    if size[0] % 2 or size[1] % 2 or min(size) < 16:
        raise VmnetError(f"The starter frame size must be two even numbers of at least 16 pixels, not {size}.")
    nuisance = nuisance if nuisance is not None else nuisance_from_seed(seed)
    audio = synthesize_music(factors, nuisance, seconds, sr)
    frames = render_frames(factors, nuisance, seconds, fps, size)
    return write_video(frames, path, fps=fps, audio=audio, sr=sr, preset=preset)


def _check_length(seconds: float, fps: float) -> None:
    if not seconds > 0 or not fps > 0 or round(seconds * fps) < 1:
        raise VmnetError(f"A starter clip needs a positive length and frame rate (got {seconds} s at {fps} fps).")


def _clip_row(out_dir: Path, index: int, seed: int, seconds: float, fps: float, size: tuple[int, int],
              sr: int, preset: str, keep_existing: bool) -> dict[str, object]:
    """Make clip ``index`` (unless kept from an earlier run) and return its manifest row."""
    factor_rng, nuisance_rng = clip_rngs(seed, index)
    factors, nuisance = sample_factors(factor_rng), sample_nuisance(nuisance_rng)
    item_id = clip_id(index)
    path = (out_dir / CLIPS_DIR / f"{item_id}.mp4").resolve()
    row: dict[str, object] = {"id": item_id, "path": str(path), "duration_s": round(round(seconds * fps) / fps, 3),
                              "split": default_split(item_id), "status": STATUS_OK, "error": ""}
    try:
        if not (keep_existing and path.is_file()):
            generate_clip(factors, path, seconds, seed, nuisance=nuisance, fps=fps, size=size, sr=sr, preset=preset)
    except VmnetError as exc:
        row.update(status=STATUS_ERROR, error=str(exc))
    row.update(clip_columns(factors, nuisance))
    return row


def generate_corpus(out_dir: str | Path, clips: int, seconds: float = DEFAULT_SECONDS, seed: int = 0,
                    workers: int = 1, *, fps: float = DEFAULT_FPS, size: tuple[int, int] = DEFAULT_SIZE,
                    sr: int = DEFAULT_SR, preset: str = DEFAULT_PRESET,
                    progress: Callable[[int, int], None] | None = None) -> Path:
    """Write ``clips`` procedural music videos and their manifest into ``out_dir``; return ``out_dir``.

    Parameters
    ----------
    clips : number of clips (≥ 1); seconds : length of each clip.
    seed : corpus seed; clip i's factors, nuisance and content depend only on (seed, i).
    workers : processes rendering clips in parallel (the result does not depend on it).
    fps, size, sr, preset : frame rate, (width, height), audio rate, x264 preset.
    progress : called as ``progress(done, total)`` after each clip.

    Output: ``out_dir/clips/starter-NNNNN.mp4``, ``out_dir/manifest.csv`` (absolute paths; columns
    ``id,path,duration_s,split,status,error`` then factors and nuisance), ``out_dir/corpus.json``.
    """
    if clips < 1:
        raise VmnetError(f"The starter corpus needs at least one clip, not {clips}.")
    if workers < 1:
        raise VmnetError(f"The number of workers must be at least 1, not {workers}.")
    _check_length(seconds, fps)
    out_dir = Path(out_dir)
    (out_dir / CLIPS_DIR).mkdir(parents=True, exist_ok=True)
    info = {"format": CORPUS_FORMAT, "seed": seed, "seconds": seconds, "fps": fps, "size": list(size),
            "sr": sr, "preset": preset}
    info_path = out_dir / CORPUS_INFO
    keep_existing = info_path.is_file() and json.loads(info_path.read_text(encoding="utf-8")) == info
    info_path.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")

    jobs = [(out_dir, index, seed, seconds, fps, size, sr, preset, keep_existing) for index in range(clips)]
    rows: list[dict[str, object] | None] = [None] * clips
    if workers == 1:
        for index, job in enumerate(jobs):
            rows[index] = _clip_row(*job)
            if progress:
                progress(index + 1, clips)
    else:
        # spawn, not fork: the caller may hold threads (torch, a web server) that fork would copy badly
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(_clip_row, *job): job[1] for job in jobs}
            for done, future in enumerate(as_completed(futures), start=1):
                rows[futures[future]] = future.result()
                if progress:
                    progress(done, clips)
    write_manifest(out_dir / "manifest.csv", [row for row in rows if row is not None])
    return out_dir
