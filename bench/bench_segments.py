"""Segments ("find the moment"): which hop, and what 1,000 full-length tracks cost.

Part 1, the hop: long tracks are made by playing library tracks back to back
(``vmnet_testkit.long_tracks.join_tracks``), indexed as 29.12-s windows at each hop, and queried
with 29.12-s clips cut at random offsets (the music branch embeds the clip, as a track query
would). Per hop: catalog rows per track, the share of queries whose own long track ranks first,
and the error of the returned ``start_s`` against the clip's true start.

Part 2, the scale: indexing time per full-length track is measured on the joined tracks (music
descriptor per window + embedding, one process); 1,000 tracks are extrapolated from it. Catalog
size and query time are measured on a catalog of 1,000 tracks × the measured windows per track,
whose rows are jittered copies of the real window embeddings (same geometry as trained ones),
exact and approximate (IVF over segment rows, recall@10 of tracks against exact).

    python bench/bench_segments.py --bundle BUNDLE [--tracks 3] [--queries 12] [--hops 7.28 14.56 29.12] [--out DIR]

Prints one JSON object (also written to OUT/segments.json).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from vmnet_core.bundle.catalog import Catalog
from vmnet_core.bundle.files import load_bundle
from vmnet_core.bundle.retrieval import Retriever
from vmnet_core.datasets.music_library import load_music_library
from vmnet_core.features.music_descriptor import music_descriptor
from vmnet_core.features.windows import DEFAULT_HOP_S, DEFAULT_WINDOW_S
from vmnet_core.media import decode_audio
from vmnet_testkit.long_tracks import join_tracks

HOPS = (7.28, 14.56, 29.12)
PARTS_PER_TRACK = 6


def make_long_tracks(n: int, out: Path) -> list[tuple[Path, list[float]]]:
    """``n`` tracks of :data:`PARTS_PER_TRACK` library tracks each (no library track used twice)."""
    library = load_music_library()
    return [join_tracks([library[(i + j * n) % len(library)].path for j in range(PARTS_PER_TRACK)],
                        out / f"long-{i}.wav") for i in range(n)]


def query_clips(tracks: list[tuple[Path, list[float]]], per_track: int, sr: int, seed: int = 0):
    """``(track index, true start s, clip (S,))`` for clips at random offsets."""
    rng = np.random.default_rng(seed)
    clips = []
    for t, (path, _) in enumerate(tracks):
        y = decode_audio(path, sr=sr)
        n = int(round(DEFAULT_WINDOW_S * sr))
        for start in rng.uniform(0, len(y) / sr - DEFAULT_WINDOW_S, per_track):
            first = int(round(start * sr))
            clips.append((t, float(first / sr), y[first:first + n]))
    return clips


def hop_study(retriever: Retriever, tracks, clips, hops=HOPS) -> tuple[list[dict], dict]:
    config = retriever.bundle.config.descriptors.music
    queries = retriever.embed_media_music_descriptors(np.stack([music_descriptor(c, config.sr, config)
                                                                for _, _, c in clips]))
    rows, timing, windows_by_hop = [], {}, {}
    for hop in hops:
        catalog = Catalog()
        started = time.perf_counter()
        windows_of = []
        for i, (path, _) in enumerate(tracks):
            centre, windows = retriever.music_windows_file(path, hop_s=hop)
            catalog.add("music", centre, [{"id": f"long-{i}"}], segments=[windows])
            windows_of.append(windows)
        windows_by_hop[hop] = windows_of
        timing[hop] = (time.perf_counter() - started) / len(tracks)
        hits = catalog.search(queries, "music", k=1)
        errors = [abs(h[0].start_s - start) for h, (t, start, _) in zip(hits, clips, strict=True)
                  if h[0].id == f"long-{t}"]
        rows.append({"hop_s": hop, "rows_per_track": round(catalog.search_rows("music") / len(tracks), 1),
                     "track_at_1": round(np.mean([h[0].id == f"long-{t}" for h, (t, _, _) in
                                                  zip(hits, clips, strict=True)]), 3),
                     "start_error_median_s": round(statistics.median(errors), 2) if errors else None,
                     "start_error_max_s": round(max(errors), 2) if errors else None,
                     "within_5s": round(np.mean([e <= 5.0 for e in errors]), 3) if errors else None,
                     "index_s_per_track": round(timing[hop], 1)})
    return rows, windows_by_hop


def scale_study(window_embeddings: np.ndarray, windows_per_track: float, tracks: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    per = int(round(windows_per_track))
    base = window_embeddings[rng.integers(0, len(window_embeddings), tracks * per)]
    x = base + 0.15 * rng.standard_normal(base.shape).astype(np.float32) / np.sqrt(base.shape[1])
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32).reshape(tracks, per, -1)
    from vmnet_core.bundle.segments import ItemSegments

    starts = DEFAULT_HOP_S * np.arange(per)
    catalog = Catalog()
    started = time.perf_counter()
    catalog.add("music", x[:, per // 2], [{"id": f"t{i}", "duration_s": 240.0} for i in range(tracks)],
                segments=[ItemSegments(s, starts, starts + DEFAULT_WINDOW_S) for s in x])
    add_s = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as tmp:
        catalog.save(tmp)
        size = sum(f.stat().st_size for f in Path(tmp).iterdir())
        flat = Catalog()
        flat.add("music", x[:, per // 2], [{"id": f"t{i}"} for i in range(tracks)])
        flat.save(Path(tmp) / "flat")
        flat_size = sum(f.stat().st_size for f in (Path(tmp) / "flat").iterdir())
    queries = x[rng.integers(0, tracks, 60), rng.integers(0, per, 60)] + 0.01
    out = {"tracks": tracks, "segment_rows": catalog.search_rows("music"), "catalog_bytes": size,
           "catalog_bytes_one_row_per_track": flat_size, "add_s": round(add_s, 3)}
    for label, search in (("exact", lambda q: catalog.search(q, "music", k=10, exact=True)),
                          ("one_row_per_track", lambda q: flat.search(q, "music", k=10))):
        times = []
        for q in queries:
            t0 = time.perf_counter()
            search(q)
            times.append(time.perf_counter() - t0)
        out[f"query_ms_{label}"] = round(1000 * statistics.median(times), 3)
    if catalog.search_rows("music") >= 10_000:
        stats = catalog.make_approximate("music", target_recall=0.95)
        times, overlap = [], []
        for q in queries:
            t0 = time.perf_counter()
            approx = catalog.search(q, "music", k=10)
            times.append(time.perf_counter() - t0)
            exact = catalog.search(q, "music", k=10, exact=True)
            overlap.append(len({h.id for h in approx} & {h.id for h in exact}) / 10)
        out.update({"query_ms_approximate": round(1000 * statistics.median(times), 3),
                    "approximate_track_recall_at_10": round(float(np.mean(overlap)), 3),
                    "ivf": stats.to_dict()})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", required=True, type=Path)
    parser.add_argument("--tracks", type=int, default=3, help="joined long tracks to measure on")
    parser.add_argument("--queries", type=int, default=12, help="query clips per long track")
    parser.add_argument("--scale", type=int, default=1000, help="tracks in the scale catalog")
    parser.add_argument("--hops", type=float, nargs="+", default=list(HOPS), help="hops to compare (s)")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "bench-segments")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    retriever = Retriever(load_bundle(args.bundle))
    tracks = make_long_tracks(args.tracks, args.out)
    durations = [len(decode_audio(p, sr=12000)) / 12000 for p, _ in tracks]
    clips = query_clips(tracks, args.queries, retriever.bundle.config.descriptors.music.sr)
    hops, windows_by_hop = hop_study(retriever, tracks, clips, args.hops)
    chosen = next(r for r in hops if r["hop_s"] == DEFAULT_HOP_S)
    windows = np.concatenate([w.embeddings for w in windows_by_hop[DEFAULT_HOP_S]])
    scale = scale_study(windows, chosen["rows_per_track"], args.scale)
    scale["index_s_per_track_measured"] = chosen["index_s_per_track"]
    scale["index_hours_extrapolated_one_process"] = round(args.scale * chosen["index_s_per_track"] / 3600, 2)
    report = {"machine": f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}",
              "long_track_s": [round(d, 1) for d in durations], "queries": len(clips), "hops": hops,
              "scale": scale}
    text = json.dumps(report, indent=2)
    (args.out / "segments.json").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
