"""The operator's music-folder page (mounted by app.py at ``/admin-music`` behind the admin login).

Indexing a folder reads server files and publishes their sound to every visitor, so it is an
operator's act: from the shell (``python app.py --music-dir DIR``, ``vmnet index``) or from this
page after login, and only inside the folders the operator allowed at start (``--music-root DIR``,
repeatable). The public demo has no such control (docs/security.md).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import gradio as gr

from demo import handlers
from demo.handlers import DemoContext
from demo.public_text import as_plain_markdown
from vmnet_core.errors import VmnetError


def confined_folder(typed: str | None, roots: Sequence[str | Path]) -> Path:
    """``typed`` as a folder when it lies (symlinks resolved) inside one of ``roots``; otherwise one
    sentence saying which roots are allowed."""
    text = str(typed or "").strip().strip("'\"")
    if not roots:
        raise VmnetError("This server was started without --music-root, so no folder can be indexed from the "
                         "page; restart it with --music-root DIR, or run `vmnet index` in a shell.")
    if not text:
        raise VmnetError("Type the path of a folder of music inside one of the music roots first.")
    real = os.path.realpath(Path(text).expanduser())
    for root in roots:
        top = os.path.realpath(root)
        if real == top or real.startswith(top.rstrip(os.sep) + os.sep):
            return Path(real)
    allowed = ", ".join(str(r) for r in roots)
    raise VmnetError(f"{text} is outside the music roots this server allows ({allowed}); pick a folder inside "
                     "one, or restart with another --music-root.")


def build_music_folder_page(ctx: DemoContext, roots: Sequence[str | Path]) -> gr.Blocks:
    """A one-form page: index a folder under ``roots`` into ``ctx``'s music catalog."""
    with gr.Blocks(title="vmnet · add music (operator)", analytics_enabled=False) as page:
        gr.Markdown("# Add a music folder to the catalog\nIndex a folder of tracks **on the server** (audio "
                    "files and the soundtracks of videos); files already indexed are skipped. Allowed roots: "
                    + (", ".join(f"`{r}`" for r in roots) or "none (start the app with `--music-root DIR`)"))
        folder = gr.Textbox(label="Folder on the server", placeholder=str(roots[0]) if roots else "",
                            elem_id="music-folder")
        go = gr.Button("Add to the catalog", variant="primary", elem_id="music-folder-add")
        report = gr.Markdown(elem_id="music-folder-report")

        def add_folder(path: str):
            try:  # the sentence names files from the folder: shown as text, never as markup
                return as_plain_markdown(handlers.index_music_folder(ctx, confined_folder(path, roots),
                                                                     progress=True).sentence())
            except VmnetError as exc:
                return f"**{as_plain_markdown(exc)}**"

        go.click(add_folder, folder, report, api_visibility="private", concurrency_limit=1)
    # api_open=False: a direct run/<name> call may not skip the queue and its limits (docs/security.md)
    page.queue(default_concurrency_limit=1, api_open=False)
    return page
