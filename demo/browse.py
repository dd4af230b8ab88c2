"""The "Browse the model" tab's data: test pairs and their partner ranks, the R@K table, the curve.

Ranks follow :mod:`vmnet_core.learn.metrics` (1-based, ties counted against the partner). A pair's
partner is ranked twice: among every item on the other side of the catalog (what a user of the
demo gets) and within the held-out test gallery (what the bundle's R@K numbers measure).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from demo.handlers import format_duration
from demo.public_text import as_plain_markdown
from vmnet_core.bundle.catalog import Catalog, CatalogItem
from vmnet_core.bundle.evaluation import MODEL_LABELS
from vmnet_core.errors import VmnetError
from vmnet_core.learn.metrics import DIRECTIONS, PAPER_KS, retrieval_ranks
from vmnet_core.learn.plots import plot_recall_curves

DIRECTION_NAMES = {"video_to_music": "video → music", "music_to_video": "music → video"}
NEIGHBOUR_HEADERS = ["rank", "score", "title", "duration", "true partner", "id"]


def test_pairs(catalog: Catalog, split: str = "test") -> list[tuple[CatalogItem, CatalogItem]]:
    """``(video item, music item)`` for each ``split`` video whose partner track is in the catalog."""
    pairs = []
    for video in catalog.items("video"):
        partner = video.pair_id or video.id
        if video.split == split and catalog.has("music", partner):
            pairs.append((video, catalog.item("music", partner)))
    return pairs


def pair_choices(catalog: Catalog) -> list[tuple[str, str]]:
    """Dropdown choices ``(label, video id)`` for the test pairs."""
    return [(f"{video.title} ({format_duration(video.duration_s)})", video.id) for video, _ in test_pairs(catalog)]


def _rank(scores: np.ndarray, partner_row: int) -> int:
    return int((scores >= scores[partner_row]).sum())  # 1 + others scoring at least as high


@dataclass(frozen=True)
class PairReport:
    """Where one test pair's partners rank, and the top of each list."""

    video: CatalogItem
    music: CatalogItem
    ranks: dict[str, dict[str, int]]  # direction -> {"catalog": rank, "gallery": rank}
    sizes: dict[str, dict[str, int]]  # direction -> {"catalog": items searched, "gallery": test pairs}
    neighbours: dict[str, list[list[Any]]]  # direction -> rows (NEIGHBOUR_HEADERS)

    def summary(self) -> str:
        """Markdown: the two ranks in words."""
        lines = [f"**{as_plain_markdown(self.video.title)}**"]  # a title is a file name: text, not markup
        for direction, (query, found) in (("video_to_music", ("video", "soundtrack")),
                                          ("music_to_video", ("soundtrack", "video"))):
            rank, size = self.ranks[direction], self.sizes[direction]
            lines.append(f"- {DIRECTION_NAMES[direction]}: searching with its {query}, its own {found} ranks "
                         f"**#{rank['catalog']} of {size['catalog']}** in the whole catalog and "
                         f"**#{rank['gallery']} of {size['gallery']}** in the test gallery.")
        return "\n".join(lines)


