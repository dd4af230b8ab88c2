"""Bundles: save/load round trip, clear errors for every kind of damage, store indexing, and the
``vmnet index`` / ``vmnet query`` commands on real generated media."""

from __future__ import annotations

import functools
import json
import subprocess
import sys

import numpy as np
import pytest

from vmnet_core.bundle.catalog import Catalog
from vmnet_core.bundle.config import BundleConfig, DescriptorRecord, VideoSampling
from vmnet_core.bundle.files import MODEL_FILE, PREPROCESS_FILE, Bundle, load_bundle, save_bundle
from vmnet_core.errors import VmnetError
from vmnet_core.learn.model import ModelConfig, VMNet, embed_arrays
from vmnet_core.learn.preprocess import PreprocessConfig, Preprocessor
from vmnet_core.learn.train import TrainConfig

N_FIT = 24


@functools.cache
def fitted_preprocessor(seed: int, components: int, video_in: int):
    """A real Preprocessor: music z-scores fitted on random descriptors; the whitening PCA gets a random
    orthonormal basis through ``WhiteningPCA.from_arrays`` (an eigh of 1280×1280 would dominate the tests)."""
    from vmnet_core.features.video_descriptor import WhiteningPCA
    from vmnet_core.learn.input_transform import LinearInput, whitening_input

    rng = np.random.default_rng(seed)
    music = rng.standard_normal((N_FIT, 1140)).astype(np.float32) * 3 + 1
    video = rng.standard_normal((N_FIT, video_in)).astype(np.float32)
    basis, _ = np.linalg.qr(rng.standard_normal((video_in, components)))  # (Dv, K) orthonormal columns
    pca = WhiteningPCA.from_arrays({"mean": video.mean(axis=0).astype(np.float64), "components": basis.T,
                                    "explained_variance": np.linspace(2.0, 0.5, components),
                                    "eps": np.array([1e-6]), "n_components": np.array([components])})
    video_input = whitening_input(pca)
    preprocessor = Preprocessor(LinearInput(music.mean(axis=0), music.std(axis=0), None, "zscore"), video_input,
                                PreprocessConfig(mode="paper", video_components=components))
    return preprocessor, music, video


def make_parts(seed: int = 0, components: int = 16, video_in: int = 1280):
    """A real fitted Preprocessor and a small real VMNet (trained weights are not needed here)."""
    import torch

    preprocessor, music, video = fitted_preprocessor(0, components, video_in)
    torch.manual_seed(seed)
    config = ModelConfig(music_dim=preprocessor.music_dim, video_dim=preprocessor.video_dim,
                         music_hidden=(32,), video_hidden=(32,), embed_dim=512)
    model = VMNet(config)
    model.train()
    model(torch.randn(8, config.music_dim), torch.randn(8, config.video_dim))  # move the BN statistics
    model.eval()
    return model, preprocessor, music, video


def write_bundle(path, seed: int = 0, catalog: Catalog | None = None, **kwargs):
    model, preprocessor, music, video = make_parts(seed, **kwargs)
    save_bundle(path, model, preprocessor, {"train": {"seed": seed}, "descriptors": {}},
                {"test": {"R@10": 0.5}}, "# Test bundle\nTrained on noise.", catalog=catalog)
    return model, preprocessor, music, video


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("bundles") / "b"
    write_bundle(path)
    return path


