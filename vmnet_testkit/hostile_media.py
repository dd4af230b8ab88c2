"""A corpus of bad and hostile uploads for the query path (issue 7), made with the real ffmpeg.

Every upload is a real file (or link, or folder) written into one directory, and each comes with
the query it is fed to and what must happen: a clear one-sentence error or a correct answer.

- :func:`generate_hostile_corpus` writes the uploads and returns the cases.
- :func:`hostile_cases` lists the cases of an already written directory (nothing is written).
- :func:`run_hostile_queries` pushes every case through ``vmnet_core.bundle.retrieval.Retriever``, the
  path the demo uses, and records the outcome, the message and the peak memory after each query
  (and, with :class:`TreeMemorySampler`, the largest ffmpeg child).

As a script (the test runs it in a subprocess so the memory figures are its own)::

    python -m vmnet_testkit.hostile_media generate DIR
    python -m vmnet_testkit.hostile_media query --bundle BUNDLE --media DIR [--out report.json]

Some file names are not valid UTF-8; they live in :class:`pathlib.Path` objects as surrogate
escapes (``os.fsdecode``), so never print a case's path without :func:`display_name`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vmnet_core.bundle.retrieval import DEFAULT_MAX_QUERY_DURATION_S
from vmnet_core.media import ffmpeg_exe
from vmnet_testkit.mediagen import make_audio, make_image, make_video

QUERY_SIDES = ("video", "music")
"""``video``: ``Retriever.music_for_video`` (the upload is a video); ``music``: ``videos_for_music``."""
EXPECTATIONS = ("error", "answer")
TOP_K = 5
SOURCES_DIR = "sources"
"""Sub-folder of the corpus holding the good files that copies and links are made from."""


@dataclass(frozen=True)
class HostileCase:
    """One upload fed to one query.

    Attributes
    ----------
    name : short ASCII label (test id, report key)
    path : the upload (a file, a link or a folder; the name may hold non-UTF-8 bytes)
    query : "video" (music for this video) or "music" (videos for this music)
    expect : "error" (a VmnetError with one clear sentence) or "answer" (``TOP_K`` hits)
    says : for errors, words of which at least one must appear in the message (lower case)
    max_duration_s : the video query's length limit in seconds (None: no limit)
    same_as : for answers, the case whose hits must be identical (same content, other name)
    slow : takes a minute or more on a busy 2-core machine (run by the bench, not the tests)
    what : what the upload is, in words
    """

    name: str
    path: Path
    query: str
    expect: str
    says: tuple[str, ...] = ()
    max_duration_s: float | None = DEFAULT_MAX_QUERY_DURATION_S
    same_as: str | None = None
    slow: bool = False
    what: str = ""


def display_name(path: Path) -> str:
    """The file name as a person may read it: non-UTF-8 bytes shown as U+FFFD."""
    return os.fsencode(path.name).decode("utf-8", errors="replace")


def name_forms(path: Path) -> tuple[str, ...]:
    """Readable renderings of a file name an error message may use to name it."""
    raw = os.fsencode(path.name)
    forms = {raw.decode("utf-8", errors="replace"), raw.decode("utf-8", errors="backslashreplace"),
             raw.decode("latin-1"), repr(raw)[2:-1]}
    return tuple(sorted(forms))


# ------------------------------------------------------------------------------------------------
# ffmpeg helpers and builders


def _ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-nostdin", "-y", "-v", "error", *args], check=True,
                   stdin=subprocess.DEVNULL, timeout=300)


def _good_video(sources: Path) -> Path:
    """2 s, 64×48, 10 fps, with a tone: the content every renamed copy and link points at."""
    path = sources / "good.mp4"
    if not path.exists():
        make_video(path, seconds=2.0, size=(64, 48), fps=10, audio=True, seed=3)
    return path


def _longer_video(sources: Path) -> Path:
    """4 s, 160×120 with sound: the source of the truncated and header-only files."""
    path = sources / "longer.mp4"
    if not path.exists():
        make_video(path, seconds=4.0, size=(160, 120), fps=10, audio=True, seed=4)
    return path


def _copy_of_good(path: Path, sources: Path) -> None:
    shutil.copyfile(_good_video(sources), path)


def _empty(path: Path, sources: Path) -> None:
    path.write_bytes(b"")


def _random_bytes(path: Path, sources: Path) -> None:
    path.write_bytes(np.random.default_rng(7).bytes(256 * 1024))


def _text(path: Path, sources: Path) -> None:
    path.write_text("This is a plain text file, not a video.\n" * 200, encoding="utf-8")


def _truncated(path: Path, sources: Path) -> None:
    data = _longer_video(sources).read_bytes()
    path.write_bytes(data[: int(len(data) * 0.6)])


def _header_only(path: Path, sources: Path) -> None:
    """The ftyp box and the first 64 bytes of the moov box (the file is written with faststart)."""
    data = _longer_video(sources).read_bytes()
    moov = data.find(b"moov")
    if moov < 4:
        raise RuntimeError("the source mp4 has no moov box near its start")
    path.write_bytes(data[: moov - 4 + 64])


def _audio_only(path: Path, sources: Path) -> None:
    """AAC audio in an MP4 container, named like a video."""
    m4a = sources / "audio_only.m4a"
    make_audio(m4a, seconds=4.0, freq=330.0, seed=5)
    shutil.copyfile(m4a, path)


def _video_without_audio(path: Path, sources: Path) -> None:
    make_video(path, seconds=3.0, size=(64, 48), fps=10, audio=False, seed=6)


def _silent_audio(path: Path, sources: Path) -> None:
    _ffmpeg("-f", "lavfi", "-i", "anullsrc=r=22050:cl=mono", "-t", "5", "-c:a", "pcm_s16le", f"file:{path}")


def _zero_length_video_stream(path: Path, sources: Path) -> None:
    """Matroska with a 3-s audio stream and a declared video stream that holds no packet."""
    _ffmpeg("-f", "lavfi", "-i", "sine=d=3", "-f", "lavfi", "-i", "color=c=red:s=64x64:r=10:d=3",
            "-map", "0:a", "-map", "1:v", "-vf", "trim=start=100", "-c:v", "libx264", "-c:a", "aac",
            "-f", "matroska", f"file:{path}")


def _no_streams(path: Path, sources: Path) -> None:
    """An MP4 with a header and no track at all (what ffmpeg writes for zero frames)."""
    _ffmpeg("-f", "lavfi", "-i", "color=c=red:s=64x64:r=10", "-frames:v", "0", "-c:v", "libx264",
            "-f", "mp4", f"file:{path}")


def _eight_k(path: Path, sources: Path) -> None:
    """7680×4320, one frame of one second, with sound (about 100 kB)."""
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=s=7680x4320:r=1:d=1", "-f", "lavfi", "-i", "sine=f=440:d=1",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest",
            "-f", "mp4", f"file:{path}")


def _two_hours(path: Path, sources: Path) -> None:
    """About 2 h (7200 s) of 16×16 1-fps video with an 8-kHz tone: one minute encoded, then looped
    120 times by stream copy (about 12 MB, a few seconds to make)."""
    minute = sources / "one_minute.mp4"
    _ffmpeg("-f", "lavfi", "-i", "color=c=blue:s=16x16:r=1:d=60", "-f", "lavfi", "-i", "sine=f=440:r=8000:d=60",
            "-c:v", "libx264", "-preset", "ultrafast", "-g", "60", "-c:a", "aac", "-b:a", "16k", "-ac", "1",
            "-shortest", "-f", "mp4", f"file:{minute}")
    _ffmpeg("-stream_loop", "119", "-i", f"file:{minute}", "-c", "copy", "-movflags", "+faststart",
            "-f", "mp4", f"file:{path}")


def _thousand_fps(path: Path, sources: Path) -> None:
    """One second at 1000 frames per second."""
    _ffmpeg("-f", "lavfi", "-i", "testsrc=s=64x64:r=1000:d=1", "-c:v", "libx264", "-preset", "ultrafast",
            "-pix_fmt", "yuv420p", "-f", "mp4", f"file:{path}")


def _one_per_1000_s(path: Path, sources: Path) -> None:
    """One frame at 1/1000 fps: a 1000-s video holding a single picture."""
    _ffmpeg("-f", "lavfi", "-i", "color=c=red:s=64x64:r=1/1000", "-frames:v", "1", "-c:v", "libx264",
            "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-f", "mp4", f"file:{path}")


def _one_per_10_s(path: Path, sources: Path) -> None:
    """Two frames at 1/10 fps: a 20-s video of two pictures."""
    _ffmpeg("-f", "lavfi", "-i", "testsrc=s=64x64:r=1/10", "-frames:v", "2", "-c:v", "libx264",
            "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-f", "mp4", f"file:{path}")


def _dimension_lie(path: Path, sources: Path) -> None:
    """The good video with its track header and sample description claiming 65535×65535 pixels."""
    data = bytearray(_good_video(sources).read_bytes())
    tkhd = data.find(b"tkhd")
    if tkhd < 0 or data[tkhd + 4] != 0:
        raise RuntimeError("expected a version-0 tkhd box")
    size_at = tkhd + 4 + 4 + 4 * 5 + 8 + 2 * 4 + 36  # version/flags, times/ids/duration, reserved, ..., matrix
    data[size_at:size_at + 8] = (65535 << 16).to_bytes(4, "big") * 2  # 16.16 fixed point
    stsd = data.find(b"stsd")
    avc1 = data.find(b"avc1", stsd)
    if stsd < 0 or avc1 < 0:
        raise RuntimeError("expected an avc1 sample entry")
    dims_at = avc1 + 4 + 6 + 2 + 16  # reserved, data reference index, pre-defined/reserved
    data[dims_at:dims_at + 4] = (65535).to_bytes(2, "big") * 2
    path.write_bytes(bytes(data))


def _huge_header_lie(path: Path, sources: Path) -> None:
    """A Y4M header announcing 16000×16000 frames (384 MB each) followed by 1 kB of data."""
    path.write_bytes(b"YUV4MPEG2 W16000 H16000 F1:1 Ip A1:1 C420jpeg\nFRAME\n" + b"\x80" * 1024)


def _still_image(path: Path, sources: Path) -> None:
    make_image(path, size=(64, 64))


def _video_named_mp3(path: Path, sources: Path) -> None:
    _copy_of_good(path, sources)


def _symlink_to_good(path: Path, sources: Path) -> None:
    os.symlink(_good_video(sources), path)


def _dangling_symlink(path: Path, sources: Path) -> None:
    os.symlink(sources / "was-deleted.mp4", path)


def _folder(path: Path, sources: Path) -> None:
    path.mkdir()
    _copy_of_good(path / "inside.mp4", sources)


def _truncated_non_utf8(path: Path, sources: Path) -> None:
    _truncated(path, sources)


Builder = Callable[[Path, Path], None]

# (upload label, file name (bytes: may be non-UTF-8), builder)
_UPLOADS: tuple[tuple[str, str | bytes, Builder], ...] = (
    ("good", "good_control.mp4", _copy_of_good),
    ("empty", "empty.mp4", _empty),
    ("random_bytes", "random_bytes.mp4", _random_bytes),
    ("text_as_mp4", "notes.txt.mp4", _text),
    ("truncated", "truncated.mp4", _truncated),
    ("header_only", "header_only.mp4", _header_only),
    ("audio_only", "audio_only_named_as_video.mp4", _audio_only),
    ("no_audio", "video_without_audio.mp4", _video_without_audio),
    ("silent", "silence.wav", _silent_audio),
    ("zero_video_stream", "zero_length_video_stream.mkv", _zero_length_video_stream),
    ("no_streams", "no_streams.mp4", _no_streams),
    ("8k", "eight_k_7680x4320.mp4", _eight_k),
    ("two_hours", "two_hours.mp4", _two_hours),
    ("fps_1000", "fps_1000.mp4", _thousand_fps),
    ("fps_1_per_1000s", "fps_one_per_1000s.mp4", _one_per_1000_s),
    ("fps_1_per_10s", "fps_one_per_10s.mp4", _one_per_10_s),
    ("dimension_lie", "dimension_lie_65535.mp4", _dimension_lie),
    ("huge_header_lie", "huge_header_lie.y4m", _huge_header_lie),
    ("still_image", "still_image.mp4", _still_image),
    ("video_as_mp3", "actually_a_video.mp3", _video_named_mp3),
    ("quotes", "quotes \"double\" 'single'; semi;colon & spaces $(id) `x`.mp4", _copy_of_good),
    ("unicode", "vidéo 音楽 🎵 ünïcødé.mp4", _copy_of_good),
    ("non_utf8", b"bad-\xff\xfe-bytes.mp4", _copy_of_good),
    ("backslashes", "..\\..\\windows\\system32\\evil.mp4", _copy_of_good),
    ("dash_leading", "-i evil.mp4", _copy_of_good),
    ("protocol_like", "concat:a.mp4|http:x.mp4", _copy_of_good),
    ("newline", "line\nbreak.mp4", _copy_of_good),
    ("long_name", "n" * 240 + ".mp4", _copy_of_good),
    ("symlink", "symlink_to_good.mp4", _symlink_to_good),
    ("dangling_symlink", "dangling_symlink.mp4", _dangling_symlink),
    ("folder", "not_a_file.mp4", _folder),
    ("truncated_non_utf8", b"cut-\xff-short.mp4", _truncated_non_utf8),
)

_NOT_MEDIA = ("not a media file", "could not be read", "corrupt", "damaged")
_TRUNCATED = ("truncated", "incomplete", "damaged")
_TOO_LONG = ("limit", "too long", "longer")
# (case name, upload label, query, expect, says, max_duration_s or "default", same_as[, "slow"])
_QUERIES: tuple[tuple, ...] = (
    ("good_video", "good", "video", "answer", (), "default", None),
    ("good_music", "good", "music", "answer", (), "default", None),
    ("empty_video", "empty", "video", "error", ("empty", "0 bytes"), "default", None),
    ("empty_music", "empty", "music", "error", ("empty", "0 bytes"), "default", None),
    ("random_bytes_video", "random_bytes", "video", "error", _NOT_MEDIA, "default", None),
    ("random_bytes_music", "random_bytes", "music", "error", _NOT_MEDIA, "default", None),
    ("text_as_mp4_video", "text_as_mp4", "video", "error", _NOT_MEDIA, "default", None),
    ("truncated_video", "truncated", "video", "error", _TRUNCATED, "default", None),
    ("truncated_music", "truncated", "music", "error", _TRUNCATED, "default", None),
    ("header_only_video", "header_only", "video", "error", _TRUNCATED, "default", None),
    ("audio_only_as_video", "audio_only", "video", "error", ("no video",), "default", None),
    ("audio_only_as_music", "audio_only", "music", "answer", (), "default", None),
    ("no_audio_as_music", "no_audio", "music", "error", ("no audio",), "default", None),
    ("no_audio_as_video", "no_audio", "video", "answer", (), "default", None),
    ("silence_as_music", "silent", "music", "answer", (), "default", None),
    ("zero_length_video_stream", "zero_video_stream", "video", "error", (*_NOT_MEDIA, "no video", "frame"),
     "default", None),
    ("zero_length_video_stream_music", "zero_video_stream", "music", "answer", (), "default", None),
    ("no_streams_video", "no_streams", "video", "error", ("no audio or video", "stream"), "default", None),
    ("8k_video", "8k", "video", "answer", (), "default", None),
    ("two_hours_video", "two_hours", "video", "error", _TOO_LONG, "default", None),
    ("two_hours_video_unlimited", "two_hours", "video", "answer", (), None, None, "slow"),  # 360 frames
    ("two_hours_music", "two_hours", "music", "answer", (), "default", None),
    ("fps_1000_video", "fps_1000", "video", "answer", (), "default", None),
    ("fps_1_per_1000s_video", "fps_1_per_1000s", "video", "error", _TOO_LONG, "default", None),
    ("fps_1_per_10s_video", "fps_1_per_10s", "video", "answer", (), "default", None),
    ("dimension_lie_video", "dimension_lie", "video", "answer", (), "default", None),
    ("huge_header_lie_video", "huge_header_lie", "video", "error", (*_NOT_MEDIA, "zero duration", "no audio or video"),
     "default", None),
    ("still_image_video", "still_image", "video", "error", ("still image", "not a video"), "default", None),
    ("video_as_mp3_music", "video_as_mp3", "music", "answer", (), "default", "good_music"),
    ("quotes_video", "quotes", "video", "answer", (), "default", "good_video"),
    ("unicode_video", "unicode", "video", "answer", (), "default", "good_video"),
    ("non_utf8_video", "non_utf8", "video", "answer", (), "default", "good_video"),
    ("non_utf8_music", "non_utf8", "music", "answer", (), "default", "good_music"),
    ("backslashes_video", "backslashes", "video", "answer", (), "default", "good_video"),
    ("dash_leading_video", "dash_leading", "video", "answer", (), "default", "good_video"),
    ("protocol_like_video", "protocol_like", "video", "answer", (), "default", "good_video"),
    ("newline_video", "newline", "video", "answer", (), "default", "good_video"),
    ("long_name_music", "long_name", "music", "answer", (), "default", "good_music"),
    ("symlink_video", "symlink", "video", "answer", (), "default", "good_video"),
    ("dangling_symlink_video", "dangling_symlink", "video", "error", ("does not exist", "not exist", "missing"),
     "default", None),
    ("folder_video", "folder", "video", "error", ("folder", "directory"), "default", None),
    ("truncated_non_utf8_video", "truncated_non_utf8", "video", "error", _TRUNCATED, "default", None),
)


def _upload_path(out_dir: Path, file_name: str | bytes) -> Path:
    return Path(out_dir) / (os.fsdecode(file_name) if isinstance(file_name, bytes) else file_name)


def hostile_cases(out_dir: str | Path) -> list[HostileCase]:
    """The cases of a corpus written by :func:`generate_hostile_corpus` into ``out_dir`` (nothing is written)."""
    uploads = {label: (_upload_path(Path(out_dir), name), builder) for label, name, builder in _UPLOADS}
    cases = []
    for name, label, query, expect, says, max_duration, same_as, *flags in _QUERIES:
        path, builder = uploads[label]
        cases.append(HostileCase(
            name=name, path=path, query=query, expect=expect, says=tuple(says),
            max_duration_s=DEFAULT_MAX_QUERY_DURATION_S if max_duration == "default" else max_duration,
            same_as=same_as, slow="slow" in flags, what=(builder.__doc__ or builder.__name__.strip("_").replace("_", " ")).strip()))
    return cases


def generate_hostile_corpus(out_dir: str | Path) -> list[HostileCase]:
    """Write every upload into ``out_dir`` (good sources in ``out_dir/sources``); return the cases.

    Takes a few seconds: the 2-hour file is one encoded minute looped by stream copy, the 8K file
    one frame.
    """
    out_dir = Path(out_dir)
    sources = out_dir / SOURCES_DIR
    sources.mkdir(parents=True, exist_ok=True)
    for _label, file_name, builder in _UPLOADS:
        path = _upload_path(out_dir, file_name)
        if os.path.lexists(path):
            continue
        builder(path, sources)
    return hostile_cases(out_dir)


# ------------------------------------------------------------------------------------------------
# running the queries


def _status_mb(pid: int | str, field_name: str) -> float:
    """A memory line of /proc/PID/status in MB (VmRSS: now, VmHWM: peak of this program since it
    started; unlike ``ru_maxrss``, VmHWM does not inherit the parent's size at fork/exec)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1]) * 1024 / 1e6
    except OSError:
        pass
    return 0.0


def rss_mb(pid: int | str = "self") -> float:
    """Resident memory of a process now, MB."""
    return _status_mb(pid, "VmRSS")


def peak_rss_mb(pid: int | str = "self") -> float:
    """Peak resident memory of a process since its program started, MB (Linux)."""
    peak = _status_mb(pid, "VmHWM")
    if peak == 0.0 and pid == "self":  # no /proc: fall back to getrusage (KiB on Linux, bytes on macOS)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1.0 if sys.platform == "darwin" else 1024.0) / 1e6
    return peak


def _descendants(pid: int) -> list[int]:
    found, stack = [], [pid]
    while stack:
        parent = stack.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{parent}/task/{tid}/children", encoding="ascii") as handle:
                    kids = [int(k) for k in handle.read().split()]
            except OSError:
                continue
            found += kids
            stack += kids
    return found


def _exe(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return ""


def _command_name(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as handle:
            return handle.read().strip()
    except OSError:
        return "?"


class TreeMemorySampler(threading.Thread):
    """Samples every ``every_s`` the RSS of process ``pid`` and of its descendants (ffmpeg).

    Keeps the largest sum seen (``peak_tree_mb``) and the largest single descendant
    (``peak_child``: MB, command name). A descendant still running the root's own program is a
    fork about to exec ffmpeg whose pages are the parent's; it is not counted.
    """

    def __init__(self, pid: int, every_s: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.pid, self.every_s = pid, every_s
        self.root_exe = _exe(pid)
        self.peak_tree_mb = 0.0
        self.peak_child: tuple[float, str] = (0.0, "")
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            children = {c: rss_mb(c) for c in _descendants(self.pid) if _exe(c) != self.root_exe}
            self.peak_tree_mb = max(self.peak_tree_mb, rss_mb(self.pid) + sum(children.values()))
            for child, mb in children.items():
                if mb > self.peak_child[0]:
                    self.peak_child = (mb, _command_name(child))
            self._stop_event.wait(self.every_s)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def run_case(retriever, case: HostileCase) -> dict:
    """Query one case; returns outcome ("answer" / "error" / "crash"), message, hits and seconds."""
    from vmnet_core.errors import VmnetError

    started = time.perf_counter()
    record: dict = {"name": case.name, "query": case.query, "expect": case.expect, "message": "", "hits": []}
    try:
        if case.query == "video":
            hits = retriever.music_for_video(case.path, k=TOP_K, max_duration_s=case.max_duration_s)
        else:
            hits = retriever.videos_for_music(case.path, k=TOP_K)
        record["outcome"] = "answer"
        record["hits"] = [[hit.id, hit.score] for hit in hits]
    except VmnetError as exc:
        record["outcome"], record["message"] = "error", str(exc)
    except Exception as exc:  # noqa: BLE001 — a crash is a finding, reported with its traceback tail
        record["outcome"] = "crash"
        record["message"] = f"{type(exc).__name__}: {exc}"
        record["traceback"] = traceback.format_exc()[-2000:]
    record["seconds"] = round(time.perf_counter() - started, 3)
    record["peak_rss_mb"] = peak_rss_mb()  # of this process, so far
    return record


def run_hostile_queries(bundle_dir: str | Path, cases: list[HostileCase]) -> dict:
    """Load the bundle once and run every case in this process.

    Returns
    -------
    dict with ``cases`` (one record per case, see :func:`run_case`), ``peak_rss_mb`` (this
    process, MB, after the bundle loaded and at the end), ``ffmpeg_peak_mb`` (largest child,
    sampled), ``tree_peak_mb`` (this process plus its children, sampled) and ``seconds``.
    """
    from vmnet_core.bundle.files import load_bundle
    from vmnet_core.bundle.retrieval import Retriever

    started = time.perf_counter()
    sampler = TreeMemorySampler(os.getpid())
    sampler.start()
    try:
        retriever = Retriever(load_bundle(bundle_dir))
        loaded = peak_rss_mb()
        records = [run_case(retriever, case) for case in cases]
    finally:
        sampler.stop()
    return {"cases": records, "peak_rss_mb_after_load": loaded, "peak_rss_mb": peak_rss_mb(),
            "ffmpeg_peak_mb": sampler.peak_child[0], "tree_peak_mb": sampler.peak_tree_mb,
            "seconds": round(time.perf_counter() - started, 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    generate = commands.add_parser("generate", help="write the hostile uploads into a folder")
    generate.add_argument("out", type=Path)
    query = commands.add_parser("query", help="run every case through Retriever and print a JSON report")
    query.add_argument("--bundle", required=True, type=Path)
    query.add_argument("--media", required=True, type=Path, help="a folder written by `generate`")
    query.add_argument("--only", nargs="*", default=None, help="case names to run (default: all)")
    query.add_argument("--skip-slow", action="store_true", help="leave out the cases marked slow")
    query.add_argument("--out", type=Path, default=None, help="write the report here instead of stdout")
    args = parser.parse_args(argv)
    if args.command == "generate":
        cases = generate_hostile_corpus(args.out)
        print(f"{len(cases)} cases over {len(_UPLOADS)} uploads in {args.out}")
        return 0
    import torch

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    cases = [c for c in hostile_cases(args.media)
             if (args.only is None or c.name in args.only) and not (args.skip_slow and c.slow)]
    report = json.dumps(run_hostile_queries(args.bundle, cases))  # ensure_ascii: surrogates survive
    if args.out:
        args.out.write_text(report + "\n", encoding="ascii")
    else:
        print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
