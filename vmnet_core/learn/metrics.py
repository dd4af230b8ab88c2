"""Retrieval metrics as the paper reports them, shared by training's validation and ``vmnet evaluate``.

Protocol (official code ``eval.py``): query ``i``'s only relevant item is gallery item ``i``; scores
are cosine similarities; Recall@K = fraction of queries whose partner is among the top K, for
K in {1, 10, 25, 50, 100, 1000} that fit the gallery, in both directions. We add the median and
mean rank (1-based) and always report the gallery size.

Ties are ranked pessimistically: the partner's rank is 1 + the number of *other* gallery items
scoring at least as high. A model that gives every item the same score therefore gets rank G, not 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

PAPER_KS: tuple[int, ...] = (1, 10, 25, 50, 100, 1000)
DIRECTIONS: tuple[str, ...] = ("video_to_music", "music_to_video")


def _as_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float32)


def partner_ranks(sim: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """1-based rank of each query's partner.

    Parameters
    ----------
    sim : (Q, G) scores with Q <= G; row i's partner is column i.

    Returns
    -------
    (Q,) int64 ranks in [1, G], ties counted against the partner (pessimistic).
    """
    sim = _as_numpy(sim)
    n_query, n_gallery = sim.shape
    if n_query > n_gallery:
        raise ValueError(f"more queries ({n_query}) than gallery items ({n_gallery})")
    ranks = np.empty(n_query, dtype=np.int64)
    for start in range(0, n_query, chunk):
        block = sim[start:start + chunk]  # (C, G)
        rows = np.arange(block.shape[0])
        partner = block[rows, rows + start]  # (C,)
        # counts the partner itself once (>=), so this is already 1 + #others scoring >= partner
        ranks[start:start + chunk] = (block >= partner[:, None]).sum(axis=1)
    return ranks


def fitting_ks(n_gallery: int, ks: Sequence[int] = PAPER_KS) -> list[int]:
    """The K values that fit a gallery of ``n_gallery`` items (K <= G)."""
    return [int(k) for k in ks if k <= n_gallery]


def summarize_ranks(ranks: np.ndarray, n_gallery: int, ks: Sequence[int] = PAPER_KS) -> dict:
    """``{"R@K": fraction, ..., "median_rank": float, "mean_rank": float}`` from (Q,) 1-based ranks."""
    out: dict[str, float] = {f"R@{k}": float(np.mean(ranks <= k)) for k in fitting_ks(n_gallery, ks)}
    out["median_rank"] = float(np.median(ranks))
    out["mean_rank"] = float(np.mean(ranks))
    return out


def recall_at_k(sim: np.ndarray, ks: Sequence[int] = PAPER_KS) -> dict:
    """Recall@K, median and mean rank for a (Q, G) score matrix whose row i's partner is column i."""
    sim = _as_numpy(sim)
    return summarize_ranks(partner_ranks(sim), sim.shape[1], ks)


def retrieval_ranks(em, ev) -> dict[str, np.ndarray]:
    """Partner ranks in both directions for paired (N, E) music and video embeddings.

    Returns ``{"video_to_music": (N,), "music_to_video": (N,)}``; embeddings are expected to be
    L2-normalised (scores are dot products = cosines).
    """
    em, ev = _as_numpy(em), _as_numpy(ev)
    if em.shape != ev.shape:
        raise ValueError(f"music {em.shape} and video {ev.shape} embeddings must be paired")
    sim = em @ ev.T  # (N, N): music rows, video columns
    return {"video_to_music": partner_ranks(sim.T), "music_to_video": partner_ranks(sim)}


def evaluate_embeddings(em, ev, ks: Sequence[int] = PAPER_KS) -> dict:
    """The ``vmnet evaluate --json`` object for paired (N, E) music and video embeddings.

    Returns ``{"gallery": N, "video_to_music": {"R@1": ..., ..., "median_rank", "mean_rank"},
    "music_to_video": {...}}`` with recalls as fractions.
    """
    ranks = retrieval_ranks(em, ev)
    n = int(_as_numpy(em).shape[0])
    return {"gallery": n, **{d: summarize_ranks(ranks[d], n, ks) for d in DIRECTIONS}}


