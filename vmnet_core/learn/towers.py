"""VM-NET's towers in numpy: the eval-mode forward pass of :class:`vmnet_core.learn.model.VMNet`.

Queries (``vmnet query``, the demo) embed one file at a time; running the two small towers in
numpy spares them importing torch (about 2 s of a fresh process on 2 cores). The weights are
the bundle's ``model.safetensors`` arrays, keyed as the torch module's ``state_dict``; outputs
agree with ``VMNet.encode_*`` in eval mode to float32 rounding (tested).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from vmnet_core.errors import VmnetError
from vmnet_core.learn.model_config import ModelConfig

_NORM_EPS = 1e-12  # torch.nn.functional.normalize's default


def state_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Every weight of a VMNet with ``config``: its ``state_dict`` name → shape."""
    shapes: dict[str, tuple[int, ...]] = {}
    for tower, width, hidden in (("music", config.music_dim, config.music_hidden),
                                 ("video", config.video_dim, config.video_hidden)):
        for name, (out, into) in _linear_layers(tower, width, hidden, config).items():
            shapes[f"{name}.weight"], shapes[f"{name}.bias"] = (out, into), (out,)
        for part in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{tower}.norm.{part}"] = (config.embed_dim,)
        shapes[f"{tower}.norm.num_batches_tracked"] = ()
    return shapes


def _linear_layers(tower: str, width: int, hidden: tuple[int, ...], config: ModelConfig
                   ) -> dict[str, tuple[int, int]]:
    """``{module name: (out, in)}`` of a tower's linear layers, in order (``Branch``'s layout:
    Linear, [ReLU], Dropout per hidden layer, then ``project``)."""
    per_block = 3 if config.activation == "relu" else 2
    layers = {}
    for i, out in enumerate(hidden):
        layers[f"{tower}.hidden.{i * per_block}"] = (out, width)
        width = out
    layers[f"{tower}.project"] = (config.embed_dim, width)
    return layers


def check_state(arrays: Mapping[str, np.ndarray], config: ModelConfig, where: str) -> None:
    """Raise a :class:`VmnetError` naming the first weight that is missing, unknown or of the wrong shape."""
    expected = state_shapes(config)
    missing = sorted(set(expected) - set(arrays))
    unexpected = sorted(set(arrays) - set(expected))
    if missing or unexpected:
        detail = f"lacks '{missing[0]}'" if missing else f"has an unknown weight '{unexpected[0]}'"
        raise VmnetError(f"{where} does not match the network in config.json (it {detail}); "
                         "the files come from different bundles.")
    for name, shape in expected.items():
        if tuple(arrays[name].shape) != shape:
            raise VmnetError(f"{where} does not match the network in config.json: weight '{name}' has shape "
                             f"{tuple(arrays[name].shape)} but the config needs {shape}.")


class NumpyTower:
    """One tower, eval mode: (N, in) float32 → (N, E) float32 unit rows.

    Hidden layers are ``x @ W.T + b`` (then ReLU when the config says so; dropout is the identity
    in eval mode); the last layer has the batch norm's running statistics folded in.
    """

    def __init__(self, arrays: Mapping[str, np.ndarray], tower: str, config: ModelConfig) -> None:
        hidden = config.music_hidden if tower == "music" else config.video_hidden
        width = config.music_dim if tower == "music" else config.video_dim
        names = list(_linear_layers(tower, width, hidden, config))
        self.relu = config.activation == "relu"
        self.hidden = [(_f32(arrays[f"{n}.weight"]).T.copy(), _f32(arrays[f"{n}.bias"])) for n in names[:-1]]
        norm = f"{tower}.norm"
        scale = _f32(arrays[f"{norm}.weight"]) / np.sqrt(_f32(arrays[f"{norm}.running_var"])
                                                          + np.float32(config.batch_norm_eps))
        weight, bias = _f32(arrays[f"{names[-1]}.weight"]), _f32(arrays[f"{names[-1]}.bias"])
        self.project = ((weight * scale[:, None]).T.copy(),
                        (bias - _f32(arrays[f"{norm}.running_mean"])) * scale + _f32(arrays[f"{norm}.bias"]))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        h = np.asarray(x, np.float32)
        for weight, bias in self.hidden:
            h = h @ weight + bias
            if self.relu:
                np.maximum(h, 0.0, out=h)
        z = h @ self.project[0] + self.project[1]  # (N, E)
        return z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), np.float32(_NORM_EPS))


class NumpyTowers:
    """Both towers of a bundle: ``encode_music`` (N, music_dim) and ``encode_video`` (N, video_dim)
    → (N, embed_dim) float32 unit rows. ``state`` keeps the arrays (for building the torch model)."""

    def __init__(self, arrays: Mapping[str, np.ndarray], config: ModelConfig) -> None:
        self.config = config
        self.state = dict(arrays)
        self.encode_music = NumpyTower(arrays, "music", config)
        self.encode_video = NumpyTower(arrays, "video", config)


def _f32(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, np.float32)
