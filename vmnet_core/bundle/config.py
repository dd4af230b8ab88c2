"""A bundle's ``config.json`` as typed sections, parsed once by :func:`~vmnet_core.bundle.files.load_bundle`.

Sections (docs/bundle-format.md):

- ``dims`` → :class:`BundleDims`; ``model`` → ``ModelConfig``; ``preprocess`` → ``PreprocessConfig``;
  ``train`` → ``TrainConfig`` (the three make :attr:`BundleConfig.run`);
- ``split`` → :class:`SplitRecord`, ``store`` → :class:`StoreRecord`, ``training`` →
  :class:`TrainingRecord` (``None`` when the bundle was saved without them);
- ``descriptors`` → :class:`DescriptorRecord` (the music descriptor settings and the video frame
  sampling the store was built with; the defaults when it recorded none, e.g. imported features).

Unknown keys are tolerated and ignored in every section but ``model`` (the network the weights must
fit: an unknown key there is a :class:`~vmnet_core.errors.VmnetError`), so a bundle from a newer
vmnet that only records more still loads. A known key with a value of the wrong kind, or a missing
``dims`` / ``model`` section, is a ``VmnetError`` naming the section.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from vmnet_core.errors import VmnetError
from vmnet_core.features.extract import FRAME_FPS, MAX_FRAMES
from vmnet_core.features.music_config import MusicDescriptorConfig
from vmnet_core.learn.model_config import ModelConfig
from vmnet_core.learn.preprocess import PreprocessConfig
from vmnet_core.learn.run_config import RunConfig, TrainConfig

T = TypeVar("T")


@dataclass(frozen=True)
class BundleDims:
    """The widths a bundle's files must agree on."""

    music_descriptor: int  # raw music input (1140)
    video_descriptor: int  # raw frame / video-vector width (1280 for extracted stores)
    music_input: int  # music-branch input width (the preprocessor's output)
    video_input: int  # video-branch input width (whitening-PCA components)
    embedding: int  # shared embedding width (512)

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class SplitRecord:
    """How the training pairs were split; the held-out ids (train = every other store item)."""

    source: str = ""  # "store" (the store's split column) or "seeded"
    seed: int = 0
    counts: dict[str, int] = field(default_factory=dict)  # split → pairs
    val_ids: tuple[str, ...] = ()
    test_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class StoreRecord:
    """The feature store the bundle was trained on."""

    path: str = ""
    n_items: int = 0
    video_space: str | None = None
    dims: dict[str, int] = field(default_factory=dict)  # modality → descriptor width


@dataclass(frozen=True)
class TrainingRecord:
    """How training went."""

    steps: int = 0
    best_step: int = 0
    batch_size: int = 0
    steps_per_epoch: int = 0
    stopped_early: bool = False


@dataclass(frozen=True)
class VideoSampling:
    """How the store sampled a video's frames."""

    fps: float = FRAME_FPS  # frames per second
    max_frames: int = MAX_FRAMES  # frames kept from the start

    def __post_init__(self) -> None:
        object.__setattr__(self, "fps", float(self.fps))  # ValueError on a value that is no number
        object.__setattr__(self, "max_frames", int(self.max_frames))
        if not self.fps > 0 or self.max_frames < 1:
            raise ValueError(f"fps must be above 0 and max_frames at least 1, not {self.fps} and {self.max_frames}")

    @property
    def span_s(self) -> float:
        """Seconds from a video's start that its frames cover at most."""
        return self.max_frames / self.fps


@dataclass(frozen=True)
class DescriptorRecord:
    """The descriptor settings of the bundle's store (``store.json``'s ``descriptors``)."""

    music: MusicDescriptorConfig = field(default_factory=MusicDescriptorConfig)
    video: VideoSampling = field(default_factory=VideoSampling)


@dataclass(frozen=True)
class RankingConfig:
    """How search results are ordered (``config.json``'s ``ranking`` section)."""

    cue_weight: float = 0.0  # weight of the named-cue fit beside the network's score (0: the paper's ranking)

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.cue_weight) <= 10.0:
            raise ValueError(f"cue_weight must be between 0 and 10, not {self.cue_weight}")


