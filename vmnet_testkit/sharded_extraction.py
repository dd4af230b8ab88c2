"""Sharded `vmnet extract` runs as separate processes, one of them killed and rerun (issue 7).

:func:`run_kill_and_rerun` writes real clips (``vmnet_testkit/mediagen.py``), starts ``vmnet extract
--shard i/N`` for every shard at once (one process each, each its own ``--out``), SIGKILLs the
shard with the most items as soon as it has written some of its parts, reruns that shard
with the same command, merges the shards with ``vmnet merge-stores`` and extracts the same list in
one process for reference. It returns the figures; the test and ``bench/bench_sharded_extract.py``
judge and print them.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from vmnet_core.features.extract import discover_inputs, in_shard
from vmnet_core.features.store import PARTS_DIR, FeatureStore, part_ids
from vmnet_testkit.mediagen import make_audio, make_video

ROOT = Path(__file__).resolve().parents[1]

SUMMARY_RE = re.compile(r"(\d+) items(?: in shard \S+)?: (\d+) already done, (\d+) extracted, (\d+) failed\.")
POLL_S = 0.005


@dataclass
class ShardedRunReport:
    """Figures of one :func:`run_kill_and_rerun` (times in seconds of wall clock)."""

    clips: int
    shards: int
    modality: str
    shard_items: list[int]
    killed_shard: int
    parts_when_killed: int  # parts the killed shard had written when it died
    rerun_summary: dict[str, int]  # the rerun's own line: total, already_done, extracted, failed
    redone_after_kill: int  # parts written before the kill whose file changed in the rerun
    stray_temporary_files: int  # .*.tmp left in the killed shard's parts/ by the kill
    merged_ids: list[str]
    single_ids: list[str]
    relative_diff: dict[str, float]  # merged vs single-process store: max row ‖a−b‖/‖b‖ per array
    wall_s: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def make_clips(folder: Path, count: int, modality: str, seconds: float) -> Path:
    """``count`` distinct real clips (mp4 with sound, or wav for ``music``) and a list file of them."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(count):
        if modality == "music":
            paths.append(make_audio(folder / f"clip{n:03d}.wav", seconds=seconds, freq=220.0 + 37.0 * n, seed=n))
        else:
            paths.append(make_video(folder / f"clip{n:03d}.mp4", seconds=seconds, size=(96, 72), fps=8, seed=n))
    listing = folder / "list.txt"
    listing.write_text("".join(f"{p}\n" for p in paths), encoding="utf-8")
    return listing


def _vmnet(*args: str) -> list[str]:
    return [sys.executable, "-m", "vmnet_core.cli.main", *args]


def _extract_args(listing: Path, out: Path, modality: str, shard: str) -> list[str]:
    return ["extract", "--input", str(listing), "--out", str(out), "--modality", modality, "--shard", shard,
            "--quiet"]


def _env(threads: int) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env[name] = str(threads)
    return env


def _finish(proc: subprocess.Popen, what: str, timeout_s: float) -> str:
    out, err = proc.communicate(timeout=timeout_s)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} exited {proc.returncode}:\n{err[-3000:]}")
    return out


def parse_summary(printed: str) -> dict[str, int]:
    """The counts of ``vmnet extract``'s summary line."""
    match = SUMMARY_RE.search(printed)
    if match is None:
        raise RuntimeError(f"no summary line in: {printed!r}")
    total, done, extracted, failed = map(int, match.groups())
    return {"total": total, "already_done": done, "extracted": extracted, "failed": failed}


def part_stamps(store_dir: Path) -> dict[str, tuple[int, int]]:
    """id → (inode, modification time in ns) of every finished part; a rewrite changes both."""
    parts = store_dir / PARTS_DIR
    return {i: (s.st_ino, s.st_mtime_ns) for i in part_ids(store_dir) for s in [os.stat(parts / f"{i}.npz")]}


def _kill_after(proc: subprocess.Popen, store_dir: Path, parts: int, timeout_s: float) -> None:
    """SIGKILL ``proc`` once ``store_dir`` holds ``parts`` parts (or fail if it ends first)."""
    deadline = time.monotonic() + timeout_s
    while len(part_ids(store_dir)) < parts:
        if proc.poll() is not None:
            raise RuntimeError(f"the shard to kill ended (exit {proc.returncode}) before writing {parts} parts")
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"the shard to kill wrote fewer than {parts} parts in {timeout_s:.0f} s")
        time.sleep(POLL_S)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()