def pair_report(catalog: Catalog, video_id: str, k: int = 10) -> PairReport:
    """Ranks and top-``k`` neighbours, both directions, for the test pair of video ``video_id``."""
    pairs = test_pairs(catalog)
    position_of = {video.id: position for position, (video, _) in enumerate(pairs)}
    if video_id not in position_of:
        raise VmnetError(f"{video_id!r} is not a test pair of this bundle; pick one from the list.")
    position = position_of[video_id]
    video, music = pairs[position]
    k = max(1, int(k))
    gallery_music = np.asarray([catalog.row("music", m.id) for _, m in pairs])
    gallery_video = np.asarray([catalog.row("video", v.id) for v, _ in pairs])
    ranks: dict[str, dict[str, int]] = {}
    sizes: dict[str, dict[str, int]] = {}
    neighbours: dict[str, list[list[Any]]] = {}
    for direction, (query_side, query_item, found_side, partner) in {
        "video_to_music": ("video", video, "music", music),
        "music_to_video": ("music", music, "video", video),
    }.items():
        query = catalog.embedding(query_side, query_item.id)
        scores = catalog.embeddings(found_side) @ query  # (N,) cosines: rows are unit length
        partner_row = catalog.row(found_side, partner.id)
        gallery_rows = gallery_music if found_side == "music" else gallery_video
        ranks[direction] = {"catalog": _rank(scores, partner_row),
                            "gallery": _rank(scores[gallery_rows], position)}
        sizes[direction] = {"catalog": catalog.size(found_side), "gallery": len(pairs)}
        rows = []
        for hit in catalog.search(query, side=found_side, k=k):
            rows.append([hit.rank, round(hit.score, 3), hit.title, format_duration(hit.duration_s),
                         "✓" if hit.id == partner.id else "", hit.id])
        if all(row[-1] != partner.id for row in rows):
            rows.append([ranks[direction]["catalog"], round(float(scores[partner_row]), 3), partner.title,
                         format_duration(partner.duration_s), "✓", partner.id])
        neighbours[direction] = rows
    return PairReport(video=video, music=music, ranks=ranks, sizes=sizes, neighbours=neighbours)


def evaluation_blocks(metrics: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], str]:
    """``({model: recall block}, where)`` from a bundle's metrics.json: the starter comparison
    (VM-NET, the no-structure ablation, CCA, random) when present, else the bundle's test numbers."""
    evaluation = metrics.get("starter", {}).get("evaluation", {}) if isinstance(metrics.get("starter"), dict) else {}
    compare = evaluation.get("compare") if isinstance(evaluation, dict) else None
    if isinstance(compare, dict) and compare:
        return {MODEL_LABELS.get(name, name): block for name, block in compare.items()}, "starter evaluation"
    if isinstance(metrics.get("test"), dict):
        return {"VM-NET": metrics["test"]}, "test split"
    return {}, ""


def recall_table(metrics: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """Headers and rows: one row per model and direction, R@K in percent, median rank, gallery size."""
    blocks, _ = evaluation_blocks(metrics)
    ks = [k for k in PAPER_KS if any(f"R@{k}" in b.get(d, {}) for b in blocks.values() for d in DIRECTIONS)]
    headers = ["model", "direction", "gallery", *[f"R@{k} (%)" for k in ks], "median rank"]
    rows = []
    for name, block in blocks.items():
        for direction in DIRECTIONS:
            numbers = block.get(direction, {})
            rows.append([name, DIRECTION_NAMES[direction], block.get("gallery", ""),
                         *[round(100 * numbers[f"R@{k}"], 1) if f"R@{k}" in numbers else "" for k in ks],
                         numbers.get("median_rank", "")])
    return headers, rows


def catalog_test_ranks(catalog: Catalog) -> dict[str, np.ndarray]:
    """Partner ranks of the catalog's test pairs within their own gallery, both directions."""
    pairs = test_pairs(catalog)
    if len(pairs) < 2:
        return {}
    em = catalog.embeddings("music")[[catalog.row("music", m.id) for _, m in pairs]]
    ev = catalog.embeddings("video")[[catalog.row("video", v.id) for v, _ in pairs]]
    return retrieval_ranks(em, ev)


def recall_curve(catalog: Catalog, path: str | Path) -> Path | None:
    """PNG of R@K against K for the catalog's test pairs (this bundle's model) and chance; ``None``
    when the catalog holds fewer than two test pairs."""
    ranks = catalog_test_ranks(catalog)
    if not ranks:
        return None
    gallery = len(ranks["video_to_music"])
    chance = np.arange(1, gallery + 1)  # uniform ranks: R@K = K / gallery
    return plot_recall_curves({"VM-NET (this bundle)": ranks, "chance": {d: chance for d in DIRECTIONS}}, path,
                              title=f"test gallery of {gallery}")
