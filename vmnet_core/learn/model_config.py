"""VM-NET's tower widths and depths (:class:`ModelConfig`), importable without torch."""

from __future__ import annotations

from dataclasses import asdict, dataclass

CAPACITIES = ("auto", "pls", "cca", "linear", "small", "full")  # see vmnet_core.learn.capacity


@dataclass
class ModelConfig:
    """Widths and depths of both branches; the defaults are the paper's."""

    music_dim: int = 1140  # input width of the music branch (the preprocessor's output)
    video_dim: int = 1024  # input width of the video branch (whitening-PCA components)
    music_hidden: tuple[int, ...] = (2048, 1024)  # 1140 → 2048 → 1024 → 512
    video_hidden: tuple[int, ...] = (2048,)  # 1024 → 2048 → 512
    embed_dim: int = 512  # shared embedding width
    dropout: float = 0.1  # drop probability after every hidden ReLU (paper: keep 0.9)
    activation: str = "relu"  # "relu" (paper) or "linear" (the official script's is_linear)
    capacity: str = "auto"  # "auto": tower shape chosen on validation (learn/capacity.py); "pls",
    #                         "cca", "linear", "small" or "full" (the widths above): that shape only
    batch_norm_eps: float = 1e-3
    batch_norm_momentum: float = 0.01

    def __post_init__(self) -> None:
        self.music_hidden = tuple(int(w) for w in self.music_hidden)
        self.video_hidden = tuple(int(w) for w in self.video_hidden)
        if self.activation not in ("relu", "linear"):
            raise ValueError(f"activation must be 'relu' or 'linear', not {self.activation!r}")
        if self.capacity not in CAPACITIES:
            raise ValueError(f"capacity must be one of {', '.join(CAPACITIES)}, not {self.capacity!r}")

    def to_dict(self) -> dict:
        """JSON-ready dict (tuples become lists)."""
        d = asdict(self)
        d["music_hidden"] = list(self.music_hidden)
        d["video_hidden"] = list(self.video_hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise ``TypeError``."""
        return cls(**d)
