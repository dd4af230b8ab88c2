"""One visitor cannot fill the demo's analysis queue (demo.fair_queue, docs/security.md), shown on the
launched demo server as a script would attack it: raw joins to the queue by fn_index, each client
named by the ``X-Forwarded-For`` header that uvicorn trusts from 127.0.0.1 (the tests' own address,
standing in for a front end on the same host)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from gradio_client import Client, handle_file

from demo.fair_queue import DEFAULT_JOBS_PER_CLIENT, too_many_jobs
from vmnet_testkit import queue_share as queue
from vmnet_testkit.demo_server import ServedDemo, shared_demo

# the attacker rotates among the IPv6 addresses of its /64 (one join each); the neighbour is the next /64
ATTACKER = [f"2001:db8:1:2::{n:x}" for n in range(1, 8)]
NEIGHBOUR = "2001:db8:1:3::1"
OTHERS = ["198.51.100.1", "198.51.100.2", "198.51.100.3"]


@pytest.fixture(scope="module")
def served(tiny_bundle: Path, tmp_path_factory) -> ServedDemo:
    return shared_demo(tiny_bundle, tmp_path_factory.getbasetemp() / "demo_server")


def test_one_client_cannot_fill_the_analysis_queue(served, tmp_path):
    base = served.url
    search, preview = queue.fn_index(base, "music_for_video"), queue.fn_index(base, "preview")
    # other visitors' real analyses hold both slots and queue ahead, so the joins below wait
    busy = queue.hold_analysis_slots(base, served.bundle, tmp_path, OTHERS)
    with httpx.Client(timeout=30) as http:
        taken = [queue.join(http, base, search, [None, 5, False], ATTACKER[n]) for n in range(DEFAULT_JOBS_PER_CLIENT)]
        refused = queue.join(http, base, search, [None, 5, False], ATTACKER[DEFAULT_JOBS_PER_CLIENT])
        refused_preview = queue.join(http, base, preview, [None, None], ATTACKER[-1])  # the same group: refused too
        neighbour = queue.join(http, base, search, [None, 5, False], NEIGHBOUR)
        assert not all(job.done() for job in busy), "the other analyses ended before the joins: nothing was shown"

        assert [r.status_code for r in taken] == [200] * DEFAULT_JOBS_PER_CLIENT
        for answer in (refused, refused_preview):
            assert answer.status_code == 400 and answer.json()["detail"] == too_many_jobs(DEFAULT_JOBS_PER_CLIENT)
        assert neighbour.status_code == 200  # another address is not held back by the attacker's share

        for job in busy:  # the other visitors' analyses are answered as ever
            table, status = job.result(timeout=300)
            assert len(table["data"]) == 5 and "analysed in" in status
        # once the attacker's queued jobs have run (each refused by the handler: no upload), it may join again
        assert queue.join_when_free(http, base, search, [None, 5, False], ATTACKER[0]).status_code == 200
    # and the page's own flow answers that address again
    clip = queue.fresh_copy(queue.catalog_clips(served.bundle, 1)[0], tmp_path / "after.mp4")
    table, _ = Client(base, verbose=False, headers={"X-Forwarded-For": ATTACKER[1]}).predict(
        handle_file(str(clip)), 5, False, api_name="/music_for_video")
    assert len(table["data"]) == 5