def test_round_trip_gives_the_same_embeddings(tmp_path):
    model, preprocessor, music, video = make_parts(seed=1)
    catalog = Catalog()
    em, ev = embed_arrays(model, preprocessor.transform_music(music), preprocessor.transform_video_vectors(video))
    catalog.add("music", em, [{"id": f"m{i}", "tags": {"genre": "noise"}} for i in range(N_FIT)])
    out = save_bundle(tmp_path / "bundle", model, preprocessor, {"train": {"lr": 3e-4}}, {"R@1": 0.1},
                      "# card", catalog=catalog)
    bundle = load_bundle(out)
    assert isinstance(bundle, Bundle) and bundle.path == out
    assert not bundle.model.training
    em2, ev2 = embed_arrays(bundle.model, bundle.preprocessor.transform_music(music),
                            bundle.preprocessor.transform_video_vectors(video))
    np.testing.assert_allclose(em2, em, atol=1e-6)
    np.testing.assert_allclose(ev2, ev, atol=1e-6)
    np.testing.assert_array_equal(bundle.catalog.embeddings("music"), catalog.embeddings("music"))
    assert bundle.catalog.item("music", "m3").tags == {"genre": "noise"}
    assert bundle.metrics == {"R@1": 0.1} and bundle.card == "# card\n"
    config = bundle.config
    assert isinstance(config, BundleConfig) and config.format_version == 1
    assert config.train == TrainConfig(lr=3e-4)  # the recorded keys over the defaults
    assert config.model == model.config
    assert config.dims.to_dict() == {"music_descriptor": 1140, "video_descriptor": 1280, "music_input": 1140,
                                     "video_input": preprocessor.video_dim, "embedding": 512}
    assert {"torch", "numpy", "librosa", "vmnet"} <= set(config.versions)
    assert config.preprocess == preprocessor.config
    assert config.split is None and config.store is None and config.training is None
    assert config.descriptors == DescriptorRecord()  # none recorded: the extractor's defaults
    assert json.loads((out / "config.json").read_text())["preprocess"]["video_dim"] == preprocessor.video_dim
    assert sorted(p.name for p in (out / "catalog").iterdir()) == [
        "music.jsonl", "music.safetensors", "video.jsonl", "video.safetensors"]
    assert not list(tmp_path.glob(".*tmp*")), "the staging directory must be gone"


def test_resave_keeps_other_files_and_replaces_the_catalog(tmp_path):
    out = tmp_path / "b"
    (out / "training").mkdir(parents=True)
    (out / "training" / "metrics.jsonl").write_text("{}\n")
    catalog = Catalog()
    catalog.add("video", np.eye(1, 512, dtype=np.float32), [{"id": "v"}])
    write_bundle(out, catalog=catalog)
    assert load_bundle(out).catalog.size("video") == 1
    write_bundle(out, seed=2)  # retrained model: the old catalog's embeddings are stale
    assert load_bundle(out).catalog.size("video") == 0
    assert (out / "training" / "metrics.jsonl").read_text() == "{}\n"


def test_save_refuses_a_foreign_config_json(tmp_path):
    (tmp_path / "config.json").write_text('{"name": "someone else\'s"}')
    with pytest.raises(VmnetError, match="not a vmnet bundle"):
        write_bundle(tmp_path)


