"""Decode bombs against the launched demo (docs/security.md): files of well under 1 MB whose decode costs
minutes of CPU and gigabytes of memory (one keyframe of a huge picture, then thousands of 9-byte
"nothing moved" frames: :mod:`vmnet_testkit.decode_bombs`). Each is sent as a stranger would, through
the public API (``/music_for_video``, ``/preview``) from its own address, and must be refused with a
sentence a person can act on before any frame is decoded (or, for a stream whose header lies about its
size, by the decoder's pixel cap at once), while another visitor's ordinary clip is answered.

Unbounded, the 8000×8000 bomb below (20 s at 30 fps, 150 kB) costs the server about a minute of CPU
and over a gigabyte per analysis (the figures: docs/security.md).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from vmnet_core.bundle.files import load_bundle
from vmnet_testkit import queue_share as queue
from vmnet_testkit.decode_bombs import skip_bomb
from vmnet_testkit.demo_server import UPLOAD_LIMIT_MB, ServedDemo, shared_demo

ATTACKER = "203.0.113.7"
NEIGHBOUR = "198.51.100.9"
TOO_BIG = "larger than this demo accepts"
TOO_FAST = "frames per second, more than this demo accepts (at most 60)"
GROWN = "changes part-way through to a much larger picture"


@pytest.fixture(scope="module")
def served(tiny_bundle: Path, tmp_path_factory) -> ServedDemo:
    return shared_demo(tiny_bundle, tmp_path_factory.getbasetemp() / "demo_server")


@pytest.fixture(scope="module")
def bombs(tmp_path_factory) -> dict[str, Path]:
    """The bombs, each under the demo's upload limit (about 2 s to make)."""
    folder = tmp_path_factory.mktemp("bombs")
    made = {"huge": skip_bomb(folder / "huge.mp4", 8000, 8000, 30, 20),
            "liar": skip_bomb(folder / "liar.mp4", 8000, 8000, 30, 20, decoy=(320, 240)),
            "fast": skip_bomb(folder / "fast.mp4", 64, 64, 1000, 10),
            "4k240": skip_bomb(folder / "4k240.mp4", 4096, 2304, 240, 10),
            # 240 fps behind a 320×240 header, growing to 4K under the decoder's cap (an audit's bypass)
            "grower240": skip_bomb(folder / "grower240.mp4", 4096, 2304, 240, 10, decoy=(320, 240))}
    assert all(p.stat().st_size < UPLOAD_LIMIT_MB * 1e6 for p in made.values())
    return made


def _track_id(served: ServedDemo) -> str:
    return next(item.id for item in load_bundle(served.bundle).catalog.items("music"))


def _refusal(client: Client, *args, api_name: str) -> str:
    """The error sentence ``api_name`` answers with (fails if it answers). The limits' sentences are
    raised before any frame is decoded; the grown picture's by the decoder at its first large frame."""
    with pytest.raises(AppError) as refused:
        client.predict(*args, api_name=api_name)
    return str(refused.value)


def test_huge_pictures_are_refused_before_decoding_and_a_neighbour_is_answered(served, bombs, tmp_path):
    attacker = Client(served.url, verbose=False, headers={"X-Forwarded-For": ATTACKER})
    neighbour = Client(served.url, verbose=False, headers={"X-Forwarded-For": NEIGHBOUR})
    clip = queue.fresh_copy(queue.catalog_clips(served.bundle, 1)[0], tmp_path / "holiday.mp4")
    with ThreadPoolExecutor(4) as pool:  # two bombs at once (both analysis slots), the neighbour just after
        searches = [pool.submit(_refusal, attacker, handle_file(str(bombs["huge"])), 5, False,
                                api_name="/music_for_video") for _ in range(2)]
        time.sleep(1.0)
        answered = pool.submit(neighbour.predict, handle_file(str(clip)), 5, False, api_name="/music_for_video")
        for search in searches:
            message = search.result(timeout=300)
            assert TOO_BIG in message and "8000×8000" in message and "1920×1080" in message, message
        table, status = answered.result(timeout=300)
    assert len(table["data"]) == 5 and "analysed in" in status

    message = _refusal(attacker, handle_file(str(bombs["huge"])), _track_id(served), api_name="/preview")
    assert TOO_BIG in message, message


def test_a_stream_that_grows_past_its_header_is_stopped_by_the_decoder(served, bombs):
    attacker = Client(served.url, verbose=False, headers={"X-Forwarded-For": ATTACKER})
    for api_name, args in (("/music_for_video", [5, False]), ("/preview", [_track_id(served)])):
        message = _refusal(attacker, handle_file(str(bombs["liar"])), *args, api_name=api_name)
        assert GROWN in message and "1920×1080" in message, message


@pytest.mark.parametrize("bomb", ["fast", "4k240", "grower240"])
def test_too_many_frames_per_second_are_refused(served, bombs, bomb):
    attacker = Client(served.url, verbose=False, headers={"X-Forwarded-For": ATTACKER})
    message = _refusal(attacker, handle_file(str(bombs[bomb])), 5, False, api_name="/music_for_video")
    assert TOO_FAST in message and "re-encode it at 30 frames per second" in message, message
    message = _refusal(attacker, handle_file(str(bombs[bomb])), _track_id(served), api_name="/preview")
    assert TOO_FAST in message, message
