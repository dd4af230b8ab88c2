"""The built-in default: starter corpus → feature store → VM-NET → evaluation → catalog → bundle.

``build_starter_bundle`` is what ``vmnet starter`` and a first ``python app.py`` run. Every step
uses the same public code path as a user's own data (extraction, training, indexing), and each
step resumes: an interrupted build picks up where it stopped. The finished bundle appears
atomically (built in ``<out>.work/`` and moved into place last).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from vmnet_core.errors import VmnetError

DEFAULT_BUNDLE_NAME = "starter-bundle-v1"


@dataclass(frozen=True)
class StarterSettings:
    """How the default bundle is made; the defaults fit the 6-minute first-start budget on 2 cores."""

    clips: int = 240  # procedural music videos in the corpus
    seconds: float = 30.0  # length of each clip (≥ the 29.12-s music window: no zero padding)
    seed: int = 0
    workers: int | None = None  # processes for generation/extraction (None: all cores)
    max_steps: int = 600  # training steps (small corpus: converges well before this)
    val_every: int = 50
    batch_size: int = 1000  # the paper's; clamped to the train split's size
    index_real_library: bool = True  # add the 28 tracks of immich-memories-music to the catalog


def build_starter_bundle(out: str | Path, settings: StarterSettings | None = None,
                         progress: bool = True) -> Path:
    """Build the starter bundle into ``out`` and return it; see the module docstring.

    Work files (corpus mp4s, store, training checkpoints) stay in ``<out>.work/``: the catalog's
    corpus items point at those mp4s, so the two directories belong together.
    """
    from vmnet_core.bundle import load_bundle
    from vmnet_core.extract import InputItem, extract_store
    from vmnet_core.retrieval import index_store
    from vmnet_core.starter.corpus import generate_corpus
    from vmnet_core.store import read_manifest
    from vmnet_core.train import RunConfig, TrainConfig, train_bundle

    settings = settings or StarterSettings()
    out = Path(out).absolute()
    if (out / "config.json").exists():
        return out
    work = out.with_name(out.name + ".work")
    workers = settings.workers or max(1, os.cpu_count() or 1)
    timings: dict[str, float] = {}

    def step(name: str):
        if progress:
            print(f"vmnet starter: {name}...", flush=True)
        timings[name] = time.perf_counter()

    def done(name: str) -> None:
        timings[name] = round(time.perf_counter() - timings[name], 1)

    step("generating the procedural corpus")
    corpus_dir = generate_corpus(work / "corpus", settings.clips, settings.seconds, settings.seed, workers,
                                 progress=_printer("clips", progress))
    done("generating the procedural corpus")
    rows = [row for row in read_manifest(corpus_dir / "manifest.csv") if row["status"] == "ok"]
    if len(rows) < 10:
        raise VmnetError(f"The starter corpus in {corpus_dir} has only {len(rows)} usable clips; delete it and retry.")
    base = {"id", "path", "duration_s", "split", "status", "error"}
    splits = {row["id"]: starter_split(index) for index, row in enumerate(rows)}

    step("extracting music and video descriptors")
    store_dir = work / "store"
    extract_store([InputItem(row["id"], Path(row["path"])) for row in rows], store_dir, workers=workers,
                  split_map=splits,
                  extra_columns={row["id"]: {k: v for k, v in row.items() if k not in base} for row in rows},
                  progress=progress)
    done("extracting music and video descriptors")

    step("training VM-NET")
    bundle_dir = work / "bundle"
    train = TrainConfig(max_steps=settings.max_steps, val_every=settings.val_every, batch_size=settings.batch_size,
                        seed=settings.seed, progress=progress, num_threads=os.cpu_count())
    if not (bundle_dir / "config.json").exists():
        train_bundle(store_dir, bundle_dir, RunConfig(train=train), with_ablation=True)
    done("training VM-NET")

    step("evaluating against random, CCA and the no-structure ablation")
    from vmnet_core.baselines import evaluate_bundle

    bundle = load_bundle(bundle_dir)
    evaluation = evaluate_bundle(bundle, store_dir, split="test", compare=True, seed=settings.seed, progress=progress)
    done("evaluating against random, CCA and the no-structure ablation")

    step("indexing the catalog")
    from vmnet_core.store import FeatureStore

    index_store(bundle, FeatureStore.open(store_dir))
    if settings.index_real_library:
        index_real_library(bundle, progress)
    bundle.save_catalog()
    done("indexing the catalog")

    _write_starter_record(bundle_dir, settings, evaluation.result, timings)
    if out.exists():
        shutil.rmtree(out)
    os.replace(bundle_dir, out)
    return out


def starter_split(index: int) -> str:
    """Clip ``index``'s split: 20% test (a held-out gallery big enough to read R@K), 10% val, 70% train."""
    return "test" if index % 5 == 0 else "val" if index % 10 == 1 else "train"


