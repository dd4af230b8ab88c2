"""The 1000 ImageNet-1k (ILSVRC-2012) class names, in the classifier's index order.

Read from package data (``data/imagenet_labels.txt``, one name a line), copied offline from the list
bundled with gradio 6.31 (``gradio/media_assets/data/imagenet_labels.json``) so that vmnet_core needs
no web stack; index 281 is "tabby cat", 967 "espresso".
"""

from __future__ import annotations

from importlib import resources

LABELS_FILE = "imagenet_labels.txt"
N_CLASSES = 1000


def load_imagenet_labels() -> tuple[str, ...]:
    """The class names, index ``i`` being the classifier's output ``i``: ``N_CLASSES`` strings."""
    text = resources.files(__package__).joinpath("data", LABELS_FILE).read_text(encoding="utf-8")
    labels = tuple(text.splitlines())
    if len(labels) != N_CLASSES:
        raise RuntimeError(f"{LABELS_FILE} holds {len(labels)} class names, not {N_CLASSES}: reinstall vmnet.")
    return labels


IMAGENET_LABELS: tuple[str, ...] = load_imagenet_labels()
