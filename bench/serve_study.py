"""Serve only the study pages (``/study`` for raters, ``/admin``) of a database that already holds
a study, on one port: the app process that ``bench/load_study.py`` starts, kills and restarts.

    python bench/serve_study.py --db sqlite:///study.db --port 7870 --work-dir /tmp/work
"""

from __future__ import annotations

import argparse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> None:
    """Parse the flags, mount the study with ``study.pages.mount_study`` and serve until killed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="SQLAlchemy URL of a database holding a study")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--work-dir", type=Path, required=True)
    parser.add_argument("--admin-password", default="load-study-admin")
    parser.add_argument("--busy-timeout-ms", type=int, default=None,
                        help="SQLite busy timeout of the server's connections (default: study.db's 30 s)")
    parser.add_argument("--timing-log", type=Path, default=None,
                        help="append one line per API call, '<endpoint> <handler ms>', to this file")
    args = parser.parse_args(argv)

    if args.timing_log is not None:
        import logging

        handler = logging.FileHandler(args.timing_log)
        handler.setFormatter(logging.Formatter("%(message)s"))
        timing = logging.getLogger("study.timing")
        timing.addHandler(handler)
        timing.setLevel(logging.INFO)
        timing.propagate = False

    import uvicorn
    from fastapi import FastAPI

    from study.pages import mount_study

    app = FastAPI()
    args.work_dir.mkdir(parents=True, exist_ok=True)
    mount_study(app, args.db, args.work_dir / "no-bundle", args.work_dir, args.admin_password,
                busy_timeout_ms=args.busy_timeout_ms)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
