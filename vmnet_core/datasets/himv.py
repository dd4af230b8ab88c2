"""HIMV-200K: turn the dataset's YouTube list into a file list for ``vmnet extract``.

HIMV-200K ships ``Youtube_ID.txt`` (one watch URL per line). We never download: the user fetches
the videos themselves; this module matches their files to the list by YouTube id and reports
which ids are missing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from vmnet_core.errors import VmnetError
from vmnet_core.features.extract import VIDEO_EXTENSIONS, media_extensions

_ID = r"[A-Za-z0-9_-]{11}"
_ID_PATTERNS = (
    re.compile(rf"[?&]v=({_ID})(?![A-Za-z0-9_-])"),  # youtube.com/watch?v=ID
    re.compile(rf"youtu\.be/({_ID})(?![A-Za-z0-9_-])"),  # youtu.be/ID
    re.compile(rf"/(?:embed|shorts|v|live)/({_ID})(?![A-Za-z0-9_-])"),  # youtube.com/embed/ID …
    re.compile(rf"^({_ID})$"),  # a bare id
)
# yt-dlp's default output name is "Title [ID].ext"
_BRACKETED_ID = re.compile(rf"\[({_ID})\]$")


@dataclass
class HimvMatch:
    """Result of matching a YouTube list against a media folder."""

    ids: list[str]  # unique ids in list order
    found: dict[str, Path]  # id → media file
    missing: list[str]  # ids with no file, in list order
    unparsed: list[str] = field(default_factory=list)  # list lines that hold no YouTube id


def youtube_id(line: str) -> str | None:
    """The 11-character YouTube id in a watch URL, youtu.be link, embed link or bare id; else None."""
    text = line.strip()
    for pattern in _ID_PATTERNS:
        match = pattern.search(text)
        if match:
            return match.group(1)
    return None


def parse_youtube_list(lines: Iterable[str]) -> tuple[list[str], list[str]]:
    """(unique ids in order, lines that hold no id) from a HIMV-style list; blanks and ``#`` lines skipped."""
    ids: dict[str, None] = {}
    unparsed = []
    for line in lines:
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        found = youtube_id(text)
        if found is None:
            unparsed.append(text)
        else:
            ids.setdefault(found, None)
    return list(ids), unparsed


def index_media(media_dir: str | Path) -> dict[str, Path]:
    """Media files under ``media_dir`` by YouTube id (file stem ``ID`` or yt-dlp's ``Title [ID]``).

    When one id has several files, a video beats an audio file, then the first in sorted order.
    """
    media_dir = Path(media_dir)
    if not media_dir.is_dir():
        raise VmnetError(f"The media folder {media_dir} does not exist.")
    extensions = media_extensions("music")
    rank = {ext: i for i, ext in enumerate(extensions)}
    index: dict[str, Path] = {}
    for path in sorted(media_dir.rglob("*")):
        suffix = path.suffix.lower()
        if suffix not in rank or path.name.startswith(".") or not path.is_file():
            continue
        bracketed = _BRACKETED_ID.search(path.stem)
        key = bracketed.group(1) if bracketed else path.stem
        current = index.get(key)
        if current is None or _is_better(suffix, current.suffix.lower()):
            index[key] = path
    return index


def _is_better(suffix: str, current: str) -> bool:
    return suffix in VIDEO_EXTENSIONS and current not in VIDEO_EXTENSIONS


def match_himv(ids_file: str | Path, media_dir: str | Path) -> HimvMatch:
    """Match the ids of a HIMV ``Youtube_ID.txt`` against the files in ``media_dir``."""
    ids_file = Path(ids_file)
    if not ids_file.is_file():
        raise VmnetError(f"The id list {ids_file} does not exist.")
    ids, unparsed = parse_youtube_list(ids_file.read_text(encoding="utf-8-sig", errors="replace").splitlines())
    if not ids:
        raise VmnetError(f"{ids_file} holds no YouTube ids or watch URLs.")
    index = index_media(media_dir)
    found = {i: index[i] for i in ids if i in index}
    return HimvMatch(ids=ids, found=found, missing=[i for i in ids if i not in found], unparsed=unparsed)


def write_extract_list(match: HimvMatch, out_list: str | Path, missing_file: str | Path | None = None) -> Path:
    """Write ``ID<TAB>absolute path`` lines for ``vmnet extract --input``; missing ids to ``missing_file``."""
    out_list = Path(out_list)
    out_list.parent.mkdir(parents=True, exist_ok=True)
    out_list.write_text("".join(f"{i}\t{p.absolute()}\n" for i, p in match.found.items()), encoding="utf-8")
    if missing_file is not None:
        Path(missing_file).write_text("".join(f"{i}\n" for i in match.missing), encoding="utf-8")
    return out_list
