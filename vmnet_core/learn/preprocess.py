"""Input preprocessing fitted on the train split only (VM-NET, ICMR 2018, section 3).

- Music: per-feature z-score of the 1140-d descriptor. Features whose train std is below
  ``std_floor_ratio`` × the median std are divided by that floor instead (constant columns do not
  explode on new data).
- Video: whitening PCA to 1024 components (the paper's YouTube-8M-style frame processing), then
  mean pooling over time. When the store keeps per-frame CNN features the PCA is fitted on a
  seeded subsample of the train split's frames; otherwise on the train split's video vectors.
  Because whitening PCA is affine, ``pca(mean(frames)) == mean(pca(frames))``: a store's pooled
  video vector and its frames give the same model input.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from vmnet_core.errors import VmnetError
from vmnet_core.features.video_descriptor import WhiteningPCA, pool_frames

FORMAT_VERSION = 1


@dataclass
class PreprocessConfig:
    """How the preprocessors are fitted (defaults follow the paper)."""

    video_components: int = 1024  # whitening-PCA output width (fewer when the train data is small)
    max_pca_frames: int = 100_000  # frames sampled from the train split to fit the PCA (memory bound)
    std_floor_ratio: float = 1e-3  # music z-score: std floor as a fraction of the median std
    seed: int = 0  # frame subsampling


def _whitening_pca(n_components: int):
    return WhiteningPCA(n_components=n_components)


MEDIA_MUSIC_OFFSET = "media_music_offset"  # optional (Dm,) array in the saved preprocessor


class Preprocessor:
    """Fitted transforms from stored descriptors to the network's inputs.

    Use :meth:`fit` (arrays) or :meth:`fit_store` (a feature store's train split), then
    :meth:`transform_music`, :meth:`transform_video_vectors`, :meth:`transform_video_frames`.
    """

    def __init__(
        self,
        music_mean: np.ndarray,
        music_std: np.ndarray,
        video_pca,
        video_in_dim: int,
        config: PreprocessConfig,
    ) -> None:
        self.music_mean = np.asarray(music_mean, dtype=np.float32)  # (Dm,)
        self.music_std = np.asarray(music_std, dtype=np.float32)  # (Dm,)
        self.video_pca = video_pca  # WhiteningPCA: (..., Dv) -> (..., K)
        self.video_in_dim = int(video_in_dim)  # Dv
        self.config = config
        self.video_dim = int(np.asarray(video_pca.transform(np.zeros((1, self.video_in_dim), np.float32))).shape[-1])
        self.media_music_offset: np.ndarray | None = None  # (Dm,), see set_media_music_offset

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
        video : (N, Dv) pooled video vectors; used to fit the PCA when ``frames`` is None.
        frames : (M, Dv) per-frame features (already subsampled) to fit the PCA on.
        """
        config = config or PreprocessConfig()
        music = np.asarray(music, dtype=np.float64)
        if music.ndim != 2 or music.shape[0] < 2:
            raise VmnetError("The train split needs at least two music descriptors to fit the preprocessor.")
        mean = music.mean(axis=0)
        std = music.std(axis=0)
        positive = std[std > 0]
        floor = config.std_floor_ratio * (float(np.median(positive)) if positive.size else 1.0)
        std = np.maximum(std, max(floor, 1e-12))
        pca_data = frames if frames is not None else video
        if pca_data is None:
            raise VmnetError("The preprocessor needs the train split's video vectors or frames to fit.")
        pca_data = np.asarray(pca_data, dtype=np.float32)
        pca = _whitening_pca(min(config.video_components, pca_data.shape[1])).fit(pca_data)
        return cls(mean, std, pca, pca_data.shape[1], config)

    @classmethod
    def fit_store(cls, store, train_ids: list[str], config: PreprocessConfig | None = None) -> Preprocessor:
        """Fit on a feature store's train items (frames for the PCA when the store has them)."""
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
    def music_dim(self) -> int:
        """Width of the music branch's input."""
        return int(self.music_mean.shape[0])

    def transform_music(self, music: np.ndarray) -> np.ndarray:
        """(N, Dm) raw music descriptors → (N, Dm) float32 z-scores."""
        music = np.asarray(music, dtype=np.float32)
        if music.shape[-1] != self.music_dim:
            raise VmnetError(f"Music descriptors have {music.shape[-1]} values but this model expects "
                             f"{self.music_dim}; use features made with the same descriptor settings.")
        return ((music - self.music_mean) / self.music_std).astype(np.float32)

    def transform_media_music(self, music: np.ndarray) -> np.ndarray:
        """(N, Dm) descriptors of music read from media files → (N, Dm) z-scores, domain offset applied.

        Same as :meth:`transform_music` unless the bundle carries a media-music offset.
        """
        music = np.asarray(music, dtype=np.float32)
        if self.media_music_offset is not None:
            music = music + self.media_music_offset
        return self.transform_music(music)

    def set_media_music_offset(self, real_music: np.ndarray) -> np.ndarray:
        """Fit the offset that moves real recordings' mean onto the training music's mean.

        real_music : (N, Dm) raw descriptors of N ≥ 2 real recordings spanning a range of music.
        Returns the (Dm,) offset ``music_mean − mean(real_music)``, which :meth:`transform_media_music`
        then adds to every music file's descriptor. For a model trained on synthetic music (the
        starter bundle) real recordings all differ from the training music in the same way (mixing,
        mastering, real instruments), and that shared shift would dominate their embeddings; removing
        it is first-order domain alignment (the mean part of CORAL, Sun et al. 2016). It uses no
        labels. A bundle trained on real media has no offset.
        """
        real_music = np.asarray(real_music, dtype=np.float32)
        if real_music.ndim != 2 or real_music.shape[0] < 2 or real_music.shape[1] != self.music_dim:
            raise VmnetError(f"Fitting the media-music offset needs at least two {self.music_dim}-d descriptors; "
                             f"got shape {real_music.shape}.")
        self.media_music_offset = (self.music_mean - real_music.mean(axis=0)).astype(np.float32)
        return self.media_music_offset

    def transform_video_vectors(self, video: np.ndarray) -> np.ndarray:
        """(N, Dv) pooled video vectors → (N, K) float32 whitened PCA projections."""
        video = np.asarray(video, dtype=np.float32)
        self._check_video_width(video)
        return np.asarray(self.video_pca.transform(video), dtype=np.float32)

    def transform_video_frames(self, frames: np.ndarray) -> np.ndarray:
        """(T, Dv) per-frame CNN features → (K,) float32: mean over time of the whitened PCA frames."""
        frames = np.asarray(frames, dtype=np.float32)
        if frames.ndim != 2 or frames.shape[0] == 0:
            raise VmnetError("A video needs at least one frame feature vector to be embedded.")
        self._check_video_width(frames)
        return np.asarray(pool_frames(self.video_pca.transform(frames), how="mean"), dtype=np.float32)

    # ----- persistence ---------------------------------------------------------------------------
    def to_arrays(self) -> dict[str, np.ndarray]:
        """Flat ``{name: array}`` for safetensors (the config travels as small arrays too)."""
        out = {
            "format_version": np.array([FORMAT_VERSION], dtype=np.int64),
            "music_mean": self.music_mean,
            "music_std": self.music_std,
            "video_in_dim": np.array([self.video_in_dim], dtype=np.int64),
            "config.video_components": np.array([self.config.video_components], dtype=np.int64),
            "config.max_pca_frames": np.array([self.config.max_pca_frames], dtype=np.int64),
            "config.std_floor_ratio": np.array([self.config.std_floor_ratio], dtype=np.float64),
            "config.seed": np.array([self.config.seed], dtype=np.int64),
        }
        out.update({f"video_pca.{k}": np.asarray(v) for k, v in self.video_pca.to_arrays().items()})
        if self.media_music_offset is not None:
            out[MEDIA_MUSIC_OFFSET] = self.media_music_offset
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> Preprocessor:
        """Inverse of :meth:`to_arrays`; raises ``VmnetError`` on missing or foreign arrays."""
        try:
            version = int(np.asarray(arrays["format_version"]).ravel()[0])
            if version != FORMAT_VERSION:
                raise VmnetError(f"The preprocessor was saved in format {version}; this vmnet reads "
                                 f"format {FORMAT_VERSION}, so retrain or upgrade vmnet.")
            config = PreprocessConfig(
                video_components=int(np.asarray(arrays["config.video_components"]).ravel()[0]),
                max_pca_frames=int(np.asarray(arrays["config.max_pca_frames"]).ravel()[0]),
                std_floor_ratio=float(np.asarray(arrays["config.std_floor_ratio"]).ravel()[0]),
                seed=int(np.asarray(arrays["config.seed"]).ravel()[0]),
            )
            pca = WhiteningPCA.from_arrays({k[len("video_pca."):]: v for k, v in arrays.items()
                                            if k.startswith("video_pca.")})
            video_in_dim = int(np.asarray(arrays["video_in_dim"]).ravel()[0])
            preprocessor = cls(arrays["music_mean"], arrays["music_std"], pca, video_in_dim, config)
        except KeyError as exc:
            raise VmnetError(f"The preprocessor arrays lack '{exc.args[0]}'; the bundle is incomplete "
                             "or from another program.") from None
        offset = arrays.get(MEDIA_MUSIC_OFFSET)
        if offset is not None:
            if np.shape(offset) != (preprocessor.music_dim,):
                raise VmnetError(f"The preprocessor's media-music offset has shape {np.shape(offset)}, not "
                                 f"({preprocessor.music_dim},); the bundle is damaged.")
            preprocessor.media_music_offset = np.asarray(offset, dtype=np.float32)
        return preprocessor

    def describe(self) -> dict:
        """JSON-ready summary for a bundle's config."""
        return {**asdict(self.config), "music_dim": self.music_dim,
                "video_in_dim": self.video_in_dim, "video_dim": self.video_dim}

    # ----- internals -----------------------------------------------------------------------------
    def _check_video_width(self, x: np.ndarray) -> None:
        if x.shape[-1] != self.video_in_dim:
            raise VmnetError(f"Video features have {x.shape[-1]} values but this model expects "
                             f"{self.video_in_dim}; use features from the same frame encoder.")


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
