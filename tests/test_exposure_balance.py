"""Exposure balancing on a query bank (issue 14's hubness): the offsets, their storage, and
``vmnet index --balance-with`` on the tiny starter bundle with real photo slideshows through ffmpeg."""

from __future__ import annotations

import collections
import json
import shutil

import numpy as np
import pytest

from vmnet_core.bundle.catalog import Catalog
from vmnet_core.bundle.catalog_items import CatalogItem
from vmnet_core.bundle.exposure import balance_offsets, soft_top_k_shares
from vmnet_core.bundle.exposure_bank import visible_ids
from vmnet_core.bundle.files import load_bundle
from vmnet_core.bundle.retrieval import Retriever
from vmnet_core.bundle.track_cues import cues_of_file
from vmnet_core.cli.main import main
from vmnet_core.errors import VmnetError
from vmnet_core.learn.hubness import hubness
from vmnet_core.starter.items import is_synthetic_item
from vmnet_testkit.real_content_check import check_clips, write_check_clip

BANK = 12


def test_offsets_lower_only_the_items_over_the_cap():
    rng = np.random.default_rng(0)
    scores = rng.standard_normal((80, 40))
    scores[:, 7] += 3.0                                       # item 7 tops nearly every list
    scores[:, 11] += 1.0                                      # item 11 is in over a quarter of them
    offsets = balance_offsets(scores, k=5)                    # cap 0.2 of the lists (fair share 0.125)
    before = hubness(scores, 5)["share_in_top_k"]
    after = hubness(scores + offsets, 5)["share_in_top_k"]
    assert before[7] > 0.9 and before[11] > 0.25
    assert max(after) <= 0.25
    assert offsets.max() == 0.0 and offsets[7] < offsets[11] < 0.0
    assert (offsets == 0.0).sum() >= 30                       # the rest keep their order among themselves


def test_a_cap_below_the_fair_share_gives_every_item_the_fair_share():
    rng = np.random.default_rng(2)
    scores = rng.standard_normal((200, 10))
    scores[:, 3] += 2.0
    shares = soft_top_k_shares(scores + balance_offsets(scores, k=5, cap=0.1), 5)
    assert np.allclose(shares, 0.5, atol=0.03)                # k / N = 0.5, the most even a top-5 can be


def test_non_candidates_stay_out_and_too_few_items_are_refused():
    rng = np.random.default_rng(1)
    scores = rng.standard_normal((40, 12))
    scores[:, 0] = -np.inf                                    # never a candidate (outside every cue pool)
    balanced = scores + balance_offsets(scores, k=3)
    assert not (np.argsort(-balanced, axis=1)[:, :3] == 0).any()
    hard = hubness(scores, 3)["share_in_top_k"]
    assert np.allclose(soft_top_k_shares(scores, 3, temperature=1e-4), hard)  # a narrow soft top-k is the top-k
    with pytest.raises(ValueError, match="more than k=5 items"):
        balance_offsets(np.zeros((10, 5)), k=5)


def test_offsets_are_stored_with_the_items_and_only_when_set(tmp_path):
    catalog = Catalog(dim=4)
    catalog.add("music", np.eye(4, dtype=np.float32), [{"id": f"t{i}"} for i in range(4)])
    catalog.set_exposure_offsets("music", {"t1": -0.5, "t2": 0.25})
    catalog.save(tmp_path)
    lines = [json.loads(line) for line in (tmp_path / "music.jsonl").read_text().splitlines()]
    assert [line.get("exposure_offset") for line in lines] == [None, -0.5, 0.25, None]
    loaded = Catalog.load(tmp_path, dim=4)
    assert [item.exposure_offset for item in loaded.items("music")] == [0.0, -0.5, 0.25, 0.0]
    with pytest.raises(ValueError, match="finite"):
        CatalogItem(id="x", exposure_offset=float("nan"))
    with pytest.raises(VmnetError, match="more than 5 visible music items; the catalog shows 4"):
        visible_ids(loaded, "music", None)


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    """A bank of real photo slideshows cut to the library's tracks (a seed no other test uses)."""
    folder = tmp_path_factory.mktemp("bank")
    for clip in check_clips(BANK, 6.0, seed=5):
        write_check_clip(clip, folder, 6.0)
    return folder


def _bank_shares(bundle, bank) -> collections.Counter:
    """How many of the bank's top-5 real-track lists each track is in, ranked as `vmnet query` ranks."""
    retriever = Retriever(load_bundle(bundle))
    counts = collections.Counter()
    for path in sorted(bank.glob("*.mp4")):
        hits = retriever.rank(retriever.embed_video_file(path), "music", 5, query_cues=cues_of_file(path, "video"),
                              hidden=is_synthetic_item)
        counts.update(hit.id for hit in hits)
    return counts


def test_vmnet_index_balances_the_real_tracks_on_a_bank_and_can_undo_it(tiny_bundle, bank, tmp_path, capsys):
    bundle = shutil.copytree(tiny_bundle, tmp_path / "bundle")
    before = _bank_shares(bundle, bank)
    assert main(["index", "--bundle", str(bundle), "--balance-with", str(bank)]) == 0
    assert f"balanced 28 tracks on {BANK} videos" in capsys.readouterr().out
    items = load_bundle(bundle).catalog.items("music")
    assert all(item.exposure_offset == 0.0 for item in items if is_synthetic_item(item))
    lowered = sum(1 for item in items if item.exposure_offset < 0)
    assert 0 < lowered < 28 and not any(item.exposure_offset > 0 for item in items)  # only tracks over the cap
    after = _bank_shares(bundle, bank)
    assert max(after.values()) < max(before.values())
    assert len(after) > len(before)                           # more tracks get a place in some list
    assert main(["query", "--bundle", str(bundle), "--video", str(sorted(bank.glob("*.mp4"))[0])]) == 0
    assert "best first by cosine, cue fit and exposure balance" in capsys.readouterr().out

    assert main(["index", "--bundle", str(bundle), "--no-balance"]) == 0
    assert "exposure offsets removed" in capsys.readouterr().out
    assert _bank_shares(bundle, bank) == before
    assert main(["index", "--bundle", str(bundle), "--balance-with", str(bank), "--include-training"]) == 0
    tracks = load_bundle(bundle).catalog.size("music")
    assert f"balanced {tracks} tracks on {BANK} videos" in capsys.readouterr().out and tracks > 28


