"""The ``provenance`` block of an analysis: what a figure in the JSON or the report was computed
from and with what (study, seed, bootstrap count, screening thresholds, software, time)."""

from __future__ import annotations

import dataclasses
import platform
from datetime import UTC, datetime
from importlib import metadata
from typing import Any


def software_version() -> str:
    """The installed ``vmnet`` package version, else ``vmnet_core.__version__``."""
    try:
        return metadata.version("vmnet")
    except metadata.PackageNotFoundError:
        import vmnet_core

        return str(vmnet_core.__version__)


def analysis_provenance(study: str, seed: int, n_boot: int, screening: Any, tie_rule: str,
                        now: datetime | None = None) -> dict[str, Any]:
    """A JSON-ready dict. ``screening``: the study's screening thresholds (a dataclass or a dict),
    copied whole so thresholds added later are recorded too."""
    thresholds = dataclasses.asdict(screening) if dataclasses.is_dataclass(screening) else dict(screening)
    return {"study": study, "seed": int(seed), "bootstrap_resamples": int(n_boot),
            "bootstrap": "whole raters resampled with replacement, numpy default_rng(seed)",
            "tie_rule": tie_rule, "screening": thresholds, "software": "vmnet", "version": software_version(),
            "python": platform.python_version(),
            "generated_at": (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")}
