"""Keyframe-aligned decode parts: the frames of one pass, bit for bit, from several ffmpeg runs at once."""

from __future__ import annotations

import subprocess
import threading
import time
from fractions import Fraction

import numpy as np
import pytest

from vmnet_core import media
from vmnet_core.errors import VmnetError
from vmnet_core.media import decode_parts
from vmnet_core.media import frames as media_frames
from vmnet_core.media.decode_parts import DecodePart, choose_decode, plan_parts
from vmnet_testkit.mediagen import make_bframe_video
from vmnet_testkit.processes import live_children

MP4 = ("mov,mp4",)
MAIN, SIDE = media.FrameSampling(1.0, 360, 48), media.FrameSampling(8.0, 2880, 32)  # both skip deblocking at 180p


@pytest.fixture
def parts_always(monkeypatch):
    """Cut every decode that can be cut exactly (as on a 4-core machine with a heavy video)."""
    monkeypatch.setattr(decode_parts, "usable_cores", lambda: 4)
    monkeypatch.setattr(decode_parts, "PARTS_MIN_DECODE_S", 0.0)


def _one_pass(monkeypatch, read):
    """What ``read()`` gives when every decode is one pass."""
    with monkeypatch.context() as m:
        m.setattr(decode_parts, "MAX_DECODE_PARTS", 1)
        return read()


def _beside(path):
    batches, side = media.iter_frame_batches_beside(path, MAIN, SIDE, batch_frames=4)
    return np.concatenate(list(batches)), side.result(timeout=60)


@pytest.mark.parametrize("rate", ["25", "30000/1001", "24000/1001", "60"])
def test_parts_give_exactly_the_frames_of_one_pass(tmp_path, monkeypatch, parts_always, rate):
    path = make_bframe_video(tmp_path / "bframes.mp4", seconds=14, rate=rate, keyint_s=2.3)
    info = media.probe(path)
    parts, threads = choose_decode(info, [Fraction(1), Fraction(8)], [14, 112], 0.0, MP4)
    assert len(parts) == 4 and threads == ("-threads", "1")
    assert [part.seek_s for part in parts][1:] != [0, 0, 0]

    for read in (lambda: media.sample_frames(path, fps=1.0, size=48),
                 lambda: media.sample_frames(path, fps=8.0, size=32),
                 lambda: np.concatenate(list(media.iter_frame_batches(path, size=48, batch_frames=3)))):
        np.testing.assert_array_equal(read(), _one_pass(monkeypatch, read))
    main, side = _beside(path)
    one_main, one_side = _one_pass(monkeypatch, lambda: _beside(path))
    np.testing.assert_array_equal(main, one_main)
    np.testing.assert_array_equal(side, one_side)
    assert len(main) >= 14 and len(side) >= 112  # one sample per second (per 1/8 s) to the end


def test_plan_covers_every_sample_once_from_exact_seek_points():
    tick = Fraction(1, 15360)  # x264 at 30 fps: a frame is 512 ticks, 33 333.3 µs
    frame_s = Fraction(1, 30)
    keys = [k * 512 * tick for k in (0, 71, 139, 262, 266, 400, 541, 700, 880)]
    parts = plan_parts(keys, tick, [(Fraction(1), 30), (Fraction(8), 240)], frame_s, max_parts=4)
    assert len(parts) == 4
    for sampling, count in ((0, 30), (1, 240)):
        covered = [i for part in parts for i in range(part.firsts[sampling], part.firsts[sampling] + part.counts[sampling])]
        assert covered == list(range(count))
    for part in parts[1:]:
        key = max(k for k in keys if k <= part.seek_s)
        assert 0 <= part.seek_s - key < frame_s / 2  # lands on its keyframe, before the next frame
        assert (part.seek_s * 10**6).denominator == 1 and (part.seek_s / tick).denominator == 1
        for sampling, fps in ((0, Fraction(1)), (1, Fraction(8))):
            assert part.firsts[sampling] / fps >= key  # every sample's frame is at or after the keyframe
            assert (part.grid_start_s(fps, sampling) * 10**6).denominator == 1


@pytest.mark.parametrize(("tick", "samplings", "keys_s", "why"), [
    (Fraction(1, 12800), [(Fraction(3), 90)], [0, 10, 20], "1/3 s is no whole number of µs"),
    (Fraction(1001, 30000), [(Fraction(1), 30)], [0, 10.01, 20.02], "1 s is no whole number of 1001/30000-s ticks"),
    (Fraction(1, 12800), [(Fraction(1), 5)], [0, 2, 4], "a 4-s window is too short to share"),
    (Fraction(1, 12800), [(Fraction(1), 30)], [0], "no keyframe to cut at"),
])
def test_plan_keeps_one_pass_where_a_cut_is_not_exact_or_not_worth_it(tick, samplings, keys_s, why):
    keys = [Fraction(k).limit_denominator(10**6) for k in keys_s]
    assert plan_parts(keys, tick, samplings, Fraction(1, 25), max_parts=4) == [
        DecodePart(Fraction(0), (0,), (samplings[0][1],))], why


