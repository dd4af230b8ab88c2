"""Model bundles: everything needed to embed and retrieve, in one directory (docs/bundle-format.md).

::

    BUNDLE/
      config.json             format, version, dims, every config (model, preprocess, training, ...),
                              library versions
      model.safetensors       VMNet weights (safetensors; never pickle)
      preprocess.safetensors  Preprocessor arrays (safetensors.numpy)
      metrics.json            evaluation numbers
      card.md                 what it was trained on, its numbers, its limits
      catalog/                music/video embeddings + item metadata (vmnet_core.bundle.catalog)

:func:`save_bundle` writes a new bundle into a temporary sibling directory and renames it into
place; re-saving into an existing bundle (or a training output folder) replaces each file with
``os.replace``. :func:`load_bundle` checks the format, the version and the dims that tie the
config, the weights, the preprocessor and the catalog together, and raises
:class:`~vmnet_core.errors.VmnetError` with one sentence when anything is missing, damaged or
mismatched.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from safetensors.numpy import save as save_numpy

from vmnet_core.atomic_io import read_json_file, read_safetensors_arrays, write_file_atomic
from vmnet_core.bundle.catalog import Catalog
from vmnet_core.bundle.config import BundleConfig, BundleDims, RankingConfig
from vmnet_core.errors import VmnetError
from vmnet_core.features.store import library_versions
from vmnet_core.learn.model_config import ModelConfig
from vmnet_core.learn.preprocess import Preprocessor
from vmnet_core.learn.towers import NumpyTowers, check_state

if TYPE_CHECKING:  # torch loads only when something asks for the torch model (training, evaluation)
    from vmnet_core.learn.model import VMNet

BUNDLE_FORMAT = "vmnet-bundle"
BUNDLE_FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
MODEL_FILE = "model.safetensors"
PREPROCESS_FILE = "preprocess.safetensors"
METRICS_FILE = "metrics.json"
CARD_FILE = "card.md"
CATALOG_DIR = "catalog"


@dataclass
class Bundle:
    """A loaded bundle.

    Attributes
    ----------
    towers : NumpyTowers — the model's eval-mode forward pass in numpy (queries need no torch)
    preprocessor : Preprocessor
    config : BundleConfig — ``config.json``, typed (:mod:`vmnet_core.bundle.config`)
    metrics : dict — ``metrics.json``
    card : str — ``card.md``
    catalog : Catalog — empty when the bundle has none yet
    path : Path — the bundle directory
    device : torch device of :attr:`model`
    """

    towers: NumpyTowers
    preprocessor: Preprocessor
    config: BundleConfig
    metrics: dict[str, Any]
    card: str
    catalog: Catalog
    path: Path
    device: str = "cpu"
    _model: VMNet | None = field(default=None, repr=False)

    @property
    def model(self) -> VMNet:
        """The torch VMNet in eval mode on :attr:`device` (built from the weights on first use)."""
        if self._model is None:
            import torch

            from vmnet_core.learn.model import VMNet

            model = VMNet(self.config.model)
            model.load_state_dict({name: torch.from_numpy(np.array(a)) for name, a in self.towers.state.items()},
                                  strict=True)
            self._model = model.to(self.device).eval()
        return self._model

    def save_catalog(self) -> Path:
        """Write :attr:`catalog` into ``path/catalog`` (each file replaced atomically)."""
        return self.catalog.save(self.path / CATALOG_DIR)

    def save_ranking(self, ranking: RankingConfig) -> Path:
        """Set how results are ordered (``config.json``'s ``ranking``, rewritten atomically) and use it now."""
        raw = read_json_file(self.path / CONFIG_FILE, "bundle config")
        raw["ranking"] = asdict(ranking)
        self.config = replace(self.config, ranking=ranking)
        return write_file_atomic(self.path / CONFIG_FILE, json.dumps(raw, indent=2) + "\n")

    def save_preprocessor(self) -> Path:
        """Rewrite ``preprocess.safetensors`` from :attr:`preprocessor` (e.g. after fitting a media-music offset)."""
        return write_file_atomic(self.path / PREPROCESS_FILE, _preprocessor_bytes(self.preprocessor))


def _preprocessor_bytes(preprocessor: Preprocessor) -> bytes:
    """The preprocessor's arrays as a safetensors file."""
    return save_numpy({k: np.ascontiguousarray(v) for k, v in preprocessor.to_arrays().items()},
                      metadata={"format": BUNDLE_FORMAT})


def bundle_dims(model_config: ModelConfig, preprocessor: Preprocessor) -> BundleDims:
    """The widths a bundle must agree on, read from its model's config and its preprocessor."""
    return BundleDims(
        music_descriptor=int(preprocessor.music_in_dim),
        video_descriptor=int(preprocessor.video_in_dim),
        music_input=int(model_config.music_dim),
        video_input=int(model_config.video_dim),
        embedding=int(model_config.embed_dim),
    )


def _check_preprocessor_fits_model(model_config: ModelConfig, preprocessor: Preprocessor, where: str) -> None:
    if int(preprocessor.music_dim) != int(model_config.music_dim):
        raise VmnetError(f"{where}: the preprocessor makes {preprocessor.music_dim}-d music inputs but the model "
                         f"takes {model_config.music_dim}-d ones; the files come from different trainings.")
    if int(preprocessor.video_dim) != int(model_config.video_dim):
        raise VmnetError(f"{where}: the preprocessor makes {preprocessor.video_dim}-d video inputs but the model "
                         f"takes {model_config.video_dim}-d ones; the files come from different trainings.")


def save_bundle(out: str | Path, model: VMNet, preprocessor: Preprocessor, config: dict[str, Any],
                metrics: dict[str, Any], card: str, catalog: Catalog | None = None) -> Path:
    """Write a bundle directory.

    Parameters
    ----------
    out : directory to create (or an existing bundle / training output folder to update)
    model : VMNet — its ``config`` (ModelConfig) is stored under ``config["model"]``
    preprocessor : Preprocessor — arrays to ``preprocess.safetensors``, summary under ``config["preprocess"]``
    config : every other config (training, store descriptors, ...); must be JSON-serialisable
    metrics : evaluation numbers for ``metrics.json``
    card : Markdown text for ``card.md``
    catalog : optional Catalog; when omitted the bundle gets an empty one (an older catalog in
        ``out`` is replaced: its embeddings belong to another model)

    Returns
    -------
    Path of the bundle directory.
    """
    out = Path(out)
    _check_preprocessor_fits_model(model.config, preprocessor, "Cannot save the bundle")
    dims = bundle_dims(model.config, preprocessor)
    catalog = catalog if catalog is not None else Catalog(dim=dims.embedding)
    if catalog.dim != dims.embedding:
        raise VmnetError(f"Cannot save the bundle: the catalog holds {catalog.dim}-d embeddings but the model "
                         f"makes {dims.embedding}-d ones.")
    full_config = json.loads(json.dumps(config))  # a deep copy that proves it is JSON
    full_config.update({
        "format": BUNDLE_FORMAT,
        "format_version": BUNDLE_FORMAT_VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "dims": dims.to_dict(),
        "model": model.config.to_dict(),
        "preprocess": {**full_config.get("preprocess", {}), **preprocessor.describe()},
        "versions": library_versions(),
    })
    weights = {name: t.detach().cpu().contiguous().numpy() for name, t in model.state_dict().items()}  # 0-d kept
    files: dict[str, bytes | str] = {
        MODEL_FILE: save_numpy(weights, metadata={"format": BUNDLE_FORMAT}),
        PREPROCESS_FILE: _preprocessor_bytes(preprocessor),
        METRICS_FILE: json.dumps(metrics, indent=2, default=_json_default) + "\n",
        CARD_FILE: card if card.endswith("\n") else card + "\n",
    }
    config_text = json.dumps(full_config, indent=2) + "\n"

    if out.is_dir() and any(out.iterdir()):
        _check_may_overwrite(out)
        _write_bundle_files(out, files, catalog, config_text)
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        _write_bundle_files(staging, files, catalog, config_text)
        if out.is_dir():
            out.rmdir()  # empty, checked above
        os.rename(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def _write_bundle_files(directory: Path, files: dict[str, bytes | str], catalog: Catalog, config_text: str) -> None:
    for name, data in files.items():
        write_file_atomic(directory / name, data)
    catalog.save(directory / CATALOG_DIR)
    write_file_atomic(directory / CONFIG_FILE, config_text)  # last: a bundle is complete once it exists


def _check_may_overwrite(out: Path) -> None:
    config_path = out / CONFIG_FILE
    if not config_path.exists():
        return  # e.g. a training output folder with logs and checkpoints
    try:
        existing = json.loads(config_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        existing = None
    if not isinstance(existing, dict) or existing.get("format") != BUNDLE_FORMAT:
        raise VmnetError(f"{out} already holds a config.json that is not a vmnet bundle's; "
                         "choose a new output directory.")


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


# --------------------------------------------------------------------------- loading


def load_bundle(directory: str | Path, device: str = "cpu") -> Bundle:
    """Load and check a bundle directory.

    Parameters
    ----------
    directory : a directory written by :func:`save_bundle`
    device : torch device for :attr:`Bundle.model` (built when first asked for; queries use the
        numpy towers and never import torch)

    Returns
    -------
    Bundle

    Raises
    ------
    VmnetError
        When the directory is not a bundle, a file is missing or damaged, the format version is
        not supported, or the dims of config, weights, preprocessor and catalog disagree.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise VmnetError(f"No bundle found at {directory}: the directory does not exist.")
    if not (directory / CONFIG_FILE).is_file():
        raise VmnetError(f"{directory} is not a vmnet bundle (it has no {CONFIG_FILE}); "
                         "train one with `vmnet train` or point to the right directory.")
    raw_config = read_json_file(directory / CONFIG_FILE, "bundle config")
    _check_format(raw_config, directory)
    config = BundleConfig.from_json(raw_config, directory / CONFIG_FILE)
    towers = _load_towers(directory / MODEL_FILE, config.model)
    preprocessor = _load_preprocessor(directory / PREPROCESS_FILE)
    _check_preprocessor_fits_model(config.model, preprocessor, f"The bundle {directory} is inconsistent")
    dims = bundle_dims(config.model, preprocessor)
    for name, value in dims.to_dict().items():
        recorded = getattr(config.dims, name)
        if recorded != value:
            raise VmnetError(f"The bundle {directory} is inconsistent: config.json says {name} is {recorded} "
                             f"but the saved files give {value}; re-save or retrain it.")
    metrics = read_json_file(directory / METRICS_FILE, "bundle metrics file")
    if not isinstance(metrics, dict):
        raise VmnetError(f"{directory / METRICS_FILE} should hold a JSON object; restore or rebuild it.")
    card_path = directory / CARD_FILE
    if not card_path.is_file():
        raise VmnetError(f"The bundle card is missing: {card_path} does not exist.")
    card = card_path.read_text(encoding="utf-8", errors="replace")
    catalog = Catalog.load(directory / CATALOG_DIR, dim=dims.embedding)
    return Bundle(towers=towers, preprocessor=preprocessor, config=config, metrics=metrics, card=card,
                  catalog=catalog, path=directory, device=device)


def _check_format(config: Any, directory: Path) -> None:
    if not isinstance(config, dict) or config.get("format") != BUNDLE_FORMAT:
        found = config.get("format") if isinstance(config, dict) else None
        raise VmnetError(f"{directory} is not a vmnet bundle (its config.json has format {found!r}, "
                         f"expected {BUNDLE_FORMAT!r}).")
    version = config.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise VmnetError(f"{directory / CONFIG_FILE} has no valid format_version; the bundle is damaged.")
    if version > BUNDLE_FORMAT_VERSION:
        raise VmnetError(f"The bundle {directory} has format version {version}, newer than this vmnet reads "
                         f"({BUNDLE_FORMAT_VERSION}); upgrade vmnet.")
    if version != BUNDLE_FORMAT_VERSION:
        raise VmnetError(f"The bundle {directory} has format version {version}, which this vmnet cannot read "
                         f"(it reads version {BUNDLE_FORMAT_VERSION}); re-save it with a matching vmnet.")


def _load_towers(path: Path, model_config: ModelConfig) -> NumpyTowers:
    arrays, _ = read_safetensors_arrays(path, "model weights file")
    check_state(arrays, model_config, str(path))
    return NumpyTowers(arrays, model_config)


def _load_preprocessor(path: Path) -> Preprocessor:
    arrays, _ = read_safetensors_arrays(path, "preprocessor file")
    try:
        return Preprocessor.from_arrays(arrays)
    except VmnetError:
        raise
    except (ValueError, TypeError, IndexError) as exc:
        raise VmnetError(f"{path} does not hold a valid preprocessor ({exc}); rebuild the bundle.") from None
