"""The one entry point: ``python app.py`` serves the retrieval demo at ``/``, the preference study's
rater flow at ``/study`` and its admin at ``/admin`` on one server; ``--study-only`` serves the
study alone (``/`` leads to ``/study/``), ``--no-study`` the demo alone. The demo can tell a rater
which soundtrack a model picked, so a server with the demo refuses to start while the study
database holds an open study other than the built-in default one, unless
``--allow-demo-with-open-study`` says so.

With no ``--bundle`` it serves the built-in default: a VM-NET bundle trained on the procedural
starter corpus, built once into the cache directory (``$VMNET_CACHE`` or ``~/.cache/vmnet``).
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import time
from pathlib import Path

from demo.fair_queue import DEFAULT_JOBS_PER_CLIENT
from vmnet_core.errors import VmnetError
from vmnet_core.paths import cache_dir
from webguard.error_log import ERRORS_PER_MINUTE, ErrorLogBudget
from webguard.sessions import SESSIONS_PER_CLIENT


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="vmnet: video–music retrieval demo and preference study.")
    parser.add_argument("--bundle", type=Path, help="a trained bundle directory (default: the starter bundle)")
    parser.add_argument("--music-dir", type=Path, help="index this folder of tracks into the catalog at start")
    parser.add_argument("--music-root", type=Path, action="append", default=[], metavar="DIR",
                        help="let the logged-in admin index folders inside DIR from /admin-music (repeatable; "
                             "without it the page indexes nothing)")
    parser.add_argument("--db", help="study database URL (default: SQLite in the cache directory)")
    parser.add_argument("--db-busy-timeout-ms", type=int, default=None,
                        help="SQLite only: how long a study write waits for a lock before the rater is asked "
                             "to retry (default 30000)")
    parser.add_argument("--host", default=os.environ.get("VMNET_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("VMNET_PORT", "7860")))
    parser.add_argument("--admin-password", default=os.environ.get("VMNET_ADMIN_PASSWORD"),
                        help="password for /admin (user 'admin'); default: $VMNET_ADMIN_PASSWORD or a random one")
    parser.add_argument("--admin-login-hours", type=float, default=12.0, metavar="H",
                        help="an admin login lasts this many hours, then the admin logs in again (default 12)")
    parser.add_argument("--max-upload-mb", type=int, default=500, help="upload limit in MB (default 500)")
    parser.add_argument("--max-video-s", type=float, default=600.0,
                        help="analyse at most this many seconds from the start of a video (default 600)")
    parser.add_argument("--upload-max-age-s", type=float, default=3600.0,
                        help="remove visitor uploads and temp files older than this (default 3600)")
    parser.add_argument("--upload-max-gb", type=float, default=5.0,
                        help="keep the upload/temp folder under this size, oldest files first (default 5)")
    parser.add_argument("--upload-gb-per-client", type=float, default=2.0, metavar="G",
                        help="what one client address may upload within an hour, in GB (default 2; 0: no bound)")
    parser.add_argument("--jobs-per-client", type=int, default=DEFAULT_JOBS_PER_CLIENT, metavar="N",
                        help="demo analyses one client address may have waiting or running at once "
                             f"(default {DEFAULT_JOBS_PER_CLIENT}; 0: no bound)")
    parser.add_argument("--sessions-per-client", type=int, default=SESSIONS_PER_CLIENT, metavar="N",
                        help="sessions (tabs, reloads) the server keeps per page for one client address, its least "
                             f"recently used forgotten beyond (default {SESSIONS_PER_CLIENT}; 0: no bound)")
    parser.add_argument("--log-errors-per-minute", type=int, default=ERRORS_PER_MINUTE, metavar="N",
                        help="error tracebacks, and lines of each warning, written to the log per minute, the "
                             f"rest counted in one line (default {ERRORS_PER_MINUTE}; 0: all): a visitor decides "
                             "when an event fails or a request is malformed")
    parser.add_argument("--no-study", action="store_true", help="serve the demo only")
    parser.add_argument("--study-only", action="store_true",
                        help="serve the study (/study, /admin) without the retrieval demo: the way to run a live study")
    parser.add_argument("--allow-demo-with-open-study", action="store_true",
                        help="serve the demo even though a study is open to raters (the demo can de-blind its trials)")
    args = parser.parse_args(argv)
    if args.no_study and args.study_only:
        parser.error("--no-study and --study-only exclude each other; pass one of them")
    if args.admin_login_hours <= 0:
        parser.error(f"--admin-login-hours must be more than 0, not {args.admin_login_hours:g}")
    if args.upload_gb_per_client < 0:
        parser.error(f"--upload-gb-per-client must be 0 (no bound) or more, not {args.upload_gb_per_client:g}")
    if args.jobs_per_client < 0:
        parser.error(f"--jobs-per-client must be 0 (no bound) or more, not {args.jobs_per_client}")
    if args.sessions_per_client < 0:
        parser.error(f"--sessions-per-client must be 0 (no bound) or more, not {args.sessions_per_client}")
    if args.log_errors_per_minute < 0:
        parser.error(f"--log-errors-per-minute must be 0 (all) or more, not {args.log_errors_per_minute}")
    return args


def default_bundle() -> Path:
    """The starter bundle in the cache directory, built on first use (a few minutes, with progress)."""
    from vmnet_core.starter.pipeline import DEFAULT_BUNDLE_NAME, build_starter_bundle

    target = cache_dir() / DEFAULT_BUNDLE_NAME
    if not (target / "config.json").exists():
        print(f"vmnet: building the default starter bundle in {target} (first start only)...", flush=True)
        started = time.perf_counter()
        build_starter_bundle(target)
        print(f"vmnet: default bundle ready in {time.perf_counter() - started:.0f} s", flush=True)
    return target


def build_server(args: argparse.Namespace, bundle_dir: Path):
    """Mount the demo, the rater flow and the admin on one FastAPI app."""
    import gradio as gr
    from fastapi import FastAPI

    from demo.app import build_demo

    server = FastAPI(title="vmnet", docs_url=None, redoc_url=None, openapi_url=None)
    upload_limit = f"{args.max_upload_mb}mb"
    work_dir = cache_dir() / "work"
    password = args.admin_password or secrets.token_urlsafe(12)
    if not args.admin_password:
        print(f"vmnet: /admin login is admin / {password} (set VMNET_ADMIN_PASSWORD to choose one)", flush=True)
    if not args.no_study:
        from study.pages import mount_study

        db_url = args.db or f"sqlite:///{cache_dir() / 'study.sqlite'}"
        mounted = mount_study(server, db_url, bundle_dir, work_dir / "study", password, upload_limit,
                              busy_timeout_ms=args.db_busy_timeout_ms)
        if not args.study_only:
            refuse_live_study_beside_demo(mounted.db, args.allow_demo_with_open_study)
    if args.study_only:
        from fastapi.responses import RedirectResponse

        server.add_api_route("/", lambda: RedirectResponse("/study/"), include_in_schema=False)
    else:
        from demo.operator import build_music_folder_page

        demo_blocks = build_demo(bundle_dir, work_dir=demo_work_dir(), music_dir=args.music_dir,
                                 max_video_s=args.max_video_s, jobs_per_client=args.jobs_per_client)
        gr.mount_gradio_app(server, build_music_folder_page(demo_blocks.vmnet_context, args.music_root),
                            path="/admin-music", auth=("admin", password), max_file_size=upload_limit)
        gr.mount_gradio_app(server, demo_blocks, path="", max_file_size=upload_limit)
    guard_server(server, args, bundle_dir)
    return server


def refuse_live_study_beside_demo(db, allowed: bool) -> None:
    """Refuse (``VmnetError``) to serve the demo next to a study open to raters, other than the
    built-in default study; with ``allowed``, print a warning instead."""
    from study.pages import DEFAULT_STUDY_NAME
    from study.service import open_studies

    live = [name for name in open_studies(db) if name != DEFAULT_STUDY_NAME]
    if not live:
        return
    sentence = (f"the study database has {len(live)} open stud{'y' if len(live) == 1 else 'ies'} "
                f"({', '.join(live)}) and this server would also serve the retrieval demo at /, which can tell a "
                "rater which soundtrack a model picked")
    if allowed:
        print(f"vmnet: WARNING: {sentence}; serving both because of --allow-demo-with-open-study.",
              file=sys.stderr, flush=True)
        return
    raise VmnetError(f"{sentence[0].upper()}{sentence[1:]}. Serve the study alone with --study-only (and the demo "
                     "on another server), close the study in /admin first, or pass --allow-demo-with-open-study.")


ADMIN_MOUNTS = ("/admin", "/admin-music")  # behind the login: the operator sees real server paths there
PAGES_WITHOUT_UPLOADS = ("/study",)        # the rater page has no upload box: its upload route answers 404
JANITOR_MAX_PERIOD_S = 5.0                 # sweep at least this often, so a burst of uploads overshoots little


def hidden_folders(args: argparse.Namespace, bundle_dir: Path, upload_dir: str, study_media: list[str]) -> list[str]:
    """The server folders a visitor never sees (shown as opaque tokens, docs/security.md): Gradio's
    upload/cache folder, the study's media, the bundle (and the folder holding it), the cache, the
    music folders, the temp folder, the working directory and the home folder."""
    import tempfile

    bundle = Path(bundle_dir).absolute()
    return [upload_dir, *study_media, str(bundle), str(bundle.parent), str(cache_dir()),
            *(str(Path(p).absolute()) for p in [args.music_dir, *args.music_root] if p),
            tempfile.gettempdir(), os.getcwd(), str(Path(__file__).resolve().parent), str(Path.home())]


def guard_server(server, args: argparse.Namespace, bundle_dir: Path, janitor: bool = True) -> None:
    """Put :mod:`webguard` in front of every mount of ``server`` and (``janitor``) start the upload
    janitor (docs/security.md)."""
    from gradio.routes import App
    from gradio.utils import get_upload_folder
    from starlette.routing import Mount

    from webguard import (
        LoginAges,
        LoginThrottle,
        MountRule,
        PathMask,
        SessionLimit,
        UploadBudget,
        UploadJanitor,
        UploadOwners,
        WebGuard,
        is_inside,
    )

    upload_dir = get_upload_folder()
    mounts = {route.path: route.app.get_blocks() for route in server.routes
              if isinstance(route, Mount) and isinstance(route.app, App)}
    study_media = [str(d) for d in mounts["/study"].allowed_paths] if "/study" in mounts else []

    def made_for_visitors(blocks, also: list[str]):
        def allows(real: str) -> bool:
            if any(is_inside(real, d) for d in also):
                return True
            return is_inside(real, upload_dir) and any(
                real in {os.path.realpath(p) for p in files} for files in list(blocks.temp_file_sets))
        return allows

    def rule(prefix: str, blocks) -> MountRule:
        public = {index: fn for index, fn in blocks.fns.items() if fn.api_visibility == "public" and fn.api_name}
        return MountRule(prefix, made_for_visitors(blocks, study_media if prefix == "/study" else []),
                         public_api=frozenset(fn.api_name for fn in public.values()), public_fn_ids=frozenset(public),
                         uploads=prefix not in PAGES_WITHOUT_UPLOADS, event_fn_ids=frozenset(blocks.fns))

    rules = [rule(prefix, blocks) for prefix, blocks in mounts.items()]

    def forget(removed: set[str]) -> None:
        for blocks in mounts.values():
            for files in list(blocks.temp_file_sets):
                files.difference_update(removed)

    at_start = {p for blocks in mounts.values() for files in blocks.temp_file_sets for p in files}
    mask = PathMask(hidden_folders(args, bundle_dir, upload_dir, study_media))
    server.add_middleware(WebGuard, rules=rules, mask=mask, unmasked_prefixes=ADMIN_MOUNTS,
                          login_paths=[f"{m}/login" for m in ADMIN_MOUNTS],
                          logout_paths=[f"{m}/logout" for m in ADMIN_MOUNTS], throttle=LoginThrottle(),
                          login_ages=LoginAges(args.admin_login_hours * 3600),
                          upload_budget=UploadBudget(int(args.upload_gb_per_client * 1e9))
                          if args.upload_gb_per_client > 0 else None,
                          upload_owners=UploadOwners(args.upload_max_age_s), upload_folder=upload_dir,
                          sessions=SessionLimit(args.sessions_per_client, lambda prefix, session_hash: forget_session(
                              mounts.get(prefix), session_hash)) if args.sessions_per_client > 0 else None)
    if not janitor:
        return
    period_s = min(JANITOR_MAX_PERIOD_S, max(1.0, args.upload_max_age_s / 3))
    UploadJanitor(upload_dir, args.upload_max_age_s, int(args.upload_max_gb * 1e9),
                  period_s=period_s, forget=forget, keep=at_start).start()
    if args.study_only:
        return
    from demo.handlers import scratch_folders

    for folder in scratch_folders(demo_work_dir()):  # made per upload too: previews and analysed queries
        UploadJanitor(folder, args.upload_max_age_s, int(args.upload_max_gb * 1e9), period_s=period_s).start()


def forget_session(blocks, session_hash: str) -> None:
    """Drop one session of a page (``blocks``; None: no page) from Gradio's state holder, its
    component values and ``gr.State`` with it: a later event of that session starts from the page's
    defaults."""
    state_holder = getattr(blocks, "state_holder", None)
    if state_holder is None:
        return
    with state_holder.lock:
        state_holder.session_data.pop(session_hash, None)
        state_holder.time_last_used.pop(session_hash, None)


def demo_work_dir() -> Path:
    """Where the demo keeps its query cache, previews and figures."""
    return cache_dir() / "work" / "demo"


def budgeted_logging(budget: ErrorLogBudget) -> dict:
    """Put every error traceback and warning the server writes under ``budget`` (:mod:`webguard.error_log`):
    Gradio's tracebacks for failed events, the handlers' and uvicorn's logged ones, uvicorn's warnings
    for malformed requests. Returns uvicorn's logging config with the budget's filter on its handlers
    and a root handler (our own loggers)."""
    import copy

    import gradio.queueing
    import gradio.routes
    from uvicorn.config import LOGGING_CONFIG

    budget.install_in([gradio.queueing, gradio.routes])
    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"error_budget": {"()": budget.as_filter}}
    config["formatters"]["plain"] = {"format": "%(levelname)s %(name)s: %(message)s"}
    config["handlers"]["root"] = {"class": "logging.StreamHandler", "stream": "ext://sys.stderr",
                                  "formatter": "plain", "level": "WARNING"}
    config["root"] = {"handlers": ["root"], "level": "WARNING"}
    for handler in config["handlers"].values():
        handler["filters"] = ["error_budget"]
    return config


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        bundle_dir = args.bundle or default_bundle()
        server = build_server(args, bundle_dir)
    except VmnetError as exc:
        print(f"vmnet: error: {exc}", file=sys.stderr)
        return 2
    import uvicorn

    log_config = budgeted_logging(ErrorLogBudget(burst=args.log_errors_per_minute))
    where = ("the study at /study, admin at /admin" if args.study_only else "the demo only" if args.no_study
             else "study at /study, admin at /admin")
    print(f"vmnet: serving on http://{args.host}:{args.port}/ ({where})", flush=True)
    uvicorn.run(server, host=args.host, port=args.port, log_level="warning", log_config=log_config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
