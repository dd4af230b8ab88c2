"""What "why this track" costs: music cues per indexed track, video cues + phrases per video query.

    python bench/bench_explain.py --bundle BUNDLE [--tracks 6] [--runs 5]

Index side: ``cues_of_file(track, "music")`` on the first ``--tracks`` real tracks of
immich-memories-music (≈30 s each), beside the paper's music descriptor of the same file (what
indexing already paid). Query side: for a 16-s photo slideshow (vmnet_testkit/cue_media.py) and the
bundle's first 30-s corpus clip, ``cues_of_file(video, "video")`` + ``explain_hits`` over the top
10, beside the rest of a video query (frame CNN + embedding + search). Medians of ``--runs``
runs after one warm-up; prints the load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from vmnet_core.bundle.files import load_bundle
from vmnet_core.bundle.retrieval import Retriever
from vmnet_core.bundle.track_cues import cues_of_file, explain_hits
from vmnet_core.datasets.music_library import load_music_library
from vmnet_testkit.cue_media import make_cue_media


def median_s(fn, runs: int) -> float:
    fn()  # warm-up (numba compiles, the CNN loads)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--tracks", type=int, default=6)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    retriever = Retriever(load_bundle(args.bundle))
    catalog = retriever.bundle.catalog
    print(f"load average before: {os.getloadavg()}")

    cue_times, descriptor_times = [], []
    for track in load_music_library()[:args.tracks]:
        cue_times.append(median_s(lambda p=track.path: cues_of_file(p, "music"), 1))
        descriptor_times.append(median_s(lambda p=track.path: retriever.music_descriptor_file(p), 1))
    print(f"index, per track ({args.tracks} real tracks): music cues {statistics.median(cue_times):.2f} s, "
          f"music descriptor {statistics.median(descriptor_times):.2f} s (medians)")

    with tempfile.TemporaryDirectory() as tmp:
        clips = {"16-s slideshow": make_cue_media(Path(tmp))["fast_bright"],
                 "30-s corpus clip": Path(catalog.items("video")[0].path)}
        for name, clip in clips.items():
            def query(path=clip):
                return catalog.search(retriever.embed_video_file(path), side="music", k=10)

            base = median_s(query, args.runs)
            cues = median_s(lambda path=clip: cues_of_file(path, "video"), args.runs)
            hits, video_cues = query(), cues_of_file(clip, "video")
            phrases = median_s(lambda h=hits, c=video_cues: explain_hits(catalog, "music", h, c), args.runs)
            print(f"query, {name}: search {base:.2f} s; + video cues {cues:.2f} s "
                  f"(+{100 * cues / base:.0f} %); phrases for 10 hits {phrases * 1000:.2f} ms; "
                  f"example: {explain_hits(catalog, 'music', hits, video_cues)[0]}")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
