"""The video descriptor: real EfficientNet-Lite0 weights, real photos, real generated videos."""

from __future__ import annotations

import socket

import numpy as np
import pytest
import torch

from vmnet_core.errors import VmnetError
from vmnet_core.features.imagenet_labels import IMAGENET_LABELS
from vmnet_core.features.lite0_torch import load_efficientnet_lite0
from vmnet_core.features.video_descriptor import (
    FEATURE_DIM,
    WhiteningPCA,
    cnn_threads_beside_decoder,
    default_frame_encoder,
    lite0_weights_path,
    pool_frames,
    video_frame_features,
)

skimage_data = pytest.importorskip("skimage.data")

CAT_CLASSES = set(range(281, 286))  # tabby, tiger cat, Persian, Siamese, Egyptian Mau
COFFEE_CLASSES = {967, 968, 504}  # espresso, cup, coffee mug
ROCKET_CLASSES = {657, 744, 812}  # missile, projectile, space shuttle


@pytest.fixture(scope="module")
def encoder():
    """The process-wide encoder, run on one thread while these tests run: on a machine shared with
    other test runs, two OpenMP threads wait on each other and one is several times faster."""
    shared = default_frame_encoder()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield shared
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def photo_frames() -> np.ndarray:
    """(3, 224, 224, 3) uint8: centre crops of scikit-image's cat and coffee, a corner of the astronaut."""
    crops = []
    for image in (skimage_data.chelsea(), skimage_data.coffee()):
        height, width = image.shape[:2]
        top, left = (height - 224) // 2, (width - 224) // 2
        crops.append(image[top:top + 224, left:left + 224])
    crops.append(skimage_data.astronaut()[:224, :224])
    return np.stack(crops)


@pytest.fixture(scope="module")
def photo_features(encoder, photo_frames) -> np.ndarray:
    return encoder.encode(photo_frames)


# ----------------------------------------------------------------------------- weights
def test_weights_load_strictly_from_the_package_file_without_network(monkeypatch, stored_weights):
    def no_network(*args, **kwargs):
        raise AssertionError("the weights must load without opening a socket")

    monkeypatch.setattr(socket, "socket", no_network)
    model = load_efficientnet_lite0()
    stored = stored_weights
    loaded = model.state_dict()
    assert set(loaded) == set(stored)
    assert {"_conv_stem.weight", "_blocks.0._depthwise_conv.weight", "_fc.weight"} <= set(loaded)
    assert all(torch.equal(loaded[key], stored[key]) for key in stored)
    assert not model.training


@pytest.fixture(scope="module")
def stored_weights() -> dict[str, torch.Tensor]:
    return torch.load(lite0_weights_path(), map_location="cpu", weights_only=True)


@pytest.mark.parametrize("damage", ["missing", "unexpected", "wrong_shape"])
def test_damaged_weights_are_refused(tmp_path, stored_weights, damage):
    state = dict(stored_weights)
    if damage == "missing":
        del state["_blocks.3._project_conv.weight"]
    elif damage == "unexpected":
        state["_extra_head.weight"] = torch.zeros(3)
    else:
        state["_fc.bias"] = torch.zeros(10)
    path = tmp_path / "damaged.pth"
    torch.save(state, path)
    with pytest.raises(VmnetError, match="reinstall"):
        load_efficientnet_lite0(path)


