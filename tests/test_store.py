"""Feature store format: round trip, parts → consolidation, merges, split files, import-features."""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest

import vmnet_core.cli.main as cli
from vmnet_core.atomic_io import FILE_MODE, atomic_path, read_json_file, write_file_atomic
from vmnet_core.errors import VmnetError
from vmnet_core.features.imported import import_features, read_split_file
from vmnet_core.features.parts import PartRecord, claim_extraction_info, consolidate, merge_stores, write_part
from vmnet_core.features.store import (
    VIDEO_SPACE_EXTRACTED,
    VIDEO_SPACE_IMPORTED,
    FeatureStore,
    default_split,
    safe_item_id,
)


@pytest.fixture
def main(monkeypatch):
    """``vmnet`` main(argv) with core commands only (plugins such as the study are not under test)."""
    monkeypatch.setattr(cli, "PLUGIN_GROUP", "vmnet.commands.none")
    return cli.main


def _rows(ids, statuses=None, **extra):
    statuses = statuses or ["ok"] * len(ids)
    return [{"id": i, "path": f"/media/{i}.mp4", "duration_s": 3.0, "split": "train", "status": s,
             "error": "" if s == "ok" else "broken", **{k: v[n] for k, v in extra.items()}}
            for n, (i, s) in enumerate(zip(ids, statuses, strict=True))]


def test_create_open_round_trip_keeps_arrays_manifest_and_extra_columns(tmp_path):
    rng = np.random.default_rng(0)
    music, video = rng.normal(size=(2, 1140)).astype(np.float32), rng.normal(size=(2, 64)).astype(np.float32)
    rows = _rows(["a", "b", "c"], ["ok", "error", "ok"], tempo=["90", "120", "150"])
    rows[2]["split"] = "test"
    FeatureStore.create(tmp_path / "s", rows, music, video, video_space=VIDEO_SPACE_IMPORTED)

    store = FeatureStore.open(tmp_path / "s")
    assert store.ids == ["a", "c"]  # the error row is in the manifest but is no item
    assert [r["id"] for r in store.manifest] == ["a", "b", "c"]
    assert store.manifest[1]["error"] == "broken" and store.errors()[0]["id"] == "b"
    assert store.manifest[2]["tempo"] == "150"
    np.testing.assert_array_equal(store.music(), music)
    np.testing.assert_array_equal(store.video(mmap=True), video)
    assert store.music().dtype == np.float32
    assert store.split_ids("train") == ["a"] and store.split_ids("test") == ["c"]
    assert store.index("c") == 1 and len(store) == 2
    assert store.frames("a") is None and not store.has_frames
    info = json.loads((tmp_path / "s" / "store.json").read_text())
    assert info["video_space"] == "imported" and info["dims"] == {"music": 1140, "video": 64}
    assert "numpy" in info["libraries"] and info["format_version"] == 1
    with pytest.raises(VmnetError, match="already holds"):
        FeatureStore.create(tmp_path / "s", rows, music, video, video_space=VIDEO_SPACE_IMPORTED)
    with pytest.raises(VmnetError, match="no ok item"):
        store.index("b")
    with_frames = FeatureStore.create(tmp_path / "f", rows, music, video, video_space=VIDEO_SPACE_EXTRACTED,
                                      frames={"c": np.full((2, 1280), 0.5)})
    assert with_frames.has_frames and with_frames.frames("c").shape == (2, 1280) and with_frames.frames("a") is None


def test_open_explains_missing_unconsolidated_and_inconsistent_stores(tmp_path):
    with pytest.raises(VmnetError, match="not a feature store"):
        FeatureStore.open(tmp_path)
    write_part(tmp_path / "p", PartRecord(id="x", path="x.mp4", status="ok", music=np.zeros(1140),
                                          video=np.zeros(1280)))
    with pytest.raises(VmnetError, match="merge-stores"):
        FeatureStore.open(tmp_path / "p")
    FeatureStore.create(tmp_path / "s", _rows(["a", "b"]), np.zeros((2, 4)), np.zeros((2, 3)),
                        video_space=VIDEO_SPACE_IMPORTED)
    np.save(tmp_path / "s" / "music.npy", np.zeros((3, 4), np.float32))
    with pytest.raises(VmnetError, match="3 rows"):
        FeatureStore.open(tmp_path / "s")


