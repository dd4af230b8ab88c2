"""One visitor cannot fill the demo's analysis queue (demo.fair_queue, docs/security.md), shown on the
launched demo server as a script would attack it: raw joins to the queue by fn_index, each client
named by the ``X-Forwarded-For`` header that uvicorn trusts from 127.0.0.1 (the tests' own address,
standing in for a front end on the same host)."""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path

import httpx
import imageio_ffmpeg
import pytest
from gradio_client import Client, handle_file
from gradio_client.utils import Status

from demo.fair_queue import DEFAULT_JOBS_PER_CLIENT, too_many_jobs
from vmnet_core.bundle.files import load_bundle
from vmnet_testkit.demo_server import ServedDemo, shared_demo

ATTACKER, NEIGHBOUR, BUSY = "203.0.113.7", "203.0.113.8", ("198.51.100.1", "198.51.100.2")
RUNNING = (Status.PROCESSING, Status.PROGRESS)


@pytest.fixture(scope="module")
def served(tiny_bundle: Path, tmp_path_factory) -> ServedDemo:
    return shared_demo(tiny_bundle, tmp_path_factory.getbasetemp() / "demo_server")


def _fn_index(base: str, api_name: str) -> int:
    config = httpx.get(f"{base}config", timeout=30).json()
    return next(dep["id"] for dep in config["dependencies"] if dep.get("api_name") == api_name)


def _join(http: httpx.Client, base: str, fn_index: int, client: str, data: list) -> httpx.Response:
    """One raw join to the queue from ``client``, never listening for its result."""
    return http.post(f"{base}gradio_api/queue/join", headers={"X-Forwarded-For": client},
                     json={"data": data, "fn_index": fn_index, "session_hash": uuid.uuid4().hex[:11],
                           "event_data": None, "trigger_id": None})


def _fresh_clip(bundle: Path, index: int, out: Path) -> Path:
    """A catalog clip with new bytes (a container comment), so the query cache cannot answer it."""
    source = [item.path for item in load_bundle(bundle).catalog.items("video")][index]
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-i", source, "-map", "0", "-c", "copy",
                    "-metadata", f"comment=vmnet-fair-{uuid.uuid4().hex}", str(out)], check=True)
    return out


def test_one_client_cannot_fill_the_analysis_queue(served, tmp_path):
    base = served.url
    search = _fn_index(base, "music_for_video")
    # two real analyses from other visitors hold both analysis slots, so the joins below wait in the queue
    busy = [Client(base, verbose=False, headers={"X-Forwarded-For": address}).submit(
        handle_file(str(_fresh_clip(served.bundle, i, tmp_path / f"busy{i}.mp4"))), 5, False,
        api_name="/music_for_video") for i, address in enumerate(BUSY)]
    deadline = time.monotonic() + 120
    while not all(job.status().code in RUNNING for job in busy):
        assert time.monotonic() < deadline, [job.status().code for job in busy]
        time.sleep(0.05)

    with httpx.Client(timeout=30) as http:
        taken = [_join(http, base, search, ATTACKER, [None, 5, False]) for _ in range(DEFAULT_JOBS_PER_CLIENT)]
        refused = _join(http, base, search, ATTACKER, [None, 5, False])
        preview = _join(http, base, _fn_index(base, "preview"), ATTACKER, [None, None])  # same group, also refused
        neighbour = _join(http, base, search, NEIGHBOUR, [None, 5, False])
        assert all(not job.done() for job in busy), "the busy analyses ended before the joins: the test proves nothing"

        assert [r.status_code for r in taken] == [200] * DEFAULT_JOBS_PER_CLIENT
        for answer in (refused, preview):
            assert answer.status_code == 400 and answer.json()["detail"] == too_many_jobs(DEFAULT_JOBS_PER_CLIENT)
        assert neighbour.status_code == 200  # another address is not held back by the attacker's share

        for job in busy:  # the other visitors' analyses are answered as ever
            table, status = job.result(timeout=300)
            assert len(table["data"]) == 5 and "analysed in" in status
        # once the attacker's queued jobs have run (each refused by the handler: no upload), it may join again
        deadline = time.monotonic() + 120
        while (again := _join(http, base, search, ATTACKER, [None, 5, False])).status_code != 200:
            assert again.status_code == 400 and time.monotonic() < deadline, again.text
            time.sleep(0.5)
    # and the page's own flow still works for the attacker's address afterwards
    answer = Client(base, verbose=False, headers={"X-Forwarded-For": ATTACKER}).predict(
        handle_file(str(_fresh_clip(served.bundle, 2, tmp_path / "after.mp4"))), 5, False, api_name="/music_for_video")
    assert len(answer[0]["data"]) == 5
