"""The numpy towers (queries without torch) give the torch VMNet's eval-mode embeddings."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vmnet_core.errors import VmnetError
from vmnet_core.learn.model import ModelConfig, VMNet, embed_arrays
from vmnet_core.learn.towers import NumpyTowers, check_state, state_shapes


def _trained_looking(config: ModelConfig, seed: int) -> VMNet:
    """A VMNet with random weights and batch-norm statistics (as after training), eval mode."""
    torch.manual_seed(seed)
    model = VMNet(config)
    with torch.no_grad():
        for branch in (model.music, model.video):
            branch.norm.running_mean.normal_(0.0, 0.5)
            branch.norm.running_var.uniform_(0.2, 3.0)
            branch.norm.weight.uniform_(0.5, 1.5)
            branch.norm.bias.normal_(0.0, 0.2)
    return model.eval()


def _state(model: VMNet) -> dict[str, np.ndarray]:
    return {name: t.detach().numpy().copy() for name, t in model.state_dict().items()}


@pytest.mark.parametrize("config", [
    ModelConfig(music_dim=40, video_dim=24, music_hidden=(64, 32), video_hidden=(48,), embed_dim=16),
    ModelConfig(music_dim=40, video_dim=24, music_hidden=(64,), video_hidden=(), embed_dim=16, activation="linear"),
])
def test_numpy_towers_match_the_torch_model_in_eval_mode(config):
    model = _trained_looking(config, seed=3)
    towers = NumpyTowers(_state(model), config)
    rng = np.random.default_rng(0)
    music = rng.normal(size=(7, config.music_dim)).astype(np.float32)
    video = rng.normal(size=(5, config.video_dim)).astype(np.float32)
    em, ev = embed_arrays(model, music, video)
    np.testing.assert_allclose(towers.encode_music(music), em, atol=2e-6)
    np.testing.assert_allclose(towers.encode_video(video), ev, atol=2e-6)
    np.testing.assert_allclose(np.linalg.norm(towers.encode_video(video), axis=1), 1.0, atol=1e-6)
    assert towers.encode_music(music).dtype == np.float32


def test_state_shapes_name_every_weight_of_the_torch_model():
    for config in (ModelConfig(), ModelConfig(activation="linear", music_hidden=(8,), video_hidden=())):
        expected = {name: tuple(t.shape) for name, t in VMNet(config).state_dict().items()}
        assert state_shapes(config) == expected


def test_check_state_names_the_weight_that_does_not_fit():
    config = ModelConfig(music_dim=10, video_dim=6, music_hidden=(8,), video_hidden=(8,), embed_dim=4)
    state = _state(VMNet(config))
    check_state(state, config, "w.safetensors")  # fits
    wrong = dict(state, **{"video.project.weight": np.zeros((4, 9), np.float32)})
    with pytest.raises(VmnetError, match=r"'video.project.weight' has shape \(4, 9\) but the config needs \(4, 8\)"):
        check_state(wrong, config, "w.safetensors")
    with pytest.raises(VmnetError, match="lacks 'music.norm.bias'"):
        check_state({k: v for k, v in state.items() if k != "music.norm.bias"}, config, "w.safetensors")
