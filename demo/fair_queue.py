"""One visitor cannot fill the demo's analysis queue.

Heavy analyses (CNN, music descriptor, preview mux) share one concurrency group that runs two at a
time; everything else waits in Gradio's queue, first come first served. Without a per-client bound,
one script joining that queue a few hundred times would put every other visitor behind it for
hours. :func:`limit_jobs_per_client` bounds each client address to ``per_client`` jobs of the group
waiting or running at once: a further join is refused at once (HTTP 400, the page shows the
sentence of :func:`too_many_jobs`), counts nothing, and is accepted again as soon as one of that
client's jobs ends.

Clients are keyed as the admin login throttle and the study's join limit key them
(:func:`webguard.clients.client_key`: the connecting address, an IPv6 one as its /64; uvicorn
takes it from ``X-Forwarded-For`` only when the connection comes from 127.0.0.1;
docs/security.md). Visitors behind one address (a classroom's NAT) share the bound.

The count reads Gradio's own queue (``Queue.event_ids_to_events``: the events waiting or running,
removed when they end or are cancelled), so nothing here can drift from what the queue holds. That
is Gradio 6's internal API, pinned in requirements.txt and exercised by the launched-server test.
"""

from __future__ import annotations

import asyncio
from typing import Any

from webguard.clients import request_client

DEFAULT_JOBS_PER_CLIENT = 4  # room for a tab's search, re-rank and preview pending at once, and one more


def too_many_jobs(per_client: int) -> str:
    """The sentence a client reads when it already has ``per_client`` analyses in the queue."""
    return (f"Your network already has {per_client} analyses waiting or running on this demo; wait until "
            "one of them has finished, then try again.")


def jobs_of(queue: Any, client: str, concurrency_id: str) -> int:
    """How many events of ``concurrency_id`` from ``client`` Gradio's ``queue`` holds (waiting or running)."""
    return sum(1 for event in list(queue.event_ids_to_events.values())
               if event.concurrency_id == concurrency_id and request_client(event.request) == client)


def limit_jobs_per_client(blocks: Any, concurrency_id: str, per_client: int) -> None:
    """Refuse a client's join to an event of ``concurrency_id`` while it has ``per_client`` of them
    waiting or running. Call after ``blocks.queue()`` (which makes the queue); ``per_client`` 0 sets
    no bound. Joins to other events pass unchanged."""
    if per_client < 0:
        raise ValueError(f"per_client must be 0 (no bound) or more, not {per_client}")
    if per_client == 0:
        return
    queue = blocks._queue
    push = queue.push
    admitting = asyncio.Lock()  # count and enqueue as one step, so two joins at once cannot both slip in

    async def push_within_share(body: Any, request: Any, username: str | None):
        fn = blocks.fns.get(body.fn_index) if body.fn_index is not None else None
        if fn is None or fn.concurrency_id != concurrency_id:
            return await push(body, request, username)
        async with admitting:
            if jobs_of(queue, request_client(request), concurrency_id) >= per_client:
                return False, too_many_jobs(per_client), "error"
            return await push(body, request, username)

    queue.push = push_within_share
