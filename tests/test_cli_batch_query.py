"""``vmnet query`` over a folder or a .txt list: one JSON line per file, start-up paid once,
a bad file reported on its own line while the others go on (real ffmpeg, real bundle files)."""

from __future__ import annotations

import json
import shutil

import pytest
from test_bundle import write_bundle

from vmnet_core.cli.main import main
from vmnet_testkit.mediagen import make_audio, make_video


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    """A small bundle whose catalog holds two real tracks, and a folder of three videos (one broken)."""
    root = tmp_path_factory.mktemp("batch")
    bundle = root / "bundle"
    write_bundle(bundle)
    make_audio(root / "music" / "low.wav", seconds=3, freq=220, seed=1)
    make_audio(root / "music" / "high.wav", seconds=3, freq=880, seed=2)
    assert main(["index", "--bundle", str(bundle), "--music", str(root / "music"), "--quiet"]) == 0
    make_video(root / "videos" / "a.mp4", seconds=2, seed=3)
    make_video(root / "videos" / "sub" / "b.mp4", seconds=2, seed=4)
    (root / "videos" / "c_broken.mp4").write_bytes(b"this is not a video at all" * 20)
    return bundle, root


def _lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_a_folder_gives_one_json_line_per_video(indexed, capsys):
    bundle, root = indexed
    code = main(["query", "--bundle", str(bundle), "--video", str(root / "videos"), "-k", "2"])
    captured = capsys.readouterr()
    records = _lines(captured.out)
    assert code == 1, "one file failed, so the exit status says so"
    assert [r["id"] for r in records] == ["a", "c_broken", "b"] or [r["id"] for r in records] == ["a", "b", "c_broken"]
    good = [r for r in records if "results" in r]
    assert len(good) == 2
    for record in good:
        assert [h["rank"] for h in record["results"]] == [1, 2]
        assert {h["id"] for h in record["results"]} == {"low", "high"}
        assert all(set(h) == {"rank", "id", "title", "score", "path", "tags", "start_s", "end_s", "explain"} for h in record["results"])
    broken = next(r for r in records if r["id"] == "c_broken")
    assert broken["query"].endswith("c_broken.mp4") and "results" not in broken
    assert "c_broken.mp4" in broken["error"] and "Traceback" not in captured.err
    assert "1 of 3 files gave no results" in captured.err


def test_a_list_file_gives_the_same_results_as_single_queries(indexed, tmp_path, capsys):
    bundle, root = indexed
    listing = tmp_path / "queries.txt"
    shutil.copy(root / "videos" / "a.mp4", tmp_path / "a.mp4")
    listing.write_text("# my clips\na.mp4\n\n" + str(root / "videos" / "sub" / "b.mp4") + "\n")
    assert main(["query", "--bundle", str(bundle), "--video", str(listing), "-k", "2"]) == 0
    records = _lines(capsys.readouterr().out)
    assert [r["id"] for r in records] == ["a", "b"]
    assert main(["query", "--bundle", str(bundle), "--video", str(tmp_path / "a.mp4"), "-k", "2", "--json"]) == 0
    single = json.loads(capsys.readouterr().out)
    assert [h["id"] for h in records[0]["results"]] == [h["id"] for h in single]
    assert [h["score"] for h in records[0]["results"]] == pytest.approx([h["score"] for h in single], abs=1e-5)


def test_a_music_folder_ranks_videos_and_an_empty_folder_says_so(indexed, tmp_path, capsys):
    bundle, root = indexed
    assert main(["index", "--bundle", str(bundle), "--videos", str(root / "videos" / "sub"), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["query", "--bundle", str(bundle), "--music", str(root / "music"), "-k", "1"]) == 0
    records = _lines(capsys.readouterr().out)
    assert sorted(r["id"] for r in records) == ["high", "low"]
    assert all(r["results"][0]["id"] == "b" for r in records)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["query", "--bundle", str(bundle), "--video", str(empty)]) == 2
    assert "No media files" in capsys.readouterr().err


def test_a_video_query_loads_no_music_analysis_and_no_web_stack():
    """What `vmnet query --video` imports before its work: no librosa/numba (music only), no Gradio or SQLAlchemy."""
    import subprocess
    import sys

    code = ("import sys; import vmnet_core.cli.main as m; m.build_parser(); "
            "from vmnet_core.bundle.retrieval import Retriever; import vmnet_core.cli.batch_query; "
            "print(sorted(n for n in ('librosa', 'numba', 'gradio', 'sqlalchemy') if n in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert result.stdout.strip() == "[]"


def test_a_video_query_from_a_fresh_process_runs_without_torch(indexed, tmp_path):
    """With the CNN's ONNX file cached (the first start exports it), `vmnet query --video` never
    imports torch (about 2 s of a fresh process): numpy towers, ONNX Runtime CNN. Its scores are
    the torch model's."""
    import subprocess
    import sys

    import numpy as np

    from vmnet_core.bundle.files import load_bundle
    from vmnet_core.bundle.retrieval import Retriever
    from vmnet_core.features.video_descriptor import default_frame_encoder
    from vmnet_core.learn.model import embed_arrays

    bundle, root = indexed
    assert default_frame_encoder().engine == "onnx"  # exported into the cache, as at the first start
    video = root / "videos" / "a.mp4"
    code = ("import sys; from vmnet_core.cli.main import main; "
            f"code = main(['query', '--bundle', {str(bundle)!r}, '--video', {str(video)!r}, '-k', '2', '--json']); "
            "print('torch imported:', 'torch' in sys.modules, file=sys.stderr); sys.exit(code)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "torch imported: False" in result.stderr
    hits = json.loads(result.stdout)
    loaded = load_bundle(bundle)
    frames = Retriever(loaded).video_frames_file(video)
    reference = embed_arrays(loaded.model, None, loaded.preprocessor.transform_video_frames(frames)[None, :])[1][0]
    cosines = {item.id: float(e @ reference) for item, e in
               zip(loaded.catalog.items("music"), loaded.catalog.embeddings("music"), strict=True)}
    assert [h["id"] for h in hits] == sorted(cosines, key=cosines.get, reverse=True)[:2]
    assert [h["score"] for h in hits] == pytest.approx([cosines[h["id"]] for h in hits], abs=1e-5)
    assert np.isfinite([h["score"] for h in hits]).all()
