"""The real-content check of issue 14: music videos cut and graded to real tracks, kept out of training.

Each clip is a slideshow of real photographs (scikit-image's, with Ken Burns moves) under a
``seconds``-long excerpt of one of the 28 real tracks of ``immich-memories-music``, edited the way a
music-video editor would: a cut every 2 or 4 beats of the track, camera moves faster for faster
music, a warm bright grade for major keys and a cold dark one for minor keys, saturation up for
energetic and happy moods. The labels a bundle should follow are the track's own (tempo, key,
mood); the measures say whether its choices among the real library follow them, with a
shuffled-label control that shows what "no effect" looks like, and for the hub share the share
that lists with no hub reach (:func:`vmnet_core.learn.hubness.chance_max_share`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats

from vmnet_core.bundle.cue_match import fuse
from vmnet_core.datasets.music_library import MusicTrack, load_music_library
from vmnet_core.learn.hubness import chance_max_share, hubness
from vmnet_core.media import decode_audio, write_video
from vmnet_testkit.real_content_media import PHOTOS, slideshow

SR = 44100
FPS = 12
SIZE = (320, 240)
AROUSED_MOODS = ("energetic", "happy")  # moods counted as high energy
TOP_K = 5                                # the top-k lists the tempo / mood / hubness measures read


@dataclass(frozen=True)
class CheckClip:
    """One clip of the check: which track it is cut to, and the labels the cut follows."""

    index: int
    track: MusicTrack
    start_s: float          # where the excerpt starts in the track
    beats_per_shot: int     # a cut every this many beats
    photos: tuple[str, ...]

    @property
    def tempo_bpm(self) -> float:
        return self.track.tempo_bpm

    @property
    def valence(self) -> float:
        """1 for a major key, 0 for minor."""
        return float(self.track.key.endswith("major"))

    @property
    def energy(self) -> float:
        """1 for an energetic or happy mood, 0 otherwise."""
        return float(self.track.mood in AROUSED_MOODS)


def check_clips(n: int = 60, seconds: float = 12.0, seed: int = 0) -> list[CheckClip]:
    """``n`` clips cycling through the library (each track used about n / 28 times, at different
    excerpts), with seeded shot lengths and photo orders."""
    rng = np.random.default_rng(seed)
    tracks = load_music_library()
    clips = []
    for i in range(n):
        track = tracks[i % len(tracks)]
        use = i // len(tracks)
        latest = max(track.duration_s - seconds, 0.0)
        start = min(use * seconds, latest)
        photos = tuple(rng.permutation(PHOTOS)[: int(rng.integers(4, len(PHOTOS) + 1))])
        clips.append(CheckClip(i, track, round(start, 2), int(rng.choice((2, 4))), photos))
    return clips


def write_check_clip(clip: CheckClip, out_dir: str | Path, seconds: float = 12.0) -> Path:
    """Encode one clip as ``out_dir/check-NN.mp4`` (H.264 + AAC); kept when it already exists."""
    path = Path(out_dir) / f"check-{clip.index:02d}.mp4"
    if path.exists():
        return path
    major = clip.valence > 0.5
    aroused = clip.energy > 0.5
    speed = (clip.tempo_bpm - 60.0) / 90.0  # 0 at 60 BPM, 1 at 150
    frames = slideshow(list(clip.photos), shot_s=clip.beats_per_shot * 60.0 / clip.tempo_bpm, seconds=seconds,
                       fps=FPS, size=SIZE, exposure=1.2 if major else 0.7, warmth=0.5 if major else -0.5,
                       saturation=1.35 if aroused else 0.75, zoom=1.05 + 0.3 * speed, pan=0.1 + 0.4 * speed)
    audio = decode_audio(clip.track.path, SR, offset_s=clip.start_s, duration_s=seconds)
    return write_video(frames, path, fps=FPS, audio=audio, sr=SR)


@dataclass(frozen=True)
class CheckResult:
    """The measures of one bundle (or one scorer) on the check."""

    paired_r10: float            # video → its own soundtrack among the clips' soundtracks
    paired_chance: float
    rho_tempo: float             # ρ(clip tempo, mean BPM of its top-5 real tracks)
    rho_valence: float           # ρ(clip valence, share of major keys in its top 5)
    rho_energy: float            # ρ(clip energy, share of energetic/happy in its top 5)
    control_p95: dict[str, float]  # 95th percentile of |ρ| (and of R@10) under shuffled labels
    top5_max_share: float        # the most frequent track's share of top-5 lists (hubness)
    chance_max_share: float      # the same that lists with no hub pass 1 time in 20 (random top 5s)
    off_label_max_share: float   # the same, counted only over the clips a track's labels do not fit
    oracle_max_share: float      # top5_max_share of the label oracle: what the library's clusters force

    def rows(self) -> list[tuple[str, float, float]]:
        """``(measure, value, no-effect 95th percentile)`` rows for a report: under shuffled labels,
        and for the hub share under lists with no hub."""
        return [("paired R@10", self.paired_r10, self.control_p95["paired_r10"]),
                ("rho tempo", self.rho_tempo, self.control_p95["rho_tempo"]),
                ("rho valence", self.rho_valence, self.control_p95["rho_valence"]),
                ("rho energy", self.rho_energy, self.control_p95["rho_energy"]),
                ("top-5 max share", self.top5_max_share, self.chance_max_share),
                ("off-label share", self.off_label_max_share, float("nan"))]


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return 0.0
    return float(stats.spearmanr(x, y).statistic)


def measure(clips: list[CheckClip], paired_scores: np.ndarray, library_scores: np.ndarray,
            library: list[MusicTrack], n_shuffles: int = 2000, seed: int = 0) -> CheckResult:
    """Score a scorer on the check.

    ``paired_scores`` (n_clips, n_clips): clip video i against clip soundtrack j;
    ``library_scores`` (n_clips, n_tracks): clip video i against library track j (higher fits better).
    """
    n = len(clips)
    ranks = (paired_scores > paired_scores[np.arange(n), np.arange(n)][:, None]).sum(axis=1)
    paired_r10 = float(np.mean(ranks < 10))
    top5 = np.argsort(-library_scores, axis=1)[:, :TOP_K]
    bpm = np.array([t.tempo_bpm for t in library])[top5].mean(axis=1)
    major = np.array([t.key.endswith("major") for t in library], float)[top5].mean(axis=1)
    aroused = np.array([t.mood in AROUSED_MOODS for t in library], float)[top5].mean(axis=1)
    tempo = np.array([c.tempo_bpm for c in clips])
    valence = np.array([c.valence for c in clips])
    energy = np.array([c.energy for c in clips])
    rng = np.random.default_rng(seed)
    shuffled = {"paired_r10": [], "rho_tempo": [], "rho_valence": [], "rho_energy": []}
    for _ in range(n_shuffles):
        order = rng.permutation(n)
        shuffled["paired_r10"].append(float(np.mean(
            (paired_scores > paired_scores[np.arange(n), order][:, None]).sum(axis=1) < 10)))
        shuffled["rho_tempo"].append(abs(_spearman(tempo[order], bpm)))
        shuffled["rho_valence"].append(abs(_spearman(valence[order], major)))
        shuffled["rho_energy"].append(abs(_spearman(energy[order], aroused)))
    oracle = label_oracle_scores(clips, library)
    return CheckResult(paired_r10=paired_r10, paired_chance=min(10, n) / n,
                       rho_tempo=_spearman(tempo, bpm), rho_valence=_spearman(valence, major),
                       rho_energy=_spearman(energy, aroused),
                       control_p95={k: float(np.percentile(v, 95)) for k, v in shuffled.items()},
                       top5_max_share=hubness(library_scores, TOP_K)["max_share"],
                       chance_max_share=chance_max_share(*library_scores.shape, TOP_K),
                       off_label_max_share=off_label_share(library_scores, oracle),
                       oracle_max_share=hubness(oracle, TOP_K)["max_share"])


def label_oracle_scores(clips: list[CheckClip], library: list[MusicTrack]) -> np.ndarray:
    """``(n_clips, n_tracks)``: how well each track's *true* labels fit each clip's (higher fits
    better): minus the tempo gap in octaves, minus one for a different mode (major/minor), minus one
    for a different energy (:data:`AROUSED_MOODS` or not). The scorer that knows everything the
    check asks a bundle to follow."""
    def log2_bpm(items) -> np.ndarray:
        return np.log2([item.tempo_bpm for item in items])
    def flags(items, flag) -> np.ndarray:
        return np.array([flag(item) for item in items], bool)
    major = flags(clips, lambda c: c.valence > 0.5)[:, None] != flags(library, lambda t: t.key.endswith("major"))
    aroused = flags(clips, lambda c: c.energy > 0.5)[:, None] != flags(library, lambda t: t.mood in AROUSED_MOODS)
    return -np.abs(log2_bpm(clips)[:, None] - log2_bpm(library)) - major - aroused


def off_label_share(library_scores: np.ndarray, oracle_scores: np.ndarray, k: int = TOP_K) -> float:
    """Hubness beyond what the labels explain: for each track, the share of the clips whose
    label-oracle top ``k`` leaves it out (it scores below their ``k``-th best oracle score; ties
    count as in) that still get it in their top ``k``; the largest over the tracks.

    A track in most lists whatever the clip (issue 14's hub) scores high; a track that only fills the
    lists of the clips its labels fit scores 0, however large its label cluster.
    ``library_scores``, ``oracle_scores``: ``(n_clips, n_tracks)``, higher fits better.
    """
    top = np.zeros(library_scores.shape, bool)
    np.put_along_axis(top, np.argsort(-library_scores, axis=1)[:, :k], True, axis=1)
    kth = -np.sort(-oracle_scores, axis=1)[:, k - 1 : k]
    unfit = oracle_scores < kth - 1e-12                         # (n, m): the labels leave the track out
    entered = (top & unfit).sum(axis=0)
    eligible = unfit.sum(axis=0)
    return float(np.max(np.where(eligible > 0, entered / np.maximum(eligible, 1), 0.0)))


def with_true_tempo_and_mode(cues: dict, track: MusicTrack) -> dict:
    """A copy of a track's music ``cues`` with its labelled tempo, key and mode in place of the
    estimates (the pulse profile and the rest are kept): what the ranking would do if the beat
    tracker and the key estimator were always right."""
    mode = "major" if track.key.endswith("major") else "minor"
    return {**cues, "tempo_bpm": track.tempo_bpm, "key": track.key, "mode": mode}


def cue_scores(fit, video_cues: list, item_cues: list) -> np.ndarray:
    """``(n, m)``: ``fit(cues, "video", item_cues)`` for each of ``n`` clips' video cues against
    ``m`` items (``fit`` being e.g. :func:`vmnet_core.bundle.cue_match.cue_fit`)."""
    return np.stack([fit(cues, "video", item_cues) for cues in video_cues])


def fused_scores(network: np.ndarray, cues: np.ndarray, cue_weight: float) -> np.ndarray:
    """``(n, m)``: each clip's network scores fused with its cue scores as the product ranks
    (:func:`vmnet_core.bundle.cue_match.fuse`, row by row)."""
    return np.stack([fuse(n, c, cue_weight) for n, c in zip(network, cues, strict=True)])
