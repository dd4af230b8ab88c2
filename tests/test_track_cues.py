"""Cues stored with catalog items and "why this track" on search results, on real encoded media."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vmnet_core.bundle.catalog import Catalog, CatalogItem
from vmnet_core.bundle.cue_match import cue_fit, fuse
from vmnet_core.bundle.filtered_search import count_visible, search_visible
from vmnet_core.bundle.track_cues import (
    add_missing_cues,
    cues_of_file,
    explain_hits,
    explained_records,
    read_cues_file,
    write_cues_file,
)
from vmnet_testkit.cue_media import make_cue_media


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    return make_cue_media(tmp_path_factory.mktemp("cue_media"))


@pytest.fixture(scope="module")
def query_cues(media) -> dict[str, dict]:
    return {name: cues_of_file(media[name], "video") for name in ("fast_bright", "slow_dark")}


@pytest.fixture(scope="module")
def track_cues(media) -> dict[str, dict]:
    return {name: cues_of_file(media[name], "music") for name in ("fast_major", "slow_minor")}


def _two_track_catalog(media, track_cues: dict | None) -> Catalog:
    catalog = Catalog(dim=8)
    rng = np.random.default_rng(0)
    items = [CatalogItem(id=name, path=str(media[name]), cues=track_cues[name] if track_cues else None)
             for name in ("fast_major", "slow_minor")]
    catalog.add("music", rng.normal(size=(2, 8)), items)
    return catalog


def _why(catalog: Catalog, cues: dict) -> dict[str, list[str]]:
    hits = catalog.search(np.ones(8), side="music", k=2)
    return {hit.id: phrases for hit, phrases in zip(hits, explain_hits(catalog, "music", hits, cues), strict=True)}


def test_fast_bright_and_slow_dark_clips_are_explained_by_their_own_cues(media, query_cues, track_cues):
    catalog = _two_track_catalog(media, track_cues)
    fast, slow = _why(catalog, query_cues["fast_bright"]), _why(catalog, query_cues["slow_dark"])
    assert any(p.startswith("fast cuts") and "busy rhythm" in p for p in fast["fast_major"])
    assert any("warm" in p and "grading" in p and "major key" in p for p in fast["fast_major"])
    assert any(p.startswith("long takes") and "70 BPM" in p for p in slow["slow_minor"])
    assert any("dark, cold grading" in p and "minor key" in p for p in slow["slow_minor"])
    # a contradicting pair is not dressed up with reasons
    assert fast["slow_minor"] == [] and slow["fast_major"] == []
    assert not any("long takes" in p or "dark" in p for p in fast["fast_major"])


def test_a_catalog_without_cues_loads_explains_nothing_and_can_be_filled_in(media, query_cues, tmp_path):
    _two_track_catalog(media, None).save(tmp_path / "catalog")
    lines = (tmp_path / "catalog" / "music.jsonl").read_text(encoding="utf-8").splitlines()
    old = [{k: v for k, v in json.loads(line).items() if k != "cues"} for line in lines]  # the format before cues
    (tmp_path / "catalog" / "music.jsonl").write_text("".join(json.dumps(r) + "\n" for r in old), encoding="utf-8")

    catalog = Catalog.load(tmp_path / "catalog", dim=8)
    assert all(item.cues is None for item in catalog.items("music"))
    assert _why(catalog, query_cues["fast_bright"]) == {"fast_major": [], "slow_minor": []}

    tried = []
    assert add_missing_cues(catalog, "music", on_item=lambda item_id, ok: tried.append((item_id, ok))) == 2
    assert sorted(tried) == [("fast_major", True), ("slow_minor", True)]
    catalog.save(tmp_path / "catalog")
    again = Catalog.load(tmp_path / "catalog", dim=8)
    assert again.item("music", "slow_minor").cues["mode"] == "minor"
    assert _why(again, query_cues["fast_bright"])["fast_major"]
    assert add_missing_cues(again, "music") == 0  # nothing left to do


def test_records_carry_their_explanations(media, track_cues):
    catalog = _two_track_catalog(media, track_cues)
    hits = catalog.search(np.ones(8), side="music", k=2)
    records = explained_records(hits, explain_hits(catalog, "music", hits, None))
    assert [r["explain"] for r in records] == [[], []]  # no query cues: no reasons, but the field is there
    assert set(records[0]) == {"rank", "id", "title", "score", "path", "tags", "start_s", "end_s", "explain"}


def test_the_cue_table_is_written_once_and_resumed(media, tmp_path):
    out = tmp_path / "cues.json"
    first = write_cues_file({"slow": media["slow_minor"]}, out)  # computed once here
    assert first["slow"]["mode"] == "minor"
    stamp = out.stat().st_mtime_ns
    assert write_cues_file({"slow": media["slow_minor"]}, out) == first and out.stat().st_mtime_ns == stamp
    both = write_cues_file({"slow": media["slow_minor"], "gone": tmp_path / "missing.wav"}, out)
    assert both["gone"] is None and read_cues_file(out) == both
    assert read_cues_file(tmp_path / "absent.json") == {}


def test_hidden_items_are_left_out_and_ranks_renumbered():
    rng = np.random.default_rng(1)
    catalog = Catalog(dim=16)
    ids = [f"starter-{i:05d}" for i in range(30)] + [f"real-{i}" for i in range(10)]
    catalog.add("music", rng.normal(size=(40, 16)), [CatalogItem(id=i) for i in ids])
    hidden = lambda item: item.id.startswith("starter-")  # noqa: E731
    query = rng.normal(size=16)
    hits = search_visible(catalog, query, "music", 5, hidden)
    ranked = [hit.id for hit in catalog.search(query, side="music", k=40) if not hit.id.startswith("starter-")]
    assert [hit.id for hit in hits] == ranked[:5]
    assert [hit.rank for hit in hits] == [1, 2, 3, 4, 5]
    assert count_visible(catalog, "music", hidden) == 10 and count_visible(catalog, "music") == 40
    assert len(search_visible(catalog, query, "music", 50, hidden)) == 10
    assert [h.id for h in search_visible(catalog, query, "music", 3)] == [h.id for h in catalog.search(query, k=3)]


def test_the_cue_fit_prefers_the_track_whose_tempo_and_mode_match_the_pictures(query_cues, track_cues):
    tracks = [track_cues["fast_major"], track_cues["slow_minor"]]
    fast, slow = cue_fit(query_cues["fast_bright"], "video", tracks), cue_fit(query_cues["slow_dark"], "video", tracks)
    assert fast[0] > 0 > fast[1] and slow[1] > 0 > slow[0]
    videos = [query_cues["fast_bright"], query_cues["slow_dark"]]
    assert cue_fit(track_cues["slow_minor"], "music", videos).argmax() == 1  # the reverse direction too
    assert np.array_equal(cue_fit(None, "video", tracks), np.zeros(2))  # no query cues: no opinion
    assert cue_fit(query_cues["fast_bright"], "video", [None])[0] == 0.0   # an item without cues: neutral


def test_fusion_keeps_the_network_order_at_weight_zero_and_lets_cues_break_near_ties():
    network = np.array([0.50, 0.49, 0.10])
    cues = np.array([-0.8, 0.9, 0.0])
    assert np.array_equal(fuse(network, cues, 0.0), network)
    fused = fuse(network, cues, 1.0)
    assert fused.argmax() == 1                       # a near tie goes to the track whose cues fit
    assert fused[2] < fused[1]                       # a much weaker network score still loses
    assert np.allclose(fuse(network, np.zeros(3), 1.0).argsort(), network.argsort())  # flat cues change nothing


def test_a_video_querys_frames_and_cues_come_from_one_decode_and_equal_the_separate_ones(media, query_cues, tmp_path):
    """``Retriever.video_frames_and_cues``: the CNN's frame features and the cues of
    :func:`cues_of_file`, exactly, although the file is decoded once (small clips: their own decodes)."""
    from test_bundle import write_bundle

    from vmnet_core.bundle.files import load_bundle
    from vmnet_core.bundle.retrieval import Retriever
    from vmnet_testkit.mediagen import make_video

    write_bundle(tmp_path / "bundle")
    retriever = Retriever(load_bundle(tmp_path / "bundle"))
    wide = make_video(tmp_path / "wide.mp4", seconds=4.0, size=(1280, 720), fps=10, seed=5)  # shared decode
    for path, cues in ((media["fast_bright"], query_cues["fast_bright"]), (wide, cues_of_file(wide, "video"))):
        frames, found = retriever.video_frames_and_cues(path)
        np.testing.assert_allclose(frames, retriever.video_frames_file(path), atol=1e-6)
        assert found == cues
    frames, found = retriever.video_frames_and_cues(wide, cue_span_s=2.0)
    assert found == cues_of_file(wide, "video", max_duration_s=2.0) and found["duration_s"] == 2.0
    assert len(frames) == 4  # the CNN's frames are not cut by the cue span
