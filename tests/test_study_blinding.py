"""Blind by construction: a whole study built from soundtracks of very different levels and lengths,
served behind app.py's web guard, scanned as a rater's browser receives it. Every stimulus of a
clip has the same size, modification time, duration, audio sample count and (within 1 LU)
loudness; every served file answer carries the same headers whatever the condition, and no time
or size validator; so no feature orders the two sides of a trial the way their conditions go."""

from __future__ import annotations

import re
import subprocess
import wave
from collections import defaultdict
from pathlib import Path

import httpx
import numpy as np
import pytest
from gradio_client import Client
from sqlalchemy import select

from study.config import StudyConfig
from study.create import create_study
from study.db import Database
from study.design import CHECK_CONDITION
from study.models import Candidate, Stimulus, Study
from study.stimuli import FIXED_MTIME, ClipSource, TrackSource
from vmnet_core.media import probe
from vmnet_core.media.ffmpeg import ffmpeg_exe
from vmnet_testkit.mediagen import make_video
from vmnet_testkit.study_server import study_in_thread

CONDITIONS = ["ground_truth", "vmnet", "random"]
LEVELS = {"ground_truth": 0.5, "vmnet": 0.03, "random": 0.2}  # 24 dB apart before normalisation
HEADERS_THAT_DIFFER = {"date", "content-disposition"}  # the time of the answer; the file's opaque name


def _tone(path: Path, seconds: float, freq: float, level: float) -> Path:
    t = np.arange(int(seconds * 44100)) / 44100
    y = level * np.sin(2 * np.pi * freq * t) * (1 + 0.3 * np.sin(2 * np.pi * 3 * t)) / 1.3
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(44100)
        w.writeframes((y * 32767).astype("<i2").tobytes())
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    folder = tmp_path_factory.mktemp("blind")
    clips = []
    for i in range(2):
        video = make_video(folder / f"clip{i}.mp4", seconds=2.0, seed=i)
        clips.append(ClipSource(f"clip{i}", video, {
            c: TrackSource(c, _tone(folder / f"{c}{i}.wav", 2.2 + k, 220.0 + 110 * k + 37 * i, LEVELS[c]))
            for k, c in enumerate(CONDITIONS)}))
    config = StudyConfig.from_dict({"name": "blind", "conditions": CONDITIONS, "seed": 3, "min_listen_fraction": 0.0,
                                    "joins_per_client": 0, "attention": {"count": 1, "kind": "noise"},
                                    "media": {"fade_s": 0.5}})
    url = f"sqlite:///{folder / 'study.db'}"
    db = Database(url)
    create_study(db, config, clips, folder / "media")
    with db.read() as s:
        media_dir = Path(s.scalar(select(Study.media_dir)))
        rows = s.execute(select(Stimulus.name, Candidate.condition, Candidate.media_file)
                         .join(Candidate, Candidate.stimulus_id == Stimulus.id)).all()
    db.dispose()
    condition_of = {media: condition for _, condition, media in rows}
    by_clip = defaultdict(dict)
    for clip, condition, media in rows:
        by_clip[clip][condition] = media_dir / media
    return folder, url, condition_of, dict(by_clip)


def _loudness_lufs(path: Path) -> float:
    out = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostats", "-i", str(path), "-af", "ebur128", "-f", "null", "-"],
                         capture_output=True, text=True, check=True).stderr
    return float(re.findall(r"^\s*I:\s*(-?[\d.]+) LUFS", out, re.M)[-1])


def _audio_samples(path: Path) -> int:
    pcm = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), "-map", "0:a", "-f", "s16le", "-"],
                         capture_output=True, check=True).stdout
    return len(pcm)


def test_every_stimulus_of_a_clip_has_one_size_time_duration_and_loudness(built):
    _, _, _, by_clip = built
    for files in by_clip.values():
        assert set(files) == {*CONDITIONS, CHECK_CONDITION}
        stats = [p.stat() for p in files.values()]
        assert len({s.st_size for s in stats}) == 1
        assert {s.st_mtime for s in stats} == {FIXED_MTIME}
        assert all(re.fullmatch(r"[0-9a-f]{32}\.mp4", p.name) for p in files.values())
        assert len({probe(p).duration_s for p in files.values()}) == 1
        assert len({_audio_samples(p) for p in files.values()}) == 1
        loudness = [_loudness_lufs(files[c]) for c in CONDITIONS]
        assert max(loudness) - min(loudness) <= 1.0, loudness


def test_served_stimuli_carry_no_header_that_tells_the_conditions_apart(built):
    folder, url, condition_of, _ = built
    served = []  # (trial, side, condition, headers, body size)
    with study_in_thread(url, folder / "work", guarded=True) as srv, httpx.Client(timeout=30) as http:
        client = Client(srv.study, verbose=False, download_files=False)
        for rater, trials in ((0, 99), (1, 3)):  # the second rater's files are handed out again (Gradio touches them)
            token = client.predict("", {}, "", api_name="/consent")
            view = client.predict(token, api_name="/trial")
            for _ in range(trials):
                if view["done"]:
                    break
                for side in ("video_a", "video_b"):
                    file_url = view[side]["url"]
                    file_url = file_url if file_url.startswith("http") else srv.url + file_url
                    answer = http.get(file_url)
                    assert answer.status_code == 200
                    ranged = http.get(file_url, headers={"Range": "bytes=0-99", "If-Range": '"x"'})
                    assert ranged.status_code == 206
                    headers = {k: v for k, v in answer.headers.items() if k not in HEADERS_THAT_DIFFER}
                    served.append(((rater, view["trial_id"]), side, condition_of[view[side]["orig_name"]],
                                   headers, len(answer.content)))
                view = client.predict(token, view["trial_id"], "A", None, True, True, 1000, api_name="/vote")["next"]
    assert len(served) == 2 * (9 + 3)
    assert all("last-modified" not in h and "etag" not in h for _, _, _, h, _ in served)
    trials = defaultdict(dict)
    for trial, side, condition, headers, size in served:
        trials[trial][side] = (condition, headers, size)
    for sides in trials.values():
        (cond_a, headers_a, size_a), (cond_b, headers_b, size_b) = sides["video_a"], sides["video_b"]
        assert cond_a != cond_b
        assert headers_a == headers_b and size_a == size_b
