"""Issue 18's target, run in CI: on a store that looks like real features, the default
``vmnet train`` reaches at least the plain recipe's R@10 and twice CCA's.

The store (``vmnet_testkit.synthetic.write_realistic_store``): 1140-d "music" and 1024-d "video"
sharing 24 latent factors, 16 private factors per modality, random tanh maps, units over two
decades, noise at three levels and a low-rank nuisance. Everything is scored on the untouched test
gallery, mean R@10 of both directions; CCA is the issue's (z-scored inputs, ridge chosen on the
validation split) and, for the record, CCA on the default's own data-aware inputs.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from vmnet_core.bundle.files import load_bundle
from vmnet_core.bundle.recipes import train_bundle
from vmnet_core.features.store import FeatureStore
from vmnet_core.learn.baselines import fit_cca_on_validation
from vmnet_core.learn.metrics import DIRECTIONS, evaluate_embeddings
from vmnet_core.learn.preprocess import PreprocessConfig, Preprocessor
from vmnet_core.learn.train import RunConfig, TrainConfig, paired_inputs, plain_recipe, resolve_splits
from vmnet_testkit.synthetic import write_realistic_store

PAIRS, VAL, TEST = 3000, 500, 500  # train 2,000: CCA on z-scores is far from chance here, unlike at 2,000 pairs


def _mean_r10(result: dict) -> float:
    return float(np.mean([result[d]["R@10"] for d in DIRECTIONS]))


def _cca_r10(store_dir, run: RunConfig, mode: str) -> float:
    store = FeatureStore.open(store_dir)
    splits = resolve_splits(store, run.train)
    pre = Preprocessor.fit_store(store, splits.train, PreprocessConfig(mode=mode))
    cca = fit_cca_on_validation(paired_inputs(store, pre, splits.train), paired_inputs(store, pre, splits.val))
    test = paired_inputs(store, pre, splits.test)
    return _mean_r10(evaluate_embeddings(cca.encode_music(test.music), cca.encode_video(test.video)))


@pytest.mark.slow
def test_default_training_beats_the_plain_recipe_and_twice_cca(tmp_path):
    store = write_realistic_store(tmp_path / "store", n=PAIRS, n_val=VAL, n_test=TEST, seed=0)
    run = RunConfig(train=TrainConfig(progress=False, num_threads=2))
    default = load_bundle(train_bundle(store, tmp_path / "default", run))
    plain = load_bundle(train_bundle(store, tmp_path / "plain", plain_recipe(run)))
    scores = {"default": _mean_r10(default.metrics["test"]), "plain": _mean_r10(plain.metrics["test"]),
              "cca": _cca_r10(store, run, "zscore"), "cca_on_auto_inputs": _cca_r10(store, run, "auto")}
    print(json.dumps({**scores, "towers": default.config.model.capacity}))
    assert default.metrics["test"]["gallery"] == TEST
    assert scores["default"] >= scores["plain"]
    assert scores["default"] >= 2 * scores["cca"]
    assert scores["default"] >= 10 * 10 / TEST  # ten times chance: it learned the link, not noise


@pytest.mark.slow
def test_with_500_training_pairs_the_default_still_doubles_cca(tmp_path):
    """The issue's split scaled down to 2,000 pairs (train 500, val 500, test 1,000): CCA on z-scores
    is near chance, and the data-aware PCA leaves too few features; PLS on every z-score does not."""
    store = write_realistic_store(tmp_path / "store", n=2000, n_val=500, n_test=1000, seed=0)
    run = RunConfig(train=TrainConfig(progress=False, num_threads=2))
    default = load_bundle(train_bundle(store, tmp_path / "default", run))
    scores = {"default": _mean_r10(default.metrics["test"]), "cca": _cca_r10(store, run, "zscore")}
    print(json.dumps({**scores, "towers": default.config.model.capacity}))
    assert default.metrics["test"]["gallery"] == 1000
    assert scores["default"] >= 2 * scores["cca"] and scores["default"] >= 5 * 10 / 1000
