"""Issue 18: on a store that looks like real features, the default ``vmnet train`` beats the simplest things.

The store (``vmnet_testkit.synthetic.realistic_pairs``): 2,000 pairs of 1140-d "music" and 1024-d
"video" sharing 24 latent factors, each modality with 16 private factors, random nonlinear (tanh)
maps, per-feature units over two decades, noise at three levels and a low-rank nuisance. Test
gallery 500, validation 300, train 1,200. The default recipe must reach at least the plain recipe's
R@10 (z-scored inputs, the paper's towers and losses, 200 steps) and twice regularised CCA's.
"""

from __future__ import annotations

import json

import pytest

from vmnet_core.bundle.files import load_bundle
from vmnet_core.bundle.recipes import train_bundle
from vmnet_core.features.store import FeatureStore
from vmnet_core.learn.baselines import fit_cca_on_validation
from vmnet_core.learn.metrics import evaluate_embeddings
from vmnet_core.learn.preprocess import PreprocessConfig, Preprocessor
from vmnet_core.learn.train import RunConfig, TrainConfig, paired_inputs, plain_recipe, resolve_splits
from vmnet_testkit.synthetic import write_realistic_store


def _mean_r10(result: dict) -> float:
    return (result["video_to_music"]["R@10"] + result["music_to_video"]["R@10"]) / 2


def _cca_r10(store_dir, preprocess: PreprocessConfig) -> float:
    store = FeatureStore.open(store_dir)
    splits = resolve_splits(store, TrainConfig())
    pre = Preprocessor.fit_store(store, splits.train, preprocess)
    cca = fit_cca_on_validation(paired_inputs(store, pre, splits.train), paired_inputs(store, pre, splits.val))
    test = paired_inputs(store, pre, splits.test)
    return _mean_r10(evaluate_embeddings(cca.encode_music(test.music), cca.encode_video(test.video)))


@pytest.fixture(scope="module")
def realistic_store(tmp_path_factory):
    return write_realistic_store(tmp_path_factory.mktemp("realistic") / "store", n=2000, n_val=300, n_test=500)


def test_default_training_beats_the_plain_recipe_and_twice_cca(realistic_store, tmp_path):
    threads = TrainConfig(num_threads=2, progress=False)
    default = load_bundle(train_bundle(realistic_store, tmp_path / "default", RunConfig(train=threads)))
    plain = load_bundle(train_bundle(realistic_store, tmp_path / "plain", plain_recipe(RunConfig(train=threads))))
    # CCA at its best: on z-scores and on the default's own inputs, the better of the two
    cca = max(_cca_r10(realistic_store, PreprocessConfig(mode="zscore")), _cca_r10(realistic_store, PreprocessConfig()))
    scores = {"default": _mean_r10(default.metrics["test"]), "plain": _mean_r10(plain.metrics["test"]), "cca": cca}
    print(json.dumps(scores))
    assert default.metrics["test"]["gallery"] == 500
    assert scores["default"] >= scores["plain"], scores
    assert scores["default"] >= 2 * scores["cca"], scores
    # it stopped when learning stopped, and says so in the bundle
    assert default.config.training.stopped_early and default.config.training.steps < TrainConfig().max_steps
    curve = default.metrics["val_curve"]
    assert curve[-1][0] == default.config.training.steps and max(s for _, s in curve) == pytest.approx(
        default.metrics["val"]["video_to_music"]["R@10"] / 2 + default.metrics["val"]["music_to_video"]["R@10"] / 2,
        abs=1e-3)
    assert default.config.model.music_dim < 200 and default.config.model.video_dim < 200  # noise directions dropped
