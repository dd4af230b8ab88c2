"""Training end to end on synthetic stores: it works, it is deterministic, it resumes.

The "show it works" test trains the paper's recipe (losses, weights, optimiser, validation and
early stopping) with narrower towers (one 256-wide hidden layer, capacity fixed), batch 200, 150 steps and a 32-component
video PCA (music: the data-aware default) so it runs in seconds; the synthetic data (tests/synthetic.py) is built so that a
nonlinear model can match the pairs and linear CCA cannot.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import load_file

from vmnet_core.bundle.recipes import train_bundle
from vmnet_core.cli.main import main
from vmnet_core.errors import VmnetError
from vmnet_core.learn.train import load_run_config, read_log
from vmnet_testkit.synthetic import synthetic_pairs, write_synthetic_store

SHOW_CONFIG = """
batch_size = 200
max_steps = 150
val_every = 50
patience = 0
num_threads = 1
progress = false

[model]
capacity = "full"
music_hidden = [256]
video_hidden = [256]

[preprocess]
video_components = 32
"""

TINY_CONFIG = """
batch_size = 64
max_steps = 20
val_every = 5
log_every = 5
num_threads = 1
progress = false

[model]
capacity = "full"
music_hidden = [32]
video_hidden = [32]
embed_dim = 16

[preprocess]
video_components = 16
"""


@pytest.fixture(scope="module", autouse=True)
def _one_blas_thread():
    """Keep numpy/scipy BLAS on one thread: on a shared 2-core machine threads fight each other."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional; only speed depends on it
        yield
        return
    with threadpool_limits(1):
        yield


def _cli(*args: str) -> int:
    return main([str(a) for a in args])


# ----------------------------------------------------------------------------- show it works
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("show")
    store = write_synthetic_store(root / "store", n=3000, n_val=500, n_test=500)
    config = root / "cfg.toml"
    config.write_text(SHOW_CONFIG)
    bundle = root / "bundle"
    assert _cli("train", "--store", store, "--out", bundle, "--config", config, "--with-ablation") == 0
    return root, store, bundle


def test_training_beats_chance_random_and_cca_and_structure_helps(trained, capsys):
    root, store, bundle = trained
    capsys.readouterr()
    plot = root / "rk.png"
    assert _cli("evaluate", "--bundle", bundle, "--store", store, "--json", "--compare", "--plot", plot) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["gallery"] == 500
    chance_r10 = 10 / 500
    compare = result["compare"]
    print(json.dumps({k: {d: v[d]["R@10"] for d in ("video_to_music", "music_to_video")} | {"rho": v["structure"]}
                      for k, v in compare.items()}, indent=1))
    for direction in ("video_to_music", "music_to_video"):
        r10 = result[direction]["R@10"]
        assert r10 == compare["vmnet"][direction]["R@10"]
        assert r10 > 10 * chance_r10, direction  # far above chance (2 %)
        assert r10 > compare["random"][direction]["R@10"] + 0.3
        assert r10 > compare["cca"][direction]["R@10"] + 0.3
        assert result[direction]["median_rank"] < compare["cca"][direction]["median_rank"]
        assert compare["random"][direction]["R@10"] < 5 * chance_r10
    for modality in ("music", "video"):
        assert compare["vmnet"]["structure"][modality] > compare["no_structure"]["structure"][modality]
    assert plot.stat().st_size > 10_000


def test_training_writes_a_complete_bundle_with_logs_and_curves(trained):
    from vmnet_core.bundle.files import load_bundle

    _, _, bundle_dir = trained
    bundle = load_bundle(bundle_dir)
    assert bundle.config.split.source == "store"
    assert bundle.config.split.counts == {"train": 2000, "val": 500, "test": 500}
    assert bundle.config.train.structure is True and bundle.config.train.batch_size == 200
    preprocess = bundle.preprocessor.describe()
    assert bundle.config.preprocess.mode == "auto" and preprocess["music_in_dim"] == 1140
    assert bundle.config.model.music_dim == preprocess["music_dim"] < 1140  # the directions above noise
    assert bundle.config.model.video_dim == 32  # the config's explicit choice
    assert [step for step, _ in bundle.metrics["val_curve"]] == [50, 100, 150]
    assert "validation mean R@10 by step: 50:" in bundle.card and "mode auto" in bundle.card
    assert bundle.metrics["test"]["gallery"] == 500
    assert set(bundle.metrics["structure"]["test"]) == {"music", "video"}
    assert "gallery of 500 pairs" in bundle.card
    log = read_log(bundle_dir / "training" / "metrics.jsonl")
    losses = [r for r in log if "loss" in r]
    vals = [r for r in log if r.get("split") == "val"]
    assert [r["step"] for r in vals] == [50, 100, 150]
    assert {"rank_music", "rank_video", "struct_music", "struct_video"} <= set(losses[0])
    assert losses[-1]["loss"] < losses[0]["loss"]
    assert (bundle_dir / "training" / "curves.png").stat().st_size > 10_000
    ablation = load_bundle(bundle_dir / "ablation")
    assert ablation.config.train.structure is False
    assert "struct_music" not in read_log(bundle_dir / "ablation" / "training" / "metrics.jsonl")[0]
    plain = load_bundle(bundle_dir / "plain")  # the plain recipe: z-scores, paper towers, 200 steps
    assert plain.config.preprocess.mode == "zscore" and plain.config.training.steps == 200
    assert plain.config.model.music_dim == 1140 and plain.config.model.music_hidden == (2048, 1024)


