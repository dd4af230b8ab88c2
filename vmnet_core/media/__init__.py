"""Media I/O over the ffmpeg binary shipped by ``imageio-ffmpeg``: probing, audio, frames, writing.

Owns everything that touches a media file: locating ffmpeg and running it with a timeout
(``ffmpeg``), turning its messages into one sentence a person can act on (``messages``), sniffing
MP4 box headers (``mp4``), describing and checking a file (``probing``), decoding audio (``audio``),
sampling frames with a background reader (``frames``, cut into keyframe-aligned parts decoded side
by side by ``decode_parts``) and writing, splitting and muxing (``write``).
Every failure a user can cause is a :class:`vmnet_core.errors.VmnetError` naming the file; every
subprocess has a timeout; every file written is renamed into place on success. It may import only
the foundation modules (``errors``, ``atomic_io``, ``paths``); the names below are its face, and
the underscore helpers in the submodules are private to the package.
"""

from vmnet_core.media.audio import decode_audio
from vmnet_core.media.decode_limits import (
    MAX_VIDEO_FPS,
    MAX_VIDEO_PIXELS,
    MAX_VIDEO_SIDE_PX,
    check_frame_rate,
    check_picture_limits,
)
from vmnet_core.media.decode_parts import usable_cores
from vmnet_core.media.ffmpeg import ffmpeg_exe
from vmnet_core.media.frames import (
    SKIP_DEBLOCKING_ARGS,
    SKIP_DEBLOCKING_MIN_DOWNSCALE,
    VIDEO_DECODE_ARGS,
    FrameSampling,
    iter_frame_batches,
    iter_frame_batches_beside,
    sample_frames,
)
from vmnet_core.media.probing import (
    PROBE_TIMEOUT_S,
    TAIL_CHECK_S,
    MediaInfo,
    check_start,
    probe,
    require_audio,
    require_video,
)
from vmnet_core.media.write import mux_music_onto_video, split_music_video, write_video

__all__ = [
    "MAX_VIDEO_FPS", "MAX_VIDEO_PIXELS", "MAX_VIDEO_SIDE_PX", "PROBE_TIMEOUT_S",
    "SKIP_DEBLOCKING_ARGS", "SKIP_DEBLOCKING_MIN_DOWNSCALE", "TAIL_CHECK_S", "VIDEO_DECODE_ARGS", "FrameSampling",
    "MediaInfo", "check_frame_rate", "check_picture_limits", "check_start", "decode_audio", "ffmpeg_exe",
    "iter_frame_batches", "iter_frame_batches_beside", "mux_music_onto_video", "probe", "require_audio",
    "require_video", "sample_frames", "split_music_video", "usable_cores", "write_video",
]
