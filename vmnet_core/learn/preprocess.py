"""Input preprocessing fitted on the train split only (VM-NET, ICMR 2018, section 3; issue 18).

Two modes (``PreprocessConfig.mode``):

- ``"auto"`` (default), chosen from the training data: each modality is z-scored per feature, then
  projected on the principal directions whose variance stands above sampling noise (the
  Marchenko–Pastur edge, :func:`vmnet_core.learn.input_transform.signal_components`), not
  whitened. The number of directions grows with the data: on a few thousand noisy pairs it keeps
  tens of directions instead of blowing 1,024 noise directions up to unit variance.
- ``"paper"``: the paper's exact setting: z-scored 1140-d music and a 1024-component whitening
  PCA of the video (YouTube-8M style), fitted on YouTube-8M-scale data in the paper.
- ``"zscore"``: both modalities z-scored, nothing projected (the plain baseline of ``evaluate --compare``).

``music_components``, ``video_components`` and ``whiten`` override the mode's choice. When the store
keeps per-frame CNN features the video transform is fitted on a seeded subsample of the train
split's frames; otherwise on the train split's video vectors. Every transform is affine, so
``t(mean(frames)) == mean(t(frames))``: a store's pooled video vector and its frames give the same
model input.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields

import numpy as np

from vmnet_core.errors import VmnetError
from vmnet_core.features.video_descriptor import WhiteningPCA, pool_frames
from vmnet_core.learn.input_transform import (
    LinearInput,
    fit_whitening_pca,
    fit_zscore,
    fit_zscore_pca,
    whitening_input,
)

FORMAT_VERSION = 2  # 1: z-scored music + WhiteningPCA video arrays (read, converted)
MODES = ("auto", "paper", "zscore")
PAPER_VIDEO_COMPONENTS = 1024


@dataclass
class PreprocessConfig:
    """How the preprocessors are fitted; ``mode="paper"`` is the paper's exact setting."""

    mode: str = "auto"  # "auto": chosen from the train data; "paper": z-score music, whitening-PCA video;
    #                     "zscore": both z-scored, no projection (the plain baseline recipe)
    video_components: int | None = None  # None: the mode's choice (auto: above the noise edge; paper: 1024)
    music_components: int | None = None  # None: the mode's choice (auto: above the noise edge; paper: all)
    whiten: bool | None = None  # None: the mode's choice (auto: no; paper: video yes)
    max_pca_frames: int = 100_000  # frames sampled from the train split to fit the video transform
    std_floor_ratio: float = 1e-3  # z-score: std floor as a fraction of the median std
    seed: int = 0  # frame subsampling

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise VmnetError(f"Unknown preprocessing mode {self.mode!r}; use 'auto', 'paper' or 'zscore'.")
        for name in ("video_components", "music_components"):
            value = getattr(self, name)
            if value is not None and int(value) < 1:
                raise VmnetError(f"{name} must be at least 1 (or left out for the mode's choice), not {value}.")


MEDIA_MUSIC_OFFSET = "media_music_offset"  # optional (Dm,) array in the saved preprocessor


def fit_music_input(music: np.ndarray, config: PreprocessConfig) -> LinearInput:
    """The music branch's input transform for (N, Dm) raw train descriptors."""
    if config.mode in ("paper", "zscore") and config.music_components is None:
        return fit_zscore(music, config.std_floor_ratio)
    return fit_zscore_pca(music, config.std_floor_ratio, config.music_components, bool(config.whiten))


def fit_video_input(video: np.ndarray, config: PreprocessConfig) -> LinearInput:
    """The video branch's input transform for (M, Dv) raw train vectors or frames."""
    if config.mode == "paper" and config.whiten is not False:
        return fit_whitening_pca(video, config.video_components or PAPER_VIDEO_COMPONENTS)
    if config.mode == "zscore" and config.video_components is None:
        return fit_zscore(video, config.std_floor_ratio)
    return fit_zscore_pca(video, config.std_floor_ratio, config.video_components, bool(config.whiten))