def test_a_cheap_decode_beside_a_busy_consumer_is_one_single_threaded_pass(tmp_path, monkeypatch):
    path = make_bframe_video(tmp_path / "small.mp4", seconds=14, keyint_s=2.0)
    info = media.probe(path)
    monkeypatch.setattr(decode_parts, "usable_cores", lambda: 2)
    parts, threads = choose_decode(info, [Fraction(1)], [14], 0.010, MP4)  # 180p: the CNN costs more
    assert len(parts) == 1 and threads == ("-threads", "1")
    parts, threads = choose_decode(info, [Fraction(1)], [14], 0.0, MP4)  # nothing beside, but tiny
    assert len(parts) == 1 and threads == ()
    monkeypatch.setattr(decode_parts, "PARTS_MIN_DECODE_S", 0.0)
    parts, threads = choose_decode(info, [Fraction(1)], [14], 0.0, MP4)
    assert len(parts) == 2 and threads == ("-threads", "1")
    assert choose_decode(info, [Fraction(1)], [14], 0.0, ("matroska",))[0] == parts[:0] + [
        DecodePart(Fraction(0), (0,), (14,))]  # a container whose seeking is not trusted here


def _part_threads_alive() -> bool:
    return any(t.name == "vmnet-decode-part" for t in threading.enumerate())


def test_leaving_early_stops_every_part_and_errors_arrive_in_order(tmp_path, monkeypatch, parts_always):
    path = make_bframe_video(tmp_path / "long.mp4", seconds=20, keyint_s=2.0)
    before = live_children()
    batches = media.iter_frame_batches(path, fps=8.0, size=48, batch_frames=2)
    assert len(next(batches)) >= 1
    batches.close()
    deadline = time.monotonic() + 10
    while (live_children() - before or _part_threads_alive()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not live_children() - before and not _part_threads_alive()

    batches, side = media.iter_frame_batches_beside(path, MAIN, SIDE, batch_frames=2)
    next(batches)
    batches.close()
    with pytest.raises(VmnetError, match="Stopped decoding frames"):
        side.result(timeout=60)

    monkeypatch.setattr(media_frames, "_decode_timeout_s", lambda seconds: 0.001)
    with pytest.raises(VmnetError, match="Gave up"):
        media.sample_frames(path, fps=1.0, size=48)
    batches, side = media.iter_frame_batches_beside(path, MAIN, SIDE)
    with pytest.raises(VmnetError, match="Gave up"):
        list(batches)
    with pytest.raises(VmnetError, match="Gave up"):
        side.result(timeout=60)


def test_a_part_that_comes_back_short_gives_way_to_one_pass(tmp_path, monkeypatch, parts_always):
    """A file whose parts decode fewer frames than its index promised (here: each run reads only
    1.5 s) must not shift the later samples: the rest comes from one pass, main and side alike."""
    path = make_bframe_video(tmp_path / "short-parts.mp4", seconds=14, keyint_s=2.3)
    one_frames = _one_pass(monkeypatch, lambda: media.sample_frames(path, fps=1.0, size=48))
    one_main, one_side = _one_pass(monkeypatch, lambda: _beside(path))
    planned_window = DecodePart.window_s
    monkeypatch.setattr(DecodePart, "window_s", lambda self, fps_list: (
        planned_window(self, fps_list) if self.counts[0] >= len(one_frames) else 1.5))  # the one pass reads it all
    np.testing.assert_array_equal(media.sample_frames(path, fps=1.0, size=48), one_frames)
    main, side = _beside(path)
    np.testing.assert_array_equal(main, one_main)
    np.testing.assert_array_equal(side, one_side)


def test_a_file_that_does_not_start_at_zero_is_decoded_in_one_pass(tmp_path, parts_always):
    """ffmpeg shifts every timestamp by the file's start time; parts keep the file's own, so they
    are only cut where the two agree (start 0)."""
    source = make_bframe_video(tmp_path / "zero.mp4", seconds=14, keyint_s=2.0)
    shifted = tmp_path / "shifted.mp4"
    subprocess.run([media.ffmpeg_exe(), "-y", "-loglevel", "error", "-i", str(source), "-c", "copy",
                    "-output_ts_offset", "2", str(shifted)], check=True)
    assert media.probe(source).start_s == 0.0 and media.probe(shifted).start_s == 2.0
    assert len(choose_decode(media.probe(source), [Fraction(1)], [14], 0.0, MP4)[0]) > 1
    assert len(choose_decode(media.probe(shifted), [Fraction(1)], [14], 0.0, MP4)[0]) == 1
    np.testing.assert_array_equal(media.sample_frames(shifted, size=48), media.sample_frames(source, size=48))