def test_evaluate_prints_a_readable_table(trained, capsys):
    root, store, bundle = trained
    capsys.readouterr()
    assert _cli("evaluate", "--bundle", bundle, "--store", store, "--split", "val", "--plot", root / "v.png") == 0
    out = capsys.readouterr().out
    assert "gallery: 500 pairs" in out
    assert "video→music" in out and "music→video" in out and "R@100" in out and "R@1000" not in out


# ----------------------------------------------------------------------------- determinism, resume
@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    store = write_synthetic_store(root / "store", n=400, with_split=False, seed=3, video_dim=64)
    config = root / "tiny.toml"
    config.write_text(TINY_CONFIG)
    straight = root / "straight"
    assert _cli("train", "--store", store, "--out", straight, "--config", config, "--seed", "7") == 0
    return root, store, config, straight


def _weights(bundle_dir):
    return load_file(str(bundle_dir / "model.safetensors"))


def _same_weights(a, b) -> bool:
    wa, wb = _weights(a), _weights(b)
    return wa.keys() == wb.keys() and all(np.array_equal(wa[k], wb[k]) for k in wa)


def test_same_seed_same_weights_other_seed_other_weights(tiny):
    root, store, config, straight = tiny
    again = root / "again"
    assert _cli("train", "--store", store, "--out", again, "--config", config, "--seed", "7") == 0
    assert _same_weights(straight, again)
    other = root / "other-seed"
    assert _cli("train", "--store", store, "--out", other, "--config", config, "--seed", "8") == 0
    assert not _same_weights(straight, other)


def test_interrupted_training_resumes_to_the_same_weights(tiny):
    root, store, config, straight = tiny
    out = root / "resumed"
    assert _cli("train", "--store", store, "--out", out, "--config", config, "--seed", "7", "--steps", "10") == 0
    first = read_log(out / "training" / "metrics.jsonl")
    assert max(r["step"] for r in first) == 10
    assert _cli("train", "--store", store, "--out", out, "--config", config, "--seed", "7") == 0
    log = read_log(out / "training" / "metrics.jsonl")
    assert [r["step"] for r in log if r.get("split") == "val"] == [5, 10, 15, 20]
    assert _same_weights(straight, out)
    # a rerun of a finished run changes nothing
    assert _cli("train", "--store", store, "--out", out, "--config", config, "--seed", "7") == 0
    assert _same_weights(straight, out)


def test_interrupt_mid_run_keeps_a_checkpoint_and_resumes(tiny, monkeypatch):
    import vmnet_core.learn.train as train_module

    root, store, config, straight = tiny
    out = root / "ctrl-c"
    real_write = train_module.Logger.write

    def interrupt_at_step_15(self, record):
        real_write(self, record)
        if record.get("step") == 15 and "loss" in record:
            raise KeyboardInterrupt

    monkeypatch.setattr(train_module.Logger, "write", interrupt_at_step_15)
    with pytest.raises(KeyboardInterrupt):
        train_bundle(store, out, load_run_config(config, seed=7))
    monkeypatch.setattr(train_module.Logger, "write", real_write)
    assert (out / "training" / "checkpoint.pt").exists() and not (out / "config.json").exists()
    assert max(r["step"] for r in read_log(out / "training" / "metrics.jsonl")) == 15
    train_bundle(store, out, load_run_config(config, seed=7))
    assert _same_weights(straight, out)


def test_seeded_split_is_recorded_and_used_by_evaluate(tiny, capsys):
    from vmnet_core.bundle.files import load_bundle

    _, store, _, straight = tiny
    split = load_bundle(straight).config.split
    assert split.source == "seeded"
    assert split.counts == {"train": 280, "val": 60, "test": 60}  # 15 % each of 400
    assert not set(split.test_ids) & set(split.val_ids)
    capsys.readouterr()
    assert _cli("evaluate", "--bundle", straight, "--store", store, "--json") == 0
    result = json.loads(capsys.readouterr().out)
    assert result["gallery"] == 60
    assert set(result) == {"gallery", "video_to_music", "music_to_video", "hubness"}
    assert list(result["video_to_music"]) == ["R@1", "R@10", "R@25", "R@50", "median_rank", "mean_rank"]
    # hubness of the held-out test gallery: in metrics.json, the card and evaluate's output
    hubs = load_bundle(straight).metrics["hubness"]
    assert hubs["queries"] == 60 and hubs["k"] == 5 and result["hubness"] == hubs
    assert 5 / 60 <= hubs["video_to_music"]["max_share"] <= 1.0 and hubs["music_to_video"]["hubs"] >= 0
    assert "hubness over 60 test queries" in load_bundle(straight).card
    assert _cli("evaluate", "--bundle", straight, "--store", store) == 0
    assert "hubness over 60 test queries" in capsys.readouterr().out


