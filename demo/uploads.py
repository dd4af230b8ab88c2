"""Visitors hand over bytes, never paths: the check every file argument of a demo handler passes.

Gradio hands a handler the ``path`` a caller put in its ``FileData``. Its own "was this uploaded?"
check runs only for apps started with ``launch()``, not for ones mounted with
``gr.mount_gradio_app``, so the demo checks in its own code: a file argument is accepted only when
this server's upload route wrote it for this page (it is in the page's ``upload_file_set``) and it
lies, symlinks resolved, inside the upload folder. Anything else (a server path, a traversal
string, a file the server made for someone else) is refused with one sentence that echoes
nothing of the server.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection
from pathlib import Path

from vmnet_core.errors import VmnetError

NOT_AN_UPLOAD = ("That file was not uploaded to this page; upload it with the file box (the server "
                 "only analyses files sent to it, never paths).")


def is_inside(path: str | Path, folder: str | Path) -> bool:
    """True when ``path``, symlinks resolved, is ``folder`` or lies under it."""
    real, root = os.path.realpath(path), os.path.realpath(folder)
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


class UploadCheck:
    """``check(path) -> Path`` for one page: ``uploaded()`` returns the set of paths its upload
    route wrote (Gradio's ``Blocks.upload_file_set``), ``upload_dir`` is the server's upload folder."""

    def __init__(self, uploaded: Callable[[], Collection[str]], upload_dir: str | Path):
        self._uploaded = uploaded
        self.upload_dir = Path(upload_dir)

    def check(self, path: str | Path | None) -> str | None:
        """``path`` unchanged when it is a fresh upload of this page (None passes as None);
        otherwise a ``VmnetError`` with :data:`NOT_AN_UPLOAD`."""
        if path is None or path == "":
            return None
        text = str(path)
        if (text not in self._uploaded() or not is_inside(text, self.upload_dir) or os.path.islink(text)
                or not os.path.isfile(text)):
            raise VmnetError(NOT_AN_UPLOAD)
        return text