def test_a_new_cue_weight_drops_offsets_fitted_at_the_old_one(tiny_bundle, bank, tmp_path, capsys):
    bundle = shutil.copytree(tiny_bundle, tmp_path / "bundle")
    assert main(["index", "--bundle", str(bundle), "--balance-with", str(bank)]) == 0
    assert main(["index", "--bundle", str(bundle), "--cue-weight", "3"]) == 0
    assert "fitted at the old weight and are removed" in capsys.readouterr().out
    assert not any(item.exposure_offset for item in load_bundle(bundle).catalog.items("music"))
    assert main(["index", "--bundle", str(bundle), "--cue-weight", "0"]) == 0
    assert main(["index", "--bundle", str(bundle), "--balance-with", str(bank)]) == 2
    assert "ranks by cosine alone" in capsys.readouterr().err


def test_a_bank_too_small_or_unusable_is_refused_with_what_to_do(tiny_bundle, bank, tmp_path, capsys):
    bundle = shutil.copytree(tiny_bundle, tmp_path / "bundle")
    small = tmp_path / "small"
    small.mkdir()
    for path in sorted(bank.glob("*.mp4"))[:9]:
        shutil.copy(path, small / path.name)
    (small / "broken.mp4").write_bytes(b"not a video at all")
    assert main(["index", "--bundle", str(bundle), "--no-balance", "--include-training"]) == 2
    assert "give it with that" in capsys.readouterr().err
    assert main(["index", "--bundle", str(bundle), "--balance-with", str(small)]) == 2
    err = capsys.readouterr().err
    assert "left out of the balance" in err and "broken.mp4" in err
    assert "at least 10 usable files" in err and "9 of 10" in err
    assert not any(item.exposure_offset for item in load_bundle(bundle).catalog.items("music"))


def _batch_lists(bundle, folder, capsys, *extra) -> list[dict]:
    """The JSON lines of `vmnet query --video FOLDER -k 5` (exit status 0 asserted)."""
    assert main(["query", "--bundle", str(bundle), "--video", str(folder), "-k", "5", *extra]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_vmnet_query_spreads_a_batch_of_clips_over_the_library(tiny_bundle, bank, capsys):
    plain = _batch_lists(tiny_bundle, bank, capsys)
    spread = _batch_lists(tiny_bundle, bank, capsys, "--spread")
    assert [line["query"] for line in spread] == [line["query"] for line in plain]
    counts = {name: collections.Counter(hit["id"] for line in lines for hit in line["results"])
              for name, lines in (("plain", plain), ("spread", spread))}
    assert max(counts["spread"].values()) <= BANK // 4 < max(counts["plain"].values())  # no track in over a quarter
    assert len(counts["spread"]) > len(counts["plain"])
    hits = [hit for line in spread for hit in line["results"]]
    assert len(hits) == 5 * BANK and sum(bool(hit["explain"]) for hit in hits) > len(hits) / 2  # "why" goes on
    assert not any(hit["id"].startswith("starter-") for hit in hits)


def test_a_spread_needs_a_batch_of_usable_clips_and_a_cue_fused_order(tiny_bundle, bank, tmp_path, capsys):
    clips = sorted(bank.glob("*.mp4"))
    assert main(["query", "--bundle", str(tiny_bundle), "--video", str(clips[0]), "--spread"]) == 2
    assert "give a folder or .txt list" in capsys.readouterr().err
    assert main(["query", "--bundle", str(tiny_bundle), "--video", str(bank), "--spread", "--cue-weight", "0"]) == 2
    assert "ranks by cosine alone" in capsys.readouterr().err
    batch = tmp_path / "batch"
    batch.mkdir()
    for path in clips[:10]:
        shutil.copy(path, batch / path.name)
    (batch / "broken.mp4").write_bytes(b"not a video at all")
    assert main(["query", "--bundle", str(tiny_bundle), "--video", str(batch), "--spread"]) == 1
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert len(lines) == 11 and sum("results" in line for line in lines) == 10
    assert "left out of the spread" in captured.err and "broken.mp4" in captured.err
    (batch / clips[0].name).unlink()
    assert main(["query", "--bundle", str(tiny_bundle), "--video", str(batch), "--spread"]) == 2
    assert "at least 10 usable files" in capsys.readouterr().err


def test_a_spread_works_for_music_queries_too(tiny_bundle, bank, capsys):
    counts = {}
    for extra in ((), ("--spread",)):
        assert main(["query", "--bundle", str(tiny_bundle), "--music", str(bank), "-k", "3", *extra]) == 0
        lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert len(lines) == BANK and all(len(line["results"]) == 3 for line in lines)
        counts[extra] = collections.Counter(hit["id"] for line in lines for hit in line["results"])
    assert max(counts[("--spread",)].values()) < max(counts[()].values())  # the soundtracks' videos spread too
