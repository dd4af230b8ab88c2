"""Real media with known cues for the "why this track" tests: graded photo slideshows and synthesised tracks.

- ``fast_bright.mp4``: a cut every 0.5 s, Ken Burns moves, bright warm vivid grading (16 s);
- ``slow_dark.mp4``: one cut in 16 s, an almost still camera, dark cold muted grading;
- ``fast_major.wav``: clicks at 150 BPM, hi-hats on eighths, C–F–G–C major triads, loud and bright;
- ``slow_minor.wav``: clicks at 70 BPM, A–D–E minor triads in a low register, very soft.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from vmnet_core.media import write_video
from vmnet_testkit.real_content_media import slideshow

SR = 22050
PHOTOS = ["astronaut", "coffee", "chelsea", "rocket"]


def clicks(bpm: float, seconds: float, every: float = 1.0, freq: float = 1500.0, noise: bool = False) -> np.ndarray:
    y = np.zeros(int(seconds * SR), np.float32)
    t = np.arange(int(0.03 * SR)) / SR
    rng = np.random.default_rng(0)
    for start in np.arange(0, seconds - 0.05, every * 60.0 / bpm):
        body = rng.normal(size=t.size) if noise else np.sin(2 * np.pi * freq * t)
        y[int(start * SR):int(start * SR) + t.size] += (0.6 * body * np.exp(-t * 150)).astype(np.float32)
    return y


def _triads(roots_and_thirds: list[tuple[int, int]], seconds: float) -> np.ndarray:
    each = seconds / len(roots_and_thirds)
    t = np.arange(int(each * SR)) / SR
    parts = [0.1 * np.exp(-t) * sum(np.sin(2 * np.pi * 440 * 2 ** ((n - 69) / 12) * h * t) / h
                                    for n in (root, root + third, root + 7) for h in (1, 2, 3))
             for root, third in roots_and_thirds]
    return np.concatenate(parts).astype(np.float32)


def _mix(*parts: np.ndarray, gain: float) -> np.ndarray:
    n = min(len(p) for p in parts)
    return np.clip(gain * sum(p[:n] for p in parts), -1.0, 1.0)


def make_cue_media(folder: Path, seconds: float = 16.0) -> dict[str, Path]:
    """Write the four files into ``folder``; returns ``{stem: path}``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "fast_bright": write_video(slideshow(PHOTOS, shot_s=0.5, seconds=seconds, fps=20, exposure=1.3, warmth=0.8,
                                             saturation=1.4), folder / "fast_bright.mp4", fps=20),
        "slow_dark": write_video(slideshow(PHOTOS, shot_s=8.0, seconds=seconds, fps=20, exposure=0.5, warmth=-0.8,
                                           saturation=0.6, zoom=1.02, pan=0.02), folder / "slow_dark.mp4", fps=20),
    }
    fast = _mix(clicks(150, 2 * seconds), clicks(150, 2 * seconds, every=0.5, noise=True),
                _triads([(72, 4), (77, 4), (79, 4), (72, 4)] * 2, 2 * seconds), gain=1.5)
    slow = _mix(clicks(70, 2 * seconds), _triads([(45, 3), (50, 3), (52, 3), (45, 3)] * 2, 2 * seconds), gain=0.05)
    for stem, y in (("fast_major", fast), ("slow_minor", slow)):
        sf.write(folder / f"{stem}.wav", y, SR)
        paths[stem] = folder / f"{stem}.wav"
    return paths
