"""What a rater's request may carry, checked and bounded before anything reaches the database.

Raters (and scripts posing as raters) send any JSON: the checks here turn each value into the type
and range the database stores, or raise ``ValueError`` with a sentence the rater can act on
(``study.service`` turns it into a refusal). URL parameters are kept, not refused: a join link
with too many of them keeps the first ``MAX_URL_PARAMS``.
"""

from __future__ import annotations

import math
import unicodedata
from collections import Counter
from collections.abc import Mapping
from itertools import islice
from typing import Any

MAX_URL_PARAMS = 16  # URL parameters kept per participant (crowd platforms send 3-4)
MAX_URL_PARAM_NAME = 100  # characters kept of a parameter's name ...
MAX_URL_PARAM_VALUE = 500  # ... and of its value
UNSHOWN_CATEGORIES = ("Cs", "Cc", "Cf")  # surrogates, controls, format characters (Unicode categories)
MAX_RESPONSE_MS = 24 * 3600 * 1000  # a response time above a day (in ms) is not a response time
MAX_ID = 2**63 - 1  # the largest row id a database stores
URL_PARAMS_TEXT = ("The URL parameters must be names with values, such as {\"PROLIFIC_PID\": \"...\"}, "
                   "or left empty.")
RESPONSE_MS_TEXT = (f"The response time must be a number of milliseconds from 0 to {MAX_RESPONSE_MS:,} "
                    "(one day), or left empty.")
STRENGTH_TEXT = "The strength must be a whole number from 1 to 5, or left empty."
TRIAL_ID_TEXT = "This trial is not part of your session; please reload the page."


def url_params(value: Any) -> dict[str, str]:
    """The URL parameters stored with a participant: the first ``MAX_URL_PARAMS`` names in the
    order given (the rest dropped), names and values as text cut to 100 and 500 characters; empty
    for None or an empty value. Anything but names with values raises ``ValueError``."""
    if value is None or (not isinstance(value, Mapping) and not value):
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(URL_PARAMS_TEXT)
    kept: dict[str, str] = {}
    for name, text in value.items():
        if len(kept) == MAX_URL_PARAMS:
            break
        kept.setdefault(plain_text(str(name)[:MAX_URL_PARAM_NAME]), plain_text(str(text)[:MAX_URL_PARAM_VALUE]))
    return kept


def plain_text(text: str) -> str:
    """``text`` with every character a database or a UTF-8 file cannot hold, or a spreadsheet would
    act on unseen (lone surrogates, control characters such as NUL or a line break, format
    characters such as a right-to-left override), replaced by U+FFFD."""
    return "".join("\ufffd" if unicodedata.category(ch) in UNSHOWN_CATEGORIES else ch for ch in text)


def stored_url_params(value: Any) -> dict[str, str]:
    """The first ``MAX_URL_PARAMS`` of a participant's stored URL parameters (rows stored before
    the limit may hold more) as :func:`plain_text` (rows stored before it may hold anything);
    empty for anything but a mapping."""
    if not isinstance(value, Mapping):
        return {}
    return {plain_text(str(name)): plain_text(str(text)) for name, text in islice(value.items(), MAX_URL_PARAMS)}


def common_url_param_names(stored: list[Mapping[str, Any]], answered: list[bool] | None = None) -> list[str]:
    """The ``MAX_URL_PARAMS`` parameter names the most participants carry, sorted: the export's
    ``url_*`` columns. Each join keeps 16 names, but junk names differ from join to join; only names
    many raters share (a crowd platform's) become columns. Names are ranked by how many participants
    who answered a trial carry them (``answered``, one flag per ``stored``), then by how many carry
    them at all, then by name: joins that never answer cannot push a platform's name out."""
    answered = answered if answered is not None else [False] * len(stored)
    voters = Counter(name for params, voted in zip(stored, answered, strict=True) if voted for name in params)
    everyone = Counter(name for params in stored for name in params)
    ranked = sorted(everyone, key=lambda name: (-voters[name], -everyone[name], name))
    return sorted(ranked[:MAX_URL_PARAMS])


def response_ms(value: Any) -> int | None:
    """A response time in whole milliseconds (None when not sent), from 0 to ``MAX_RESPONSE_MS``."""
    if value is None:
        return None
    if not _real(value) or not 0 <= value <= MAX_RESPONSE_MS:
        raise ValueError(RESPONSE_MS_TEXT)
    return round(value)


def strength(value: Any) -> int | None:
    """A strength from 1 to 5 (None when not sent); only whole numbers."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
        raise ValueError(STRENGTH_TEXT)
    return value


def trial_id(value: Any) -> int:
    """A trial id: a whole number from 1 to ``MAX_ID``, given as a number or as digits."""
    digits = value.strip() if isinstance(value, str) else ""
    if digits.isascii() and digits.isdigit() and len(digits) <= 19:
        value = int(digits)
    if not _real(value) or value != int(value) or not 1 <= value <= MAX_ID:
        raise ValueError(TRIAL_ID_TEXT)
    return int(value)


def flag(value: Any, what: str) -> bool:
    """A yes/no field (None counts as no): ``true``/``false`` or 1/0; ``what`` names it in the sentence."""
    if value is None:
        return False
    if isinstance(value, bool) or (isinstance(value, int) and value in (0, 1)):
        return bool(value)
    raise ValueError(f"Whether {what} must be true or false, or left empty.")


def _real(value: Any) -> bool:
    """True for a finite int or float (not a bool)."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))
