"""Issue 18: ``vmnet train`` chooses the tower shape on validation (capacity "auto"), records the
choice, resumes inside the ladder, and keeps the configured towers one setting away."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import load_file

from vmnet_core.bundle.files import load_bundle
from vmnet_core.bundle.recipes import train_bundle
from vmnet_core.bundle.retrieval import Retriever
from vmnet_core.errors import VmnetError
from vmnet_core.features.store import FeatureStore
from vmnet_core.learn.baselines import PLS_COMPONENTS, fit_cca_on_validation, fit_pls_on_validation
from vmnet_core.learn.capacity import CAPACITY_DIR, candidate_models, sized_model, wins_beyond_noise
from vmnet_core.learn.metrics import selection_noise
from vmnet_core.learn.model import ModelConfig, VMNet, embed_arrays
from vmnet_core.learn.preprocess import PreprocessConfig, Preprocessor
from vmnet_core.learn.train import (
    TrainResult,
    TrainState,
    load_run_config,
    paired_inputs,
    read_log,
    resolve_splits,
)
from vmnet_testkit.synthetic import write_realistic_store

QUICK = """
batch_size = 200
max_steps = 30
val_every = 10
log_every = 10
num_threads = 1
progress = false
"""


def _parameters(config: ModelConfig) -> int:
    return sum(p.numel() for p in VMNet(config).parameters())


def test_the_ladder_runs_from_cca_to_the_configured_towers():
    model = ModelConfig(music_dim=24, video_dim=17)
    ladder = candidate_models(model)
    assert list(ladder) == ["cca", "linear", "small", "full"]
    assert ladder["cca"].music_hidden == () and ladder["cca"].embed_dim == 17
    assert ladder["linear"].activation == "linear" and ladder["full"].activation == "relu"
    assert ladder["full"].music_hidden == (2048, 1024) and ladder["full"].video_hidden == (2048,)
    assert _parameters(ladder["small"]) < _parameters(ladder["full"]) / 5
    assert all(c.capacity == name for name, c in ladder.items())
    assert list(candidate_models(ModelConfig(capacity="small"))) == ["small"]
    with pytest.raises(VmnetError, match="Unknown capacity"):
        sized_model(model, "huge")


def _validated(score: float, mean_rank: float, gallery: int) -> TrainResult:
    row = {"R@10": score, "mean_rank": mean_rank}
    val = {"gallery": gallery, "video_to_music": row, "music_to_video": row}
    return TrainResult(model=None, state=TrainState(best_score=score, best_val=val), steps_per_epoch=1, batch_size=1)


def test_a_larger_shape_must_win_by_more_than_noise():
    # 500 validation pairs at R@10 0.18: one standard error is √(0.18 · 0.82 / 1000) ≈ 0.012
    smaller = _validated(0.18, 90.0, 500)
    assert not wins_beyond_noise(_validated(0.19, 80.0, 500), smaller, None)  # within noise, whatever the mean rank
    assert wins_beyond_noise(_validated(0.20, 95.0, 500), smaller, None)
    assert wins_beyond_noise(_validated(0.19, 95.0, 500), smaller, 0.005)  # an explicit min_delta
    # a 10-pair gallery puts R@10 at 1.0 for everything: the mean rank decides
    assert wins_beyond_noise(_validated(1.0, 2.0, 10), _validated(1.0, 2.5, 10), None)
    assert not wins_beyond_noise(_validated(1.0, 2.5, 10), _validated(1.0, 2.5, 10), None)


def test_a_bad_capacity_in_a_config_is_one_sentence(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('[model]\ncapacity = "huge"\n')
    with pytest.raises(VmnetError, match=r"\[model\].*capacity must be one of auto, pls, cca, linear, small, full"):
        load_run_config(config)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("capacity")
    config = root / "quick.toml"
    config.write_text(QUICK)
    return write_realistic_store(root / "store", n=700, n_val=150, n_test=150, seed=3), config


def _weights(bundle_dir):
    return load_file(str(bundle_dir / "model.safetensors"))


def test_auto_trains_each_shape_and_keeps_the_best_on_validation(store, tmp_path):
    store_dir, config = store
    out = train_bundle(store_dir, tmp_path / "auto", load_run_config(config))
    bundle = load_bundle(out)
    record = json.loads((out / "config.json").read_text())["capacity"]
    tried = list(record["val_scores"])
    ladder = tried[:-1]  # then pls, on its own inputs
    assert record["asked"] == "auto" and ladder == ["cca", "linear", "small", "full"][:len(ladder)] and len(ladder) >= 2
    assert tried[-1] == "pls"
    # each score is that candidate's own best validation score, read back from its log
    for name, score in record["val_scores"].items():
        log = read_log(out / "training" / CAPACITY_DIR / name / "metrics.jsonl")
        assert score == pytest.approx(max(r["score"] for r in log if r.get("split") == "val"), abs=1e-4)
    chosen, scores = record["chosen"], record["val_scores"]
    assert list(record["val_mean_ranks"]) == tried and all(r >= 1 for r in record["val_mean_ranks"].values())
    # the ladder climbed while the larger shape won by more than noise and stopped at the first that
    # did not; pls replaced its choice only by beating it beyond noise
    kept = ladder[-1] if len(ladder) == 4 and scores[ladder[-1]] > scores[ladder[-2]] else ladder[-2]
    assert all(scores[ladder[i + 1]] > scores[ladder[i]] for i in range(ladder.index(kept)))
    if chosen == "pls":
        assert scores["pls"] > scores[kept]
    else:
        assert chosen == kept and scores["pls"] <= scores[kept] + selection_noise(bundle.metrics["val"]) + 1e-4
    # the bundle holds the kept candidate: its shape, its log, its best validation numbers
    assert bundle.config.model.capacity == chosen
    assert bundle.config.model == sized_model(bundle.config.model, chosen)
    assert (out / "training" / "metrics.jsonl").read_text() == \
        (out / "training" / CAPACITY_DIR / chosen / "metrics.jsonl").read_text()
    assert bundle.metrics["val_curve"] and f"towers: {chosen}" in bundle.card and "chosen on validation" in bundle.card
    em = Retriever(bundle).embed_music_descriptors(np.ones((1, bundle.preprocessor.music_in_dim), np.float32))
    assert em.shape == (1, bundle.config.model.embed_dim) and np.isclose(np.linalg.norm(em), 1.0)


def _closed_form_bundle(store, tmp_path, capacity: str):
    """``(bundle dir, bundle, store, splits)`` of the named closed-form capacity, checked to have trained no step."""
    store_dir, config = store
    run = load_run_config(config)
    out = train_bundle(store_dir, tmp_path / capacity, run.__class__(
        train=run.train, model=sized_model(run.model, capacity), preprocess=run.preprocess))
    bundle = load_bundle(out)
    assert bundle.config.model.capacity == capacity and bundle.config.training.steps == 0
    store_ = FeatureStore.open(store_dir)
    return out, bundle, store_, resolve_splits(store_, run.train)


def test_the_cca_step_is_the_cca_baseline_as_a_network(store, tmp_path):
    """Closed form, no training: the bundle's embeddings are regularised CCA's (ridge chosen on
    validation) on the same inputs, and evaluate scores it as it scores the CCA baseline."""
    out, bundle, store_, splits = _closed_form_bundle(store, tmp_path, "cca")
    train, val, test = (paired_inputs(store_, bundle.preprocessor, ids) for ids in (splits.train, splits.val, splits.test))
    cca = fit_cca_on_validation(train, val, n_components=bundle.config.model.embed_dim)
    em, ev = embed_arrays(bundle.model, test.music, test.video)
    np.testing.assert_allclose(em, cca.encode_music(test.music), atol=1e-5)
    np.testing.assert_allclose(ev, cca.encode_video(test.video), atol=1e-5)
    log = read_log(out / "training" / "metrics.jsonl")
    assert len(log) == 1 and log[0]["ridge"] == cca.ridge and log[0]["score"] == pytest.approx(
        bundle.metrics["val"]["video_to_music"]["R@10"] / 2 + bundle.metrics["val"]["music_to_video"]["R@10"] / 2)


def test_the_pls_step_is_pls_on_z_scores_as_a_network(store, tmp_path):
    """Closed form on the z-scored inputs (not the data-aware ones: PLS averages the noise of every
    feature): the bundle's embeddings are PLS's, its number of components chosen on validation."""
    out, bundle, store_, splits = _closed_form_bundle(store, tmp_path, "pls")
    assert bundle.preprocessor.describe()["mode"] == "zscore"
    z_scores = Preprocessor.fit_store(store_, splits.train, PreprocessConfig(mode="zscore"))
    train, val, test = (paired_inputs(store_, z_scores, ids) for ids in (splits.train, splits.val, splits.test))
    pls = fit_pls_on_validation(train, val)
    assert bundle.config.model.embed_dim == pls.music_proj.shape[1] in PLS_COMPONENTS
    bundle_test = paired_inputs(store_, bundle.preprocessor, splits.test)
    em, ev = embed_arrays(bundle.model, bundle_test.music, bundle_test.video)
    np.testing.assert_allclose(em, pls.encode_music(test.music), atol=1e-5)
    np.testing.assert_allclose(ev, pls.encode_video(test.video), atol=1e-5)
    log = read_log(out / "training" / "metrics.jsonl")
    assert len(log) == 1 and log[0]["components"] == bundle.config.model.embed_dim


def test_a_named_capacity_trains_that_shape_only(store, tmp_path):
    store_dir, config = store
    run = load_run_config(config)
    out = train_bundle(store_dir, tmp_path / "small", run.__class__(
        train=run.train, model=sized_model(run.model, "small"), preprocess=run.preprocess))
    record = json.loads((out / "config.json").read_text())["capacity"]
    assert record["asked"] == "small" and list(record["val_scores"]) == ["small"]
    assert not (out / "training" / CAPACITY_DIR).exists()
    assert "towers: small, as configured" in load_bundle(out).card


def test_an_interrupted_ladder_resumes_to_the_same_bundle(store, tmp_path, monkeypatch):
    """On z-scored inputs (no pls rung) CCA loses to the trained linear towers, so the ladder
    trains; it is stopped inside that step and run again."""
    import vmnet_core.learn.train as train_module

    store_dir, _ = store
    config = tmp_path / "zscores.toml"
    config.write_text(QUICK + '\n[preprocess]\nmode = "zscore"\n')
    straight = train_bundle(store_dir, tmp_path / "straight", load_run_config(config))
    out = tmp_path / "interrupted"
    real_write = train_module.Logger.write

    def stop_inside_the_trained_linear_step(self, record):
        real_write(self, record)
        if f"{CAPACITY_DIR}/linear" in str(self.path) and record.get("step") == 20 and "loss" in record:
            raise KeyboardInterrupt

    monkeypatch.setattr(train_module.Logger, "write", stop_inside_the_trained_linear_step)
    with pytest.raises(KeyboardInterrupt):
        train_bundle(store_dir, out, load_run_config(config))
    monkeypatch.setattr(train_module.Logger, "write", real_write)
    assert (out / "training" / CAPACITY_DIR / "linear" / "checkpoint.pt").exists()
    assert not (out / "training" / CAPACITY_DIR / "small").exists() and not (out / "config.json").exists()
    train_bundle(store_dir, out, load_run_config(config))
    a, b = _weights(straight), _weights(out)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert json.loads((out / "config.json").read_text())["capacity"] == \
        json.loads((straight / "config.json").read_text())["capacity"]
