"""The figures docs/starter-corpus.md reports for a built starter bundle (default: the app's).

Run: python bench/report_starter_bundle.py [BUNDLE] [--clips 40] [--extremes 10]

1. Held-out R@K from ``metrics.json`` (both directions, gallery size) for VM-NET, the no-structure
   ablation, CCA and random on the same test split.
2. Real-library probe: ``--clips`` fresh clips with factors drawn as the corpus draws them (other
   seeds); for each, the top-5 of the 28 real tracks for its pictures; the Spearman correlation
   between the clip's tempo factor and the mean labelled tempo of its top-5.
3. Extremes: ``--extremes`` matched 'high'/'low' pairs (``extreme_pair``: same timbre, register and
   nuisance seed); the energetic/happy share of the top-5 and the mean labelled tempo per pole, and
   in how many pairs the high clip's share beats the low clip's.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from vmnet_core.bundle.files import load_bundle
from vmnet_core.bundle.retrieval import Retriever
from vmnet_core.features.store import FeatureStore
from vmnet_core.learn.metrics import PAPER_KS
from vmnet_core.paths import cache_dir
from vmnet_core.starter.factors import clip_rngs, extreme_pair, sample_factors
from vmnet_core.starter.pipeline import DEFAULT_BUNDLE_NAME
from vmnet_core.starter.probe import (
    AROUSED_MOODS,
    music_side,
    probe_library,
    tempo_rank_correlation,
)

NAMES = {"vmnet": "VM-NET", "no_structure": "VM-NET w/o structure", "cca": "CCA", "random": "random"}


def recall_table(metrics: dict) -> str:
    """Markdown table of the held-out comparison, both directions."""
    evaluation = metrics["starter"]["evaluation"]
    gallery = evaluation["gallery"]
    ks = [k for k in PAPER_KS if k <= gallery]
    head = ["model", "direction", *[f"R@{k}" for k in ks], "median rank"]
    lines = [f"Held-out test gallery: {gallery} pairs (chance R@K = K/{gallery}).", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, block in evaluation["compare"].items():
        for direction, label in (("video_to_music", "video → music"), ("music_to_video", "music → video")):
            row = block[direction]
            cells = [NAMES.get(name, name), label, *[f"{row[f'R@{k}']:.3f}" for k in ks], f"{row['median_rank']:g}"]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def mean_pairwise_cosine(embeddings: np.ndarray) -> float:
    """Mean cosine over all pairs of (N, D) unit embeddings."""
    cosines = embeddings @ embeddings.T
    return float(cosines[np.triu_indices(len(cosines), 1)].mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle", type=Path, nargs="?", default=cache_dir() / DEFAULT_BUNDLE_NAME)
    parser.add_argument("--clips", type=int, default=40, help="random-factor probe clips")
    parser.add_argument("--extremes", type=int, default=10, help="matched high/low probe pairs")
    parser.add_argument("--seed", type=int, default=7, help="seed of the probe clips (the corpus used 0)")
    args = parser.parse_args()

    bundle = load_bundle(args.bundle)
    metrics = bundle.metrics
    settings = metrics["starter"]["settings"]
    print(f"bundle: {args.bundle}\nsettings: {json.dumps(settings)}")
    print(f"build seconds: {json.dumps(metrics['starter'].get('build_seconds'))}")
    print(f"training: best step {metrics.get('best_step')} of {metrics.get('steps')}\n")
    print(recall_table(metrics) + "\n")

    for library in (True, False):
        embeddings, _ = music_side(bundle, library)
        print(f"mean pairwise cosine of the {'real library' if library else 'corpus'} music embeddings: "
              f"{mean_pairwise_cosine(embeddings):.2f}")
    library_store = args.bundle.with_name(args.bundle.name + ".work") / "library-store"
    if library_store.is_dir():  # the same tracks embedded without the media-music offset, for comparison
        store = FeatureStore.open(library_store)
        raw = Retriever(bundle).embed_music_descriptors(np.asarray(store.music()))
        print(f"    without centring on the training music's mean: {mean_pairwise_cosine(raw):.2f}")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="vmnet-probe-") as tmp:
        random_factors = [sample_factors(clip_rngs(args.seed, i)[0]) for i in range(args.clips)]
        results = probe_library(bundle, random_factors, Path(tmp) / "random", seed=args.seed * 1000)
        rho, p = tempo_rank_correlation(results)
        print(f"{args.clips} random-factor clips: Spearman ρ(tempo factor, mean labelled tempo of top-5) = "
              f"{rho:.3f} (p = {p:.3g})")
        rng = np.random.default_rng(args.seed)
        pairs = [extreme_pair(rng) for _ in range(args.extremes)]
        shares = {}
        for side, pole in enumerate(("high", "low")):
            found = probe_library(bundle, [pair[side] for pair in pairs], Path(tmp) / pole, seed=args.seed * 1000 + 500)
            shares[pole] = np.array([r.mood_share(AROUSED_MOODS) for r in found])
            tempo = np.mean([r.mean_tempo_bpm for r in found])
            moods = {}
            for r in found:
                for item in r.top:
                    moods[item.tags["mood"]] = moods.get(item.tags["mood"], 0) + 1
            print(f"{args.extremes} '{pole}' clips: energetic/happy share of top-5 {shares[pole].mean():.2f}, "
                  f"mean labelled tempo {tempo:.0f} BPM, moods {dict(sorted(moods.items()))}")
            corpus = {f: np.mean([r.corpus_mean(f) for r in found]) for f in ("tempo_bpm", "energy", "valence")}
            print(f"    same clips against the corpus's own tracks: top-5 mean tempo {corpus['tempo_bpm']:.0f} BPM, "
                  f"energy {corpus['energy']:.2f}, valence {corpus['valence']:.2f}")
        print(f"pairs where the high clip's energetic/happy share beats the low clip's: "
              f"{int((shares['high'] > shares['low']).sum())}, the reverse: {int((shares['high'] < shares['low']).sum())}")
        corpus_rho = spearmanr([r.factors.tempo_bpm for r in results], [r.corpus_mean("tempo_bpm") for r in results])[0]
        print(f"{args.clips} random-factor clips against the corpus's own tracks: Spearman ρ(tempo factor, "
              f"mean tempo of top-5) = {corpus_rho:.3f}")
    print(f"(probe took {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
