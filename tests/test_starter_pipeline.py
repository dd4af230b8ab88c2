"""The starter pipeline: the tiny bundle (same code path as the app's default) is complete and
honest, and `vmnet starter` resumes an interrupted build instead of starting over."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from vmnet_core.bundle.files import load_bundle
from vmnet_core.cli.main import main as vmnet_main
from vmnet_core.errors import VmnetError
from vmnet_core.starter.items import LIBRARY_SOURCE, is_library_item, is_synthetic_item
from vmnet_core.starter.pipeline import (
    StarterSettings,
    _prepare_work_dir,
    build_starter_bundle,
    starter_split,
)

MOODS = {"calm", "energetic", "happy", "nostalgic", "tender"}
DIRECTIONS = ("video_to_music", "music_to_video")


def _settings(bundle: Path) -> dict:
    return json.loads((bundle / "metrics.json").read_text(encoding="utf-8"))["starter"]["settings"]


def test_tiny_bundle_has_every_file_and_loads(tiny_bundle):
    for name in ("config.json", "model.safetensors", "preprocess.safetensors", "metrics.json", "card.md",
                 "catalog/music.safetensors", "catalog/music.jsonl", "catalog/video.safetensors",
                 "catalog/video.jsonl", "ablation/config.json", "ablation/model.safetensors"):
        assert (tiny_bundle / name).is_file(), name
    bundle = load_bundle(tiny_bundle)
    assert bundle.config.train.structure is True
    assert load_bundle(tiny_bundle / "ablation").config.train.structure is False


def test_tiny_bundle_catalog_holds_the_corpus_and_the_28_labelled_real_tracks(tiny_bundle):
    clips = _settings(tiny_bundle)["clips"]
    catalog = load_bundle(tiny_bundle).catalog
    music, videos = catalog.items("music"), catalog.items("video")
    library = [item for item in music if is_library_item(item)]
    corpus_music = [item for item in music if not is_library_item(item)]

    assert len(library) == 28
    assert {item.tags["mood"] for item in library} == MOODS
    for item in library:
        assert item.id.startswith("library-") and item.tags["source"] == LIBRARY_SOURCE
        assert 40 <= float(item.tags["tempo_bpm"]) <= 200
        assert item.tags["key"].split()[-1] in ("major", "minor")
        assert Path(item.path).suffix == ".opus" and Path(item.path).is_file()
        assert item.title[0].isupper() and "_" not in item.title  # "Happy Electronic (Variation 411)"
        assert item.cues["mode"] in ("major", "minor") and item.cues["tempo_bpm"] > 0  # for "why this track"
        assert not is_synthetic_item(item)

    assert len(corpus_music) == len(videos) == clips
    assert {item.id for item in corpus_music} == {item.id for item in videos}
    for item in videos:
        assert item.pair_id == item.id and Path(item.path).is_file() and item.path.endswith(".mp4")
        assert {"tempo_bpm", "mode", "valence", "energy", "timbre", "register"} <= set(item.tags)
        assert {"cut_rate", "motion_energy", "brightness"} <= set(item.cues) and "tempo_bpm" not in item.cues
    for item in corpus_music:  # each side its own cues: the picture's for a video, the sound's for a track
        assert "tempo_bpm" in item.cues and "cut_rate" not in item.cues
    assert {item.split for item in videos} == {"train", "val", "test"}
    assert all(is_synthetic_item(item) for item in corpus_music)  # hidden from the demo unless asked
    assert not any(is_library_item(item) for item in videos)


def test_tiny_bundle_card_says_what_it_was_trained_on(tiny_bundle):
    settings = _settings(tiny_bundle)
    card = (tiny_bundle / "card.md").read_text(encoding="utf-8")
    assert f"Trained on {settings['clips']} procedural music videos" in card
    assert "never seen real footage" in card
    assert "immich-memories-music" in card
    assert "Held-out test gallery" in card


def test_tiny_bundle_metrics_report_held_out_recall_both_ways_with_baselines(tiny_bundle):
    metrics = json.loads((tiny_bundle / "metrics.json").read_text(encoding="utf-8"))
    clips = metrics["starter"]["settings"]["clips"]
    n_test = sum(starter_split(i) == "test" for i in range(clips))
    assert metrics["test"]["gallery"] == n_test
    for direction in DIRECTIONS:
        block = metrics["test"][direction]
        assert 0.0 <= block["R@1"] <= block.get("R@10", 1.0) <= 1.0
        assert 1 <= block["median_rank"] <= n_test
    compare = metrics["starter"]["evaluation"]["compare"]
    assert set(compare) == {"vmnet", "no_structure", "plain", "cca", "pls", "random"}
    for name, block in compare.items():
        assert block["gallery"] == n_test, name
        assert all(d in block for d in DIRECTIONS), name
    assert compare["vmnet"]["video_to_music"] == metrics["test"]["video_to_music"]
    seconds = metrics["starter"]["build_seconds"]
    assert {"corpus", "extract", "library", "train", "evaluate", "index", "total"} <= set(seconds)


def test_vmnet_starter_resumes_keeping_finished_clips_and_features(tiny_bundle, tmp_path, capsys):
    """A build interrupted during generation: rerunning regenerates only the missing clips and
    extracts nothing again (corpus settings unchanged), then trains and writes the bundle."""
    settings = _settings(tiny_bundle)
    old_work = tiny_bundle.with_name(tiny_bundle.name + ".work")
    out = tmp_path / "bundle"
    work = out.with_name("bundle.work")
    work.mkdir()
    for name in ("corpus", "store", "library-store"):
        shutil.copytree(old_work / name, work / name)
    shutil.copy2(old_work / "starter.json", work / "starter.json")
    clips = sorted((work / "corpus" / "clips").glob("*.mp4"))
    lost = clips[-2:]
    for path in lost:
        path.unlink()
    kept = {path: path.stat().st_mtime_ns for path in clips[:-2]}
    parts = {path: path.stat().st_mtime_ns for path in (work / "store" / "parts").glob("*.npz")}
    assert parts

    code = vmnet_main(["starter", "--out", str(out), "--clips", str(settings["clips"]),
                       "--seconds", str(settings["seconds"]), "--seed", str(settings["seed"]),
                       "--steps", "4", "--val-every", "2", "--workers", "1"])

    assert code == 0
    assert "starter bundle ready" in capsys.readouterr().out
    assert all(path.is_file() for path in lost)
    assert {path: path.stat().st_mtime_ns for path in kept} == kept  # not generated again
    assert {path: path.stat().st_mtime_ns for path in parts} == parts  # not extracted again
    bundle = load_bundle(out)
    # the trained shapes ran the 4 steps asked for; the closed-form cca step has none (capacity ladder)
    trained = [json.loads(line) for line in (out / "training" / "capacity" / "linear" / "metrics.jsonl")
               .read_text().splitlines()]
    assert max(r["step"] for r in trained) == 4
    assert bundle.config.training.steps == (0 if bundle.config.model.capacity == "cca" else 4)
    assert bundle.catalog.size("video") == settings["clips"]
    assert not (work / "bundle").exists() and (out / "ablation" / "config.json").is_file()
    assert build_starter_bundle(out, StarterSettings(clips=3)) == out  # a finished bundle is kept as it is


def test_changed_settings_discard_only_what_they_invalidate(tmp_path):
    work = tmp_path / "b.work"
    _prepare_work_dir(work, StarterSettings(clips=20, max_steps=10), progress=False)
    for name in ("corpus", "store", "bundle", "ablation"):
        (work / name).mkdir()

    _prepare_work_dir(work, StarterSettings(clips=20, max_steps=30), progress=False)
    assert sorted(p.name for p in work.iterdir() if p.is_dir()) == ["corpus", "store"]

    _prepare_work_dir(work, StarterSettings(clips=40, max_steps=30), progress=False)
    assert not any(p.is_dir() for p in work.iterdir())


def test_a_corpus_too_small_to_train_on_is_refused(tmp_path):
    with pytest.raises(VmnetError, match="only 4 usable clips"):
        build_starter_bundle(tmp_path / "b", StarterSettings(clips=4, seconds=2.0, workers=1), progress=False)


def test_starter_split_holds_out_a_quarter_for_test():
    splits = [starter_split(i) for i in range(100)]
    assert (splits.count("test"), splits.count("val"), splits.count("train")) == (25, 10, 65)


def test_the_media_music_offset_moves_real_music_onto_the_training_music_and_keeps_its_differences(tiny_bundle):
    import numpy as np

    bundle = load_bundle(tiny_bundle)
    preprocessor = bundle.preprocessor
    assert preprocessor.media_music_offset is not None, "the starter bundle carries the offset fitted on the library"
    library = np.random.default_rng(0).normal(-30.0, 5.0, (28, preprocessor.music_in_dim)).astype(np.float32)
    preprocessor.set_media_music_offset(library)
    aligned = library + preprocessor.media_music_offset
    np.testing.assert_allclose(aligned.mean(axis=0), preprocessor.music.mean, atol=1e-3)
    np.testing.assert_allclose(preprocessor.transform_media_music(library), preprocessor.transform_music(aligned),
                               atol=1e-5)
    with pytest.raises(VmnetError, match="at least two"):
        preprocessor.set_media_music_offset(library[:1])


def test_a_music_file_added_later_is_embedded_like_the_bundled_library(tiny_bundle):
    """The offset is saved with the bundle, so a real track indexed by a user lands where the library's did."""
    from vmnet_core.bundle.retrieval import Retriever

    bundle = load_bundle(tiny_bundle)
    library = [item for item in bundle.catalog.items("music") if is_library_item(item)]
    item = library[0]
    again = Retriever(bundle).embed_music_file(item.path)
    stored = bundle.catalog.embeddings("music")[bundle.catalog.ids("music").index(item.id)]
    assert float(again @ stored) > 0.99