def test_user_errors_are_one_sentence(tiny, tmp_path, capsys):
    root, store, config, straight = tiny
    bad = tmp_path / "bad.toml"
    bad.write_text("[train]\nbatch_sise = 10\n")
    capsys.readouterr()
    assert _cli("train", "--store", store, "--out", tmp_path / "x", "--config", bad) == 2
    err = capsys.readouterr().err
    assert "Unknown [train] setting 'batch_sise'" in err and "Traceback" not in err
    # an existing finished bundle is not overwritten by a run with other settings
    assert _cli("train", "--store", store, "--out", straight, "--config", config, "--seed", "9") == 2
    assert "other settings" in capsys.readouterr().err
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "notes.txt").write_text("mine")
    assert _cli("train", "--store", store, "--out", occupied, "--config", config) == 2
    assert "already exists" in capsys.readouterr().err
    assert _cli("train", "--store", tmp_path, "--out", tmp_path / "y") == 2
    assert "not a feature store" in capsys.readouterr().err
    assert _cli("evaluate", "--bundle", tmp_path, "--store", store) == 2
    assert "not a vmnet bundle" in capsys.readouterr().err


def test_config_file_and_flags_override_defaults(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("lr = 0.001\n[train]\nbatch_size = 10\n[model]\nmusic_hidden = [8, 4]\n")
    run = load_run_config(cfg, seed=5, max_steps=None)
    assert run.train.lr == 0.001 and run.train.batch_size == 10 and run.train.seed == 5
    assert run.train.max_steps == 3_000 and run.model.music_hidden == (8, 4)
    assert run.model.video_hidden == (2048,) and run.train.top_q == 100
    with pytest.raises(VmnetError):
        load_run_config(tmp_path / "missing.toml")
    cfg.write_text("[optimizer]\nlr = 1\n")
    with pytest.raises(VmnetError, match=r"\[optimizer\]"):
        load_run_config(cfg)


def test_synthetic_pairs_hide_the_link_from_linear_statistics():
    pairs = synthetic_pairs(4000, seed=1)
    m = (pairs.music - pairs.music.mean(0)) / pairs.music.std(0)
    v = (pairs.video - pairs.video.mean(0)) / pairs.video.std(0)
    cross = np.abs(m[:, :50].T @ v[:, :50] / len(m))  # correlations of 50 × 50 feature pairs
    within = np.abs(np.corrcoef(m[:, :50].T)[np.triu_indices(50, 1)])
    assert cross.max() < 0.1 < np.median(within)


# ----------------------------------------------------------------------------- vmnet tune
def test_tune_tries_seeded_choices_scores_on_validation_and_keeps_the_best(tiny, tmp_path, capsys):
    from vmnet_core.bundle.files import load_bundle
    from vmnet_core.bundle.tuning import draw_choices

    _, store, config, _ = tiny
    out = tmp_path / "best"
    capsys.readouterr()
    assert _cli("tune", "--store", store, "--out", out, "--config", config, "--trials", "3", "--seed", "1") == 0
    printed = capsys.readouterr().out
    rows = [line.split() for line in printed.splitlines() if line.strip()[:1].isdigit()]
    assert [int(r[0]) for r in rows] == [0, 1, 2] and "the given settings" in printed
    scores = [float(r[1].rstrip("%")) for r in rows]
    best = load_bundle(out)
    assert f"best: trial {scores.index(max(scores))}" in printed
    assert 100 * (best.metrics["val"]["video_to_music"]["R@10"] + best.metrics["val"]["music_to_video"]["R@10"]) / 2 \
        == pytest.approx(max(scores), abs=0.06)
    # trial 1 used the first seeded draw, on top of the config's settings
    first = draw_choices(np.random.default_rng(1))
    trial1 = load_bundle(out.with_name("best.trials") / "trial-01")
    assert trial1.config.model.dropout == first["dropout"] and trial1.config.train.lr == first["lr"]
    assert trial1.config.preprocess.whiten == first["whiten"] and trial1.config.model.capacity == first["capacity"]
    # the drawn tower shape over the config's towers ("full" keeps the config's 32-wide layer)
    assert trial1.config.model.music_hidden == {"cca": (), "full": (32,)}.get(first["capacity"], (512,))
    assert _cli("tune", "--store", store, "--out", out, "--config", config) == 2  # never overwrites
    assert "already exists" in capsys.readouterr().err
