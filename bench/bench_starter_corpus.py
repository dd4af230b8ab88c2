"""Cost of the starter corpus generator: CPU seconds per clip by stage, and wall time with workers.

Run: python bench/bench_starter_corpus.py [--clips 8] [--workers 2]
CPU time (this process + ffmpeg children) is reported because wall time on a shared machine is noisy.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from vmnet_core.media import write_video
from vmnet_core.starter.audio_synth import synthesize_music
from vmnet_core.starter.corpus import DEFAULT_PRESET, DEFAULT_SR, generate_corpus
from vmnet_core.starter.factors import clip_rngs, sample_factors, sample_nuisance
from vmnet_core.starter.visuals import render_frames


def _cpu() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, kids.ru_utime + kids.ru_stime


def stage_costs(clips: int, seconds: float, fps: float, size: tuple[int, int], out: Path) -> dict[str, float]:
    """Mean CPU seconds per clip for audio synthesis, frame rendering and ffmpeg encoding."""
    totals = {"audio": 0.0, "frames": 0.0, "encode": 0.0}
    for index in range(clips):
        factors_rng, nuisance_rng = clip_rngs(0, index)
        factors, nuisance = sample_factors(factors_rng), sample_nuisance(nuisance_rng)
        own0, _ = _cpu()
        audio = synthesize_music(factors, nuisance, seconds, DEFAULT_SR)
        own1, kids1 = _cpu()
        frames = list(render_frames(factors, nuisance, seconds, fps, size))
        own2, _ = _cpu()
        write_video(frames, out / f"{index}.mp4", fps=fps, audio=audio, sr=DEFAULT_SR, preset=DEFAULT_PRESET)
        own3, kids3 = _cpu()
        totals["audio"] += own1 - own0
        totals["frames"] += own2 - own1
        totals["encode"] += (own3 - own2) + (kids3 - kids1)
    return {name: value / clips for name, value in totals.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        print("CPU s/clip  seconds fps  size     audio  frames encode  total")
        for seconds, fps, size in [(10.0, 10.0, (192, 192)), (10.0, 8.0, (160, 160)),
                                   (30.0, 10.0, (192, 192)), (30.0, 8.0, (160, 160))]:
            cost = stage_costs(args.clips, seconds, fps, size, tmp_path)
            print(f"{'':11} {seconds:6.1f} {fps:4.0f}  {size[0]}x{size[1]}  {cost['audio']:.3f}  "
                  f"{cost['frames']:.3f}  {cost['encode']:.3f}  {sum(cost.values()):.3f}")
        for seconds in (10.0, 30.0):
            start = time.perf_counter()
            generate_corpus(tmp_path / f"corpus{seconds:g}", clips=4 * args.clips, seconds=seconds, seed=1,
                            workers=args.workers)
            wall = time.perf_counter() - start
            print(f"generate_corpus: {4 * args.clips} clips x {seconds:g} s, {args.workers} workers, defaults: "
                  f"{wall:.1f} s wall, {wall / (4 * args.clips):.3f} s/clip")


if __name__ == "__main__":
    main()