@dataclass(frozen=True)
class BundleConfig:
    """The whole ``config.json``, typed."""

    format_version: int
    dims: BundleDims
    model: ModelConfig
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    descriptors: DescriptorRecord = field(default_factory=DescriptorRecord)
    ranking: RankingConfig = field(default_factory=RankingConfig)
    split: SplitRecord | None = None
    store: StoreRecord | None = None
    training: TrainingRecord | None = None
    created: str = ""  # ISO time of saving
    versions: dict[str, str | None] = field(default_factory=dict)  # library → version

    @property
    def run(self) -> RunConfig:
        """The settings the bundle was trained with (for retraining its ablation)."""
        return RunConfig(train=self.train, model=self.model, preprocess=self.preprocess)

    def held_out_ids(self, split: str) -> tuple[str, ...]:
        """The recorded ids of ``split`` ("val" or "test"); empty when none were recorded."""
        if self.split is None:
            return ()
        return {"val": self.split.val_ids, "test": self.split.test_ids}.get(split, ())

    @classmethod
    def from_json(cls, config: dict[str, Any], where: Path) -> BundleConfig:
        """Parse a ``config.json`` object whose format and version were checked; ``where`` names the
        file in error sentences."""
        def section(name: str, required: bool = False) -> dict[str, Any] | None:
            value = config.get(name)
            if value is None and not required:
                return None
            if not isinstance(value, dict):
                raise VmnetError(f"{where} has no '{name}' section; the bundle is incomplete.")
            return value

        def build(name: str, kind: type[T], values: dict[str, Any] | None) -> T:
            names = {f.name for f in fields(kind)}  # type: ignore[arg-type]
            known = {k: tuple(v) if isinstance(v, list) else v for k, v in (values or {}).items() if k in names}
            try:
                return kind(**known)
            except (TypeError, ValueError, VmnetError) as exc:
                raise VmnetError(f"The {name} section of {where} is not valid ({exc}); "
                                 "the bundle was made by another vmnet version or edited by hand.") from None

        descriptors = section("descriptors") or {}
        music, video = descriptors.get("music"), descriptors.get("video")
        optional = {name: section(name) for name in ("split", "store", "training")}
        return cls(
            format_version=int(config["format_version"]),
            dims=_dims(section("dims", required=True), where),
            model=_model(section("model", required=True), where),
            preprocess=build("preprocess", PreprocessConfig,  # bundles from before issue 18 had no mode: paper
                             {"mode": "paper", **(section("preprocess") or {})}),
            train=build("train", TrainConfig, section("train")),
            descriptors=DescriptorRecord(
                music=build("descriptors.music", MusicDescriptorConfig, music if isinstance(music, dict) else None),
                video=build("descriptors.video", VideoSampling, video if isinstance(video, dict) else None)),
            ranking=build("ranking", RankingConfig, section("ranking")),
            split=None if optional["split"] is None else build("split", SplitRecord, optional["split"]),
            store=None if optional["store"] is None else build("store", StoreRecord, optional["store"]),
            training=None if optional["training"] is None else build("training", TrainingRecord,
                                                                     optional["training"]),
            created=str(config.get("created", "")),
            versions=dict(section("versions") or {}),
        )


def _dims(values: dict[str, Any], where: Path) -> BundleDims:
    try:
        return BundleDims(**{f.name: int(values[f.name]) for f in fields(BundleDims)})
    except KeyError as exc:
        raise VmnetError(f"The dims section of {where} lacks '{exc.args[0]}'; the bundle is incomplete.") from None
    except (TypeError, ValueError) as exc:
        raise VmnetError(f"The dims section of {where} is not valid ({exc}); re-save or retrain the bundle.") from None


def _model(values: dict[str, Any], where: Path) -> ModelConfig:
    try:  # bundles from before issue 18's capacity choice trained exactly the towers they record
        return ModelConfig.from_dict({"capacity": "full", **values})
    except (TypeError, ValueError) as exc:
        raise VmnetError(f"The model section of {where} is not valid ({exc}); "
                         "the bundle was made by another vmnet version or edited by hand.") from None