def test_parts_consolidate_into_arrays_frames_and_mean_pooled_video(tmp_path):
    rng = np.random.default_rng(1)
    claim_extraction_info(tmp_path, {"modalities": ["music", "video"], "video_space": VIDEO_SPACE_EXTRACTED})
    frames = {i: rng.uniform(0, 6, size=(t, 1280)).astype(np.float32) for i, t in [("b", 3), ("a", 5)]}
    for item_id, f in frames.items():
        write_part(tmp_path, PartRecord(id=item_id, path=f"{item_id}.mp4", status="ok", duration_s=2.5,
                                        extra={"genre": item_id.upper()}, music=rng.normal(size=1140),
                                        video=f.mean(0)), frames=f)
    write_part(tmp_path, PartRecord(id="c", path="c.mp4", status="error", error="c.mp4 is not a video."))
    (tmp_path / "parts" / ".a.npz.123.tmp").write_bytes(b"left by a killed run")

    store = consolidate(tmp_path, split_map={"a": "val"}, progress=False)
    assert store.ids == ["a", "b"] and store.has_frames
    assert [r["status"] for r in store.manifest] == ["ok", "ok", "error"]
    assert store.manifest[0]["split"] == "val" and store.manifest[1]["split"] == default_split("b")
    assert store.manifest[0]["genre"] == "A" and store.manifest[0]["duration_s"] == "2.500"
    assert store.video().shape == (2, 1280) and store.music().shape == (2, 1140)
    got = store.frames("a")
    assert got.dtype == np.float32 and got.shape == (5, 1280)
    np.testing.assert_allclose(got, frames["a"], atol=6e-3)  # float16 on disk
    np.testing.assert_allclose(store.video()[0], frames["a"].mean(0), rtol=1e-6)
    assert store.info["n_errors"] == 1 and store.video_space == VIDEO_SPACE_EXTRACTED


def test_merge_joins_disjoint_stores_and_refuses_overlaps_and_mixed_spaces(tmp_path):
    rng = np.random.default_rng(2)
    for name, ids in [("s1", ["a", "c"]), ("s2", ["b"]), ("s3", ["c"])]:
        FeatureStore.create(tmp_path / name, _rows(ids, tag=[name] * len(ids)), rng.normal(size=(len(ids), 8)),
                            rng.normal(size=(len(ids), 5)), video_space=VIDEO_SPACE_IMPORTED)
    merged = merge_stores(tmp_path / "m", [tmp_path / "s1", tmp_path / "s2"], progress=False)
    s1, s2 = FeatureStore.open(tmp_path / "s1"), FeatureStore.open(tmp_path / "s2")
    assert merged.ids == ["a", "b", "c"] and merged.video_space == VIDEO_SPACE_IMPORTED
    np.testing.assert_array_equal(merged.music()[[0, 2]], s1.music())
    np.testing.assert_array_equal(merged.video()[1], s2.video()[0])
    assert [r["tag"] for r in merged.manifest] == ["s1", "s2", "s1"]

    with pytest.raises(VmnetError, match="'c' is in both"):
        merge_stores(tmp_path / "m2", [tmp_path / "s1", tmp_path / "s3"], progress=False)
    with pytest.raises(VmnetError, match="already holds a store"):
        merge_stores(tmp_path / "m", [tmp_path / "s3"], progress=False)
    claim_extraction_info(tmp_path / "x", {"modalities": ["music", "video"], "video_space": VIDEO_SPACE_EXTRACTED})
    write_part(tmp_path / "x", PartRecord(id="z", path="z.mp4", status="ok", music=np.zeros(8), video=np.zeros(5)))
    with pytest.raises(VmnetError, match="video_space"):
        merge_stores(tmp_path / "m3", [tmp_path / "s2", tmp_path / "x"], progress=False)
    # the output may be an input: a consolidated store absorbs another one
    grown = merge_stores(tmp_path / "s2", [tmp_path / "s2", tmp_path / "s3"], progress=False)
    assert grown.ids == ["b", "c"]


def test_safe_ids_and_default_split():
    assert safe_item_id("My Clip (1)") == "My_Clip_1_"
    assert safe_item_id("../../etc/passwd") == "_.._etc_passwd"
    assert safe_item_id("...") == "item" and safe_item_id("-dQw4w9WgXcQ") == "-dQw4w9WgXcQ"
    splits = [default_split(f"video{i}") for i in range(3000)]
    assert splits == [default_split(f"video{i}") for i in range(3000)]
    shares = {s: splits.count(s) / len(splits) for s in ("train", "val", "test")}
    assert 0.76 < shares["train"] < 0.84 and 0.07 < shares["val"] < 0.13 and 0.07 < shares["test"] < 0.13


