"""Benchmark the 1140-d music descriptor against the naive per-feature reference, on one core.

Prints, over real tracks of ``immich-memories-music`` (their centre 29.12 s, decoded once):
the median time per clip of the fast path (``vmnet_core.features.music_descriptor``), of the same with a
single 512-point STFT for HPSS as well (``hpss_n_fft=512``), with the official code's own MFCC
spectrogram (``mfcc_own_stft=True``), and of the naive reference
(``vmnet_testkit/naive_music_descriptor.py``, the official code's way); then how closely each feature's
entries agree with the naive reference, and why they differ where they do.

    python bench/bench_music_descriptor.py --clips 8 --repeats 3
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS",
             "VECLIB_MAXIMUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from vmnet_core.datasets.music_library import load_music_library  # noqa: E402
from vmnet_core.features.music_descriptor import (  # noqa: E402
    PARTS,
    STATS,
    MusicDescriptorConfig,
    centre_clip,
    feature_rows,
    music_descriptor,
    music_descriptor_names,
)
from vmnet_core.media import decode_audio  # noqa: E402
from vmnet_testkit.naive_music_descriptor import naive_music_descriptor  # noqa: E402

WHY = {
    "mfcc": "MFCC from the shared 512-pt spectrogram's 96-band mel; librosa.feature.mfcc(y) makes its own "
            "2048-pt, 128-band mel (mfcc_own_stft=True restores it)",
    "mfcc_delta": "deltas of the MFCCs above",
    "mfcc_delta2": "deltas of the MFCCs above",
}


def timed(fn, repeats: int) -> tuple[float, float]:
    """Median wall and process-CPU seconds of ``repeats`` calls."""
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        cpus.append(time.process_time() - cpu)
        walls.append(time.perf_counter() - wall)
    return float(np.median(walls)), float(np.median(cpus))


def feature_masks(config: MusicDescriptorConfig) -> dict[tuple[str, str, str], np.ndarray]:
    """(part, feature, stat) → boolean mask over the descriptor's entries."""
    names = music_descriptor_names(config)
    masks = {}
    for part in PARTS:
        for feature, n_rows in feature_rows(config):
            rows = {f"{feature}_{i}" if n_rows > 1 else feature for i in range(n_rows)}
            for stat in STATS:
                masks[part, feature, stat] = np.array(
                    [n.split(".")[0] == part and n.split(".")[1] in rows and n.split(".")[2] == stat
                     for n in names])
    return masks


def agreement(fast: np.ndarray, naive: np.ndarray, mask: np.ndarray) -> tuple[float, float, float]:
    """(Pearson r over clips × entries, median |Δ|, max |Δ|) for one feature block."""
    a, b = fast[:, mask].ravel(), naive[:, mask].ravel()
    diff = np.abs(a - b)
    r = float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else float("nan")
    return r, float(np.median(diff)), float(diff.max())


def verdict(r: float, max_diff: float) -> str:
    if max_diff < 0.01:
        return "exact"
    if np.isnan(r) or r >= 0.99:
        return "close"
    return "differs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=8, help="tracks to use, spread over the moods (max 28)")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per clip and path")
    args = parser.parse_args()

    config = MusicDescriptorConfig()
    single_stft = MusicDescriptorConfig(hpss_n_fft=config.n_fft, hpss_hop_length=config.hop_length)
    official_mfcc = MusicDescriptorConfig(mfcc_own_stft=True)
    tracks = load_music_library()
    picks = [tracks[i] for i in np.linspace(0, len(tracks) - 1, min(args.clips, len(tracks))).round().astype(int)]
    clips = []
    for track in picks:
        offset = max(0.0, (track.duration_s - config.clip_s) / 2)
        y = decode_audio(track.path, sr=config.sr, offset_s=offset, duration_s=config.clip_s)
        clips.append(centre_clip(y, config.sr, config))

    paths = {
        "fast": lambda clip: music_descriptor(clip, config.sr, config),
        "fast, HPSS on the 512-pt STFT": lambda clip: music_descriptor(clip, config.sr, single_stft),
        "fast, mfcc_own_stft=True": lambda clip: music_descriptor(clip, config.sr, official_mfcc),
        "naive (official code's way)": lambda clip: naive_music_descriptor(clip, config.sr, config),
    }
    warm = time.perf_counter()
    for fn in paths.values():  # numba compilation / cache loading, lazy imports
        fn(clips[0])
    print(f"warm-up (first call of every path): {time.perf_counter() - warm:.1f} s")
    print(f"clips: {len(clips)} × {config.clip_s} s at {config.sr} Hz, repeats {args.repeats}, 1 thread; "
          f"load average before: {os.getloadavg()[0]:.1f}")

    vectors: dict[str, list[np.ndarray]] = {name: [] for name in paths}
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in paths}
    for clip in clips:
        for name, fn in paths.items():
            vectors[name].append(fn(clip))
            times[name].append(timed(lambda fn=fn, clip=clip: fn(clip), args.repeats))
    print(f"load average after: {os.getloadavg()[0]:.1f}\n")

    naive_wall = np.array([t[0] for t in times["naive (official code's way)"]])
    naive_cpu = np.array([t[1] for t in times["naive (official code's way)"]])
    print(f"{'path':34s} {'wall s/clip':>12s} {'CPU s/clip':>11s} {'speed-up (wall, CPU)':>22s}")
    for name in paths:
        wall = np.array([t[0] for t in times[name]])
        cpu = np.array([t[1] for t in times[name]])
        print(f"{name:34s} {np.median(wall):12.3f} {np.median(cpu):11.3f} "
              f"{np.median(naive_wall / wall):10.2f}× {np.median(naive_cpu / cpu):9.2f}×")

    naive = np.array(vectors["naive (official code's way)"])
    masks = feature_masks(config)
    print("\nagreement with the naive reference (r over clips × entries; median |Δ| in dB, dB² for var)")
    for name in [p for p in paths if p.startswith("fast")]:
        fast = np.array(vectors[name])
        counts = {"exact": 0, "close": 0, "differs": 0}
        print(f"\n== {name}")
        for part in PARTS:
            for feature, _ in feature_rows(config):
                cells, verdicts = [], []
                for stat in STATS:
                    mask = masks[part, feature, stat]
                    r, median_diff, max_diff = agreement(fast, naive, mask)
                    verdicts.append(verdict(r, max_diff))
                    counts[verdicts[-1]] += int(mask.sum())
                    cells.append(f"{stat} r={r:5.2f} |Δ|={median_diff:6.2f}")
                worst = max(verdicts, key=["exact", "close", "differs"].index)
                reason = f"  ← {WHY[feature]}" if worst != "exact" and feature in WHY and name == "fast" else ""
                print(f"{part:10s} {feature:18s} {worst:7s} " + " | ".join(cells) + reason)
        total = sum(counts.values())
        print("entries: " + ", ".join(f"{k} {v} ({100 * v / total:.0f}%)" for k, v in counts.items()))


if __name__ == "__main__":
    main()
