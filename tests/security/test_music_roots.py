"""The operator's folder indexing stays inside the --music-root folders (symlinks resolved)."""

from __future__ import annotations

import pytest

from demo.operator import confined_folder
from vmnet_core.errors import VmnetError


def test_folders_inside_a_root_pass_and_others_are_refused(tmp_path):
    root = tmp_path / "music"
    (root / "albums").mkdir(parents=True)
    (tmp_path / "secret").mkdir()
    (root / "escape").symlink_to(tmp_path / "secret")
    assert confined_folder(str(root / "albums"), [root]) == (root / "albums").resolve()
    for typed in (str(tmp_path / "secret"), str(root / "albums" / ".." / ".." / "secret"), str(root / "escape"),
                  "/", "/proc"):
        with pytest.raises(VmnetError, match="outside the music roots"):
            confined_folder(typed, [root])


def test_without_roots_nothing_is_indexed_and_the_flag_is_named(tmp_path):
    with pytest.raises(VmnetError, match="--music-root"):
        confined_folder(str(tmp_path), [])


def test_text_for_visitors_keeps_names_but_not_server_folders():
    from demo.public_text import without_server_paths

    card = "- store: `/tmp/x/bundle.work/store` (48 pairs)\n- music: ~/Music/mine/track.ogg; see https://example.org/a/b"
    assert without_server_paths(card) == ("- store: `…/store` (48 pairs)\n- music: …/track.ogg; "
                                          "see https://example.org/a/b")
