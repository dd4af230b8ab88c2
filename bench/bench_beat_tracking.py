"""Tempo of the preview's beat tracker against the labelled BPM of the real library.

For each of the 28 tracks of immich-memories-music, :func:`vmnet_core.features.beat_alignment.beat_grid_near`
analyses the 12 s the preview would (around the track's middle); the tracked tempo is compared
with the label: within 4 %, and within 4 % of ×2, ×½, ×3 or ×⅓ (octave and third errors).

    python bench/bench_beat_tracking.py
"""

from __future__ import annotations

import json

import numpy as np

from vmnet_core.datasets.music_library import load_music_library
from vmnet_core.features.beat_alignment import beat_grid_near

FACTORS = np.array([1.0, 2.0, 0.5, 3.0, 1.0 / 3.0])


def main() -> None:
    rows = []
    for track in load_music_library():
        grid = beat_grid_near(track.path, max(0.0, track.duration_s / 2 - 6.0))
        rows.append({"title": track.title, "label_bpm": track.tempo_bpm, "tracked_bpm": round(grid.tempo_bpm, 1),
                     "beats": len(grid.beats)})
        print(json.dumps(rows[-1]), flush=True)
    ratio = np.array([r["tracked_bpm"] / r["label_bpm"] for r in rows])
    exact = int(np.sum(np.abs(ratio - 1.0) <= 0.04))
    related = int(np.sum(np.min(np.abs(ratio[:, None] / FACTORS[None, :] - 1.0), axis=1) <= 0.04))
    print(json.dumps({"tracks": len(rows), "within_4_percent": exact, "within_4_percent_of_x2_half_x3_third": related}))


if __name__ == "__main__":
    main()
