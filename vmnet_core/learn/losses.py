"""VM-NET's two losses as vectorised matrix code (no Python loops over triplets).

Reference: Hong, Im, Yang, "Content-Based Video–Music Retrieval Using Soft Intra-Modal Structure
Constraint", ICMR 2018 (arXiv 1704.06761), and the official TF code (csehong/VM-NET,
``embed_loss.py`` and ``embed_structure_loss.py``), which fixes what the paper leaves open:

- Inter-modal ranking loss: ``sim[i, j]`` is the cosine similarity of music ``i`` and video ``j``;
  pair ``i`` is the positive for both. For every anchor the Q negatives with the highest
  similarity (the most violating ones) enter a hinge ``max(0, margin - sim_pos + sim_neg)``. The
  official code averages the hinge over all anchors × Q kept negatives (``reduce_mean``), so the
  default ``reduction="mean"`` does that; ``"sum"`` gives the plain sum over kept triplets.
- Soft intra-modal structure constraint: anchors are the first ``n_anchors`` rows of the (shuffled)
  batch, neighbour pairs are adjacent columns ``(j, j+1)`` inside the same ``n_anchors`` block,
  distances are ``-cosine`` on L2-normalised vectors, and each triplet contributes
  ``c * (D_emb[i, j+1] - D_emb[i, j])`` with the constant coefficient
  ``c = sign(D_in[i, j] - D_in[i, j+1]) - sign(D_emb[i, j] - D_emb[i, j+1])`` (zero when the two
  spaces agree on which neighbour is closer, so only flips are penalised, without a margin);
  averaged over the ``n_anchors × (n_anchors - 1)`` triplets.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class RankingTerms:
    """The two directions of the ranking loss, before weighting."""

    music_anchored: torch.Tensor  # () music query i vs. videos j ≠ i
    video_anchored: torch.Tensor  # () video query j vs. musics i ≠ j


def _kept_negatives(top_q: int | str | None, batch_size: int) -> int:
    """How many negatives per anchor the ranking loss keeps (``None``/``"all"`` → all of them)."""
    n_neg = batch_size - 1
    if top_q is None or top_q == "all":
        return n_neg
    if isinstance(top_q, str) or int(top_q) < 1:
        raise ValueError(f"top_q must be a positive integer, 'all' or None, not {top_q!r}")
    return min(int(top_q), n_neg)


def _anchored_hinge(sim: torch.Tensor, margin: float, n_keep: int, reduction: str) -> torch.Tensor:
    """Hinge over the ``n_keep`` most violating negatives of each row of ``sim`` (B, B)."""
    batch = sim.shape[0]
    positives = sim.diagonal()  # (B,)
    eye = torch.eye(batch, dtype=torch.bool, device=sim.device)
    negatives = sim.masked_fill(eye, float("-inf"))  # (B, B), the positive can never be kept
    if n_keep < batch - 1:
        negatives = negatives.topk(n_keep, dim=1, sorted=False).values  # (B, Q), order irrelevant
    else:
        negatives = negatives[~eye].view(batch, batch - 1)  # (B, B-1)
    hinge = (margin - positives[:, None] + negatives).clamp(min=0)  # (B, Q)
    return hinge.mean() if reduction == "mean" else hinge.sum()


def ranking_terms(
    sim: torch.Tensor,
    margin: float = 0.1,
    top_q: int | str | None = 100,
    reduction: str = "mean",
) -> RankingTerms:
    """Both directions of the inter-modal ranking loss, unweighted.

    Parameters
    ----------
    sim : (B, B) tensor, ``sim[i, j]`` = cosine(music_i, video_j); pair i is the positive.
    margin : hinge margin (paper: 0.1).
    top_q : negatives kept per anchor, the most violating first (paper: 100; 1 = VSE++'s hardest
        negative; ``None`` or ``"all"`` = every negative). Values above B-1 are clamped.
    reduction : ``"mean"`` over anchors × kept negatives (official code) or ``"sum"``.
    """
    if sim.ndim != 2 or sim.shape[0] != sim.shape[1]:
        raise ValueError(f"sim must be a square (B, B) matrix, got shape {tuple(sim.shape)}")
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', not {reduction!r}")
    batch = sim.shape[0]
    if batch < 2:
        zero = sim.sum() * 0.0
        return RankingTerms(zero, zero)
    n_keep = _kept_negatives(top_q, batch)
    return RankingTerms(
        music_anchored=_anchored_hinge(sim, margin, n_keep, reduction),
        video_anchored=_anchored_hinge(sim.t(), margin, n_keep, reduction),
    )


def ranking_loss(
    sim: torch.Tensor,
    margin: float = 0.1,
    top_q: int | str | None = 100,
    w_music: float = 3.0,
    w_video: float = 1.0,
    reduction: str = "mean",
) -> torch.Tensor:
    """Weighted inter-modal ranking loss ``w_music * music_anchored + w_video * video_anchored``.

    ``sim`` is (B, B) with music along rows and video along columns; see :func:`ranking_terms`.
    Returns a scalar tensor.
    """
    terms = ranking_terms(sim, margin=margin, top_q=top_q, reduction=reduction)
    return w_music * terms.music_anchored + w_video * terms.video_anchored


def structure_loss(x_in: torch.Tensor, emb: torch.Tensor, n_anchors: int = 100) -> torch.Tensor:
    """Soft intra-modal structure constraint for one modality (official-code form).

    Parameters
    ----------
    x_in : (B, D) the branch's input vectors (normalised here; no gradient needed).
    emb : (B, E) the branch's embeddings (normalised here; idempotent for unit vectors).
    n_anchors : anchors = the first ``n_anchors`` rows; neighbours = adjacent columns of the same
        block (paper/code: 100, i.e. 100 × 99 triplets). Clamped to B.

    Returns a scalar tensor: the mean of ``c * (D_emb[i, j+1] - D_emb[i, j])`` over
    ``i < K, j < K-1`` with ``K = min(n_anchors, B)``; zero when ``K < 2``.
    """
    k = min(int(n_anchors), x_in.shape[0])
    if k < 2:
        return emb.sum() * 0.0
    x_unit = F.normalize(x_in[:k].detach(), dim=1)  # (K, D)
    e_unit = F.normalize(emb[:k], dim=1)  # (K, E)
    d_in = -(x_unit @ x_unit.t())  # (K, K)
    d_emb = -(e_unit @ e_unit.t())  # (K, K)
    near_in, far_in = d_in[:, :-1], d_in[:, 1:]  # (K, K-1) columns j and j+1
    near_emb, far_emb = d_emb[:, :-1], d_emb[:, 1:]  # (K, K-1)
    coeff = (torch.sign(near_in - far_in) - torch.sign(near_emb - far_emb)).detach()  # (K, K-1)
    return (coeff * (far_emb - near_emb)).mean()
