"""The CNN's engines: ONNX Runtime (the default on CPU) gives the features of the torch reference."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from vmnet_core.errors import VmnetError
from vmnet_core.features.onnx_frames import exported_model_path
from vmnet_core.features.video_descriptor import (
    INPUT_SIZE,
    FrameEncoder,
    default_frame_encoder,
    lite0_weights_path,
    video_frame_features,
)
from vmnet_testkit.mediagen import make_video


@pytest.fixture(scope="module")
def encoders() -> dict[str, FrameEncoder]:
    return {"torch": FrameEncoder(engine="torch", num_threads=1), "onnx": FrameEncoder(engine="onnx", num_threads=2)}


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_the_default_cpu_engine_is_onnx_runtime():
    assert default_frame_encoder().engine == "onnx"
    assert FrameEncoder(engine="torch").engine == "torch"


def test_onnx_features_of_a_real_clip_agree_with_the_torch_model(encoders, tmp_path):
    path = make_video(tmp_path / "clip.mp4", seconds=6.0, size=(320, 180), fps=10)
    features = {name: video_frame_features(path, encoder=enc) for name, enc in encoders.items()}
    assert features["onnx"].shape == features["torch"].shape == (6, 1280)
    assert _cosine(features["onnx"].mean(0), features["torch"].mean(0)) >= 0.999
    assert min(_cosine(a, b) for a, b in zip(features["onnx"], features["torch"], strict=True)) >= 0.999
    np.testing.assert_allclose(features["onnx"], features["torch"], atol=1e-4)


def test_onnx_engine_handles_odd_sizes_batches_and_no_frames(encoders):
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 256, (11, 200, 260, 3), dtype=np.uint8)  # resized inside, not 224 px
    reference = encoders["torch"].encode(frames)
    np.testing.assert_allclose(encoders["onnx"].encode(frames), reference, atol=1e-4)
    square = rng.integers(0, 256, (13, INPUT_SIZE, INPUT_SIZE, 3), dtype=np.uint8)
    streamed = encoders["onnx"].encode_batches(iter([square[:1], square[1:12], square[12:]]))
    np.testing.assert_allclose(streamed, encoders["torch"].encode(square), atol=1e-4)  # arrival order kept
    assert encoders["onnx"].encode(np.zeros((0, 224, 224, 3), np.uint8)).shape == (0, 1280)
    assert encoders["onnx"].encode_batches(iter([])).shape == (0, 1280)
    labels = encoders["onnx"].classify(square[:2], k=3)
    assert [len(top) for top in labels] == [3, 3]


def test_the_exported_model_is_cached_and_reused(encoders):
    path = exported_model_path(lambda: encoders["torch"].model, lite0_weights_path(), INPUT_SIZE)
    assert path is not None and path.is_file() and path == encoders["onnx"]._onnx.path
    before = path.stat().st_mtime_ns
    assert FrameEncoder(engine="onnx")._onnx.path == path
    assert path.stat().st_mtime_ns == before  # loaded, not exported again


def test_without_onnx_runtime_auto_falls_back_to_torch_and_onnx_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now raises ImportError
    assert FrameEncoder(engine="auto").engine == "torch"
    with pytest.raises(VmnetError, match="onnxruntime"):
        FrameEncoder(engine="onnx")


def test_an_unknown_engine_is_refused():
    with pytest.raises(VmnetError, match="Unknown CNN engine 'tensorrt'"):
        FrameEncoder(engine="tensorrt")
