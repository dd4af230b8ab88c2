"""The real-content check (issue 14): does a bundle follow tempo and mood on real photographs and real music?

    python bench/bench_real_content.py --bundle BUNDLE [--clips 60] [--seconds 12] [--work DIR]

Builds ``--clips`` music videos from real photographs cut and graded to excerpts of the 28 real
tracks of immich-memories-music (vmnet_testkit/real_content_check.py; kept out of any training),
then scores three ways of choosing music for them:

- ``network``: the bundle's embeddings (cosine), as the paper ranks;
- ``mood cues``: the fit on the two mood axes alone (the cue fit before the pulse);
- ``cues``: the named-cue fit alone, mood axes and pulse (vmnet_core/bundle/cue_match.py);
- ``network + w·cues``: the two fused as the product ranks (``--weights``; the default bundle uses 2);
- ``label oracle``: the clips' and tracks' *true* tempo, mode and energy (what the check asks a
  bundle to follow; its hub share is what the library's label clusters force on any right answer);
- ``..., true music tempo & mode``: the fused ranking with the music's estimated tempo, key and
  mode replaced by the labels (what a perfect beat tracker and key estimator would change);
- ``..., balanced on seed-S clips``: the fused ranking plus exposure offsets fitted on the check's
  clips of another seed (``--balance-seed``; vmnet_core/bundle/exposure.py), as
  ``vmnet index --balance-with`` fits them: a bank of videos of the same kind, balancing's best case;
- ``..., spread over the clips themselves``: the offsets fitted on the clips being ranked, as
  ``vmnet query --video DIR --spread`` fits them on its batch.

For each: paired video→music R@10 among the clips' own soundtracks, Spearman ρ between the clip's
tempo / valence / energy and its top-5 real tracks' BPM / share of major keys / share of
energetic-or-happy moods, each beside the 95th percentile under shuffled labels, the largest
share of top-5 lists one track takes (hubness) beside the share lists with no hub pass 1 time in
20, and that share counted only over the clips the track's labels do not fit (the off-label
share). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pickle
import time
from pathlib import Path

import numpy as np

from vmnet_core.bundle.cue_match import cue_fit, mood_fit, standardised
from vmnet_core.bundle.exposure import balance_offsets
from vmnet_core.bundle.files import load_bundle
from vmnet_core.bundle.retrieval import Retriever
from vmnet_core.bundle.track_cues import cues_of_file
from vmnet_core.datasets.music_library import load_music_library
from vmnet_core.paths import cache_dir
from vmnet_testkit.real_content_check import (
    TOP_K,
    check_clips,
    cue_scores,
    fused_scores,
    label_oracle_scores,
    measure,
    with_true_tempo_and_mode,
    write_check_clip,
)

ROOT = Path(__file__).resolve().parents[1]
CUE_SOURCES = ("vmnet_core/features/video_cues.py", "vmnet_core/features/music_cues.py",
               "vmnet_core/features/pulse.py", "vmnet_core/bundle/track_cues.py")


def cue_code_digest() -> str:
    """8 hex digits of the code the cues come from: cached inputs are recomputed when it changes."""
    digest = hashlib.sha256()
    for name in CUE_SOURCES:
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()[:8]


def starter_held_out(retriever: Retriever, weights: list[float]) -> None:
    """R@1/5/10 video→music on the bundle's own held-out test pairs (its catalog's test videos and
    their soundtracks), by the network alone and fused with the cue fit at each weight."""
    catalog = retriever.bundle.catalog
    videos = [item for item in catalog.items("video") if item.split == "test" and item.pair_id]
    if len(videos) < 2:
        print("\n(the bundle's catalog holds no held-out test pairs: starter section skipped)")
        return
    video = np.stack([catalog.embedding("video", v.id) for v in videos])
    music = np.stack([catalog.embedding("music", v.pair_id) for v in videos])
    video_cues = [cues_of_file(v.path, "video") for v in videos]
    music_cues = [cues_of_file(v.path, "music") for v in videos]  # a clip's soundtrack is its pair
    network = video @ music.T
    fits = cue_scores(cue_fit, video_cues, music_cues)
    print(f"\nthe bundle's own held-out test pairs ({len(videos)}), video→music among their soundtracks:\n")
    print("| scorer | R@1 | R@5 | R@10 |\n|---|---|---|---|")
    for name, weight in [("network", 0.0), *((f"network + {w:g}·cues", w) for w in weights)]:
        scores = fused_scores(network, fits, weight)
        ranks = (scores > np.diag(scores)[:, None]).sum(axis=1)
        print(f"| {name} | " + " | ".join(f"{np.mean(ranks < k):.2f}" for k in (1, 5, 10)) + " |")


def check_inputs(retriever: Retriever, args: argparse.Namespace, seed: int, library: list) -> tuple[list, tuple]:
    """The check's clips of ``seed`` (written once under ``--work``) and their inputs, cached per bundle
    and cue code: video and soundtrack embeddings ``(n, 512)``, the library's ``(28, 512)``, and the
    clips' picture cues, their soundtracks' cues and the library's cues."""
    clips = check_clips(args.clips, args.seconds, seed)
    work = args.work / f"{args.clips}x{args.seconds:g}s-seed{seed}"
    work.mkdir(parents=True, exist_ok=True)
    paths = [write_check_clip(clip, work, args.seconds) for clip in clips]
    built = int((args.bundle / "config.json").stat().st_mtime)  # a rebuilt bundle with the same name re-measures
    cache = work / f"inputs-{args.bundle.resolve().name}-{built}-{cue_code_digest()}.pkl"
    if cache.exists():
        return clips, pickle.loads(cache.read_bytes())
    inputs = (np.stack([retriever.embed_video_file(p) for p in paths]),
              np.stack([retriever.embed_music_file(p) for p in paths]),
              np.stack([retriever.embed_music_file(t.path) for t in library]),
              [cues_of_file(p, "video") for p in paths],
              [cues_of_file(p, "music") for p in paths],
              [cues_of_file(t.path, "music") for t in library])
    cache.write_bytes(pickle.dumps(inputs))
    return clips, inputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--clips", type=int, default=60)
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--seed", type=int, default=0, help="shot lengths and photo orders (0: the reported check)")
    parser.add_argument("--weights", type=lambda text: [float(w) for w in text.split(",")], default=[1.0, 2.0],
                        help="cue weights to fuse with, comma-separated")
    parser.add_argument("--balance-seed", type=int, default=None,
                        help="balance on the clips of this seed (default: 1 for seed 0, else 0; -1: no balanced rows)")
    parser.add_argument("--work", type=Path, default=cache_dir() / "real-content-check")
    args = parser.parse_args()
    if args.balance_seed is None:
        args.balance_seed = 1 if args.seed == 0 else 0
    started = time.perf_counter()
    print(f"load average before: {os.getloadavg()}")
    retriever = Retriever(load_bundle(args.bundle))
    cue_weight = retriever.bundle.config.ranking.cue_weight
    library = load_music_library()
    clips, (video, soundtrack, tracks, video_cues, soundtrack_cues, track_cues) = check_inputs(
        retriever, args, args.seed, library)

    network = {"paired": video @ soundtrack.T, "library": video @ tracks.T}
    reference = retriever.bundle.catalog.embeddings("video")  # the bundle's own videos: a hub's pull
    centred = {"paired": network["paired"] - (reference @ soundtrack.T).mean(axis=0),
               "library": network["library"] - (reference @ tracks.T).mean(axis=0)}
    def fits(fit, soundtracks=soundtrack_cues, tracks=track_cues) -> dict[str, np.ndarray]:
        return {"paired": cue_scores(fit, video_cues, soundtracks), "library": cue_scores(fit, video_cues, tracks)}

    cues = fits(cue_fit)
    moods = fits(lambda *a: standardised(mood_fit(*a)))  # the cue fit before the pulse
    scorers = {"network": network, "network, hub-centred": centred, "mood cues": moods, "cues (mood + pulse)": cues,
               "label oracle": {"paired": label_oracle_scores(clips, [clip.track for clip in clips]),
                                "library": label_oracle_scores(clips, library)}}
    labelled = fits(cue_fit, [with_true_tempo_and_mode(c, clip.track) for c, clip in zip(soundtrack_cues, clips, strict=True)],
                    [with_true_tempo_and_mode(c, track) for c, track in zip(track_cues, library, strict=True)])
    for weight in args.weights:
        for name, base, fit, label in (("network", network, moods, "mood cues"), ("network", network, cues, "cues"),
                                       ("centred", centred, cues, "cues"),
                                       ("network", network, labelled, "cues, true music tempo & mode")):
            scorers[f"{name} + {weight:g}·{label}"] = {key: fused_scores(base[key], fit[key], weight) for key in network}
    if args.balance_seed >= 0 and args.balance_seed != args.seed:
        _, (bank_video, _, _, bank_cues, _, _) = check_inputs(retriever, args, args.balance_seed, library)
        items = {"paired": (soundtrack, soundtrack_cues), "library": (tracks, track_cues)}
        for weight in args.weights:
            scorers[f"network + {weight:g}·cues, balanced on seed-{args.balance_seed} clips"] = {
                key: scorers[f"network + {weight:g}·cues"][key] + balance_offsets(
                    fused_scores(bank_video @ embeddings.T, cue_scores(cue_fit, bank_cues, item_cues), weight), TOP_K)
                for key, (embeddings, item_cues) in items.items()}
    for weight in args.weights:  # the batch as its own bank, as `vmnet query --video DIR --spread` fits it
        fused = scorers[f"network + {weight:g}·cues"]
        scorers[f"network + {weight:g}·cues, spread over the clips themselves"] = {
            key: fused[key] + balance_offsets(fused[key], TOP_K) for key in fused}
    print(f"\n{args.clips} clips of {args.seconds:g} s (seed {args.seed}), bundle {args.bundle}, "
          f"bundle cue weight {cue_weight:g}\n")
    results = {name: measure(clips, s["paired"], s["library"], library) for name, s in scorers.items()}
    names = [row[0] for row in results["network"].rows()]
    print("| scorer | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for name, result in results.items():
        print(f"| {name} | " + " | ".join(f"{row[1]:+.2f}" for row in result.rows()) + " |")
    print("| no effect, p95 (shuffled labels; for the hub share, lists with no hub) | "
          + " | ".join(f"{row[2]:.2f}" for row in results["network"].rows()) + " |")
    starter_held_out(retriever, args.weights)
    print(f"\npaired R@10 chance: {results['network'].paired_chance:.3f}; wall {time.perf_counter() - started:.0f} s; "
          f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
