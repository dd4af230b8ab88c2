"""PNG figures for training and evaluation (matplotlib's headless Agg backend)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

LOSS_TERMS = ("loss", "rank_music", "rank_video", "struct_music", "struct_video")
DIRECTION_LABELS = {"video_to_music": "video → music", "music_to_video": "music → video"}


def _pyplot():
    import matplotlib  # on first plot only: about a second, and training and queries need none

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_training_curves(records: Sequence[Mapping], path: str | Path) -> Path:
    """Loss terms and validation R@1 / R@10 (both directions) against the step.

    Parameters
    ----------
    records : ``metrics.jsonl`` records: loss lines (``step``, ``loss``, ``rank_music``, ...) and
        validation lines (``split == "val"`` with the :func:`~vmnet_core.learn.metrics.evaluate_embeddings` shape).
    path : PNG to write.
    """
    plt = _pyplot()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    losses = [r for r in records if "loss" in r]
    vals = [r for r in records if r.get("split") == "val"]
    fig, (ax_loss, ax_val) = plt.subplots(1, 2, figsize=(11, 4))
    for term in LOSS_TERMS:
        points = [(r["step"], r[term]) for r in losses if term in r]
        if points:
            steps, values = zip(*points, strict=True)
            ax_loss.plot(steps, values, label=term, linewidth=2 if term == "loss" else 1)
    ax_loss.set(xlabel="step", ylabel="loss (unweighted terms; 'loss' = weighted total)", title="training loss")
    if losses:
        ax_loss.legend(fontsize=8)
    for colour, (direction, label) in zip(("C0", "C3"), DIRECTION_LABELS.items(), strict=True):
        for key, style in (("R@1", ":"), ("R@10", "-")):
            points = [(r["step"], 100 * r[direction][key]) for r in vals if key in r.get(direction, {})]
            if points:
                steps, values = zip(*points, strict=True)
                ax_val.plot(steps, values, style, color=colour, marker=".", label=f"{label} {key}")
    gallery = vals[-1]["gallery"] if vals else 0
    ax_val.set(xlabel="step", ylabel="recall (%)", title=f"validation (gallery {gallery})")
    if vals:
        ax_val.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_recall_curves(ranks: Mapping[str, Mapping[str, np.ndarray]], path: str | Path, title: str = "") -> Path:
    """R@K against K (log scale) per model and direction.

    Parameters
    ----------
    ranks : ``{model name: {"video_to_music": (N,) ranks, "music_to_video": (N,) ranks}}``
        (1-based partner ranks from :func:`~vmnet_core.learn.metrics.retrieval_ranks`).
    path : PNG to write.
    """
    plt = _pyplot()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, (direction, label) in zip(axes, DIRECTION_LABELS.items(), strict=True):
        for name, by_direction in ranks.items():
            r = np.sort(np.asarray(by_direction[direction]))
            gallery = r.size
            ks = np.arange(1, gallery + 1)
            recall = np.searchsorted(r, ks, side="right") / max(gallery, 1)
            ax.plot(ks, 100 * recall, label=name)
        ax.set(xscale="log", xlabel="K", title=f"{label}" + (f" — {title}" if title else ""))
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("R@K (%)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
