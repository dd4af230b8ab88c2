"""Probing a bundle with generated clips against the 28 real library tracks.

A probe clip is a fresh procedural music video with chosen factors (e.g. :func:`extreme_pair`: a
"high" clip, fast, bright, warm, busy, and a "low" one, slow, dark, cool, calm, with the same timbre
and register; probe both lists with the same ``seed`` so each pair shares its nuisance too). Its *pictures* go through the
bundle's video path (:meth:`Retriever.embed_video_file`, the code a user's upload takes) and are
ranked against the real ``immich-memories-music`` tracks only, whose labels (mood, tempo) then say
whether the model's choices lean the way the factors do. Used by
tests/test_starter_real_library.py and bench/report_starter_bundle.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from vmnet_core.bundle.retrieval import Retriever
from vmnet_core.errors import VmnetError
from vmnet_core.starter.corpus import DEFAULT_SECONDS, generate_clip
from vmnet_core.starter.factors import ClipFactors
from vmnet_core.starter.items import is_library_item

AROUSED_MOODS = ("energetic", "happy")
CALM_MOODS = ("calm", "tender", "nostalgic")


@dataclass(frozen=True)
class ProbeResult:
    """One probe clip: its factors and the tracks the model ranks first for its pictures.

    top : the best real library tracks (CatalogItem, best first).
    corpus_top : the best of the corpus's own procedural tracks, for comparison (tags hold their factors).
    """

    factors: ClipFactors
    path: Path
    top: tuple
    corpus_top: tuple = ()

    def mood_share(self, moods: Iterable[str]) -> float:
        """Fraction of the top library tracks whose ``mood`` tag is one of ``moods``."""
        wanted = set(moods)
        return float(np.mean([item.tags.get("mood") in wanted for item in self.top])) if self.top else 0.0

    @property
    def mean_tempo_bpm(self) -> float:
        """Mean labelled tempo of the top library tracks."""
        return float(np.mean([float(item.tags["tempo_bpm"]) for item in self.top]))

    def corpus_mean(self, factor: str) -> float:
        """Mean of a numeric factor (e.g. ``"energy"``, ``"tempo_bpm"``) over the top corpus tracks."""
        return float(np.mean([float(item.tags[factor]) for item in self.corpus_top]))


def music_side(bundle, library: bool) -> tuple[np.ndarray, list]:
    """((L, 512) embeddings, items) of the music catalog's real library tracks (or of the rest)."""
    catalog = bundle.catalog
    items = catalog.items("music")
    rows = [i for i, item in enumerate(items) if is_library_item(item) == library]
    return catalog.embeddings("music")[rows], [items[i] for i in rows]


def library_embeddings(bundle) -> tuple[np.ndarray, list]:
    """((L, 512) embeddings, items) of the catalog's real library tracks; raises if there are none."""
    embeddings, items = music_side(bundle, library=True)
    if not items:
        raise VmnetError(f"The bundle {bundle.path} has no immich-memories-music tracks in its catalog; "
                         "build it with the real library indexed.")
    return embeddings, items


def _top(embeddings: np.ndarray, items: list, query: np.ndarray, k: int) -> tuple:
    if not items:
        return ()
    order = np.argsort(-(embeddings @ query), kind="stable")[:k]
    return tuple(items[i] for i in order)


def probe_library(bundle, factors: Sequence[ClipFactors], out_dir: str | Path, k: int = 5,
                  seconds: float = DEFAULT_SECONDS, seed: int = 10_000, retriever=None) -> list[ProbeResult]:
    """Generate one clip per factors entry (nuisance seeds ``seed``, ``seed + 1``, …) into ``out_dir``
    and rank the real library tracks (and, apart, the corpus's tracks) for each clip's pictures."""
    retriever = retriever or Retriever(bundle)
    library, library_items = library_embeddings(bundle)
    corpus, corpus_items = music_side(bundle, library=False)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for index, clip_factors in enumerate(factors):
        path = generate_clip(clip_factors, out_dir / f"probe-{index:03d}.mp4", seconds, seed + index)
        query = retriever.embed_video_file(path)  # (512,)
        results.append(ProbeResult(clip_factors, path, _top(library, library_items, query, k),
                                   _top(corpus, corpus_items, query, k)))
    return results


def tempo_rank_correlation(results: Sequence[ProbeResult]) -> tuple[float, float]:
    """Spearman (ρ, two-sided p) between each clip's tempo factor and its top tracks' mean labelled tempo."""
    rho, p = spearmanr([r.factors.tempo_bpm for r in results], [r.mean_tempo_bpm for r in results])
    return float(rho), float(p)
