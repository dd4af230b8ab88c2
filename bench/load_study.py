"""The study under load and faults: simulated raters (gradio_client, one process each) against
study-only app processes (``bench/serve_study.py``), with figures printed at the end.

Scenarios (all by default; pick with ``--scenarios``):

* ``sqlite``   — N raters at once, each finishing a T-trial session, one app process on SQLite;
* ``postgres`` — the same against two app processes sharing one PostgreSQL database (raters split
  across the two ports; needs the PostgreSQL binaries, see ``vmnet_testkit/pg_server.py``);
* ``crash``    — SQLite, one app process; ``kill -9`` once half the votes are in, restart on the
  same port and database; raters retry with backoff and resume from their token;
* ``lock``     — another connection holds an exclusive SQLite transaction longer than the server's
  busy timeout during a vote: the rater gets "saving failed, try again", the retry stores it once;
* ``pg-outage`` — the ``postgres`` setup on a cluster of its own; once a third of the votes are in,
  the PostgreSQL server is stopped (``pg_ctl stop -m fast``) for ``--outage-s`` seconds and started
  again on the same data folder and socket. Raters get "try again" answers meanwhile and retry;
  the same two app processes (never restarted) serve on once the server is back;
* ``pg-long-outage`` — like ``pg-outage`` but down longer than the raters keep retrying (``--give-up-s``,
  10 s here; at least 30 s down): raters give up, and once the server is back each comes back with
  its token (as a reload of the page does) and finishes where the server says (not run by default).

Every scenario checks that the acknowledged votes are exactly the stored ones (no loss, no
duplicates), one participant per rater (joins retried after a time-out reuse the rater's join
key), and that each rater resumed at its next unanswered trial.

Latency is split three ways: the client's vote round trip; the server's own handler time (each
app process logs "<endpoint> <ms>" per API call, ``bench/serve_study.py --timing-log``); and the
CPU seconds the app processes and the rater processes used against the machine's capacity
(cores x wall time), which shows whether the raters starve the server of CPU.

Pacing: by default raters vote as fast as they can (the worst case). ``--think-s 1-3`` makes each
rater wait a uniform 1-3 s between receiving a trial and voting, standing in for watching a clip
with two soundtracks (real raters take far longer: every clip is played twice).

    python bench/load_study.py                          # 50 raters x 20 trials, no think time
    python bench/load_study.py --scenarios sqlite --think-s 1-3
    python bench/load_study.py --raters 4 --trials 6    # a quick smoke run

The servers, raters, checks and scenarios live in ``vmnet_testkit/study_load/`` (shared with
``tests/test_study_faults.py``); this file is the command line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from vmnet_testkit.study_helpers import premux_clips
from vmnet_testkit.study_load.raters import RaterOptions
from vmnet_testkit.study_load.scenarios import (
    scenario_crash,
    scenario_load,
    scenario_lock,
    scenario_pg_long_outage,
    scenario_pg_outage,
    scenario_postgres,
    with_postgres,
)
from vmnet_testkit.study_load.votes import clips_needed


def _think_range(text: str) -> tuple[float, float]:
    """``"1-3"`` -> (1.0, 3.0); one number means a fixed wait."""
    try:
        low, _, high = text.partition("-")
        pair = (float(low), float(high or low))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--think-s takes LOW-HIGH seconds such as 1-3, not {text!r}") from None
    if not 0 <= pair[0] <= pair[1]:
        raise argparse.ArgumentTypeError(f"--think-s needs 0 <= LOW <= HIGH, not {text!r}")
    return pair



def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The study under load and faults (see the module docstring).")
    parser.add_argument("--raters", type=int, default=50)
    parser.add_argument("--trials", type=int, default=20, help="trials per session (at least 4)")
    parser.add_argument("--scenarios", default="sqlite,postgres,crash,lock,pg-outage")
    parser.add_argument("--outage-s", type=float, default=5.0,
                        help="pg-outage: seconds PostgreSQL stays down (pg-long-outage: at least 3 x --give-up-s)")
    parser.add_argument("--give-up-s", type=float, default=None,
                        help="seconds a rater retries one call before giving up (default 240; pg-long-outage: 10)")
    parser.add_argument("--work-dir", type=Path, default=None, help="default: a temporary folder")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--think-s", type=_think_range, default=None, metavar="LOW-HIGH",
                        help="wait uniform(LOW, HIGH) seconds before each vote, e.g. 1-3 (default: none, the worst case)")
    parser.add_argument("--ssl-verify", action="store_true",
                        help="leave gradio_client's certificate check on (its default; costs ~0.1 s client CPU per call)")
    args = parser.parse_args(argv)


    work = args.work_dir or Path(tempfile.mkdtemp(prefix="vmnet-load-study-"))
    work.mkdir(parents=True, exist_ok=True)
    premuxed = premux_clips(work / "clips", n=clips_needed(args.trials))
    options = RaterOptions(args.think_s, args.ssl_verify, give_up_s=args.give_up_s or 240.0)
    figures = {"cpus": os.cpu_count(), "raters": args.raters, "trials": args.trials, "think_s": args.think_s,
               "client_ssl_verify": args.ssl_verify}
    for name in args.scenarios.split(","):
        folder = work / name
        folder.mkdir()
        print(f"--- {name}: {args.raters} raters x {args.trials} trials", flush=True)
        if name == "sqlite":
            out = scenario_load(f"sqlite:///{folder / 'study.db'}", folder, premuxed, args.raters, args.trials, 1,
                                options)
        elif name == "postgres":
            out = with_postgres(False, scenario_postgres, folder, premuxed, args.raters, args.trials, options)
        elif name == "crash":
            out = scenario_crash(f"sqlite:///{folder / 'study.db'}", folder, premuxed, args.raters, args.trials,
                                 options=options)
        elif name == "lock":
            out = scenario_lock(f"sqlite:///{folder / 'study.db'}", folder, premuxed)
        elif name == "pg-long-outage":
            long_options = RaterOptions(args.think_s, args.ssl_verify, give_up_s=args.give_up_s or 10.0)
            out = with_postgres(True, scenario_pg_long_outage, folder, premuxed, args.raters, args.trials,
                                 max(args.outage_s, 3 * long_options.give_up_s), long_options)
        elif name == "pg-outage":  # its own cluster: stopping it spares ``postgres``
            out = with_postgres(True, scenario_pg_outage, folder, premuxed, args.raters, args.trials, args.outage_s,
                                 options)
        else:
            raise SystemExit(f"unknown scenario {name!r}")
        figures[name] = out
        print(json.dumps(out, indent=1, default=str), flush=True)
    figures["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1, default=str))
    ok = all(figures[n].get("ok") for n in args.scenarios.split(","))
    print("ALL OK" if ok else "PROBLEMS FOUND", flush=True)
    return 0 if ok else 1



if __name__ == "__main__":
    sys.exit(main())
