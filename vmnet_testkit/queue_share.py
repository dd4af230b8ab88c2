"""Driving the demo's analysis queue from several client addresses, for the tests of its per-client
bound (:mod:`demo.fair_queue`): raw joins by fn_index, real analyses that keep the slots busy, and
fresh copies of catalog clips that the query cache cannot answer.

A client names its address in ``X-Forwarded-For``, which uvicorn trusts from 127.0.0.1 (the tests'
own address, standing in for a front end on the same host); without it the address is 127.0.0.1.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path

import httpx
import imageio_ffmpeg
from gradio_client import Client, handle_file
from gradio_client.client import Job
from gradio_client.utils import Status

from vmnet_core.bundle.files import load_bundle

RUNNING = (Status.PROCESSING, Status.PROGRESS)


def fn_index(base: str, api_name: str) -> int:
    """The fn_index of the demo event published as ``api_name`` (``base``: the page URL, ending in /)."""
    config = httpx.get(f"{base}config", timeout=30).json()
    return next(dep["id"] for dep in config["dependencies"] if dep.get("api_name") == api_name)


def join(http: httpx.Client, base: str, index: int, data: list, client: str | None = None) -> httpx.Response:
    """One raw join to the queue (from ``client``, else from 127.0.0.1), never listening for its result."""
    headers = {"X-Forwarded-For": client} if client else {}
    return http.post(f"{base}gradio_api/queue/join", headers=headers,
                     json={"data": data, "fn_index": index, "session_hash": uuid.uuid4().hex[:11],
                           "event_data": None, "trigger_id": None})


def join_when_free(http: httpx.Client, base: str, index: int, data: list, client: str | None = None,
                   timeout_s: float = 120.0) -> httpx.Response:
    """:func:`join` again every half second while the client is refused for being over its share
    (400); the first other answer. Raises ``TimeoutError`` when the share has not freed in time."""
    deadline = time.monotonic() + timeout_s
    while (answer := join(http, base, index, data, client)).status_code == 400:
        if time.monotonic() > deadline:
            raise TimeoutError(f"still refused after {timeout_s:.0f} s: {answer.text}")
        time.sleep(0.5)
    return answer


def fresh_copy(video: str | Path, out: Path, tag: str | None = None) -> Path:
    """The same streams with a new container comment: new bytes, so the query cache (keyed by the
    upload's SHA-256) cannot answer it and the server analyses it."""
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-i", str(video), "-map", "0", "-c", "copy",
                    "-metadata", f"comment={tag or uuid.uuid4().hex}", str(out)], check=True)
    return out


def catalog_clips(bundle: Path, n: int) -> list[str]:
    """The video files of the bundle catalog's first ``n`` clips."""
    paths = [item.path for item in load_bundle(bundle).catalog.items("video")][:n]
    if len(paths) != n:
        raise ValueError(f"the bundle has only {len(paths)} clips, not {n}")
    return paths


def hold_analysis_slots(base: str, bundle: Path, out_dir: Path, addresses: list[str], per_address: int = 2,
                        timeout_s: float = 120.0) -> list[Job]:
    """Submit ``per_address`` real video searches from each of ``addresses`` (fresh copies of catalog
    clips) and return once two of them run: the demo's two analysis slots are busy, and the rest of
    them wait ahead of anything joined next."""
    clips = catalog_clips(bundle, len(addresses) * per_address)
    jobs = []
    for i, address in enumerate(addresses):
        client = Client(base, verbose=False, headers={"X-Forwarded-For": address})
        for j in range(per_address):
            clip = fresh_copy(clips[i * per_address + j], out_dir / f"busy-{i}-{j}.mp4")
            jobs.append(client.submit(handle_file(str(clip)), 5, False, api_name="/music_for_video"))
    deadline = time.monotonic() + timeout_s
    while sum(job.status().code in RUNNING for job in jobs) < 2:
        if time.monotonic() > deadline:
            raise TimeoutError(f"two analyses did not start within {timeout_s:.0f} s: "
                               f"{[job.status().code for job in jobs]}")
        time.sleep(0.05)
    return jobs
