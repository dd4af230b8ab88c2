"""``vmnet preview``: a catalog track's best moment laid under a video, on the beat, as an mp4."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from vmnet_core.errors import VmnetError


def register(subparsers: Any) -> None:
    """Add the ``preview`` sub-command."""
    preview = subparsers.add_parser(
        "preview", help="lay a catalog track's best moment under a video (aligned on the beat) as an mp4",
        description="Find the part of the track that fits the video best (or start at --start), move it by "
                    "less than a bar so a downbeat meets the video's first strong cut, cut it to the video's "
                    "length with short fades and write an H.264/AAC mp4 (facts in OUT.json).")
    preview.add_argument("--bundle", required=True, type=Path, help="bundle directory")
    preview.add_argument("--video", required=True, type=Path, metavar="FILE", help="the video")
    preview.add_argument("--track", required=True, metavar="ID", help="a music item id of the catalog (vmnet query)")
    preview.add_argument("--start", type=float, metavar="S",
                         help="start the track here (seconds) instead of at its best moment for the video")
    preview.add_argument("--no-align", action="store_true", help="start exactly at the moment, no beat alignment")
    preview.add_argument("--out", required=True, type=Path, metavar="OUT.mp4", help="the mp4 to write")
    preview.add_argument("--json", action="store_true", help="print the facts (start, alignment) as JSON")
    preview.add_argument("--device", default="cpu", help="torch device for the frame CNN (cpu or cuda)")
    preview.set_defaults(func=run_preview)


def run_preview(args: argparse.Namespace) -> int:
    """``vmnet preview``: write the mp4 and print where the music starts."""
    from vmnet_core.bundle.files import load_bundle  # torch: only when the command runs
    from vmnet_core.bundle.preview import catalog_track, preview_for_track
    from vmnet_core.bundle.retrieval import Retriever

    if not args.video.is_file():
        raise VmnetError(f"The video {args.video} does not exist; check the path.")
    if args.out.suffix.lower() != ".mp4":
        raise VmnetError(f"--out must name an .mp4 file, not {args.out.name}.")
    if args.start is not None and args.start < 0:
        raise VmnetError("--start must be 0 or more seconds.")
    bundle = load_bundle(args.bundle)
    catalog_track(bundle.catalog, args.track)  # a wrong id fails before the CNN loads
    embedding = None
    if args.start is None:
        embedding = Retriever(bundle, device=args.device).embed_video_file(args.video, max_duration_s=None)
    result = preview_for_track(bundle.catalog, args.video, args.track, args.out, video_embedding=embedding,
                               start_s=args.start, align=not args.no_align)
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
        return 0
    a = result.alignment
    how = (f"a downbeat at {a.downbeat_s:.2f} s of the track meets the video's cut at {a.video_event_s:.2f} s"
           if a.downbeat_s is not None and a.video_event_s is not None else
           "starting on a downbeat" if a.downbeat_s is not None else "no beat found, starting at the moment as is")
    print(f"wrote {args.out}: {args.track} from {a.music_start_s:.2f} s (wanted {a.wanted_start_s:.2f} s; {how}).")
    return 0