class Preprocessor:
    """Fitted transforms from stored descriptors to the network's inputs.

    Use :meth:`fit` (arrays) or :meth:`fit_store` (a feature store's train split), then
    :meth:`transform_music`, :meth:`transform_video_vectors`, :meth:`transform_video_frames`.
    """

    def __init__(self, music: LinearInput, video: LinearInput, config: PreprocessConfig) -> None:
        self.music = music  # (..., Dm_raw) -> (..., music_dim)
        self.video = video  # (..., Dv) -> (..., video_dim)
        self.config = config
        self.media_music_offset: np.ndarray | None = None  # (Dm_raw,), see set_media_music_offset

    # ----- fitting -------------------------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        music: np.ndarray,
        video: np.ndarray | None = None,
        frames: np.ndarray | None = None,
        config: PreprocessConfig | None = None,
    ) -> Preprocessor:
        """Fit on train-split arrays.

        Parameters
        ----------
        music : (N, Dm) raw music descriptors.
        video : (N, Dv) pooled video vectors; used to fit the video transform when ``frames`` is None.
        frames : (M, Dv) per-frame features (already subsampled) to fit the video transform on.
        """
        config = config or PreprocessConfig()
        music = np.asarray(music, dtype=np.float64)
        if music.ndim != 2 or music.shape[0] < 2:
            raise VmnetError("The train split needs at least two music descriptors to fit the preprocessor.")
        video_data = frames if frames is not None else video
        if video_data is None:
            raise VmnetError("The preprocessor needs the train split's video vectors or frames to fit.")
        video_data = np.asarray(video_data, dtype=np.float32)
        if video_data.shape[0] < 2:
            raise VmnetError("The train split needs at least two video vectors to fit the preprocessor.")
        return cls(fit_music_input(music, config), fit_video_input(video_data, config), config)

    @classmethod
    def fit_store(cls, store, train_ids: list[str], config: PreprocessConfig | None = None) -> Preprocessor:
        """Fit on a feature store's train items (frames for the video transform when the store has them)."""
        config = config or PreprocessConfig()
        index = {item_id: i for i, item_id in enumerate(store.ids)}
        rows = np.array([index[i] for i in train_ids], dtype=np.int64)
        music = np.asarray(store.music())[rows]
        frames = sample_train_frames(store, train_ids, config.max_pca_frames, config.seed) \
            if getattr(store, "has_frames", False) else None
        video = None if frames is not None else np.asarray(store.video())[rows]
        return cls.fit(music, video=video, frames=frames, config=config)

    # ----- transforms ----------------------------------------------------------------------------
    @property
    def music_in_dim(self) -> int:
        """Width of the raw music descriptors."""
        return self.music.in_dim

    @property
    def music_dim(self) -> int:
        """Width of the music branch's input."""
        return self.music.out_dim

    @property
    def video_in_dim(self) -> int:
        """Width of the raw video vectors (CNN features)."""
        return self.video.in_dim

    @property
    def video_dim(self) -> int:
        """Width of the video branch's input."""
        return self.video.out_dim

    def transform_music(self, music: np.ndarray) -> np.ndarray:
        """(N, Dm_raw) raw music descriptors → (N, music_dim) float32 network inputs."""
        music = np.asarray(music, dtype=np.float32)
        if music.shape[-1] != self.music_in_dim:
            raise VmnetError(f"Music descriptors have {music.shape[-1]} values but this model expects "
                             f"{self.music_in_dim}; use features made with the same descriptor settings.")
        return self.music.transform(music)

    def transform_media_music(self, music: np.ndarray) -> np.ndarray:
        """(N, Dm_raw) descriptors of music read from media files → (N, music_dim), domain offset applied.

        Same as :meth:`transform_music` unless the bundle carries a media-music offset.
        """
        music = np.asarray(music, dtype=np.float32)
        if self.media_music_offset is not None:
            music = music + self.media_music_offset
        return self.transform_music(music)

    def set_media_music_offset(self, real_music: np.ndarray) -> np.ndarray:
        """Fit the offset that moves real recordings' mean onto the training music's mean.

        real_music : (N, Dm_raw) raw descriptors of N ≥ 2 real recordings spanning a range of music.
        Returns the (Dm_raw,) offset ``train mean − mean(real_music)``, which
        :meth:`transform_media_music` then adds to every music file's descriptor. For a model trained
        on synthetic music (the starter bundle) real recordings all differ from the training music in
        the same way (mixing, mastering, real instruments), and that shared shift would dominate their
        embeddings; removing it is first-order domain alignment (the mean part of CORAL, Sun et al.
        2016). It uses no labels. A bundle trained on real media has no offset.
        """
        real_music = np.asarray(real_music, dtype=np.float32)
        if real_music.ndim != 2 or real_music.shape[0] < 2 or real_music.shape[1] != self.music_in_dim:
            raise VmnetError(f"Fitting the media-music offset needs at least two {self.music_in_dim}-d "
                             f"descriptors; got shape {real_music.shape}.")
        self.media_music_offset = (self.music.mean - real_music.mean(axis=0)).astype(np.float32)
        return self.media_music_offset

    def transform_video_vectors(self, video: np.ndarray) -> np.ndarray:
        """(N, Dv) pooled video vectors → (N, video_dim) float32 network inputs."""
        video = np.asarray(video, dtype=np.float32)
        self._check_video_width(video)
        return self.video.transform(video)

    def transform_video_frames(self, frames: np.ndarray) -> np.ndarray:
        """(T, Dv) per-frame CNN features → (video_dim,) float32: mean over time of the transformed frames."""
        frames = np.asarray(frames, dtype=np.float32)
        if frames.ndim != 2 or frames.shape[0] == 0:
            raise VmnetError("A video needs at least one frame feature vector to be embedded.")
        self._check_video_width(frames)
        return np.asarray(pool_frames(self.video.transform(frames), how="mean"), dtype=np.float32)

    # ----- persistence ---------------------------------------------------------------------------
    def to_arrays(self) -> dict[str, np.ndarray]:
        """Flat ``{name: array}`` for safetensors (config and transform kinds as JSON bytes)."""
        header = {"config": asdict(self.config), "music_kind": self.music.kind, "video_kind": self.video.kind}
        out = {"format_version": np.array([FORMAT_VERSION], dtype=np.int64),
               "header_json": np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8).copy(),
               **self.music.to_arrays("music"), **self.video.to_arrays("video")}
        if self.media_music_offset is not None:
            out[MEDIA_MUSIC_OFFSET] = self.media_music_offset
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> Preprocessor:
        """Inverse of :meth:`to_arrays` (format 1 is read too); raises ``VmnetError`` on missing arrays."""
        try:
            version = int(np.asarray(arrays["format_version"]).ravel()[0])
            if version == 1:
                preprocessor = _from_format_1(arrays)
            elif version == FORMAT_VERSION:
                header = json.loads(np.asarray(arrays["header_json"], dtype=np.uint8).tobytes().decode("utf-8"))
                known = {f.name for f in fields(PreprocessConfig)}
                config = PreprocessConfig(**{k: v for k, v in header["config"].items() if k in known})
                preprocessor = cls(LinearInput.from_arrays(arrays, "music", header["music_kind"]),
                                   LinearInput.from_arrays(arrays, "video", header["video_kind"]), config)
            else:
                raise VmnetError(f"The preprocessor was saved in format {version}; this vmnet reads "
                                 f"formats 1 and {FORMAT_VERSION}, so retrain or upgrade vmnet.")
        except KeyError as exc:
            raise VmnetError(f"The preprocessor arrays lack '{exc.args[0]}'; the bundle is incomplete "
                             "or from another program.") from None
        offset = arrays.get(MEDIA_MUSIC_OFFSET)
        if offset is not None:
            if np.shape(offset) != (preprocessor.music_in_dim,):
                raise VmnetError(f"The preprocessor's media-music offset has shape {np.shape(offset)}, not "
                                 f"({preprocessor.music_in_dim},); the bundle is damaged.")
            preprocessor.media_music_offset = np.asarray(offset, dtype=np.float32)
        return preprocessor

    def describe(self) -> dict:
        """JSON-ready summary for a bundle's config: settings, transform kinds and widths."""
        return {**asdict(self.config), "music_transform": self.music.kind, "video_transform": self.video.kind,
                "music_in_dim": self.music_in_dim, "music_dim": self.music_dim,
                "video_in_dim": self.video_in_dim, "video_dim": self.video_dim}

    # ----- internals -----------------------------------------------------------------------------
    def _check_video_width(self, x: np.ndarray) -> None:
        if x.shape[-1] != self.video_in_dim:
            raise VmnetError(f"Video features have {x.shape[-1]} values but this model expects "
                             f"{self.video_in_dim}; use features from the same frame encoder.")