def test_library_titles_read_like_a_music_library():
    from vmnet_core.datasets.music_library import MusicTrack

    def title(stem: str) -> str:
        return MusicTrack(stem, Path(f"{stem}.opus"), 30.0, "calm", 68.0, "C major", 1, "acoustic").display_title

    assert title("calm_acoustic_1") == "Calm Acoustic 1"
    assert title("happy_electronic_s411") == "Happy Electronic (Variation 411)"
    assert title("tender") == "Tender"


def test_vmnet_query_leaves_the_synthetic_training_tracks_out_unless_asked(tiny_bundle, capsys):
    catalog = load_bundle(tiny_bundle).catalog
    video = next(item.path for item in catalog.items("video") if item.path)
    synthetic = sum(1 for item in catalog.items("music") if is_synthetic_item(item))

    assert vmnet_main(["query", "--bundle", str(tiny_bundle), "--video", str(video), "-k", "40", "--json"]) == 0
    real_only = [hit["id"] for hit in json.loads(capsys.readouterr().out)]
    assert len(real_only) == 28 and all(hit.startswith("library-") for hit in real_only)

    assert vmnet_main(["query", "--bundle", str(tiny_bundle), "--video", str(video), "-k", "40", "--json",
                       "--include-training"]) == 0
    every = [hit["id"] for hit in json.loads(capsys.readouterr().out)]
    assert len(every) == 40 and any(hit.startswith("starter-") for hit in every)

    assert vmnet_main(["query", "--bundle", str(tiny_bundle), "--video", str(video), "-k", "3"]) == 0
    assert f"{synthetic} synthetic training tracks left out, --include-training lists them" in capsys.readouterr().out
