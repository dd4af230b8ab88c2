"""Segment-level catalog sides: items ranked by their best window, with the window's span; windows
kept right through replacement, removal, save/load and an approximate index; old catalogs load."""

from __future__ import annotations

import numpy as np
import pytest

from vmnet_core.bundle.catalog import Catalog
from vmnet_core.bundle.segments import ItemSegments
from vmnet_core.errors import VmnetError
from vmnet_core.features.windows import centre_window, frame_window_means, window_starts


def unit_rows(n: int, dim: int = 512, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def windows_of(emb: np.ndarray, hop: float = 14.56) -> ItemSegments:
    starts = hop * np.arange(len(emb))
    return ItemSegments(emb, starts, starts + 29.12)


def segmented_catalog(n_items: int = 20, per_item: int = 6, seed: int = 0) -> tuple[Catalog, np.ndarray]:
    """``n_items`` tracks of ``per_item`` random windows each; returns the catalog and the (n, w, D) windows."""
    segs = unit_rows(n_items * per_item, seed=seed).reshape(n_items, per_item, -1)
    catalog = Catalog()
    catalog.add("music", segs[:, per_item // 2], [{"id": f"t{i}"} for i in range(n_items)],
                segments=[windows_of(s) for s in segs])
    return catalog, segs


def test_window_grid_contains_the_centre_clip_and_both_ends():
    starts = window_starts(180.0, 29.12, 14.56)
    assert 0.0 <= starts[0] <= 14.56 / 4 and 0.0 <= (180.0 - 29.12) - starts[-1] <= 14.56 / 4
    assert window_starts(200.0, 29.12, 14.56)[[0, -1]].tolist() == pytest.approx([0.0, 200.0 - 29.12])
    assert np.all(np.diff(starts) > 0) and np.all(np.diff(starts) <= 14.56 + 1e-9)
    assert starts[centre_window(starts)] == pytest.approx((180.0 - 29.12) / 2)
    assert window_starts(30.0).tolist() == [pytest.approx(0.44)]  # under one hop longer than a window: its centre clip
    assert window_starts(12.0).tolist() == [0.0]
    with pytest.raises(VmnetError):
        window_starts(100.0, hop_s=0.0)


def test_frame_window_means_average_each_window():
    frames = np.arange(100, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)  # 100 s at 1 fps
    starts, means = frame_window_means(frames, fps=1.0, window_s=20.0, hop_s=10.0)
    for start, mean in zip(starts, means, strict=True):
        first = int(round(start))
        np.testing.assert_allclose(mean, frames[first:first + 20].mean(axis=0), rtol=1e-6)


def test_search_ranks_items_by_their_best_window_and_says_where_it_is():
    catalog, segs = segmented_catalog()
    for item, window in ((3, 0), (7, 5), (12, 2)):
        query = segs[item, window] + 0.05 * unit_rows(1, seed=100 + item)[0]
        hit = catalog.search(query, "music", k=3)[0]
        assert hit.id == f"t{item}"
        assert hit.start_s == pytest.approx(14.56 * window, abs=1e-3)
        assert hit.end_s == pytest.approx(14.56 * window + 29.12, abs=1e-3)
    queries = unit_rows(5, seed=7)
    hits = catalog.search(queries, "music", k=20)
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    best = np.einsum("qd,nwd->qnw", q, segs).max(axis=2)  # (Q, N) brute force
    for row, row_hits in enumerate(hits):
        expected = np.argsort(-best[row], kind="stable")
        assert [h.id for h in row_hits] == [f"t{i}" for i in expected]
        np.testing.assert_allclose([h.score for h in row_hits], best[row][expected], atol=1e-5)
    match = catalog.best_match("music", "t7", segs[7, 5])
    assert match.start_s == pytest.approx(72.8, abs=1e-3) and match.score == pytest.approx(1.0, abs=1e-5)


def test_items_without_windows_join_a_segmented_side_as_one_window():
    plain = unit_rows(4, seed=3)
    catalog = Catalog()
    catalog.add("music", plain, [{"id": f"old{i}"} for i in range(4)])  # a catalog from before segments
    assert catalog.segments("music") is None and catalog.search(plain[1], "music", k=1)[0].start_s is None
    segs = unit_rows(5, seed=4)
    catalog.add("music", segs[2], [{"id": "long"}], segments=[windows_of(segs)])
    assert catalog.search_rows("music") == 4 + 5
    hit = catalog.search(segs[4], "music", k=1)[0]
    assert (hit.id, hit.start_s) == ("long", pytest.approx(4 * 14.56, abs=1e-3))
    old = catalog.search(plain[1], "music", k=1)[0]
    assert (old.id, old.start_s, old.end_s) == ("old1", None, None)
    catalog.add("music", unit_rows(1, seed=5), [{"id": "plain-new"}])  # no windows on a segmented side
    assert catalog.search(unit_rows(1, seed=5)[0], "music", k=1)[0].id == "plain-new"


def test_replacement_and_removal_keep_each_items_windows(tmp_path):
    catalog, segs = segmented_catalog(n_items=8, per_item=4, seed=1)
    fresh = unit_rows(3, seed=9)
    catalog.add("music", fresh[0], [{"id": "t2"}], segments=[windows_of(fresh)])  # t2 now has 3 new windows
    assert catalog.search(fresh[2], "music", k=1)[0].id == "t2"
    assert catalog.search(segs[2, 1], "music", k=1)[0].id != "t2"  # its old windows are gone
    assert catalog.remove("music", ["t0", "t5"]) == 2
    assert catalog.search_rows("music") == 6 * 4 - 4 + 3
    for item in (1, 3, 7):
        hit = catalog.search(segs[item, 3], "music", k=1)[0]
        assert (hit.id, hit.start_s) == (f"t{item}", pytest.approx(3 * 14.56, abs=1e-3))
    catalog.save(tmp_path / "catalog")
    loaded = Catalog.load(tmp_path / "catalog")
    for query in (segs[7, 3], fresh[1], segs[4, 0]):
        assert loaded.search(query, "music", k=5) == catalog.search(query, "music", k=5)


def test_damaged_segment_arrays_are_reported(tmp_path):
    from safetensors.numpy import load_file, save_file

    catalog, _ = segmented_catalog(n_items=3, per_item=2)
    catalog.save(tmp_path / "c")
    arrays = load_file(tmp_path / "c" / "music.safetensors")
    arrays["segment_rows"] = np.array([0, 0, 1, 1, 1, 1], np.int64)  # item 2 has no window
    save_file(arrays, tmp_path / "c" / "music.safetensors")
    with pytest.raises(VmnetError, match="segments .* do not match its items"):
        Catalog.load(tmp_path / "c")


def test_approximate_index_covers_segments_and_keeps_finding_the_moment(tmp_path):
    rng = np.random.default_rng(0)
    centres = unit_rows(64, seed=11)
    n_items, per_item = 700, 16  # 11,200 windows: above the approximate index's minimum
    x = centres[rng.integers(0, 64, n_items * per_item)] + 0.6 * rng.standard_normal(
        (n_items * per_item, 512)).astype(np.float32) / np.sqrt(512)
    segs = (x / np.linalg.norm(x, axis=1, keepdims=True)).reshape(n_items, per_item, -1).astype(np.float32)
    catalog = Catalog()
    catalog.add("music", segs[:, 8], [{"id": f"t{i}"} for i in range(n_items)],
                segments=[windows_of(s) for s in segs])
    stats = catalog.make_approximate("music", target_recall=0.9)
    assert stats.rows == n_items * per_item
    picks = [(int(i), int(w)) for i, w in zip(rng.integers(0, n_items, 30), rng.integers(0, per_item, 30),
                                              strict=True)]
    queries = np.stack([segs[i, w] for i, w in picks])
    approx = catalog.search(queries, "music", k=10)
    exact = catalog.search(queries, "music", k=10, exact=True)
    for (item, window), a in zip(picks, approx, strict=True):
        assert (a[0].id, a[0].start_s) == (f"t{item}", pytest.approx(window * 14.56, abs=1e-3))
        assert len({h.id for h in a}) == len(a) == 10  # one row per item
    overlap = np.mean([len({h.id for h in a} & {h.id for h in e}) / 10 for a, e in zip(approx, exact, strict=True)])
    assert overlap >= 0.8
    new = unit_rows(3, seed=77)
    catalog.add("music", new[0], [{"id": "new"}], segments=[windows_of(new)])  # appended without a rebuild
    assert catalog.approximate_stats("music") is not None
    assert catalog.search(new[2], "music", k=1)[0].start_s == pytest.approx(2 * 14.56, abs=1e-3)
    catalog.save(tmp_path / "c")
    loaded = Catalog.load(tmp_path / "c")
    assert loaded.approximate_stats("music") is not None
    assert loaded.search(new[1], "music", k=1)[0].id == "new"
