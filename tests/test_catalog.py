"""Catalog: incremental add/replace, exact cosine search, approximate (IVF) search with
measured recall, persistence."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vmnet_core.bundle.catalog import Catalog, CatalogItem, Hit
from vmnet_core.bundle.exact_search import top_k_inner_product
from vmnet_core.errors import VmnetError


def unit_rows(n: int, dim: int = 512, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def items(prefix: str, n: int, start: int = 0) -> list[dict]:
    return [{"id": f"{prefix}{i}", "title": f"Title {i}", "path": f"/media/{prefix}{i}.wav",
             "duration_s": 10.0 + i, "tags": {"mood": "calm" if i % 2 else "busy"}, "split": "test"}
            for i in range(start, start + n)]


def test_add_and_search_finds_the_item_itself():
    emb = unit_rows(30)
    catalog = Catalog()
    catalog.add("music", emb, items("m", 30))
    hits = catalog.search(emb[7], side="music", k=5)
    assert [h.rank for h in hits] == [1, 2, 3, 4, 5]
    assert hits[0].id == "m7" and hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert hits[0].title == "Title 7" and hits[0].tags == {"mood": "calm"} and hits[0].duration_s == 17.0
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:], strict=False))
    assert catalog.size("music") == 30 and catalog.size("video") == 0


def test_search_matches_brute_force_cosine_on_unnormalised_input():
    emb = unit_rows(200, seed=1)
    catalog = Catalog()
    catalog.add("video", emb * 3.0, items("v", 200))  # scaled rows are normalised on add
    query = np.random.default_rng(2).standard_normal(512).astype(np.float32) * 5
    hits = catalog.search(query, side="video", k=10)
    expected = np.argsort(-(emb @ (query / np.linalg.norm(query))))[:10]
    assert [h.id for h in hits] == [f"v{i}" for i in expected]
    assert hits[0].score == pytest.approx(float(emb[expected[0]] @ query / np.linalg.norm(query)), abs=1e-5)


def test_same_id_replaces_and_new_ids_append():
    emb = unit_rows(10, seed=3)
    catalog = Catalog()
    catalog.add("music", emb[:5], items("m", 5))
    replacement = [{"id": "m2", "title": "New two"}, {"id": "m9", "title": "Nine"}]
    catalog.add("music", emb[[8, 9]], replacement)
    assert catalog.ids("music") == ["m0", "m1", "m2", "m3", "m4", "m9"]
    assert catalog.item("music", "m2").title == "New two"
    top = catalog.search(emb[8], side="music", k=1)[0]
    assert top.id == "m2" and top.score == pytest.approx(1.0, abs=1e-5)
    assert catalog.has("music", "m9") and not catalog.has("video", "m9")


def test_duplicate_ids_in_one_call_keep_the_last():
    emb = unit_rows(3, seed=4)
    catalog = Catalog()
    catalog.add("music", emb, [{"id": "a"}, {"id": "b"}, {"id": "a", "title": "second a"}])
    assert catalog.ids("music") == ["a", "b"]
    assert catalog.item("music", "a").title == "second a"
    np.testing.assert_allclose(catalog.embeddings("music")[0], emb[2], atol=1e-6)


def test_batch_query_equals_single_queries_and_k_is_capped():
    emb = unit_rows(40, seed=5)
    catalog = Catalog()
    catalog.add("music", emb, items("m", 40))
    queries = unit_rows(4, seed=6)
    batch = catalog.search(queries, side="music", k=6)
    assert len(batch) == 4
    for q, hits in zip(queries, batch, strict=True):
        single = catalog.search(q, side="music", k=6)
        assert [h.id for h in hits] == [h.id for h in single]
        np.testing.assert_allclose([h.score for h in hits], [h.score for h in single], atol=1e-5)
    assert len(catalog.search(queries[0], side="music", k=1000)) == 40


def clustered_rows(n: int, centres: int = 64, dim: int = 512, seed: int = 0) -> np.ndarray:
    """Unit rows scattered around random unit centres (neighbours share a centre), like trained embeddings."""
    rng = np.random.default_rng(seed)
    centre = unit_rows(centres, dim, seed + 1)[rng.integers(0, centres, n)]
    x = centre + 0.6 * rng.standard_normal((n, dim)).astype(np.float32) / np.sqrt(dim)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def approximate_catalog():
    """12,000 clustered music rows with an IVF index tuned to recall 0.9."""
    catalog = Catalog()
    catalog.add("music", clustered_rows(12_000), items("m", 12_000))
    stats = catalog.make_approximate("music", target_recall=0.9)
    return catalog, stats


def test_approximate_search_reaches_its_measured_recall(approximate_catalog):
    catalog, stats = approximate_catalog
    assert stats.rows == 12_000 and stats.recall >= 0.9 and 1 <= stats.nprobe <= stats.nlist
    assert catalog.approximate_stats("music") == stats
    queries = clustered_rows(100, seed=0)[:100] + 0.01  # fresh points near the catalog's clusters
    approx = catalog.search(queries, "music", k=10)
    exact = catalog.search(queries, "music", k=10, exact=True)
    recall = np.mean([len({h.id for h in a} & {h.id for h in e}) / 10 for a, e in zip(approx, exact, strict=True)])
    assert recall >= 0.85, f"recall@10 of fresh queries {recall:.2f}"
    for hits in approx:
        assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
        assert all(a.score >= b.score for a, b in zip(hits, hits[1:], strict=False))


def test_approximate_index_follows_additions_and_replacements(approximate_catalog):
    catalog, _ = approximate_catalog
    fresh = unit_rows(2, seed=99)
    catalog.add("music", fresh[:1], [{"id": "new"}])
    assert catalog.search(fresh[0], "music", k=1)[0].id == "new"
    catalog.add("music", fresh[1:], [{"id": "m5"}])  # replace an existing row's vector
    assert catalog.search(fresh[1], "music", k=1)[0].id == "m5"
    assert catalog.approximate_stats("music") is not None


def test_approximate_index_survives_save_and_load_and_goes_stale_safely(tmp_path):
    catalog = Catalog()
    catalog.add("music", clustered_rows(10_010, seed=3), items("m", 10_010))
    stats = catalog.make_approximate("music", target_recall=0.9)
    catalog.save(tmp_path)
    assert (tmp_path / "music.ivf").is_file() and not (tmp_path / "video.ivf").exists()
    loaded = Catalog.load(tmp_path)
    assert loaded.approximate_stats("music") == stats
    q = clustered_rows(5, seed=4)
    assert [[h.id for h in r] for r in loaded.search(q, "music", k=10)] == \
        [[h.id for h in r] for r in catalog.search(q, "music", k=10)]

    # rows removed: the index is rebuilt on save, still approximate
    loaded.remove("music", ["m0", "m1"])
    assert loaded.approximate_stats("music") is None
    loaded.save(tmp_path)
    assert Catalog.load(tmp_path).approximate_stats("music").rows == 10_008

    # a damaged index file: a warning, exact search, nothing lost
    (tmp_path / "music.ivf").write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="damaged"):
        damaged = Catalog.load(tmp_path)
    assert damaged.approximate_stats("music") is None and damaged.size("music") == 10_008
    assert damaged.search(q[0], "music", k=3, exact=True) == damaged.search(q[0], "music", k=3)

    # shrunk below the minimum: exact from the next save on, the index files go away
    damaged.remove("music", [f"m{i}" for i in range(2, 20)])
    with pytest.warns(UserWarning, match="searches exactly"):
        damaged.save(tmp_path)
    assert not (tmp_path / "music.ivf").exists() and not (tmp_path / "music.ivf.json").exists()
    assert Catalog.load(tmp_path).approximate_stats("music") is None


def test_approximate_search_refuses_small_sides():
    catalog = Catalog()
    catalog.add("music", unit_rows(500), items("m", 500))
    with pytest.raises(VmnetError, match="at least 10,000 items"):
        catalog.make_approximate("music")


def test_exact_search_in_chunks_matches_one_block(monkeypatch):
    import vmnet_core.bundle.catalog as catalog_module

    emb, queries = unit_rows(3000, seed=7), unit_rows(25, seed=8)
    catalog = Catalog()
    catalog.add("music", emb, items("m", 3000))
    whole = catalog.search(queries, "music", k=20)
    monkeypatch.setattr(catalog_module, "EXACT_CHUNK_BYTES", 4 * 3000 * 4)  # 4 queries per step
    chunked = catalog.search(queries, "music", k=20)
    assert [[h.id for h in r] for r in whole] == [[h.id for h in r] for r in chunked]


def test_top_k_inner_product_orders_ties_by_row():
    emb = np.zeros((6, 4), np.float32)
    emb[:, 0] = [0.5, 1.0, 0.5, 1.0, 0.2, 0.5]
    scores, rows = top_k_inner_product(emb, np.array([[1, 0, 0, 0]], np.float32), 6)
    assert rows.tolist() == [[1, 3, 0, 2, 5, 4]]
    assert scores[0, 0] == 1.0


def test_save_load_round_trip(tmp_path):
    emb = unit_rows(12, seed=9)
    catalog = Catalog()
    catalog.add("music", emb[:7], items("m", 7), descriptors=np.arange(7 * 3, dtype=np.float32).reshape(7, 3))
    catalog.add("video", emb[7:], items("v", 5))
    catalog.save(tmp_path / "catalog")
    loaded = Catalog.load(tmp_path / "catalog")
    for side in ("music", "video"):
        np.testing.assert_array_equal(loaded.embeddings(side), catalog.embeddings(side))
        assert loaded.items(side) == catalog.items(side)
    np.testing.assert_array_equal(loaded.descriptors("music"), catalog.descriptors("music"))
    assert loaded.descriptors("video") is None
    assert loaded.search(emb[8], "video", k=3) == catalog.search(emb[8], "video", k=3)
    line = json.loads((tmp_path / "catalog" / "music.jsonl").read_text().splitlines()[0])
    assert set(line) == {"id", "title", "path", "duration_s", "tags", "pair_id", "split"}


def test_load_of_missing_directory_is_empty(tmp_path):
    assert Catalog.load(tmp_path / "nothing").size("music") == 0


def _saved(tmp_path) -> Catalog:
    catalog = Catalog()
    catalog.add("music", unit_rows(5, seed=10), items("m", 5))
    catalog.save(tmp_path)
    return catalog


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "music.safetensors").write_bytes((d / "music.safetensors").read_bytes()[:100]), "damaged"),
    (lambda d: (d / "music.jsonl").write_text('{"id": "m0"\n'), "not a valid catalog item"),
    (lambda d: (d / "music.jsonl").write_text("\n".join((d / "music.jsonl").read_text().splitlines()[:-1])),
     "disagree"),
    (lambda d: (d / "music.jsonl").unlink(), "missing"),
    (lambda d: (d / "music.safetensors").unlink(), "missing"),
])
def test_damaged_catalog_files_raise_a_clear_error(tmp_path, damage, message):
    _saved(tmp_path)
    damage(tmp_path)
    with pytest.raises(VmnetError, match=message):
        Catalog.load(tmp_path)


def test_wrong_embedding_width_is_reported(tmp_path):
    _saved(tmp_path)
    with pytest.raises(VmnetError, match="512-d embeddings but the model makes 256-d"):
        Catalog.load(tmp_path, dim=256)


def test_empty_side_search_and_bad_inputs():
    catalog = Catalog()
    with pytest.raises(VmnetError, match="catalog is empty"):
        catalog.search(unit_rows(1)[0], "music")
    with pytest.raises(ValueError):
        catalog.add("music", unit_rows(2, dim=128), items("m", 2))
    with pytest.raises(ValueError):
        catalog.add("lyrics", unit_rows(2), items("m", 2))
    with pytest.raises(ValueError):
        catalog.add("music", unit_rows(3), items("m", 2))


def test_descriptors_all_or_nothing_and_remove():
    catalog = Catalog()
    catalog.add("music", unit_rows(3), items("m", 3), descriptors=np.ones((3, 4), np.float32))
    with pytest.raises(ValueError, match="descriptors"):
        catalog.add("music", unit_rows(1, seed=1), [{"id": "x"}])
    assert catalog.remove("music", ["m1", "zzz"]) == 1
    assert catalog.ids("music") == ["m0", "m2"] and catalog.descriptors("music").shape == (2, 4)
    assert catalog.search(catalog.embeddings("music")[1], "music", k=1)[0].id == "m2"


def test_row_and_embedding_follow_additions_replacements_and_removals():
    emb = unit_rows(6, seed=5)
    catalog = Catalog()
    catalog.add("music", emb[:4], items("m", 4))
    catalog.add("music", emb[[4, 5]], [{"id": "m1"}, {"id": "m9"}])  # m1 replaced in place, m9 appended
    catalog.remove("music", ["m0"])
    for row, item_id in enumerate(catalog.ids("music")):
        assert catalog.row("music", item_id) == row
        np.testing.assert_array_equal(catalog.embedding("music", item_id), catalog.embeddings("music")[row])
    np.testing.assert_allclose(catalog.embedding("music", "m1"), emb[4], atol=1e-6)
    assert catalog.row("music", "m9") == 3
    with pytest.raises(KeyError):
        catalog.row("music", "m0")
    with pytest.raises(KeyError):
        catalog.embedding("video", "m9")


def test_hit_json_record_has_the_cli_keys():
    hit = Hit(rank=1, id="a", title="A", score=0.5, path="/a.wav", tags={"x": 1}, duration_s=3.0)
    assert hit.to_dict() == {"rank": 1, "id": "a", "title": "A", "score": 0.5, "path": "/a.wav", "tags": {"x": 1},
                             "start_s": None, "end_s": None}
    assert CatalogItem("z").title == "z"


def test_catalog_keeps_its_own_copy_of_the_embeddings():
    emb = unit_rows(20, seed=11)
    for normalise in (True, False):
        catalog = Catalog()
        catalog.add("music", emb, items("m", 20), normalise=normalise)
        before = catalog.embeddings("music").copy()
        emb_changed = emb.copy()
        catalog.add("music", emb_changed[:1] * 0 + emb[1], [{"id": "m0"}])  # replace row 0 in place
        np.testing.assert_allclose(emb, unit_rows(20, seed=11))  # the caller's array is untouched
        np.testing.assert_allclose(catalog.embeddings("music")[1:], before[1:])


def test_one_item_added_to_both_sides_stays_two_items():
    """A store's music video goes into both sides as one object; cues set on one side stay there."""
    catalog = Catalog()
    shared = [CatalogItem(id=f"clip{i}", tags={"mood": "calm"}) for i in range(3)]
    catalog.add("music", unit_rows(3, seed=1), shared)
    catalog.add("video", unit_rows(3, seed=2), shared)
    catalog.item("music", "clip0").cues = {"tempo_bpm": 120.0}
    catalog.item("music", "clip0").tags["mood"] = "happy"
    assert catalog.item("video", "clip0").cues is None and catalog.item("video", "clip0").tags == {"mood": "calm"}
    assert shared[0].cues is None and shared[0].tags == {"mood": "calm"}  # the caller's items are untouched


def test_approximate_search_is_refused_when_it_cannot_beat_exact():
    catalog = Catalog()
    catalog.add("music", unit_rows(10_000, seed=21), items("m", 10_000))  # uniform: no clusters to exploit
    with pytest.raises(VmnetError, match="does not pay off"):
        catalog.make_approximate("music", target_recall=0.95)
    assert catalog.approximate_stats("music") is None
