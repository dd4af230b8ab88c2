"""Ten users query the demo with ten different videos at the same moment (gradio_client, one client
each, from ten addresses, against the shared ``python app.py --no-study`` server): every query is
answered with its own video's results, the queue tells waiting users their position, and the server
serves on. (Each user names its address in ``X-Forwarded-For``, which uvicorn trusts from
127.0.0.1: from one address, ten waiting analyses would pass the demo's per-client bound,
tests/security/test_fair_queue.py.)"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from gradio_client import Client, handle_file
from gradio_client.utils import Status

from vmnet_testkit.demo_server import ServedDemo, shared_demo
from vmnet_testkit.queue_share import catalog_clips, fresh_copy

USERS = 10
TOP_K = 5


@pytest.fixture(scope="module")
def served(tiny_bundle: Path, tmp_path_factory) -> ServedDemo:
    return shared_demo(tiny_bundle, tmp_path_factory.getbasetemp() / "demo_server")


def _answer(table: dict) -> list[tuple[str, float]]:
    """(track id, score) of each result row, best first."""
    rows = [dict(zip(table["headers"], row, strict=True)) for row in table["data"]]
    return [(r["id"], r["score"]) for r in rows]


def test_ten_simultaneous_video_queries_each_get_their_own_results_and_see_the_queue(served, tmp_path):
    clips = catalog_clips(served.bundle, USERS)
    uploads = [fresh_copy(path, tmp_path / f"user{i}.mp4", f"vmnet-concurrency-{i}-{time.time_ns()}")
               for i, path in enumerate(clips)]
    clients = [Client(served.url, verbose=False, headers={"X-Forwarded-For": f"192.0.2.{i + 1}"})
               for i in range(USERS)]
    results: dict[int, tuple] = {}
    seen: dict[int, list] = {i: [] for i in range(USERS)}
    errors: list[str] = []
    start = threading.Barrier(USERS)

    def user(i: int) -> None:
        try:
            start.wait(timeout=60)
            job = clients[i].submit(handle_file(str(uploads[i])), TOP_K, True, api_name="/music_for_video")
            while not job.done():
                update = job.status()
                seen[i].append((update.code, update.rank, update.queue_size))
                time.sleep(0.01)
            results[i] = job.result(timeout=300)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(f"user {i}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=user, args=(i,)) for i in range(USERS)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    wall = time.monotonic() - started

    assert errors == [] and sorted(results) == list(range(USERS))
    assert all("analysed in" in results[i][1] for i in range(USERS))  # each analysed now, none from the cache
    # no cross-talk: each user's answer is the one the same video gets when it is the only query,
    # and the ten videos' answers all differ, so a mix-up between users could not pass unseen
    alone = [_answer(Client(served.url, verbose=False).predict(
        handle_file(str(fresh_copy(path, tmp_path / f"alone{i}.mp4", f"vmnet-alone-{i}-{time.time_ns()}"))),
        TOP_K, True, api_name="/music_for_video")[0]) for i, path in enumerate(clips)]
    assert len({tuple(a) for a in alone}) == USERS
    for i in range(USERS):
        together = _answer(results[i][0])
        assert len(together) == TOP_K and [t for t, _ in together] == [t for t, _ in alone[i]], (i, together, alone[i])
        assert [s for _, s in together] == pytest.approx([s for _, s in alone[i]], abs=0.002), i
    queued = [i for i in range(USERS)
              if any(code == Status.IN_QUEUE and rank is not None and queue_size for code, rank, queue_size in seen[i])]
    positions = sorted({rank for i in queued for code, rank, _ in seen[i] if code == Status.IN_QUEUE and rank is not None})
    assert queued, "no user was told a queue position while waiting"
    assert max(positions) >= 1, positions  # someone waited behind another user
    print(f"\n{USERS} simultaneous video queries answered in {wall:.1f} s; "
          f"{len(queued)} users were shown queue positions {positions}")