def _from_format_1(arrays: dict[str, np.ndarray]) -> Preprocessor:
    """A format-1 preprocessor (z-scored music, WhiteningPCA video) as the paper-mode equivalent."""
    pca = WhiteningPCA.from_arrays({k[len("video_pca."):]: v for k, v in arrays.items() if k.startswith("video_pca.")})
    video = whitening_input(pca)
    music = LinearInput(arrays["music_mean"], arrays["music_std"], None, "zscore")
    config = PreprocessConfig(
        mode="paper", video_components=int(np.asarray(arrays["config.video_components"]).ravel()[0]),
        max_pca_frames=int(np.asarray(arrays["config.max_pca_frames"]).ravel()[0]),
        std_floor_ratio=float(np.asarray(arrays["config.std_floor_ratio"]).ravel()[0]),
        seed=int(np.asarray(arrays["config.seed"]).ravel()[0]))
    return Preprocessor(music, video, config)


def sample_train_frames(store, train_ids: list[str], max_frames: int, seed: int = 0) -> np.ndarray | None:
    """A seeded subsample of at most ``max_frames`` per-frame features from the train items.

    Spreads the budget evenly over items in a seeded order (at least one frame each while the
    budget lasts), keeping each item's sampled frames in time order. Returns
    (M, Dv) float32, or ``None`` when none of the items has frames.
    """
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(train_ids))
    base, extra = divmod(max_frames, max(1, len(train_ids)))
    chunks: list[np.ndarray] = []
    total = 0
    for position, idx in enumerate(order):
        frames = store.frames(train_ids[idx])
        if frames is None or len(frames) == 0:
            continue
        quota = min(max(1, base + (position < extra)), max_frames - total)
        frames = np.asarray(frames, dtype=np.float32)
        if frames.shape[0] > quota:
            frames = frames[np.sort(rng.choice(frames.shape[0], size=quota, replace=False))]
        chunks.append(frames)
        total += frames.shape[0]
        if total >= max_frames:
            break
    return np.concatenate(chunks) if chunks else None
