"""Network, metrics, preprocessing and baselines: small, fast checks of behaviour."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vmnet_core.errors import VmnetError
from vmnet_core.learn.baselines import CCA, fit_cca_on_validation, random_embeddings
from vmnet_core.learn.metrics import (
    evaluate_embeddings,
    partner_ranks,
    recall_at_k,
    selection_score,
    structure_preservation,
)
from vmnet_core.learn.model import ModelConfig, VMNet, embed_arrays
from vmnet_core.learn.preprocess import PreprocessConfig, Preprocessor
from vmnet_core.learn.train import PairedArrays


# ----------------------------------------------------------------------------- model
def test_paper_architecture_by_default():
    model = VMNet()
    linears = lambda branch: [m for m in branch.modules() if isinstance(m, torch.nn.Linear)]  # noqa: E731
    assert [(m.in_features, m.out_features) for m in linears(model.music)] == [(1140, 2048), (2048, 1024), (1024, 512)]
    assert [(m.in_features, m.out_features) for m in linears(model.video)] == [(1024, 2048), (2048, 512)]
    dropouts = [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    assert dropouts == [0.1, 0.1, 0.1]
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert len(norms) == 2 and all(n.num_features == 512 for n in norms)


def test_encoders_return_unit_vectors_and_sim_is_their_product():
    torch.manual_seed(0)
    config = ModelConfig(music_dim=12, video_dim=9, music_hidden=(16, 8), video_hidden=(16,), embed_dim=6)
    model = VMNet(config).eval()
    music, video = torch.randn(5, 12), torch.randn(5, 9)
    em, ev = model.encode_music(music), model.encode_video(video)
    assert em.shape == ev.shape == (5, 6)
    torch.testing.assert_close(em.norm(dim=1), torch.ones(5))
    _, _, sim = model(music, video)
    torch.testing.assert_close(sim, em @ ev.t())
    m_np, v_np = embed_arrays(model, music.numpy(), None)
    assert v_np is None
    np.testing.assert_allclose(m_np, em.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_embed_arrays_restores_train_mode_and_config_round_trips():
    model = VMNet(ModelConfig(music_dim=4, video_dim=3, music_hidden=(5,), video_hidden=(), embed_dim=2))
    model.train()
    embed_arrays(model, np.zeros((3, 4), np.float32), np.zeros((3, 3), np.float32))
    assert model.training
    config = model.config
    assert ModelConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError):
        ModelConfig(activation="gelu")


# ----------------------------------------------------------------------------- metrics
def test_recall_matches_a_brute_force_count():
    rng = np.random.default_rng(0)
    sim = rng.standard_normal((30, 30)).astype(np.float32)
    result = recall_at_k(sim, ks=(1, 5, 10, 50))
    ranks = [1 + sum(sim[i, j] > sim[i, i] for j in range(30)) for i in range(30)]
    assert result["R@1"] == pytest.approx(np.mean(np.array(ranks) <= 1))
    assert result["R@5"] == pytest.approx(np.mean(np.array(ranks) <= 5))
    assert result["R@10"] == pytest.approx(np.mean(np.array(ranks) <= 10))
    assert "R@50" not in result  # does not fit a 30-item gallery
    assert result["median_rank"] == pytest.approx(np.median(ranks))
    assert result["mean_rank"] == pytest.approx(np.mean(ranks))


def test_ties_rank_pessimistically():
    sim = np.ones((4, 4), np.float32)  # every item scores the same
    np.testing.assert_array_equal(partner_ranks(sim), [4, 4, 4, 4])
    sim = np.eye(4, dtype=np.float32)
    np.testing.assert_array_equal(partner_ranks(sim), [1, 1, 1, 1])


def test_evaluate_embeddings_has_the_cli_json_shape_and_directions():
    # music i matches video i except that music 0 points at video 1: only music→video suffers
    em = np.eye(5, dtype=np.float32)
    ev = np.eye(5, dtype=np.float32)
    em[0] = np.array([0.6, 0.8, 0, 0, 0], np.float32)
    result = evaluate_embeddings(em, ev, ks=(1, 10))
    assert set(result) == {"gallery", "video_to_music", "music_to_video"}
    assert result["gallery"] == 5
    assert list(result["music_to_video"]) == ["R@1", "median_rank", "mean_rank"]
    assert result["music_to_video"]["R@1"] == pytest.approx(0.8)  # music 0 ranks video 1 first
    # video 1 now scores music 0 (0.8) below music 1 (1.0): still first; video 0 gets music 0 first
    assert result["video_to_music"]["R@1"] == pytest.approx(1.0)
    assert selection_score(result) == pytest.approx(0.9)  # R@1 mean when R@10 does not fit


def test_paper_ks_on_a_1000_gallery():
    em, ev = random_embeddings(1000, 32, seed=1)
    result = evaluate_embeddings(em, ev)
    assert list(result["video_to_music"])[:6] == ["R@1", "R@10", "R@25", "R@50", "R@100", "R@1000"]
    assert result["video_to_music"]["R@1000"] == 1.0
    assert 0.05 < result["video_to_music"]["R@100"] < 0.15  # chance is 0.1
    assert 400 < result["video_to_music"]["median_rank"] < 600


def test_structure_preservation_bounds():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((80, 10))
    assert structure_preservation(x, x) == pytest.approx(1.0)
    assert structure_preservation(x, 3 * x) == pytest.approx(1.0)  # cosine: scale-free
    assert abs(structure_preservation(x, rng.standard_normal((80, 10)))) < 0.1
    assert structure_preservation(x, x + 0.5 * rng.standard_normal((80, 10))) > 0.5


# ----------------------------------------------------------------------------- preprocessing
def test_preprocessor_fits_on_given_rows_and_round_trips():
    rng = np.random.default_rng(0)
    music = rng.standard_normal((50, 6)) * [1, 2, 3, 4, 5, 0] + 10  # last column constant
    video = rng.standard_normal((50, 20)).astype(np.float32)
    pre = Preprocessor.fit(music, video=video, config=PreprocessConfig(mode="paper", video_components=8))
    z = pre.transform_music(music)
    np.testing.assert_allclose(z[:, :5].mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(z[:, :5].std(0), 1, atol=1e-4)
    assert np.all(np.isfinite(z)) and np.all(z[:, 5] == 0)
    assert pre.music_dim == 6 and pre.video_in_dim == 20 and pre.video_dim == 8
    v = pre.transform_video_vectors(video)
    assert v.shape == (50, 8)
    np.testing.assert_allclose(v.std(0, ddof=1), 1, atol=1e-3)  # whitened on its training data
    # frames → pooled equals pooling the frames first (the affine PCA commutes with the mean)
    frames = rng.standard_normal((7, 20)).astype(np.float32)
    np.testing.assert_allclose(pre.transform_video_frames(frames),
                               pre.transform_video_vectors(frames.mean(0, keepdims=True))[0], atol=1e-4)
    again = Preprocessor.from_arrays(pre.to_arrays())
    np.testing.assert_array_equal(again.transform_music(music), z)
    np.testing.assert_allclose(again.transform_video_vectors(video), v, atol=1e-6)


def test_preprocessor_rejects_wrong_widths_and_foreign_arrays():
    rng = np.random.default_rng(1)
    pre = Preprocessor.fit(rng.standard_normal((20, 4)), video=rng.standard_normal((20, 6)),
                           config=PreprocessConfig(video_components=3))
    with pytest.raises(VmnetError, match="expects 4"):
        pre.transform_music(np.zeros((2, 5)))
    with pytest.raises(VmnetError, match="expects 6"):
        pre.transform_video_frames(np.zeros((3, 7)))
    arrays = pre.to_arrays()
    del arrays["music.scale"]
    with pytest.raises(VmnetError, match="music.scale"):
        Preprocessor.from_arrays(arrays)


# ----------------------------------------------------------------------------- baselines
def _pairs(n, rng, linear=True):
    z = rng.standard_normal((n, 4))
    music = z @ rng.standard_normal((4, 30)) + 0.3 * rng.standard_normal((n, 30))
    video = (z if linear else z**2) @ rng.standard_normal((4, 25)) + 0.3 * rng.standard_normal((n, 25))
    return music, video


def test_cca_finds_a_linear_link_and_random_stays_at_chance():
    rng = np.random.default_rng(0)
    music, video = _pairs(700, rng)
    train = PairedArrays([str(i) for i in range(500)], music[:500], video[:500])
    val = PairedArrays([str(i) for i in range(100)], music[500:600], video[500:600])
    cca = fit_cca_on_validation(train, val, n_components=4)
    assert cca.correlations.shape == (4,) and cca.correlations[0] > 0.9
    test = evaluate_embeddings(cca.encode_music(music[600:]), cca.encode_video(video[600:]))
    assert test["video_to_music"]["R@10"] > 0.8 and test["music_to_video"]["R@10"] > 0.8
    chance = evaluate_embeddings(*random_embeddings(100, seed=0))
    assert chance["video_to_music"]["R@10"] < 0.3


def test_cca_ridges_share_one_fit_and_regularise():
    rng = np.random.default_rng(1)
    music, video = _pairs(60, rng, linear=False)
    small, large = CCA.fit_ridges(music, video, (1e-6, 10.0), n_components=3)
    single = CCA.fit(music, video, n_components=3, ridge=10.0)
    np.testing.assert_allclose(large.correlations, single.correlations)
    assert small.correlations[0] > large.correlations[0]  # a tiny ridge overfits 60 pairs


def test_preprocessor_fits_the_pca_on_train_frames_only(tmp_path):
    from vmnet_core.features.store import VIDEO_SPACE_EXTRACTED, FeatureStore
    from vmnet_core.learn.preprocess import sample_train_frames

    rng = np.random.default_rng(2)
    ids = [f"v{i}" for i in range(12)]
    splits = ["train"] * 8 + ["test"] * 4
    frames = {i: rng.standard_normal((int(rng.integers(3, 7)), 10)) for i in ids}
    for i, split in zip(ids, splits, strict=True):
        if split == "test":
            frames[i] = frames[i] + 1000.0  # would drag the PCA mean far away if it were used
    rows = [{"id": i, "path": "", "duration_s": None, "split": s, "status": "ok", "error": ""}
            for i, s in zip(ids, splits, strict=True)]
    video = np.stack([frames[i].mean(0) for i in ids]).astype(np.float32)
    store = FeatureStore.create(tmp_path / "s", rows, rng.standard_normal((12, 5)).astype(np.float32), video,
                                video_space=VIDEO_SPACE_EXTRACTED, frames=frames)
    assert store.has_frames
    train_ids = store.split_ids("train")
    sampled = sample_train_frames(store, train_ids, max_frames=1000)
    assert sampled.shape == (sum(len(frames[i]) for i in train_ids), 10)
    assert len(sample_train_frames(store, train_ids, max_frames=9)) == 9
    pre = Preprocessor.fit_store(store, train_ids, PreprocessConfig(video_components=4))
    assert np.abs(pre.video.mean).max() < 5  # fitted on train frames, not test frames
    one = frames["v0"].astype(np.float16).astype(np.float32)
    np.testing.assert_allclose(pre.transform_video_frames(one),
                               pre.transform_video_vectors(one.mean(0, keepdims=True))[0], atol=1e-4)
