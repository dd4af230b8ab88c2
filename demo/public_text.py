"""Text shown to visitors carries no server paths (docs/security.md): absolute paths become
``…/<last part>``, so a model card still says *which* store or file without saying *where*.

Text an outsider controls (a music file's name, a track id, an error sentence naming either) is
shown as text, never as markup: Gradio renders a gr.Error/gr.Warning message as HTML and a
gr.Markdown value as Markdown with HTML in it (sanitized of scripts, but images, links, forms and
``style`` attributes still render)."""

from __future__ import annotations

import html
import re
import string

_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/])(?:~/|/)(?:[^\s`'\"()<>\[\]/]+/)+([^\s`'\"()<>\[\]/]+)")
_ASCII_PUNCTUATION = re.compile(f"([{re.escape(string.punctuation)}])")
_LINE_BREAKS = re.compile(r"[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]+")


def without_server_paths(text: str) -> str:
    """``text`` with every absolute (or ``~``) path shortened to ``…/name``; URLs are left alone."""
    return _ABSOLUTE_PATH.sub(lambda m: f"…/{m.group(1)}", text)


def as_plain_html(text: object) -> str:
    """``text`` for a message Gradio renders as HTML (gr.Error, gr.Warning): ``<``, ``>``, ``&`` escaped."""
    return html.escape(str(text), quote=False)


def as_plain_markdown(text: object) -> str:
    """``text`` for a gr.Markdown, shown as it is: every ASCII punctuation character backslash-escaped
    (so no HTML tag, entity, link, image, emphasis or table forms) and line breaks made spaces (so
    no heading or block starts)."""
    return _ASCII_PUNCTUATION.sub(r"\\\1", _LINE_BREAKS.sub(" ", str(text)))
