"""Reading ffmpeg's messages: the stream summary of ``ffmpeg -i`` and one plain sentence per failure.

ffmpeg's raw output only goes to the ``vmnet_core.media`` debug log; users see the sentences.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from vmnet_core.media.mp4 import _looks_like_mp4

log = logging.getLogger("vmnet_core.media")


def _quoted(path: Path) -> str:
    """The file name in quotes, printable as UTF-8 (undecodable bytes become U+FFFD)."""
    name = path.name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return f"'{name}'"


_FAILURE_SENTENCES: tuple[tuple[str, str], ...] = (
    ("exceeds max_streams", "holds more than 16 streams (video, audio, subtitle and data tracks), more than "  # ffmpeg.MAX_STREAMS
                            "this program opens; keep the ones you need, e.g. one video and one audio track, and "
                            "try again"),
    ("moov atom not found", "is incomplete or not a valid MP4/MOV file (its index is missing, as when a "
                            "download or export was cut short); re-export or re-download it"),
    ("detected only with low score", "could not be read as audio or video; it may be corrupt or not a "
                                     "media file at all"),
    ("partial file", "appears truncated (its data ends before its stated length); re-export or "
                     "re-download it"),
    ("file ended prematurely", "appears truncated (its data ends before its stated length); re-export or "
                               "re-download it"),
    ("permission denied", "cannot be read (permission denied); check the file's permissions"),
    ("no such file", "does not exist; check the path"),
    ("is a directory", "is a folder, not a media file; pass a file inside it"),
    ("decoder (codec", "uses a codec this ffmpeg cannot decode; convert it to an H.264/AAC mp4 first"),
    ("invalid data found", "could not be read as audio or video; it may be corrupt or not a media "
                           "file at all"),
)


def _failure_sentence(stderr: str, path: Path, doing: str) -> str:
    """One plain sentence for an ffmpeg failure; the raw output goes to the debug log only."""
    log.debug("ffmpeg failed while %s %s:\n%s", doing, path, stderr)
    lowered = stderr.lower()
    if "moov atom not found" in lowered and not _looks_like_mp4(path):
        return (f"The file {_quoted(path)} is not a media file ffmpeg can read (its name says MP4/MOV but "
                "its contents do not); check that it is the right file or re-export it.")
    for needle, sentence in _FAILURE_SENTENCES:
        if needle in lowered:
            return f"The file {_quoted(path)} {sentence}."
    return (f"ffmpeg could not finish {doing} {_quoted(path)}; the file may be damaged, so try "
            "re-encoding it to an H.264/AAC mp4.")


def _split_top_level(text: str) -> list[str]:
    """Split ffmpeg's stream description on commas that are not inside parentheses."""
    parts, depth, current = [], 0, []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth = max(depth - 1, 0)
        if char == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    parts.append("".join(current).strip())
    return parts


_LAYOUT_CHANNELS = {"mono": 1, "stereo": 2, "downmix": 2, "2.1": 3, "3.0": 3, "3.0(back)": 3, "4.0": 4,
                    "quad": 4, "quad(side)": 4, "3.1": 4, "5.0": 5, "5.0(side)": 5, "4.1": 5, "5.1": 6,
                    "5.1(side)": 6, "6.0": 6, "6.0(front)": 6, "hexagonal": 6, "6.1": 7, "6.1(back)": 7,
                    "6.1(front)": 7, "7.0": 7, "7.0(front)": 7, "7.1": 8, "7.1(wide)": 8,
                    "7.1(wide-side)": 8, "octagonal": 8}
_STREAM_RE = re.compile(r"^\s*Stream #0:\d+\S*: (?P<kind>Video|Audio): (?P<desc>.*)$", re.M)
_INPUT_RE = re.compile(r"^Input #0, (?P<container>.+?), from '", re.M)
_DURATION_RE = re.compile(r"^\s*Duration: (?:(?P<h>\d+):(?P<m>\d+):(?P<s>\d+(?:\.\d+)?)|N/A)", re.M)
_START_RE = re.compile(r"^\s*Duration: [^\n]*?, start: (?P<start>-?\d+(?:\.\d+)?)", re.M)
_SIZE_RE = re.compile(r"^(\d{1,5})x(\d{1,5})\b")
_RATE_RE = re.compile(r"^(\d+(?:\.\d+)?)(k?) (fps|tbr)\b")


def _parse_rate(items: list[str], unit: str) -> float | None:
    for item in items:
        match = _RATE_RE.match(item)
        if match and match.group(3) == unit:
            return float(match.group(1)) * (1000.0 if match.group(2) else 1.0)
    return None


def _parse_header(stderr: str) -> dict:
    """Container, duration, start time and the first real video/audio stream from ``ffmpeg -i`` output."""
    container = _INPUT_RE.search(stderr)
    duration = _DURATION_RE.search(stderr)
    start = _START_RE.search(stderr)
    found: dict = {"container": container.group("container") if container else None, "duration_s": None,
                   "start_s": float(start.group("start")) if start else None, "video": None, "audio": None}
    if duration and duration.group("h") is not None:
        found["duration_s"] = (int(duration.group("h")) * 3600 + int(duration.group("m")) * 60
                               + float(duration.group("s")))
    for stream in _STREAM_RE.finditer(stderr):
        kind, desc = stream.group("kind").lower(), stream.group("desc")
        if found[kind] is not None or "(attached pic)" in desc or "(thumbnail)" in desc:
            continue
        items = _split_top_level(desc)
        codec = items[0].split()[0] if items and items[0] else "none"
        if kind == "video":
            size = next((m for m in map(_SIZE_RE.match, items[1:]) if m), None)
            pix_fmt = items[1].split("(")[0] if len(items) > 1 and not _SIZE_RE.match(items[1]) else None
            found["video"] = {"codec": codec, "pix_fmt": pix_fmt,
                              "width": int(size.group(1)) if size else None,
                              "height": int(size.group(2)) if size else None,
                              "fps": _parse_rate(items, "fps") or _parse_rate(items, "tbr")}
        else:
            rate = next((int(m.group(1)) for m in (re.match(r"^(\d+) Hz$", i) for i in items) if m), None)
            layout = items[2] if len(items) > 2 else ""
            channels = _LAYOUT_CHANNELS.get(layout)
            if channels is None and (m := re.match(r"^(\d+) channels", layout)):
                channels = int(m.group(1))
            found["audio"] = {"codec": codec, "sample_rate": rate, "channels": channels}
    return found


_TRUNCATION_MARKS = ("partial file", "file ended prematurely", "moov atom not found",
                     "invalid data found when processing input")