def index_real_library(bundle, progress: bool = True) -> int:
    """Add the 28 real tracks of ``immich-memories-music`` (tags: mood, tempo, key) to the music side."""
    from vmnet_core.extract import InputItem
    from vmnet_core.music_library import load_music_library
    from vmnet_core.retrieval import Retriever, index_media_files

    tracks = load_music_library()
    tags = {f"library-{t.title}": {"title": t.title.replace("_", " "), "mood": t.mood, "tempo_bpm": t.tempo_bpm,
                                   "key": t.key, "style": t.style, "source": "immich-memories-music"}
            for t in tracks}
    inputs = [InputItem(f"library-{t.title}", t.path) for t in tracks]
    summary = index_media_files(Retriever(bundle), "music", inputs, tags=tags, progress=progress)
    if summary.failed:
        path, sentence = summary.failed[0]
        raise VmnetError(f"Indexing the bundled music library failed on {Path(path).name}: {sentence}")
    return summary.added


def _write_starter_record(bundle_dir: Path, settings: StarterSettings, evaluation: dict,
                          timings: dict[str, float]) -> None:
    """Add the comparison to metrics.json and an honest starter section to card.md."""
    metrics_path = bundle_dir / "metrics.json"
    metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
    metrics["starter"] = {"evaluation": evaluation, "build_seconds": timings,
                          "settings": settings.__dict__}
    metrics_path.write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    card_path = bundle_dir / "card.md"
    card = card_path.read_text(encoding="utf-8")
    card_path.write_text(card + "\n" + starter_card_section(settings, evaluation), encoding="utf-8")


def starter_card_section(settings: StarterSettings, evaluation: dict) -> str:
    """Markdown: what the starter bundle was trained on and what that means for real footage."""
    lines = [
        "## The starter bundle: what it is and is not",
        "",
        f"Trained on {settings.clips} procedural music videos ({settings.seconds:g} s each, seed {settings.seed}) "
        "generated by `vmnet_core.starter`: synthetic music and abstract animated shapes that share hidden "
        "factors (tempo ↔ motion speed and beat flashes, mode/valence ↔ lightness and hue warmth, energy ↔ "
        "saturation/contrast/motion, timbre ↔ texture, register ↔ height and size). See docs/starter-corpus.md.",
        "",
        "It has never seen real footage or real music videos. On real videos it can only respond to the "
        "same low-level cues (brightness, colour warmth, motion, busy textures); it knows nothing of "
        "genre, lyrics, people or story. Use it to try the app and the study; train on your own music "
        "videos for real results (README: 'Train on your own music videos').",
        "",
        f"Held-out test gallery: {evaluation.get('gallery')} pairs.",
        "",
        "| model | V→M R@1 | V→M R@10 | M→V R@1 | M→V R@10 | V→M median rank |",
        "|---|---|---|---|---|---|",
    ]
    for name, block in evaluation.get("compare", {"vmnet": evaluation}).items():
        v2m, m2v = block["video_to_music"], block["music_to_video"]
        lines.append(f"| {name} | {v2m.get('R@1', 0):.3f} | {v2m.get('R@10', 0):.3f} | {m2v.get('R@1', 0):.3f} "
                     f"| {m2v.get('R@10', 0):.3f} | {v2m.get('median_rank')} |")
    return "\n".join(lines) + "\n"


def _printer(what: str, enabled: bool):
    """A ``progress(done, total)`` callback printing a line every 10%."""
    if not enabled:
        return None
    last = [-1]

    def report(done: int, total: int) -> None:
        tenth = done * 10 // max(total, 1)
        if tenth != last[0]:
            last[0] = tenth
            print(f"  {what}: {done}/{total}", flush=True)

    return report
