"""End to end: ``python app.py --no-study`` on a free port, driven with gradio_client like any API user.

The server (vmnet_testkit/demo_server.py, shared with the browser test) runs over a private copy of the
starter bundle, with two extra tracks indexed at start by ``--music-dir``, a 1 MB upload limit and
a 20-s analysis limit so those paths are cheap to reach; real media is generated with ffmpeg.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from demo.handlers import format_duration
from vmnet_core.bundle.files import load_bundle
from vmnet_core.bundle.retrieval import Retriever
from vmnet_core.bundle.track_cues import cues_of_file
from vmnet_core.media import probe
from vmnet_testkit.cue_media import make_cue_media
from vmnet_testkit.demo_server import UPLOAD_LIMIT_MB, VIDEO_LIMIT_S, ServedDemo, shared_demo
from vmnet_testkit.mediagen import make_audio, make_video

PUBLIC_ENDPOINTS = {"/music_for_video", "/videos_for_music", "/preview"}


@pytest.fixture(scope="module")
def served(tiny_bundle: Path, tmp_path_factory) -> ServedDemo:
    return shared_demo(tiny_bundle, tmp_path_factory.getbasetemp() / "demo_server")


@pytest.fixture(scope="module")
def client(served) -> Client:
    return Client(served.url, verbose=False)


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("demo_media")
    make_video(folder / "clip.mp4", seconds=3, seed=3)
    return folder


def _rows(table: dict) -> list[dict]:
    return [dict(zip(table["headers"], row, strict=True)) for row in table["data"]]


def _best_fitting_corpus_clip(bundle: Path) -> tuple[str, str, float]:
    """(video path, id, partner score) of the catalog clip whose own track wins by the widest margin."""
    catalog = load_bundle(bundle).catalog
    music, music_ids = catalog.embeddings("music"), catalog.ids("music")
    best = None
    for row, item in enumerate(catalog.items("video")):
        scores = music @ catalog.embeddings("video")[row]
        partner = music_ids.index(item.pair_id or item.id)
        margin = scores[partner] - np.delete(scores, partner).max()
        if best is None or margin > best[0]:
            best = (margin, item.path, item.id, float(scores[partner]))
    assert best is not None and best[0] > 0.02, "the tiny bundle fits none of its training clips"
    return best[1], best[2], best[3]


def _cache_files(served: ServedDemo) -> list[Path]:
    return [p for p in served.query_cache.rglob("*") if p.is_file()]


def test_only_the_deliberate_endpoints_are_public(client):
    api = client.view_api(print_info=False, return_format="dict")
    assert set(api["named_endpoints"]) == PUBLIC_ENDPOINTS
    assert not api["unnamed_endpoints"]


def test_music_for_a_corpus_clip_gives_its_own_track_the_best_cosine(client, served):
    path, clip_id, catalog_score = _best_fitting_corpus_clip(served.bundle)
    table, status = client.predict(handle_file(path), 100, True, api_name="/music_for_video")  # with training tracks
    rows = _rows(table)
    assert len(rows) > 28  # the corpus tracks, the 28 library tracks and the two from --music-dir
    assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
    # its own soundtrack, found through the same extraction code: the highest cosine of all, equal to the
    # catalog's (the rank may be lower: the default order adds the named-cue fit, tests/test_cue_ranking.py)
    own = next(r for r in rows if r["id"] == clip_id)
    assert own["score"] == max(r["score"] for r in rows)
    assert own["score"] == pytest.approx(catalog_score, abs=0.02)
    titles = {r["title"] for r in rows}
    assert {"calm-tone", "bright-tone"} <= titles  # indexed at start by --music-dir
    library = [r for r in rows if r["mood"]]
    assert library and all(r["tempo"].endswith("BPM") for r in library)  # the real tracks' tags
    assert "analysed in" in status


def test_real_music_comes_first_and_each_track_says_why_it_fits(client, served, tmp_path):
    media = make_cue_media(tmp_path)
    table, status = client.predict(handle_file(media["fast_bright"]), 100, api_name="/music_for_video")
    rows = _rows(table)
    assert not [r for r in rows if r["id"].startswith("starter-")]  # synthetic training tracks only on request
    library = [r for r in rows if r["id"].startswith("library-")]
    real = [i for i in load_bundle(served.bundle).catalog.items("music") if not i.id.startswith("starter-")]
    assert len(library) == 28 and len(rows) == len(real) >= 30  # the real library, the --music-dir tracks
    assert all(r["title"][0].isupper() and "_" not in r["title"] for r in library)  # "Calm Acoustic 1"
    assert "synthetic training tracks left out" in status
    why = [r["why this track"] for r in rows]
    assert any(why) and not any("long takes" in w or "dark" in w for w in why)  # a fast, bright clip
    slow = _rows(client.predict(handle_file(media["slow_dark"]), 100, api_name="/music_for_video")[0])
    slow_why = [r["why this track"] for r in slow]
    assert any(slow_why) and not any("fast cuts" in w for w in slow_why) and slow_why != why


def test_same_video_twice_is_answered_from_the_cache(client, served, media):
    first_table, first = client.predict(handle_file(media / "clip.mp4"), 5, api_name="/music_for_video")
    second_table, second = client.predict(handle_file(media / "clip.mp4"), 5, api_name="/music_for_video")
    assert "from cache" not in first and "analysed in" in first
    assert "from cache" in second
    assert first_table["data"] == second_table["data"]
    files = _cache_files(served)
    assert not [p for p in files if p.name.endswith(".tmp")]
    assert sorted(p.suffix for p in files if p.suffix in (".npy", ".json")) == sorted(
        [".npy", ".json"] * (len(files) // 2))


def test_videos_for_a_track(client, served, tmp_path):
    track = make_audio(tmp_path / "query.mp3", seconds=5, freq=440)
    table, status = client.predict(handle_file(track), 4, api_name="/videos_for_music")
    rows = _rows(table)
    assert len(rows) == 4
    bundle = load_bundle(served.bundle)
    assert all(bundle.catalog.has("video", r["id"]) for r in rows)
    assert all(bundle.catalog.item("video", r["id"]).cues.get("cut_rate") is not None for r in rows)  # picture cues
    retriever = Retriever(bundle)  # the order: cosine and the cue fit, fused as the bundle says
    expected = retriever.rank(retriever.embed_music_file(track), "video", 4, query_cues=cues_of_file(track, "music"))
    assert [r["id"] for r in rows] == [h.id for h in expected]
    assert [r["score"] for r in rows] == pytest.approx([round(h.score, 3) for h in expected], abs=1e-3)
    assert "videos" in status


def test_videos_for_the_soundtrack_of_a_video(client, served):
    path, clip_id, _ = _best_fitting_corpus_clip(served.bundle)
    table, status = client.predict(handle_file(path), 24, api_name="/videos_for_music")
    assert clip_id in [r["id"] for r in _rows(table)]
    assert "soundtrack" in status


def test_preview_lays_the_track_under_the_video(client, media):
    table, _ = client.predict(handle_file(media / "clip.mp4"), 3, api_name="/music_for_video")
    track_id = _rows(table)[0]["id"]
    video_out, download = client.predict(handle_file(media / "clip.mp4"), track_id, api_name="/preview")
    info = probe(video_out)
    assert (info.video_codec, info.audio_codec) == ("h264", "aac")
    assert info.duration_s == pytest.approx(probe(media / "clip.mp4").duration_s, abs=0.15)
    assert Path(download).read_bytes() == Path(video_out).read_bytes()


def test_preview_needs_a_known_track(client, media):
    with pytest.raises(AppError, match="not in the catalog"):
        client.predict(handle_file(media / "clip.mp4"), "no-such-track", api_name="/preview")


def _text_as_mp4(folder: Path) -> Path:
    path = folder / "notes.mp4"
    path.write_text("These are my notes, not a video.\n" * 20)
    return path


def _random_bytes(folder: Path) -> Path:
    path = folder / "noise.mov"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 20_000, dtype=np.uint8).tobytes())
    return path


def _truncated_mp4(folder: Path) -> Path:
    whole = make_video(folder / "whole.mp4", seconds=4)
    path = folder / "cut.mp4"
    data = whole.read_bytes()
    path.write_bytes(data[: len(data) * 6 // 10])
    return path


def _audio_only_mp4(folder: Path) -> Path:
    return make_audio(folder / "voice-memo.mp4", seconds=3)


def _silent_video(folder: Path) -> Path:
    return make_video(folder / "silent.mp4", seconds=3, audio=False)


BAD_INPUTS = [
    pytest.param(_text_as_mp4, "/music_for_video", "not a media file", id="text-renamed-mp4"),
    pytest.param(_random_bytes, "/music_for_video", "not a media file|could not be read", id="unreadable"),
    pytest.param(_truncated_mp4, "/music_for_video", "truncated|incomplete", id="truncated-mp4"),
    pytest.param(_audio_only_mp4, "/music_for_video", "has no video track", id="video-without-frames"),
    pytest.param(_silent_video, "/videos_for_music", "has no audio track", id="audio-query-without-audio"),
    pytest.param(_text_as_mp4, "/videos_for_music", "not a media file", id="text-as-music"),
]


@pytest.mark.parametrize(("make", "endpoint", "message"), BAD_INPUTS)
def test_bad_input_gets_one_sentence_and_the_server_goes_on(client, served, media, tmp_path, make, endpoint,
                                                            message):
    bad = make(tmp_path)
    before = set(_cache_files(served))
    with pytest.raises(AppError, match=message) as caught:
        client.predict(handle_file(bad), 5, api_name=endpoint)
    sentence = str(caught.value)
    assert "Traceback" not in sentence and "ffmpeg version" not in sentence and sentence.count("\n") == 0
    assert set(_cache_files(served)) == before  # nothing cached, nothing half-written
    table, _ = client.predict(handle_file(media / "clip.mp4"), 2, api_name="/music_for_video")
    assert len(table["data"]) == 2  # still serving


def test_long_video_is_analysed_up_to_the_limit_and_says_so(client, tmp_path):
    long_video = make_video(tmp_path / "long.mp4", seconds=VIDEO_LIMIT_S + 5, fps=2, size=(96, 64))
    table, status = client.predict(handle_file(long_video), 3, api_name="/music_for_video")
    assert len(table["data"]) == 3
    assert f"only its first {format_duration(VIDEO_LIMIT_S)} were analysed" in status
    assert f"{VIDEO_LIMIT_S} frames" in status  # 1 per second, none past the limit


def test_upload_over_the_limit_is_refused(client, served, tmp_path):
    big = tmp_path / "big.mp4"
    big.write_bytes(os.urandom(int(1.5 * UPLOAD_LIMIT_MB * 1024 * 1024)))
    with pytest.raises(ValueError, match="exceeds the maximum file size"):
        client.predict(handle_file(big), 5, api_name="/music_for_video")  # the client checks first
    with big.open("rb") as handle:  # and the server refuses it on its own
        response = httpx.post(served.url + "gradio_api/upload", files=[("files", ("big.mp4", handle))], timeout=60)
    assert response.status_code == 413
    assert "maximum allowed size" in response.text
    assert httpx.get(served.url + "gradio_api/info", timeout=30).status_code == 200