def test_split_files_pairs_aligned_and_bad(tmp_path):
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("# id split\na train\nb,test\n\nc   val\n")
    assert read_split_file(pairs) == {"a": "train", "b": "test", "c": "val"}
    aligned = tmp_path / "aligned.txt"
    aligned.write_text("train\ntest\nval\n")
    assert read_split_file(aligned, ["x", "y", "z"]) == {"x": "train", "y": "test", "z": "val"}
    with pytest.raises(VmnetError, match="2 items"):
        read_split_file(aligned, ["x", "y"])
    with pytest.raises(VmnetError, match="'id split' pairs"):
        read_split_file(aligned)
    (tmp_path / "bad.txt").write_text("a training\n")
    with pytest.raises(VmnetError, match="train, val or test"):
        read_split_file(tmp_path / "bad.txt")
    with pytest.raises(VmnetError, match="unknown ids"):
        read_split_file(pairs, ["a", "b"])


def test_import_features_cli_builds_a_store_with_ids_and_splits(tmp_path, capsys, main):
    rng = np.random.default_rng(3)
    music, video = rng.normal(size=(4, 1140)), rng.normal(size=(4, 1024))
    np.save(tmp_path / "m.npy", music)
    np.save(tmp_path / "v.npy", video)
    (tmp_path / "ids.txt").write_text("w\nx\ny\nz\n")
    (tmp_path / "split.txt").write_text("train\ntrain\nval\ntest\n")
    code = main(["import-features", "--music", str(tmp_path / "m.npy"), "--video", str(tmp_path / "v.npy"),
                 "--ids", str(tmp_path / "ids.txt"), "--split", str(tmp_path / "split.txt"),
                 "--out", str(tmp_path / "s")])
    assert code == 0 and "4 items (train 2, val 1, test 1)" in capsys.readouterr().out
    store = FeatureStore.open(tmp_path / "s")
    assert store.ids == ["w", "x", "y", "z"] and store.video_space == "imported"
    np.testing.assert_allclose(store.video(), video.astype(np.float32))
    assert store.music().dtype == np.float32 and not store.has_frames

    default = import_features(tmp_path / "d", tmp_path / "m.npy", tmp_path / "v.npy")
    assert default.ids[0] == "item000000"
    assert {r["split"] for r in default.manifest} <= {"train", "val", "test"}


@pytest.mark.parametrize("case, message", [
    ("rows", "4 rows but the video file has 3"),
    ("nan", "NaN or infinite values .first in row 2"),
    ("flat", "must be 2-D"),
    ("objects", "numeric"),
    ("text", "not a readable numeric .npy"),
    ("missing", "does not exist"),
    ("ids", "3 ids but the feature files have 4"),
    ("dup_ids", "repeats 'a'"),
])
def test_import_features_rejects_bad_inputs_with_one_sentence(tmp_path, capsys, main, case, message):
    music, video = np.ones((4, 6)), np.ones((4, 5))
    ids = "a\nb\nc\nd\n"
    if case == "rows":
        video = np.ones((3, 5))
    elif case == "nan":
        music[2, 1] = np.nan
    elif case == "flat":
        music = np.ones(4)
    elif case == "ids":
        ids = "a\nb\nc\n"
    elif case == "dup_ids":
        ids = "a\nb\na\nd\n"
    np.save(tmp_path / "m.npy", music)
    np.save(tmp_path / "v.npy", video)
    if case == "objects":
        np.save(tmp_path / "m.npy", np.array([["a", "b"]] * 4, dtype=object), allow_pickle=True)
    if case == "text":
        (tmp_path / "m.npy").write_text("not an array")
    if case == "missing":
        (tmp_path / "m.npy").unlink()
    (tmp_path / "ids.txt").write_text(ids)
    code = main(["import-features", "--music", str(tmp_path / "m.npy"), "--video", str(tmp_path / "v.npy"),
                 "--ids", str(tmp_path / "ids.txt"), "--out", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert re.search(message, err), err
    assert not (tmp_path / "s" / "store.json").exists()


def test_atomic_writes_appear_whole_with_open_permissions_or_not_at_all(tmp_path):
    target = write_file_atomic(tmp_path / "sub" / "info.json", '{"a": "é"}')
    assert read_json_file(target, "test file") == {"a": "é"}
    assert os.stat(target).st_mode & 0o777 == FILE_MODE
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "sub" / "half.bin") as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("killed half-way")
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["info.json"]
    (tmp_path / "sub" / "info.json").write_text("{not json")
    with pytest.raises(VmnetError, match="test file .* is not valid JSON"):
        read_json_file(tmp_path / "sub" / "info.json", "test file")
    with pytest.raises(VmnetError, match="is missing"):
        read_json_file(tmp_path / "absent.json", "test file")
