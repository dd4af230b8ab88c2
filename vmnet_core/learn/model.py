"""VM-NET's two-branch embedding network (Hong, Im, Yang, ICMR 2018; arXiv 1704.06761).

Each branch is a stack of ``Linear → ReLU → Dropout`` blocks followed by a last ``Linear`` into the
shared 512-d space, batch norm on that last layer (as the official code: eps 1e-3, moving-average
decay 0.99 → PyTorch momentum 0.01) and L2 normalisation, so music and video are compared by a dot
product (cosine). Weights start from a truncated normal with std sqrt(2 / fan_in) and zero biases,
like the official code's ``xavier2`` initialiser.

Note: the official training script sets ``is_linear = True`` (no ReLU); the paper describes ReLU
networks, and so do the defaults here (``ModelConfig.activation``).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vmnet_core.learn.model_config import CAPACITIES, ModelConfig

__all__ = ["CAPACITIES", "Branch", "ModelConfig", "VMNet", "embed_arrays"]


def _init_linear(layer: nn.Linear) -> None:
    std = math.sqrt(2.0 / layer.in_features)
    nn.init.trunc_normal_(layer.weight, std=std, a=-2 * std, b=2 * std)
    nn.init.zeros_(layer.bias)


class Branch(nn.Module):
    """One tower: ``in → hidden... → embed_dim``, batch norm on the last layer, L2-normalised."""

    def __init__(self, in_dim: int, hidden: tuple[int, ...], config: ModelConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = in_dim
        for out in hidden:
            linear = nn.Linear(width, out)
            _init_linear(linear)
            layers.append(linear)
            if config.activation == "relu":
                layers.append(nn.ReLU())
            layers.append(nn.Dropout(config.dropout))
            width = out
        self.hidden = nn.Sequential(*layers)
        self.project = nn.Linear(width, config.embed_dim)
        _init_linear(self.project)
        self.norm = nn.BatchNorm1d(config.embed_dim, eps=config.batch_norm_eps,
                                   momentum=config.batch_norm_momentum)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.hidden(x)  # (B, H)
        z = self.norm(self.project(h))  # (B, E)
        return F.normalize(z, dim=1)  # (B, E), unit length


class VMNet(nn.Module):
    """Two towers mapping music (B, Dm) and video (B, Dv) into one L2-normalised space.

    The public face is :meth:`encode_music` and :meth:`encode_video`; ``forward`` returns both
    embeddings and their (B, B) cosine-similarity matrix (music along rows).
    """

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        self.config = config or ModelConfig()
        self.music = Branch(self.config.music_dim, self.config.music_hidden, self.config)
        self.video = Branch(self.config.video_dim, self.config.video_hidden, self.config)

    def encode_music(self, x: torch.Tensor) -> torch.Tensor:
        """(B, music_dim) preprocessed music descriptors → (B, embed_dim) unit vectors."""
        return self.music(x)

    def encode_video(self, x: torch.Tensor) -> torch.Tensor:
        """(B, video_dim) preprocessed video vectors → (B, embed_dim) unit vectors."""
        return self.video(x)

    def forward(self, music: torch.Tensor, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        em = self.encode_music(music)  # (B, E)
        ev = self.encode_video(video)  # (B, E)
        return em, ev, em @ ev.t()  # (B, E), (B, E), (B, B)


@torch.no_grad()
def embed_arrays(
    model: VMNet,
    music: np.ndarray | None,
    video: np.ndarray | None,
    device: str | torch.device | None = None,
    batch_size: int = 4096,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Embed preprocessed (N, Dm) music and (N, Dv) video in eval mode → (N, E) float32 arrays.

    Either input may be ``None`` (its output is then ``None``). The model's train/eval mode is
    restored afterwards; ``device`` defaults to the model's.
    """
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        out = []
        for x, encode in ((music, model.encode_music), (video, model.encode_video)):
            if x is None:
                out.append(None)
                continue
            t = torch.as_tensor(np.asarray(x, dtype=np.float32))
            parts = [encode(t[i:i + batch_size].to(device)).cpu() for i in range(0, t.shape[0], batch_size)]
            width = model.config.embed_dim
            out.append(torch.cat(parts).numpy() if parts else np.zeros((0, width), np.float32))
        return out[0], out[1]
    finally:
        model.train(was_training)
