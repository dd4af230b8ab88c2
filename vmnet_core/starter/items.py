"""Which catalog items of a starter bundle are what: the real library's tracks or the corpus's
synthetic training clips. Light on purpose (no imports), so ``vmnet query`` and the apps can tell
them apart without loading the pipeline."""

from __future__ import annotations

LIBRARY_SOURCE = "immich-memories-music"
LIBRARY_ID_PREFIX = "library-"
CORPUS_ID_PREFIX = "starter-"  # ids of the procedural clips (starter.corpus.clip_id)


def is_library_item(item) -> bool:
    """Whether a catalog item is one of the real ``immich-memories-music`` tracks."""
    return item.tags.get("source") == LIBRARY_SOURCE or item.id.startswith(LIBRARY_ID_PREFIX)


def is_synthetic_item(item) -> bool:
    """Whether a catalog item is a procedural starter-corpus clip (``starter-NNNNN``, a training item)."""
    return item.id.startswith(CORPUS_ID_PREFIX) and item.pair_id is not None
