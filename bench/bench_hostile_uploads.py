"""Bad and hostile uploads (vmnet_testkit/hostile_media.py) through the query path and the running demo.

Part 1 runs every case, the slow ones included, through ``vmnet_core.bundle.retrieval.Retriever`` in a
subprocess (the code path the demo uses) and prints outcome, seconds and the process's peak memory
after each query. Part 2 (when ``demo/app.py`` exists and ``--no-demo`` is not given) serves the
real app (``vmnet_testkit/demo_server.running_app``), uploads every file with ``gradio_client`` to
``/music_for_video`` or ``/videos_for_music``, checks after each upload that the server still
answers, and samples the memory of the server and its ffmpeg children (every 50 ms) to report
the peak. A file that ``gradio_client`` itself refuses to send is posted to the server's upload
route by hand under its raw name, then queried; a folder or a dangling link cannot be sent at all
("not sendable").

    python bench/bench_hostile_uploads.py --bundle ~/.cache/vmnet/<starter bundle>
    python bench/bench_hostile_uploads.py --bundle B --skip-slow --no-demo

Record results in docs/reliability.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from vmnet_testkit.hostile_media import (
    TOP_K,
    HostileCase,
    TreeMemorySampler,
    display_name,
    generate_hostile_corpus,
    peak_rss_mb,
    rss_mb,
)
from vmnet_testkit.processes import app_pid

ROOT = Path(__file__).resolve().parents[1]

DEMO_ENDPOINTS = {"video": "/music_for_video", "music": "/videos_for_music"}
DEMO_EXPECT = {
    "two_hours_video": "answer",  # the demo analyses the first --max-video-s seconds and says so
    "fps_1_per_1000s_video": "answer",
    "dangling_symlink_video": "not sendable",  # gradio_client refuses before anything reaches the server
    "folder_video": "not sendable",
    "8k_video": "error",  # over the demo's decode limits (vmnet_core/media/decode_limits.py): refused, not decoded
    "fps_1000_video": "error",
}
"""Where the demo's contract differs from ``Retriever``'s (the case's own ``expect``)."""


# ------------------------------------------------------------------------------------------ part 1
def retriever_report(bundle: Path, media: Path, names: list[str], tmp: Path) -> dict:
    """Run vmnet_testkit/hostile_media.py's query command on the named cases in a subprocess with its own TMPDIR."""
    child_tmp = tmp / "retriever_tmp"
    child_tmp.mkdir()
    cmd = [sys.executable, "-m", "vmnet_testkit.hostile_media", "query", "--bundle", str(bundle), "--media", str(media)]
    proc = subprocess.run([*cmd, "--only", *names], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "TMPDIR": str(child_tmp)}, timeout=3600)
    if proc.returncode != 0:
        raise SystemExit(f"the query process failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    report["tmp_leftovers"] = sorted(os.listdir(child_tmp))
    return report


# ------------------------------------------------------------------------------------------ part 2
def _upload_raw(url: str, path: Path) -> str:
    """POST the file to the server's upload route under its raw name (bytes shown as latin-1)."""
    import httpx

    raw_name = os.fsencode(path.name).decode("latin-1")
    with open(path, "rb") as handle:
        response = httpx.post(url + "gradio_api/upload", files=[("files", (raw_name, handle))], timeout=120)
    response.raise_for_status()
    return response.json()[0]


def _call_raw(url: str, endpoint: str, data: list) -> list:
    """The outputs of a public endpoint called over plain HTTP (``call/<name>``); AppError on an error event."""
    import json

    import httpx
    from gradio_client.exceptions import AppError

    started = httpx.post(f"{url}gradio_api/call{endpoint}", json={"data": data}, timeout=120).raise_for_status()
    events = httpx.get(f"{url}gradio_api/call{endpoint}/{started.json()['event_id']}", timeout=600).text
    kind, payload = None, None
    for line in events.splitlines():
        if line.startswith("event:"):
            kind = line[6:].strip()
        elif line.startswith("data:") and kind in ("complete", "error"):
            payload = json.loads(line[5:])
            break
    if kind != "complete":
        raise AppError((payload or {}).get("error") if isinstance(payload, dict) else str(payload))
    return payload


def _demo_query(client, url: str, case: HostileCase) -> tuple[str, str, list]:
    """(outcome, message, hits) for one upload through the demo API."""
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    endpoint = DEMO_ENDPOINTS[case.query]
    try:
        try:
            table, _status = client.predict(handle_file(str(case.path)), TOP_K, api_name=endpoint)
        except AppError:
            raise
        except Exception as client_side:  # the client could not send it: post the bytes by hand
            if not case.path.is_file():
                return "not sendable", f"{type(client_side).__name__}: {client_side}"[:200], []
            server_path = _upload_raw(url, case.path)
            data = {"path": server_path, "meta": {"_type": "gradio.FileData"},
                    "orig_name": os.fsencode(case.path.name).decode("latin-1")}
            values = [data, TOP_K, False] if case.query == "video" else [data, TOP_K]  # (no synthetic tracks)
            table, _status = _call_raw(url, endpoint, values)  # gradio_client would upload such a dict again
    except AppError as exc:
        return "error", str(exc), []
    except Exception as exc:  # noqa: BLE001 — recorded as a finding
        return "failed", f"{type(exc).__name__}: {exc}"[:300], []
    rows = [dict(zip(table["headers"], row, strict=True)) for row in table["data"]]
    return "answer", "", [[row["id"], row["score"]] for row in rows]


def _server_alive(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url + "gradio_api/info", timeout=30).status_code == 200
    except httpx.HTTPError:
        return False


def _file_count(folder: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(folder)) if folder.exists() else 0


def demo_report(bundle: Path, cases: list[HostileCase], tmp: Path) -> dict:
    """Serve the app and push every case through its API; returns per-case rows and memory."""
    from gradio_client import Client

    from vmnet_testkit.demo_server import copy_bundle, running_app

    server_tmp, uploads = tmp / "server_tmp", tmp / "gradio_uploads"
    server_tmp.mkdir()
    os.environ["GRADIO_TEMP_DIR"] = str(uploads)  # inherited by the server through running_app
    os.environ["TMPDIR"] = str(server_tmp)
    bundle_copy = copy_bundle(bundle, tmp / "bundle")
    cache = tmp / "cache"
    rows = []
    # one client sends every case (some of them hundreds of MB): no per-client budget or queue share
    with running_app(bundle_copy, cache, "--upload-gb-per-client", "0", "--jobs-per-client", "0") as url:
        pid = app_pid(url)
        sampler = TreeMemorySampler(pid) if pid else None
        if sampler:
            sampler.start()
        idle_mb = rss_mb(pid) if pid else float("nan")
        client = Client(url, verbose=False)
        for case in cases:
            started = time.perf_counter()
            outcome, message, hits = _demo_query(client, url, case)
            rows.append({"name": case.name, "expect": DEMO_EXPECT.get(case.name, case.expect), "outcome": outcome,
                         "message": message, "hits": hits, "seconds": round(time.perf_counter() - started, 2),
                         "server_up": _server_alive(url), "server_rss_mb": rss_mb(pid) if pid else None})
            print(f"  demo {case.name:32s} {outcome:12s} {rows[-1]['seconds']:7.1f} s  {message[:90]}", flush=True)
        if sampler:
            sampler.stop()
        server_peak = peak_rss_mb(pid) if pid else float("nan")
    return {"cases": rows, "server_idle_mb": idle_mb, "server_peak_mb": server_peak,
            "tree_peak_mb": sampler.peak_tree_mb if sampler else None,
            "child_peak_mb": sampler.peak_child[0] if sampler else None,
            "child_peak_command": sampler.peak_child[1] if sampler else None,
            "server_tmp_leftovers": sorted(os.listdir(server_tmp)),
            "uploads_kept": _file_count(uploads), "work_files": _file_count(cache / "work")}


# ------------------------------------------------------------------------------------------ output
def print_table(title: str, cases: list[HostileCase], rows: dict[str, dict]) -> None:
    """Markdown table; "MB after" is the query process's peak RSS so far (Retriever) or the
    server's RSS after the upload (demo)."""
    print(f"\n## {title}\n")
    print("| case | upload | expected | got | s | MB after | message |")
    print("|---|---|---|---|---:|---:|---|")
    for case in cases:
        row = rows.get(case.name)
        if row is None:
            continue
        peak = row.get("peak_rss_mb", row.get("server_rss_mb"))
        message = row["message"].replace("|", "\\|").replace("\n", " ")
        message = message.encode("utf-8", "backslashreplace").decode("utf-8")
        expect = row.get("expect", case.expect)
        mark = "" if row["outcome"] == expect else " ✗"
        name = display_name(case.path).replace("|", "\\|").replace("\n", "\\n")
        print(f"| {case.name} | `{name[:40]}` | {expect} | {row['outcome']}{mark} | {row['seconds']:.1f} | "
              f"{'' if peak is None else f'{peak:,.0f}'} | {message[:160]} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", required=True, type=Path, help="a trained bundle (e.g. the starter bundle)")
    parser.add_argument("--media", type=Path, default=None, help="corpus folder (default: a fresh temporary one)")
    parser.add_argument("--skip-slow", action="store_true", help="leave out the cases marked slow")
    parser.add_argument("--only", nargs="*", default=None, help="case names to run (default: all)")
    parser.add_argument("--no-demo", action="store_true", help="only the Retriever part")
    parser.add_argument("--json", type=Path, default=None, help="also write both reports here")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="vmnet-hostile-") as scratch:
        tmp = Path(scratch)
        media = args.media or tmp / "media"
        started = time.perf_counter()
        cases = generate_hostile_corpus(media)
        print(f"# {len(cases)} cases over {len({c.path for c in cases})} uploads generated in "
              f"{time.perf_counter() - started:.1f} s; load average {os.getloadavg()[0]:.2f}")
        cases = [c for c in cases if not (args.skip_slow and c.slow) and (args.only is None or c.name in args.only)]
        report = {"retriever": retriever_report(args.bundle, media, [c.name for c in cases], tmp)}
        by_name = {r["name"]: r for r in report["retriever"]["cases"]}
        print_table("Retriever (vmnet_core)", cases, by_name)
        peak = report["retriever"]["peak_rss_mb"]
        print(f"\npeak RSS: query process {peak:,.0f} MB (after loading the bundle "
              f"{report['retriever']['peak_rss_mb_after_load']:,.0f} MB), largest ffmpeg (sampled) "
              f"{report['retriever']['ffmpeg_peak_mb']:,.0f} MB, process + children (sampled) "
              f"{report['retriever']['tree_peak_mb']:,.0f} MB; {report['retriever']['seconds']:.0f} s in all; "
              f"files left in its TMPDIR: {len(report['retriever']['tmp_leftovers'])}")
        demo_ready = (ROOT / "demo" / "app.py").is_file()
        if not args.no_demo and demo_ready:
            report["demo"] = demo_report(args.bundle, cases, tmp)
            print_table("Demo server (gradio_client → app.py)", cases, {r["name"]: r for r in report["demo"]["cases"]})
            demo = report["demo"]
            down = [r["name"] for r in demo["cases"] if not r["server_up"]]
            print(f"\nserver: idle {demo['server_idle_mb']:,.0f} MB, peak {demo['server_peak_mb']:,.0f} MB (VmHWM); "
                  f"server + children sampled peak {demo['tree_peak_mb'] or 0:,.0f} MB (largest child "
                  f"{demo['child_peak_mb'] or 0:,.0f} MB, {demo['child_peak_command']}); down after: {down or 'never'}; files left in its TMPDIR: "
                  f"{len(demo['server_tmp_leftovers'])}; uploads kept by Gradio: {demo['uploads_kept']}; "
                  f"files in the work folder (query cache): {demo['work_files']}")
        elif not args.no_demo:
            print("\n(demo/app.py is not there yet: only the Retriever part ran)")
        if args.json:
            args.json.write_text(json.dumps(report, indent=1) + "\n", encoding="ascii")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
