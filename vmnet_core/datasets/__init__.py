"""Datasets: where media comes from outside the project.

Owns HIMV-200K list handling (``himv``: YouTube ids → downloaded files) and the bundled real music
library (``music_library``: the 28 tracks of ``immich-memories-music`` with mood, tempo and key).
May import ``media``, ``features`` and the foundation modules; never ``learn``, ``bundle``,
``starter`` or ``cli``.
"""