def test_bundle_save_catalog(bundle_dir, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(bundle_dir, copy)
    bundle = load_bundle(copy)
    bundle.catalog.add("music", np.eye(2, 512, dtype=np.float32), [{"id": "a"}, {"id": "b"}])
    bundle.save_catalog()
    assert load_bundle(copy).catalog.ids("music") == ["a", "b"]


# --------------------------------------------------------------------------- damage


def _edit_json(path, change):
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


DAMAGE = {
    "missing weights": (lambda d: (d / MODEL_FILE).unlink(), "model weights file is missing"),
    "truncated weights": (lambda d: _truncate(d / MODEL_FILE), "damaged or truncated"),
    "garbage weights": (lambda d: (d / MODEL_FILE).write_bytes(b"\x00" * 64), "damaged or truncated"),
    "truncated preprocessor": (lambda d: _truncate(d / PREPROCESS_FILE, 0.9), "damaged or truncated"),
    "missing preprocessor": (lambda d: (d / PREPROCESS_FILE).unlink(), "preprocessor file is missing"),
    "bad config json": (lambda d: (d / "config.json").write_text('{"format": "vmnet-bundle",'), "not valid JSON"),
    "bad metrics json": (lambda d: (d / "metrics.json").write_text("{oops"), "not valid JSON"),
    "missing card": (lambda d: (d / "card.md").unlink(), "card is missing"),
    "missing config": (lambda d: (d / "config.json").unlink(), "not a vmnet bundle"),
    "newer format version": (lambda d: _edit_json(d / "config.json", lambda c: c.update(format_version=2)),
                             "newer than this vmnet reads"),
    "older format version": (lambda d: _edit_json(d / "config.json", lambda c: c.update(format_version=0)),
                             "cannot read"),
    "foreign format": (lambda d: _edit_json(d / "config.json", lambda c: c.update(format="other")),
                       "not a vmnet bundle"),
    "config embed dim vs weights": (
        lambda d: _edit_json(d / "config.json", lambda c: c["model"].update(embed_dim=256)),
        "does not match the network in config.json"),
    "config hidden width vs weights": (
        lambda d: _edit_json(d / "config.json", lambda c: c["model"].update(music_hidden=[64])),
        "weight 'music.hidden.0.weight' has shape"),
    "config dims vs files": (
        lambda d: _edit_json(d / "config.json", lambda c: c["dims"].update(video_descriptor=1024)),
        "config.json says video_descriptor is 1024"),
    "bad model section": (lambda d: _edit_json(d / "config.json", lambda c: c["model"].update(colour="red")),
                          "model section"),
    "missing dims section": (lambda d: _edit_json(d / "config.json", lambda c: c.pop("dims")), "no 'dims' section"),
    "bad train value": (lambda d: _edit_json(d / "config.json", lambda c: c["train"].update(batch_size=0)),
                        "train section of .* is not valid"),
    "bad sampling value": (lambda d: _edit_json(d / "config.json",
                                                lambda c: c["descriptors"].update(video={"fps": "often"})),
                           "descriptors.video section"),
    "truncated catalog": (lambda d: _truncate(d / "catalog" / "music.safetensors"), "damaged or truncated"),
    "bad catalog line": (lambda d: (d / "catalog" / "video.jsonl").write_text("not json\n"),
                         "not a valid catalog item"),
}


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_damaged_bundle_gives_one_clear_sentence(bundle_dir, tmp_path, kind):
    import shutil

    damage, message = DAMAGE[kind]
    copy = tmp_path / "b"
    shutil.copytree(bundle_dir, copy)
    damage(copy)
    with pytest.raises(VmnetError, match=message) as info:
        load_bundle(copy)
    assert "\n" not in str(info.value)


def test_a_full_config_loads_typed_and_unknown_keys_are_ignored(bundle_dir, tmp_path):
    """The sections `vmnet train` records (as its config.json holds them) come back typed; keys a newer
    vmnet might add are ignored."""
    import shutil

    copy = tmp_path / "b"
    shutil.copytree(bundle_dir, copy)
    recorded = {
        "train": {"lr": 3e-4, "batch_size": 200, "structure": False, "epochs": None, "new_knob": 1},
        "split": {"source": "store", "seed": 0, "counts": {"train": 3, "val": 1, "test": 2},
                  "val_ids": ["a"], "test_ids": ["b", "c"]},
        "store": {"path": "/s", "n_items": 6, "video_space": "efficientnet_lite0_1280_mean",
                  "dims": {"music": 1140, "video": 1280}},
        "descriptors": {"music": {"sr": 16000, "db_reference": "feature", "later": True},
                        "video": {"cnn": "efficientnet-lite0", "fps": 2.0, "max_frames": 100}},
        "training": {"steps": 60, "best_step": 40, "batch_size": 31, "steps_per_epoch": 1,
                     "stopped_early": False},
        "something_new": {"x": 1},
    }
    _edit_json(copy / "config.json", lambda c: c.update(recorded))
    config = load_bundle(copy).config
    assert config.train == TrainConfig(lr=3e-4, batch_size=200, structure=False)
    assert config.run.train is config.train and config.run.model == config.model
    assert config.held_out_ids("test") == ("b", "c") and config.held_out_ids("val") == ("a",)
    assert config.held_out_ids("train") == ()
    assert config.split.counts == {"train": 3, "val": 1, "test": 2} and config.split.source == "store"
    assert config.store.n_items == 6 and config.store.video_space == "efficientnet_lite0_1280_mean"
    assert config.descriptors.music.sr == 16000 and config.descriptors.music.n_fft == 512
    assert config.descriptors.video == VideoSampling(fps=2.0, max_frames=100)
    assert config.descriptors.video.span_s == 50.0
    assert config.training.best_step == 40 and config.training.stopped_early is False


def test_preprocessor_from_another_training_is_refused(tmp_path):
    write_bundle(tmp_path / "a", components=16)
    write_bundle(tmp_path / "b", components=8, video_in=64)  # e.g. imported 64-d video features
    (tmp_path / "b" / PREPROCESS_FILE).replace(tmp_path / "a" / PREPROCESS_FILE)
    with pytest.raises(VmnetError, match="preprocessor makes 8-d video inputs but the model takes 16-d"):
        load_bundle(tmp_path / "a")


def test_catalog_of_another_width_is_refused(tmp_path):
    write_bundle(tmp_path / "a")
    narrow = Catalog(dim=256)
    narrow.add("music", np.eye(1, 256, dtype=np.float32), [{"id": "x"}])
    narrow.save(tmp_path / "a" / "catalog")
    with pytest.raises(VmnetError, match="256-d embeddings but the model makes 512-d"):
        load_bundle(tmp_path / "a")


def test_missing_directory(tmp_path):
    with pytest.raises(VmnetError, match="does not exist"):
        load_bundle(tmp_path / "nope")


# --------------------------------------------------------------------------- store → catalog


def test_index_store_embeds_every_item_with_its_pair_and_tags(tmp_path):
    from vmnet_core.bundle.retrieval import Retriever, index_store
    from vmnet_core.features.store import VIDEO_SPACE_EXTRACTED, FeatureStore

    model, preprocessor, music, video = write_bundle(tmp_path / "b")
    rows = [{"id": f"clip{i}", "path": f"/v/clip{i}.mp4", "duration_s": 12.5, "split": "test" if i < 5 else "train",
             "status": "ok", "error": "", "tempo": str(90 + i)} for i in range(N_FIT)]
    store = FeatureStore.create(tmp_path / "store", rows, music, video, video_space=VIDEO_SPACE_EXTRACTED)
    bundle = load_bundle(tmp_path / "b")
    assert index_store(bundle, store, split="test") == {"music": 5, "video": 5}
    item = bundle.catalog.item("video", "clip3")
    assert item.pair_id == "clip3" and item.split == "test" and item.tags == {"tempo": "93"}
    assert item.duration_s == 12.5 and item.path == "/v/clip3.mp4"
    expected = Retriever(bundle).embed_video_vectors(video[3:4])[0]
    np.testing.assert_allclose(bundle.catalog.embeddings("video")[3], expected, atol=1e-6)
    hit = bundle.catalog.search(expected, side="video", k=1)[0]
    assert hit.id == "clip3" and hit.score == pytest.approx(1.0, abs=1e-5)


# --------------------------------------------------------------------------- the commands on real media


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory):
    from vmnet_testkit.mediagen import make_audio, make_video

    root = tmp_path_factory.mktemp("media")
    make_audio(root / "music" / "low.wav", seconds=3, freq=220, seed=1)
    make_audio(root / "music" / "high.mp3", seconds=3, freq=880, seed=2)
    make_video(root / "videos" / "clip_a.mp4", seconds=2, seed=3)
    make_video(root / "videos" / "clip_b.mp4", seconds=2, seed=4)
    (root / "tags.csv").write_text("file,genre,title\nlow.wav,drone,Low Drone\n")
    (root / "broken.mp4").write_bytes(b"this is not a video at all" * 20)
    return root


