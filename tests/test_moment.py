"""Find the moment, end to end on real music: long tracks made by joining the library's tracks are
indexed as windows; a clip of part k is found in its own long track at part k's start; ``vmnet
query --json`` carries ``start_s`` / ``end_s``; ``vmnet preview`` cuts the best moment to the video."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from vmnet_core.bundle.files import load_bundle
from vmnet_core.bundle.retrieval import Retriever, index_media_files
from vmnet_core.datasets.music_library import load_music_library
from vmnet_core.features.extract import discover_inputs
from vmnet_core.features.music_descriptor import music_descriptor
from vmnet_core.features.windows import DEFAULT_HOP_S, DEFAULT_WINDOW_S
from vmnet_core.media import decode_audio, probe
from vmnet_testkit.demo_server import copy_bundle
from vmnet_testkit.long_tracks import cut_video, join_tracks


@pytest.fixture(scope="module")
def long_catalog(tiny_bundle, tmp_path_factory):
    """A copy of the tiny bundle with two long tracks (5 library tracks each) indexed as windows."""
    root = tmp_path_factory.mktemp("moment")
    bundle_dir = copy_bundle(tiny_bundle, root / "bundle")
    library = load_music_library()
    tracks = {}
    for i, picks in enumerate(([0, 6, 12, 18], [3, 9, 15, 21])):
        path, starts = join_tracks([library[j].path for j in picks], root / "long" / f"long-{i}.wav")
        tracks[path.stem] = (path, starts)
    retriever = Retriever(load_bundle(bundle_dir))
    summary = index_media_files(retriever, "music", discover_inputs(root / "long", "music"), progress=False,
                                with_cues=False)
    assert summary.added == 2 and not summary.failed
    return retriever, tracks, bundle_dir, root


def clip_embedding(retriever: Retriever, path, start_s: float) -> np.ndarray:
    config = retriever.bundle.config.descriptors.music
    y = decode_audio(path, sr=config.sr, offset_s=start_s, duration_s=DEFAULT_WINDOW_S)
    return retriever.embed_media_music_descriptors(music_descriptor(y, config.sr, config)[None, :])[0]


def test_a_clip_of_part_k_is_found_at_part_ks_start(long_catalog):
    retriever, tracks, _, _ = long_catalog
    catalog = retriever.bundle.catalog
    item = catalog.item("music", "long-0")
    assert item.duration_s > 3.5 * DEFAULT_WINDOW_S
    assert len(catalog.segments("music").starts[catalog.segments("music").rows == catalog.row("music", "long-0")]) \
        >= int((item.duration_s - DEFAULT_WINDOW_S) // DEFAULT_HOP_S)
    long_ids = {"long-0", "long-1"}
    for name, k in (("long-0", 1), ("long-0", 3), ("long-1", 2)):
        path, starts = tracks[name]
        true_start = starts[k] + 1.0  # a clip of part k, not aligned to any window
        hits = [h for h in catalog.search(clip_embedding(retriever, path, true_start), "music", k=50)
                if h.id in long_ids]
        assert hits[0].id == name
        # within the window grid's resolution: the best-scoring window may be a neighbour of the nearest one
        assert abs(hits[0].start_s - true_start) <= DEFAULT_HOP_S + 1.0, (name, k, hits[0].start_s, true_start)
        assert hits[0].end_s == pytest.approx(hits[0].start_s + DEFAULT_WINDOW_S, abs=0.01)


def run_vmnet(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vmnet_core.cli.main", *args], capture_output=True, text=True,
                          timeout=900)


def test_query_json_and_preview_carry_the_moment(long_catalog):
    _, tracks, bundle_dir, root = long_catalog
    video = cut_video(root / "clip.mp4", seconds=8.0, cut_s=2.0)
    done = run_vmnet("query", "--bundle", str(bundle_dir), "--video", str(video), "-k", "100", "--json")
    assert done.returncode == 0, done.stderr
    records = {r["id"]: r for r in json.loads(done.stdout)}
    for name in tracks:
        record = records[name]
        assert 0.0 <= record["start_s"] < record["end_s"] <= probe(tracks[name][0]).duration_s + 0.01
    out = root / "preview.mp4"
    done = run_vmnet("preview", "--bundle", str(bundle_dir), "--video", str(video), "--track", "long-1",
                     "--out", str(out), "--json")
    assert done.returncode == 0, done.stderr
    facts = json.loads(done.stdout)
    assert facts["segment"]["start_s"] == records["long-1"]["start_s"]  # the moment the query showed
    assert abs(facts["start_s"] - facts["segment"]["start_s"]) < 3.0  # moved by less than a bar or so
    assert probe(out).duration_s == pytest.approx(probe(video).duration_s, abs=0.05)
    bad = run_vmnet("preview", "--bundle", str(bundle_dir), "--video", str(video), "--track", "nope",
                    "--out", str(root / "x.mp4"))
    assert bad.returncode == 2 and "not in the catalog" in bad.stderr


def test_music_to_video_finds_the_part_of_a_long_video(long_catalog):
    retriever, _, _, root = long_catalog
    video = cut_video(root / "videos" / "two-shots.mp4", seconds=70.0, cut_s=35.0, fps=5)
    summary = index_media_files(retriever, "video", discover_inputs(root / "videos", "both"), progress=False,
                                with_cues=False)
    assert summary.added == 1 and not summary.failed
    frames = retriever.video_frames_file(video)  # (70, 1280) at 1 fps
    hits = retriever.bundle.catalog.search(retriever.embed_video_frames(frames[40:]), "video", k=50)
    hit = next(h for h in hits if h.id == "two-shots")
    assert hit.start_s >= 35.0 - 0.01 and hit.end_s <= 70.0 + 0.01  # a window inside the second shot
