"""CSV exports (long format, one row per vote; one row per participant), safe to open in a spreadsheet.

Any text cell starting with ``=``, ``+``, ``-``, ``@``, a tab, a carriage return or a line feed, also
after leading spaces or quotes (a spreadsheet set to trim spaces or strip quotes on import would
still read `` =1+1`` or ``"=1+1`` as a formula), or with the full-width ``＝ ＋ － ＠``, is prefixed
with ``'`` so spreadsheet programs show it as text instead of running it as a formula (OWASP CSV injection).
Numbers are written as numbers (a negative number is not text and is left alone).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from study.db import Database
from study.service import participant_rows, vote_rows
from study.vote_row import VOTE_COLUMNS
from vmnet_core.atomic_io import write_file_atomic

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")
LEADING_BLANKS_AND_QUOTES = " \u00a0\u3000\"'"  # stripped before the check above
VOTE_CSV_COLUMNS = VOTE_COLUMNS  # the fields of study.vote_row.VoteRow, in order
PARTICIPANT_CSV_COLUMNS = [
    "study", "participant", "slot", "seed", "slot_replanned_at", "joined_at", "consented_at", "finished_at", "screening",
    "completion_code", "trials", "answers", "all_url_params",
]  # followed by one url_<name> column per URL parameter most participants share


def safe_cell(value: Any) -> Any:
    """A cell value that a spreadsheet will not evaluate: risky text gets a leading ``'``."""
    if value is None:
        return ""
    if isinstance(value, bool | int | float):
        return value
    text = str(value)
    return "'" + text if text.lstrip(LEADING_BLANKS_AND_QUOTES).startswith(FORMULA_STARTS) else text


def rows_to_csv(rows: Iterable[dict[str, Any]], columns: list[str] | None = None) -> str:
    """CSV text (header + rows) with every cell passed through :func:`safe_cell`."""
    rows = list(rows)
    if columns is None:
        columns = []
        for row in rows:
            columns += [k for k in row if k not in columns]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([safe_cell(c) for c in columns])
    for row in rows:
        writer.writerow([safe_cell(row.get(c)) for c in columns])
    return buffer.getvalue()


def votes_csv(db: Database, study: str | None = None) -> str:
    """The votes CSV text (columns: ``VOTE_CSV_COLUMNS``; practice trials left out)."""
    return rows_to_csv((row.as_dict() for row in vote_rows(db, study)), VOTE_CSV_COLUMNS)


def participants_csv(db: Database, study: str | None = None) -> str:
    """The participants CSV text (never the secret tokens)."""
    rows = participant_rows(db, study)
    extra = sorted({k for row in rows for k in row if k not in PARTICIPANT_CSV_COLUMNS})
    return rows_to_csv(rows, PARTICIPANT_CSV_COLUMNS + extra)


def export_votes(db: Database, out: str | Path, study: str | None = None) -> Path:
    """Write the votes CSV to ``out``."""
    return write_file_atomic(Path(out), votes_csv(db, study))


def export_participants(db: Database, out: str | Path, study: str | None = None) -> Path:
    """Write the participants CSV to ``out``."""
    return write_file_atomic(Path(out), participants_csv(db, study))
