"""A preview that sounds finished: the best moment of a catalog track under a video.

:func:`track_moment` finds where in the track the video fits (its best segment, from the
catalog's windows); :func:`make_preview` lays the track from there under the video, moved by
less than a bar so a downbeat meets the video's first strong cut
(:func:`vmnet_core.features.beat_alignment.align_music_to_video`), cut to the video's length, with
short fades. ``vmnet preview`` and the demo's preview and download both call :func:`preview_for_track`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vmnet_core.atomic_io import write_file_atomic
from vmnet_core.bundle.catalog import CatalogItem
from vmnet_core.bundle.segments import SegmentMatch
from vmnet_core.errors import VmnetError
from vmnet_core.features.beat_alignment import Alignment, align_music_to_video
from vmnet_core.media import mux_music_onto_video, probe, require_audio

PREVIEW_FADE_S = 0.5  # fade in and out (s): short enough to keep the downbeat, long enough to avoid a click
PREVIEW_MAX_WIDTH_PX, PREVIEW_MAX_FPS = 1280, 30.0  # a re-encoded preview's picture at most (a 4K upload costs no more)
SHOWN_ID_CHARS = 80  # a track id a visitor sent is echoed at most this long (a 2-MB id is not sent back whole)


@dataclass(frozen=True)
class Preview:
    """A written preview: the mp4, the moment it was cut from and how it was aligned."""

    path: Path
    track_id: str
    moment: SegmentMatch | None  # the best segment for the video (None when a start was given)
    alignment: Alignment

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready facts: ``path``, ``track_id``, ``start_s`` (music offset used), ``alignment``."""
        return {"path": str(self.path), "track_id": self.track_id, "start_s": self.alignment.music_start_s,
                "segment": None if self.moment is None else {"start_s": self.moment.start_s, "end_s": self.moment.end_s,
                                                             "score": round(self.moment.score, 4)},
                "alignment": self.alignment.as_dict()}


def shown_id(track_id: str) -> str:
    """``track_id`` as an error sentence shows it: cut to ``SHOWN_ID_CHARS`` with an ellipsis."""
    return track_id if len(track_id) <= SHOWN_ID_CHARS else track_id[:SHOWN_ID_CHARS - 1] + "…"


def catalog_track(catalog: Any, track_id: str | None) -> CatalogItem:
    """The music item ``track_id`` whose audio is on this machine, or one sentence saying what is wrong."""
    if not track_id:
        raise VmnetError("Pick a track from the results first.")
    if not catalog.has("music", str(track_id)):
        raise VmnetError(f"The track {shown_id(str(track_id))!r} is not in the catalog; "
                         "search again and pick one from the results.")
    item = catalog.item("music", str(track_id))
    if not item.path or not Path(item.path).is_file():
        raise VmnetError(f"The audio of {item.title!r} is not on this server any more ({item.path or 'no path'}); "
                         "pick another track or re-index the music folder.")
    return item


def track_moment(catalog: Any, track_id: str, video_embedding: Any) -> SegmentMatch:
    """The segment of ``track_id`` that fits a video's ``(512,)`` embedding best (span unknown for a
    track indexed as one piece: it then starts at 0)."""
    return catalog.best_match("music", track_id, video_embedding)


def make_preview(video: str | Path, music: str | Path, out: str | Path, start_s: float = 0.0, align: bool = True,
                 fade_s: float = PREVIEW_FADE_S, keep_first_s: float | None = None) -> Alignment:
    """Write ``out``: ``video`` (its first ``keep_first_s`` seconds when given) with ``music`` from
    about ``start_s`` under it (H.264/AAC mp4; a picture that must be re-encoded is brought down to
    :data:`PREVIEW_MAX_WIDTH_PX` wide and :data:`PREVIEW_MAX_FPS`).

    With ``align`` the start moves to the nearest position that puts a downbeat on the video's first
    strong cut (or motion onset); the audio is cut to the video's length and faded in and out over
    ``fade_s`` seconds. Returns the alignment used (``music_start_s`` is the offset in the track).
    """
    info = probe(music)
    require_audio(info, "there is no music to lay under the video")
    if not 0.0 <= start_s < info.duration_s:
        raise VmnetError(f"The start {start_s:g} s is outside the track, which is {info.duration_s:.1f} s long; "
                         "choose a start inside it.")
    if align:
        alignment = align_music_to_video(video, music, start_s)
    else:
        alignment = Alignment(music_start_s=float(start_s), wanted_start_s=float(start_s), video_event_s=None,
                              downbeat_s=None, tempo_bpm=0.0)
    mux_music_onto_video(video, music, out, fade_s=fade_s, fade_in_s=fade_s, music_offset_s=alignment.music_start_s,
                         keep_first_s=keep_first_s, max_width_px=PREVIEW_MAX_WIDTH_PX, max_fps=PREVIEW_MAX_FPS)
    return alignment


def preview_for_track(catalog: Any, video: str | Path, track_id: str, out: str | Path,
                      video_embedding: Any = None, start_s: float | None = None, align: bool = True,
                      keep_first_s: float | None = None) -> Preview:
    """The preview of catalog track ``track_id`` under ``video``, from its best moment for the video.

    ``start_s`` given: start there; else the best segment for ``video_embedding`` (``(512,)``; the
    track's start when it has no windows). A ``out``.json beside the mp4 records the facts.
    """
    item = catalog_track(catalog, track_id)
    moment = None
    if start_s is None:
        if video_embedding is None:
            raise VmnetError("Give a start time or the video's embedding to find the best moment of the track.")
        moment = track_moment(catalog, item.id, video_embedding)
        start_s = moment.start_s or 0.0
    alignment = make_preview(video, item.path, out, start_s=float(start_s), align=align, keep_first_s=keep_first_s)
    preview = Preview(path=Path(out), track_id=item.id, moment=moment, alignment=alignment)
    write_file_atomic(Path(out).with_suffix(".json"), json.dumps(preview.as_dict(), indent=2) + "\n")
    return preview
