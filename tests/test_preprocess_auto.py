"""Issue 18: preprocessing chosen from the training data (noise-edge PCA), the paper's one line away."""

import numpy as np
import pytest

from vmnet_core.errors import VmnetError
from vmnet_core.learn.input_transform import _covariance_eigen, signal_components
from vmnet_core.learn.preprocess import PreprocessConfig, Preprocessor


def _latent_plus_noise(n: int, dim: int, rank: int, seed: int, scale_spread: bool = True) -> np.ndarray:
    """(n, dim): ``rank`` shared directions at 3× the per-feature noise, features in mixed units."""
    rng = np.random.default_rng(seed)
    signal = rng.standard_normal((n, rank)) @ rng.standard_normal((rank, dim)) * 3.0 / np.sqrt(rank)
    x = signal + rng.standard_normal((n, dim))
    if scale_spread:
        x = x * np.exp(rng.uniform(-2.3, 2.3, dim))  # units over two decades, as real descriptors mix
    return x


def test_signal_components_finds_the_latent_rank_not_the_width():
    x = _latent_plus_noise(2000, 300, rank=12, seed=0)
    z = (x - x.mean(0)) / x.std(0)
    values, _ = _covariance_eigen(z)
    assert signal_components(values, 2000) == 12
    pure_noise = np.random.default_rng(1).standard_normal((2000, 300))
    values, _ = _covariance_eigen(pure_noise)
    assert signal_components(values, 2000) == 8  # nothing above the edge: the floor


def test_more_data_resolves_weaker_directions():
    rng = np.random.default_rng(2)
    strengths = np.geomspace(3.0, 0.2, 30)  # directions from strong to barely there
    counts = []
    for n in (300, 3000):
        x = (rng.standard_normal((n, 30)) * strengths) @ np.linalg.qr(rng.standard_normal((200, 30)))[0].T
        x = x * np.sqrt(200) / 3 + rng.standard_normal((n, 200))
        values, _ = _covariance_eigen((x - x.mean(0)) / x.std(0))
        counts.append(signal_components(values, n))
    assert counts[0] < counts[1] <= 30


def test_auto_mode_keeps_the_signal_directions_and_the_paper_mode_is_one_line_away():
    music = _latent_plus_noise(600, 120, rank=10, seed=3)
    video = np.maximum(_latent_plus_noise(600, 200, rank=10, seed=4), 0.0)
    auto = Preprocessor.fit(music, video=video)
    assert auto.describe()["music_transform"] == auto.describe()["video_transform"] == "zscore_pca"
    assert auto.music_dim == 10 and auto.music_in_dim == 120 and 8 <= auto.video_dim < 40
    m = auto.transform_music(music)
    assert m.shape == (600, 10)
    variances = m.var(0)
    assert np.all(np.diff(variances) <= 1e-3) and variances[-1] > 1.5  # not whitened: variance kept, sorted
    paper = Preprocessor.fit(music, video=video, config=PreprocessConfig(mode="paper"))
    assert paper.music_dim == 120 and paper.video_dim == 200  # all z-scores; whitening PCA as wide as the data
    assert paper.describe()["video_transform"] == "whitening_pca"
    np.testing.assert_allclose(paper.transform_video_vectors(video).std(0, ddof=1)[:50], 1, atol=1e-3)
    forced = Preprocessor.fit(music, video=video, config=PreprocessConfig(video_components=5, whiten=True))
    assert forced.video_dim == 5
    np.testing.assert_allclose(forced.transform_video_vectors(video).std(0, ddof=1), 1, atol=1e-3)


def test_auto_preprocessor_round_trips_and_old_bundles_still_load():
    music = _latent_plus_noise(200, 30, rank=4, seed=5)
    video = _latent_plus_noise(200, 40, rank=4, seed=6)
    pre = Preprocessor.fit(music, video=video)
    pre.set_media_music_offset(music[:10] + 1.0)
    again = Preprocessor.from_arrays(pre.to_arrays())
    assert again.config == pre.config
    np.testing.assert_allclose(again.transform_media_music(music), pre.transform_media_music(music), atol=1e-6)
    np.testing.assert_allclose(again.transform_video_vectors(video), pre.transform_video_vectors(video), atol=1e-6)
    # format 1 (bundles written before issue 18): z-scored music + WhiteningPCA arrays
    from vmnet_core.features.video_descriptor import WhiteningPCA

    pca = WhiteningPCA(n_components=6).fit(video.astype(np.float32))
    old = {"format_version": np.array([1]), "music_mean": music.mean(0), "music_std": music.std(0),
           "video_in_dim": np.array([40]), "config.video_components": np.array([6]),
           "config.max_pca_frames": np.array([1000]), "config.std_floor_ratio": np.array([1e-3]),
           "config.seed": np.array([0]), **{f"video_pca.{k}": v for k, v in pca.to_arrays().items()}}
    loaded = Preprocessor.from_arrays(old)
    assert loaded.config.mode == "paper" and loaded.video_dim == 6
    np.testing.assert_allclose(loaded.transform_video_vectors(video), pca.transform(video), atol=1e-4)
    np.testing.assert_allclose(loaded.transform_music(music), (music - music.mean(0)) / music.std(0), atol=1e-4)


def test_bad_settings_are_refused_with_a_sentence():
    with pytest.raises(VmnetError, match="mode"):
        PreprocessConfig(mode="fancy")
    with pytest.raises(VmnetError, match="video_components must be at least 1"):
        PreprocessConfig(video_components=0)