def selection_score(result: dict) -> float:
    """Model-selection score: mean of R@10 over both directions (R@1 when the gallery is < 10)."""
    key = "R@10" if "R@10" in result[DIRECTIONS[0]] else "R@1"
    return float(np.mean([result[d][key] for d in DIRECTIONS]))


def selection_noise(result: dict) -> float:
    """One standard error of :func:`selection_score`: ``√(p(1 − p) / (2N))`` for score p over the
    2N queries of a gallery of N pairs (0 when the score is 0 or 1). A score that moves by less
    is indistinguishable from another draw of the validation pairs."""
    p = selection_score(result)
    return float(np.sqrt(p * (1.0 - p) / (2 * max(1, int(result["gallery"])))))


def _cosine_distances(x: np.ndarray, rows: np.ndarray) -> np.ndarray:
    unit = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return -(unit[rows] @ unit.T)  # (A, N)


def _row_ranks(d: np.ndarray) -> np.ndarray:
    """Ordinal ranks along each row (stable: exact ties keep their column order)."""
    ranks = np.empty_like(d)
    order = np.argsort(d, axis=1, kind="stable")
    np.put_along_axis(ranks, order, np.arange(d.shape[1], dtype=d.dtype)[None, :].repeat(d.shape[0], 0), axis=1)
    return ranks


def structure_preservation(x_in, emb, n_anchors: int = 200, seed: int = 0) -> float:
    """How well embeddings keep a modality's neighbour structure: mean per-anchor Spearman ρ.

    For up to ``n_anchors`` randomly chosen anchors, rank the cosine distances from the anchor to
    every other item in input space and in embedding space, and take the Spearman correlation of
    the two rankings; return the mean over anchors (1 = same neighbour order, 0 = unrelated).
    Exact ties (duplicates) get ordinal ranks in column order.

    Parameters
    ----------
    x_in : (N, D) the model's inputs for one modality (preprocessed descriptors).
    emb : (N, E) the embeddings of the same items.
    """
    x_in, emb = _as_numpy(x_in).astype(np.float64), _as_numpy(emb).astype(np.float64)
    n = x_in.shape[0]
    if n < 3 or emb.shape[0] != n:
        raise ValueError("structure_preservation needs at least 3 paired rows of inputs and embeddings")
    rng = np.random.default_rng(seed)
    anchors = np.sort(rng.choice(n, size=min(n_anchors, n), replace=False))
    keep = np.ones((anchors.size, n), dtype=bool)
    keep[np.arange(anchors.size), anchors] = False  # drop each anchor's distance to itself
    d_in = _cosine_distances(x_in, anchors)[keep].reshape(anchors.size, n - 1)
    d_emb = _cosine_distances(emb, anchors)[keep].reshape(anchors.size, n - 1)
    r_in = _row_ranks(d_in)
    r_emb = _row_ranks(d_emb)
    r_in -= r_in.mean(axis=1, keepdims=True)
    r_emb -= r_emb.mean(axis=1, keepdims=True)
    denom = np.sqrt((r_in**2).sum(axis=1) * (r_emb**2).sum(axis=1))
    rho = np.where(denom > 0, (r_in * r_emb).sum(axis=1) / np.maximum(denom, 1e-300), 0.0)
    return float(rho.mean())


def structure_report(music_in, video_in, em, ev, n_anchors: int = 200, seed: int = 0) -> dict:
    """``{"music": ρ, "video": ρ}``: :func:`structure_preservation` for both modalities."""
    return {
        "music": structure_preservation(music_in, em, n_anchors, seed),
        "video": structure_preservation(video_in, ev, n_anchors, seed),
    }