def _differences(a: FeatureStore, b: FeatureStore) -> dict[str, float]:
    """Per array: the largest row difference relative to the row, max_i ‖a_i − b_i‖ / ‖b_i‖.

    (Thread counts change the order of float sums, so two correct extractions may differ by ~1e-7.)
    """
    pairs = {"music": (a.music(), b.music())}
    if "video" in a.modalities:
        pairs["video"] = (a.video(), b.video())
        pairs["frames"] = (np.concatenate([a.frames(i) for i in a.ids]).astype(np.float32),
                           np.concatenate([b.frames(i) for i in b.ids]).astype(np.float32))
    return {name: float(np.max(np.linalg.norm(x - y, axis=1) / np.maximum(np.linalg.norm(y, axis=1), 1e-12)))
            for name, (x, y) in pairs.items()}


def run_kill_and_rerun(work: Path, clips: int = 8, shards: int = 2, modality: str = "music",
                       seconds: float = 3.0, kill_after_parts: int | None = None, threads: int = 1,
                       reference_main: Callable[[list[str]], int] | None = None,
                       timeout_s: float = 600.0) -> ShardedRunReport:
    """Run the whole scenario under ``work`` (see the module notes) and return its figures.

    ``kill_after_parts``: parts the killed shard writes before its SIGKILL (default: half of its items).
    ``reference_main``: make the single-process reference store by calling this ``vmnet`` main(argv)
    in this process instead of starting one (a test that has the extractor's libraries loaded
    saves a start-up).
    """
    work.mkdir(parents=True, exist_ok=True)
    listing = make_clips(work / "media", clips, modality, seconds)
    ids = [item.id for item in discover_inputs(listing, modality)]
    shard_items = [sum(in_shard(i, (s, shards)) for i in ids) for s in range(shards)]
    killed = int(np.argmax(shard_items))
    if kill_after_parts is None:
        kill_after_parts = max(1, shard_items[killed] // 2)
    if shard_items[killed] <= kill_after_parts:
        raise ValueError(f"the largest shard holds {shard_items[killed]} items; use more clips than "
                         f"{kill_after_parts} per shard so the kill lands mid-run")
    outs = [work / f"shard{s}" for s in range(shards)]
    env, wall = _env(threads), {}

    started = time.perf_counter()
    procs = [subprocess.Popen(_vmnet(*_extract_args(listing, outs[s], modality, f"{s}/{shards}")), env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for s in range(shards)]
    _kill_after(procs[killed], outs[killed], kill_after_parts, timeout_s)
    before = part_stamps(outs[killed])
    for s, proc in enumerate(procs):
        if s != killed:
            _finish(proc, f"shard {s}/{shards}", timeout_s)
    wall["shards_until_kill_and_others_done"] = time.perf_counter() - started

    started = time.perf_counter()
    rerun = subprocess.run(_vmnet(*_extract_args(listing, outs[killed], modality, f"{killed}/{shards}")), env=env,
                           text=True, capture_output=True, timeout=timeout_s)
    if rerun.returncode != 0:
        raise RuntimeError(f"the rerun of shard {killed}/{shards} exited {rerun.returncode}:\n{rerun.stderr[-3000:]}")
    wall["rerun_killed_shard"] = time.perf_counter() - started
    after = part_stamps(outs[killed])
    redone = sum(after.get(i) != stamp for i, stamp in before.items())
    stray = sum(1 for p in (outs[killed] / PARTS_DIR).iterdir() if p.name.endswith(".tmp"))

    started = time.perf_counter()
    merge = subprocess.run(_vmnet("merge-stores", "--out", str(work / "merged"), *map(str, outs), "--quiet"),
                           env=env, text=True, capture_output=True, timeout=timeout_s)
    if merge.returncode != 0:
        raise RuntimeError(f"merge-stores exited {merge.returncode}:\n{merge.stderr[-3000:]}")
    wall["merge"] = time.perf_counter() - started

    started = time.perf_counter()
    if reference_main is not None:
        if reference_main(_extract_args(listing, work / "single", modality, "0/1")) != 0:
            raise RuntimeError("the single-process extraction failed (see its message above)")
    else:
        single = subprocess.run(_vmnet(*_extract_args(listing, work / "single", modality, "0/1")), env=env, text=True,
                                capture_output=True, timeout=timeout_s)
        if single.returncode != 0:
            raise RuntimeError(f"the single-process extraction exited {single.returncode}:\n"
                               f"{single.stderr[-3000:]}")
    wall["single_process"] = time.perf_counter() - started

    merged, reference = FeatureStore.open(work / "merged"), FeatureStore.open(work / "single")
    same_ids = merged.ids == reference.ids
    return ShardedRunReport(
        clips=clips, shards=shards, modality=modality, shard_items=shard_items, killed_shard=killed,
        parts_when_killed=len(before), rerun_summary=parse_summary(rerun.stdout), redone_after_kill=redone,
        stray_temporary_files=stray, merged_ids=merged.ids, single_ids=reference.ids,
        relative_diff=_differences(merged, reference) if same_ids else {}, wall_s=wall)
