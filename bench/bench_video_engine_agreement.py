"""Do the CNN engines give the same retrieval? Per-clip cosine and R@K on a store, torch vs ONNX Runtime.

Every item of a feature store is re-extracted from its video file with both engines of
``FrameEncoder`` (``torch``: eager, the reference; ``onnx``: ONNX Runtime), one after the other per
item (same decode). Printed: the per-clip cosine of the time-averaged CNN features (min, median),
and ``evaluate_embeddings`` through a bundle's model for both engines' frames against the store's
music (R@K differences; the target: every R@K within 0.01).

    python bench/bench_video_engine_agreement.py --bundle BUNDLE --store STORE [--limit 48]

Timing lives in bench/bench_video_descriptor.py (``--engines torch,onnx``).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from vmnet_core.bundle.files import load_bundle
from vmnet_core.bundle.retrieval import Retriever
from vmnet_core.features.store import FeatureStore
from vmnet_core.features.video_descriptor import FrameEncoder, video_frame_features
from vmnet_core.learn.metrics import evaluate_embeddings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=None, help="first N items of the store")
    args = parser.parse_args()

    print(f"load average at start {os.getloadavg()}")
    store = FeatureStore.open(args.store)
    retriever = Retriever(load_bundle(args.bundle))
    encoders = {e: FrameEncoder(engine=e) for e in ("torch", "onnx")}
    rows = [r for r in store.manifest if r["status"] == "ok"][: args.limit]
    ids = [r["id"] for r in rows]
    cosines, video = [], {e: [] for e in encoders}
    for row in rows:
        frames = {e: video_frame_features(row["path"], encoder=enc) for e, enc in encoders.items()}
        a, b = frames["torch"].mean(0), frames["onnx"].mean(0)
        cosines.append(float(a @ b / np.linalg.norm(a) / np.linalg.norm(b)))
        for e in encoders:
            video[e].append(retriever.embed_video_frames(frames[e]))
    index = {item: i for i, item in enumerate(store.ids)}
    music = retriever.embed_music_descriptors(store.music()[[index[i] for i in ids]])
    results = {e: evaluate_embeddings(music, np.stack(v)) for e, v in video.items()}
    print(f"{len(ids)} clips; per-clip cosine torch vs onnx: min {min(cosines):.7f}, "
          f"median {np.median(cosines):.7f}")
    worst = 0.0
    for direction in ("video_to_music", "music_to_video"):
        for key, ref in results["torch"][direction].items():
            if key.startswith("R@"):
                diff = results["onnx"][direction][key] - ref
                worst = max(worst, abs(diff))
                print(f"{direction:<15}{key:<7} torch {ref:.3f}  onnx {results['onnx'][direction][key]:.3f}  "
                      f"diff {diff:+.3f}")
    print(f"largest R@K difference: {worst:.3f} (gallery {len(ids)}); load average at end {os.getloadavg()}")


if __name__ == "__main__":
    main()
