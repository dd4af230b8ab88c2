"""``vmnet query``'s messages name what the user typed: a folder is called a folder, a broken link
is called a link (by the typed path, not its target), and a symlink's media error names the link."""

from __future__ import annotations

from vmnet_core.cli.catalog import as_typed
from vmnet_core.cli.main import main


def _query(capsys, *args: str) -> tuple[int, str]:
    code = main(["query", "--bundle", "no-bundle-needed", *args])
    return code, capsys.readouterr().err


def test_a_folder_without_media_says_so(tmp_path, capsys):
    code, err = _query(capsys, "--video", str(tmp_path))  # a folder is a batch query (one JSON line per file)
    assert code == 2 and "No media files" in err and str(tmp_path) in err and "does not exist" not in err


def test_a_broken_link_is_named_as_typed(tmp_path, capsys):
    link = tmp_path / "holiday.mp4"
    link.symlink_to(tmp_path / "gone" / "original-name.mp4")
    code, err = _query(capsys, "--music", str(link))
    assert code == 2 and f"{link} is a link to a file that does not exist" in err
    assert "original-name" not in err


def test_a_missing_file_says_so(tmp_path, capsys):
    code, err = _query(capsys, "--video", str(tmp_path / "nope.mp4"))
    assert code == 2 and f"The query file {tmp_path / 'nope.mp4'} does not exist" in err


def test_media_errors_about_a_link_name_the_link(tmp_path):
    target = tmp_path / "store" / "a1b2c3.bin"
    target.parent.mkdir()
    target.write_bytes(b"not media")
    link = tmp_path / "my-video.mp4"
    link.symlink_to(target)
    assert as_typed("The file a1b2c3.bin is not a video.", link) == f"The file {link} is not a video."
    assert as_typed(f"The file '{target}' is empty.", link) == f"The file '{link}' is empty."
    assert as_typed("The file a1b2c3.bin is not a video.", target) == "The file a1b2c3.bin is not a video."