def test_index_and_query_commands(bundle_dir, media_dir, tmp_path, capsys):
    import shutil

    from vmnet_core.cli.main import main

    bundle = tmp_path / "b"
    shutil.copytree(bundle_dir, bundle)
    (media_dir / "music" / "zz_broken.wav").write_bytes(b"RIFF garbage" * 10)
    try:
        code = main(["index", "--bundle", str(bundle), "--music", str(media_dir / "music"),
                     "--videos", str(media_dir / "videos"), "--tags", str(media_dir / "tags.csv"), "--quiet"])
    finally:
        (media_dir / "music" / "zz_broken.wav").unlink()
    out, err = capsys.readouterr()
    assert code == 1, "one file failed, so the run says so"
    assert "zz_broken.wav" in err and "Traceback" not in err
    assert "music: 2 added, 0 already indexed, 1 failed" in out and "video: 2 added" in out

    loaded = load_bundle(bundle)
    assert sorted(loaded.catalog.ids("music")) == ["high", "low"]
    assert loaded.catalog.item("music", "low").title == "Low Drone"
    assert loaded.catalog.item("music", "low").tags == {"genre": "drone"}
    assert loaded.catalog.item("video", "clip_a").duration_s == pytest.approx(2.0, abs=0.2)
    # named cues are computed once, at index time, and kept with the catalog
    assert loaded.catalog.item("music", "low").cues["loudness_db"] < 0
    assert loaded.catalog.item("video", "clip_a").cues["duration_s"] == pytest.approx(2.0, abs=0.2)

    # resumable: a second run finds everything indexed
    assert main(["index", "--bundle", str(bundle), "--music", str(media_dir / "music"), "--quiet"]) == 0
    assert "music: 0 added, 2 already indexed, 0 failed" in capsys.readouterr().out

    assert main(["query", "--bundle", str(bundle), "--video", str(media_dir / "videos" / "clip_a.mp4"),
                 "-k", "5", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert [h["rank"] for h in hits] == [1, 2]
    assert {h["id"] for h in hits} == {"low", "high"}
    assert all(set(h) == {"rank", "id", "title", "score", "path", "tags", "start_s", "end_s", "explain"} for h in hits)
    assert all(isinstance(h["explain"], list) for h in hits)
    assert hits[0]["score"] >= hits[1]["score"]

    # music → video with a video's soundtrack as the query; its own pictures are in the catalog
    assert main(["query", "--bundle", str(bundle), "--music", str(media_dir / "music" / "low.wav"), "-k", "1"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("videos for low.wav") and ("[clip_a]" in text or "[clip_b]" in text)


def test_query_of_a_bad_file_exits_with_one_sentence(bundle_dir, media_dir):
    result = subprocess.run([sys.executable, "-m", "vmnet_core.cli.main", "query", "--bundle", str(bundle_dir),
                             "--video", str(media_dir / "broken.mp4")], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vmnet: error: ") and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_query_of_an_empty_catalog_says_what_to_do(bundle_dir, media_dir, capsys):
    from vmnet_core.cli.main import main

    assert main(["query", "--bundle", str(bundle_dir), "--music", str(media_dir / "music" / "low.wav")]) == 2
    assert "catalog is empty" in capsys.readouterr().err


def test_index_switches_a_large_side_to_approximate_search_and_back(bundle_dir, media_dir, tmp_path, capsys):
    import shutil

    from vmnet_core.cli.main import main

    bundle = tmp_path / "big"
    shutil.copytree(bundle_dir, bundle)
    loaded = load_bundle(bundle)
    rng = np.random.default_rng(5)
    centres = rng.standard_normal((40, 512)).astype(np.float32)
    rows = centres[rng.integers(0, 40, 11_000)] + 0.05 * rng.standard_normal((11_000, 512)).astype(np.float32)
    loaded.catalog.add("music", rows, [{"id": f"t{i}"} for i in range(11_000)])
    loaded.save_catalog()

    assert main(["index", "--bundle", str(bundle), "--approximate", "--target-recall", "0.9"]) == 0
    out = capsys.readouterr().out
    assert "music: approximate search over 11,000 items" in out and "measured recall@10" in out
    assert "video" not in out, "the empty video side stays exact"
    stats = load_bundle(bundle).catalog.approximate_stats("music")
    assert stats is not None and stats.recall >= 0.9

    for extra in ([], ["--exact"]):
        assert main(["query", "--bundle", str(bundle), "--video", str(media_dir / "videos" / "clip_a.mp4"),
                     "-k", "3", "--json", *extra]) == 0
        assert [h["rank"] for h in json.loads(capsys.readouterr().out)] == [1, 2, 3]

    assert main(["index", "--bundle", str(bundle), "--exact"]) == 0
    assert load_bundle(bundle).catalog.approximate_stats("music") is None
    assert main(["index", "--bundle", str(bundle_dir), "--approximate"]) == 2
    assert "at least 10,000 items" in capsys.readouterr().err


def test_query_json_explains_every_result_by_its_cues(bundle_dir, tmp_path, capsys):
    """A fast-cut bright clip and a slow dark clip against a loud major and a soft minor track."""
    import shutil

    from vmnet_core.cli.main import main
    from vmnet_testkit.cue_media import make_cue_media

    media = make_cue_media(tmp_path / "media")
    (tmp_path / "music").mkdir()
    for stem in ("fast_major", "slow_minor"):
        shutil.move(media[stem], tmp_path / "music" / media[stem].name)
    bundle = tmp_path / "b"
    shutil.copytree(bundle_dir, bundle)
    assert main(["index", "--bundle", str(bundle), "--music", str(tmp_path / "music"), "--quiet"]) == 0
    capsys.readouterr()
    why = {}
    for clip in ("fast_bright", "slow_dark"):
        assert main(["query", "--bundle", str(bundle), "--video", str(media[clip]), "-k", "5", "--json"]) == 0
        why[clip] = {h["id"]: h["explain"] for h in json.loads(capsys.readouterr().out)}
    assert set(why["fast_bright"]) == set(why["slow_dark"]) == {"fast_major", "slow_minor"}
    assert any(p.startswith("fast cuts") for p in why["fast_bright"]["fast_major"])
    assert any("dark, cold grading ↔ minor key" in p for p in why["slow_dark"]["slow_minor"])
    assert why["fast_bright"]["slow_minor"] == [] and why["slow_dark"]["fast_major"] == []

    assert main(["query", "--bundle", str(bundle), "--video", str(media["slow_dark"]), "-k", "2"]) == 0
    assert "why: long takes" in capsys.readouterr().out

    # a catalog indexed before cues existed: no explanations until `vmnet index --cues` fills them in
    lines = (bundle / "catalog" / "music.jsonl").read_text(encoding="utf-8").splitlines()
    old = "".join(json.dumps({k: v for k, v in json.loads(line).items() if k != "cues"}) + "\n" for line in lines)
    (bundle / "catalog" / "music.jsonl").write_text(old, encoding="utf-8")
    assert main(["query", "--bundle", str(bundle), "--video", str(media["slow_dark"]), "-k", "2", "--json"]) == 0
    assert [h["explain"] for h in json.loads(capsys.readouterr().out)] == [[], []]
    assert main(["index", "--bundle", str(bundle), "--cues"]) == 0
    assert "music: cues computed for 2 items; 0 still have none" in capsys.readouterr().out
    assert load_bundle(bundle).catalog.item("music", "slow_minor").cues["mode"] == "minor"