def test_missing_or_garbage_weights_file_is_a_plain_error(tmp_path):
    with pytest.raises(VmnetError, match="missing"):
        load_efficientnet_lite0(tmp_path / "nowhere.pth")
    (tmp_path / "garbage.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(VmnetError, match="cannot be read"):
        load_efficientnet_lite0(tmp_path / "garbage.pth")


# ----------------------------------------------------------------------------- the encoder
def test_imagenet_labels_come_from_package_data_in_classifier_order():
    assert len(IMAGENET_LABELS) == len(set(IMAGENET_LABELS)) == 1000
    assert (IMAGENET_LABELS[0], IMAGENET_LABELS[281], IMAGENET_LABELS[967]) == ("tench", "tabby cat", "espresso")
    assert all(label and label == label.strip() for label in IMAGENET_LABELS)


def _top_classes(predictions: list[tuple[str, float]]) -> list[int]:
    return [IMAGENET_LABELS.index(label) for label, _ in predictions]


def test_imagenet_top5_on_scikit_image_photos(encoder):
    chelsea, coffee, rocket = (encoder.classify(_centre_square(image), k=5)[0] for image in
                               (skimage_data.chelsea(), skimage_data.coffee(), skimage_data.rocket()))
    for top5 in (chelsea, coffee, rocket):
        probs = [p for _, p in top5]
        assert len(top5) == 5 and probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0 + 1e-5
    assert _top_classes(chelsea)[0] in CAT_CLASSES
    assert _top_classes(coffee)[0] in COFFEE_CLASSES and coffee[0][1] > 0.5
    assert ROCKET_CLASSES & set(_top_classes(rocket))


def _centre_square(image: np.ndarray) -> np.ndarray:
    side = min(image.shape[:2])
    top, left = (image.shape[0] - side) // 2, (image.shape[1] - side) // 2
    return image[top:top + side, left:left + side]


def test_frames_of_any_size_are_resized_like_sample_frames(encoder):
    whole = skimage_data.chelsea()  # 300 × 451: short side to 224, centre crop
    assert _top_classes(encoder.classify(whole, k=1)[0])[0] in CAT_CLASSES


def test_encode_shape_dtype_and_agreement_with_the_package_model(photo_frames, photo_features):
    assert photo_features.shape == (3, FEATURE_DIM) and photo_features.dtype == np.float32
    assert np.isfinite(photo_features).all() and (photo_features >= 0).all()  # ReLU6 head, averaged
    assert not np.allclose(photo_features[0], photo_features[1])

    reference = load_efficientnet_lite0()  # unfolded: the package's own layers, batch norm and all
    x = torch.from_numpy(photo_frames).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    with torch.inference_mode():
        ref_features = reference.extract_features(x).mean(dim=(2, 3)).numpy()
    np.testing.assert_allclose(photo_features, ref_features, rtol=1e-3, atol=1e-4)


def test_batching_gives_the_same_features_as_one_by_one(encoder, photo_frames, photo_features):
    one_by_one = np.concatenate([encoder.encode(frame) for frame in photo_frames])
    saved = encoder.batch_size
    try:
        encoder.batch_size = 2  # batches of 2 and 1
        uneven = encoder.encode(photo_frames)
    finally:
        encoder.batch_size = saved
    np.testing.assert_allclose(photo_features, one_by_one, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(photo_features, uneven, rtol=1e-4, atol=1e-4)


def test_encode_refuses_frames_that_are_not_uint8_rgb(encoder):
    with pytest.raises(ValueError, match="uint8"):
        encoder.encode(np.zeros((2, 224, 224, 3), np.float32))
    with pytest.raises(ValueError, match="uint8"):
        encoder.encode(np.zeros((2, 224, 224), np.uint8))
    assert encoder.encode(np.zeros((0, 224, 224, 3), np.uint8)).shape == (0, FEATURE_DIM)


def test_default_encoder_is_loaded_once_per_process(encoder):
    assert default_frame_encoder() is encoder


# ----------------------------------------------------------------------------- videos
def test_video_frame_features_of_a_generated_video(encoder, tmp_path):
    from vmnet_core.media import sample_frames
    from vmnet_testkit.mediagen import make_video

    path = make_video(tmp_path / "clip.mp4", seconds=3.0, size=(160, 120), fps=10)
    features = video_frame_features(path, encoder=encoder)
    assert features.shape == (3, FEATURE_DIM) and features.dtype == np.float32
    assert np.isfinite(features).all()
    assert not np.allclose(features[0], features[-1])  # the square moved, the colour changed
    np.testing.assert_allclose(features, encoder.encode(sample_frames(path, fps=1.0, size=224)), atol=1e-5)
    assert video_frame_features(path, encoder=encoder, fps=2.0, max_frames=4).shape == (4, FEATURE_DIM)
    np.testing.assert_allclose(video_frame_features(path), features, atol=1e-5)  # the shared default encoder


def test_encode_batches_matches_encode_and_restores_the_thread_count(encoder, photo_frames, photo_features):
    threads = torch.get_num_threads()
    streamed = encoder.encode_batches(iter([photo_frames[:1], photo_frames[1:]]), num_threads=threads + 1)
    np.testing.assert_allclose(streamed, photo_features, rtol=1e-4, atol=1e-4)
    assert torch.get_num_threads() == threads
    assert encoder.encode_batches(iter([])).shape == (0, FEATURE_DIM)


def test_cnn_leaves_a_core_to_the_decoder(encoder):
    assert cnn_threads_beside_decoder(encoder) == max(1, encoder.num_threads - 1)


def test_features_barely_change_without_deblocking(encoder, tmp_path, monkeypatch):
    """720p and larger videos are sampled without H.264 deblocking; on a low-bitrate pan over photos
    (where deblocking does the most) the pooled features keep a cosine above 0.99 with a filtered decode."""
    from PIL import Image

    from vmnet_core import media

    strip = np.concatenate([skimage_data.chelsea()[:, :400], skimage_data.coffee()[:300, :400]], axis=1)
    strip = np.asarray(Image.fromarray(strip).resize((1920, 720), Image.BILINEAR))
    frames = [np.ascontiguousarray(strip[:, x:x + 960]) for x in range(0, 960, 40)]  # 24 frames, 960×720
    path = media.write_video(frames, tmp_path / "pan.mp4", fps=12, crf=36)  # ultrafast has no deblocking
    fast = video_frame_features(path, encoder=encoder, fps=2.0)
    monkeypatch.setattr(media.frames, "SKIP_DEBLOCKING_MIN_DOWNSCALE", float("inf"))  # always filtered
    filtered = video_frame_features(path, encoder=encoder, fps=2.0)
    assert fast.shape == filtered.shape == (4, FEATURE_DIM)
    pooled_fast, pooled_filtered = fast.mean(axis=0), filtered.mean(axis=0)
    cosine = pooled_fast @ pooled_filtered / np.linalg.norm(pooled_fast) / np.linalg.norm(pooled_filtered)
    assert cosine > 0.99, cosine
    assert not np.array_equal(fast, filtered)  # the option is really in effect


def test_video_frame_features_refuses_audio_only_and_overlong_files(encoder, tmp_path):
    from vmnet_testkit.mediagen import make_audio, make_video

    with pytest.raises(VmnetError):
        video_frame_features(make_audio(tmp_path / "tone.wav", seconds=1.0), encoder=encoder)
    with pytest.raises(VmnetError):
        video_frame_features(make_video(tmp_path / "long.mp4", seconds=3.0), encoder=encoder, max_duration_s=1.0)


# ----------------------------------------------------------------------------- whitening PCA
def _correlated(rows: int, dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(dim, dim)) * rng.uniform(0.01, 3.0, size=dim)
    return (rng.normal(size=(rows, dim)) @ mixing + rng.uniform(0, 5, size=dim)).astype(np.float32)


def test_whitening_pca_gives_identity_covariance_on_its_training_data():
    X = _correlated(3000, 48)
    pca = WhiteningPCA(n_components=32).fit(X)
    Z = pca.transform(X)
    assert Z.shape == (3000, 32) and Z.dtype == np.float32 and pca.n_components_ == 32
    np.testing.assert_allclose(Z.mean(axis=0), 0.0, atol=1e-3)
    np.testing.assert_allclose(np.cov(Z, rowvar=False), np.eye(32), atol=2e-3)
    # the kept directions are the top principal components: compare with an SVD of the centred data
    singular = np.linalg.svd(X - X.mean(axis=0), compute_uv=False)
    np.testing.assert_allclose(pca.explained_variance_, singular[:32] ** 2 / (3000 - 1), rtol=1e-4)
    assert pca.transform(X[:6].reshape(2, 3, 48)).shape == (2, 3, 32)


def test_whitening_pca_keeps_fewer_components_with_a_warning():
    with pytest.warns(UserWarning, match="only 9 components"):
        small = WhiteningPCA(n_components=1024).fit(_correlated(10, 64))
    assert small.n_components_ == 9 and small.transform(_correlated(4, 64, seed=1)).shape == (4, 9)
    with pytest.warns(UserWarning, match="only 16 components"):
        narrow = WhiteningPCA(n_components=32).fit(_correlated(100, 16))
    assert narrow.n_components_ == 16
    assert np.isfinite(small.transform(_correlated(3, 64, seed=2))).all()


def test_whitening_pca_round_trips_through_arrays_and_safetensors(tmp_path):
    from safetensors.numpy import load_file, save_file

    X = _correlated(500, 20)
    pca = WhiteningPCA(n_components=8).fit(X)
    save_file(pca.to_arrays(), str(tmp_path / "pca.safetensors"))
    restored = WhiteningPCA.from_arrays(load_file(str(tmp_path / "pca.safetensors")))
    assert restored.n_components_ == 8 and restored.n_components == 8 and restored.eps == pca.eps
    np.testing.assert_array_equal(restored.transform(X), pca.transform(X))


def test_whitening_pca_errors():
    with pytest.raises(VmnetError, match="at least 2"):
        WhiteningPCA().fit(np.ones((1, 8), np.float32))
    pca = WhiteningPCA(n_components=4).fit(_correlated(50, 8))
    with pytest.raises(VmnetError, match="width 5"):
        pca.transform(np.ones((2, 5), np.float32))
    arrays = pca.to_arrays()
    del arrays["components"]
    with pytest.raises(VmnetError, match="components"):
        WhiteningPCA.from_arrays(arrays)
    with pytest.raises(RuntimeError, match="not fitted"):
        WhiteningPCA().transform(np.ones((1, 8)))


# ----------------------------------------------------------------------------- pooling
def test_pool_frames_options():
    x = np.array([[1.0, -2.0, 0.0], [3.0, 2.0, 0.0], [5.0, 0.0, 0.0]])
    np.testing.assert_allclose(pool_frames(x), [3.0, 0.0, 0.0])
    np.testing.assert_allclose(pool_frames(x, how="std"), [np.sqrt(8 / 3), np.sqrt(8 / 3), 0.0], rtol=1e-6)
    np.testing.assert_allclose(pool_frames(x, how="max"), [5.0, 2.0, 0.0])
    assert pool_frames(x).dtype == np.float32 and pool_frames(x).shape == (3,)
    np.testing.assert_array_equal(pool_frames(x[:1], how="std"), [0.0, 0.0, 0.0])
    with pytest.raises(VmnetError, match="mean, std, max"):
        pool_frames(x, how="median")
    with pytest.raises(VmnetError, match="no frames"):
        pool_frames(np.zeros((0, 3)))
