"""The vectorised losses against slow, obviously-correct loops (values and autograd gradients)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from vmnet_core.learn.losses import ranking_loss, ranking_terms, structure_loss

torch.set_num_threads(1)


# ----- references: one triplet at a time ---------------------------------------------------------
def reference_direction(sim: torch.Tensor, margin: float, top_q, reduction: str = "mean") -> torch.Tensor:
    """Rows are anchors: keep the top_q largest off-diagonal scores, hinge each against the diagonal."""
    batch = sim.shape[0]
    terms = []
    for i in range(batch):
        negatives = [(sim[i, j], j) for j in range(batch) if j != i]
        negatives.sort(key=lambda pair: -pair[0].item())  # most violating first (stable on ties)
        q = len(negatives) if top_q in (None, "all") else min(top_q, len(negatives))
        for value, _ in negatives[:q]:
            terms.append(torch.clamp(margin - sim[i, i] + value, min=0))
    total = sum(terms)
    return total / len(terms) if reduction == "mean" else total


def reference_ranking(sim, margin=0.1, top_q=100, w_music=3.0, w_video=1.0, reduction="mean"):
    return (w_music * reference_direction(sim, margin, top_q, reduction)
            + w_video * reference_direction(sim.t(), margin, top_q, reduction))


def reference_structure(x_in: torch.Tensor, emb: torch.Tensor, n_anchors: int) -> torch.Tensor:
    """REFERENCES.md, literally: anchors i < K, neighbour pairs (j, j+1) with j + 1 < K."""
    k = min(n_anchors, x_in.shape[0])

    def dist(a, b):  # -cosine
        return -(a @ b) / (a.norm() * b.norm())

    def sign(v: float) -> float:
        return float((v > 0) - (v < 0))

    terms = []
    for i in range(k):
        for j in range(k - 1):
            d_in_j, d_in_k = float(dist(x_in[i], x_in[j])), float(dist(x_in[i], x_in[j + 1]))
            d_emb_j, d_emb_k = dist(emb[i], emb[j]), dist(emb[i], emb[j + 1])
            c = sign(d_in_j - d_in_k) - sign(d_emb_j.item() - d_emb_k.item())  # a constant
            terms.append(c * (d_emb_k - d_emb_j))
    return sum(terms) / len(terms)


def _pair(batch: int, dim: int = 6, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    music = torch.randn(batch, dim, generator=g, dtype=torch.float64, requires_grad=True)
    video = torch.randn(batch, dim, generator=g, dtype=torch.float64, requires_grad=True)
    return music, video


def _sim(music, video):
    return F.normalize(music, dim=1) @ F.normalize(video, dim=1).t()


def _grads(loss, tensors):
    return torch.autograd.grad(loss, tensors)


# ----- ranking loss ------------------------------------------------------------------------------
@pytest.mark.parametrize("batch, top_q", [(7, 1), (7, 3), (7, 6), (7, 100), (7, None), (7, "all"), (2, 100), (2, 1)])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_ranking_loss_matches_loop_reference(batch, top_q, reduction):
    music, video = _pair(batch, seed=batch)
    fast = ranking_loss(_sim(music, video), margin=0.3, top_q=top_q, reduction=reduction)
    slow = reference_ranking(_sim(music, video), margin=0.3, top_q=top_q, reduction=reduction)
    assert fast.item() == pytest.approx(slow.item(), rel=1e-10, abs=1e-12)
    assert slow.item() > 0  # margin 0.3 on random vectors: the test really exercises the hinge
    for a, b in zip(_grads(fast, (music, video)), _grads(slow, (music, video)), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def test_q_larger_than_batch_clamps_to_all_negatives():
    music, video = _pair(5)
    sim = _sim(music, video)
    assert ranking_loss(sim, top_q=1000).item() == pytest.approx(ranking_loss(sim, top_q="all").item())


def test_hardest_negative_is_vsepp_max_violation():
    music, video = _pair(9, seed=3)
    sim = _sim(music, video)
    terms = ranking_terms(sim, margin=0.2, top_q=1)
    masked = sim - 10 * torch.eye(9, dtype=sim.dtype)
    vsepp_music = torch.clamp(0.2 - sim.diagonal() + masked.max(dim=1).values, min=0).mean()
    vsepp_video = torch.clamp(0.2 - sim.diagonal() + masked.max(dim=0).values, min=0).mean()
    assert terms.music_anchored.item() == pytest.approx(vsepp_music.item())
    assert terms.video_anchored.item() == pytest.approx(vsepp_video.item())


def test_weights_and_directions():
    music, video = _pair(6, seed=4)
    sim = _sim(music, video)
    terms = ranking_terms(sim, top_q=2)
    assert terms.music_anchored.item() != pytest.approx(terms.video_anchored.item())
    expected = 3 * terms.music_anchored + 1 * terms.video_anchored
    assert ranking_loss(sim, top_q=2).item() == pytest.approx(expected.item())
    # music-anchored means rows of sim are music: transposing swaps the two terms
    swapped = ranking_terms(sim.t(), top_q=2)
    assert swapped.music_anchored.item() == pytest.approx(terms.video_anchored.item())


def test_ranking_loss_with_duplicate_vectors():
    music, video = _pair(6, seed=5)
    with torch.no_grad():
        music[3] = music[1]  # duplicated music → ties along the video-anchored direction
        video[4] = video[0]  # duplicated video → ties along the music-anchored direction
    for top_q in (1, 2, 4, "all"):
        fast = ranking_loss(_sim(music, video), margin=0.5, top_q=top_q)
        slow = reference_ranking(_sim(music, video), margin=0.5, top_q=top_q)
        assert fast.item() == pytest.approx(slow.item(), rel=1e-10)
    # with every negative kept no tie is cut, so the gradients are unambiguous too
    fast = ranking_loss(_sim(music, video), margin=0.5, top_q="all")
    slow = reference_ranking(_sim(music, video), margin=0.5, top_q="all")
    for a, b in zip(_grads(fast, (music, video)), _grads(slow, (music, video)), strict=True):
        torch.testing.assert_close(a, b)


def test_ranking_loss_zero_when_pairs_are_separated_by_the_margin():
    emb = torch.eye(4, dtype=torch.float64)  # orthogonal pairs: positives 1, negatives 0
    assert ranking_loss(emb @ emb.t(), margin=0.1).item() == 0.0
    assert ranking_loss(emb @ emb.t(), margin=1.5).item() > 0.0


def test_ranking_loss_rejects_bad_arguments():
    sim = torch.zeros(3, 3)
    with pytest.raises(ValueError):
        ranking_loss(sim, top_q=0)
    with pytest.raises(ValueError):
        ranking_loss(torch.zeros(3, 4))


# ----- structure loss ----------------------------------------------------------------------------
@pytest.mark.parametrize("batch, n_anchors", [(9, 100), (9, 5), (9, 2), (2, 100), (30, 12)])
def test_structure_loss_matches_loop_reference(batch, n_anchors):
    g = torch.Generator().manual_seed(batch * 7 + n_anchors)
    x_in = torch.randn(batch, 11, generator=g, dtype=torch.float64)
    emb = F.normalize(torch.randn(batch, 4, generator=g, dtype=torch.float64), dim=1).requires_grad_()
    fast = structure_loss(x_in, emb, n_anchors=n_anchors)
    slow = reference_structure(x_in, emb, n_anchors)
    assert fast.item() == pytest.approx(slow.item(), rel=1e-10, abs=1e-14)
    (g_fast,) = _grads(fast, (emb,))
    (g_slow,) = _grads(slow, (emb,))
    torch.testing.assert_close(g_fast, g_slow, rtol=1e-9, atol=1e-12)


def test_structure_loss_only_anchors_and_columns_in_the_first_block_matter():
    g = torch.Generator().manual_seed(1)
    x_in = torch.randn(12, 5, generator=g, dtype=torch.float64)
    emb = F.normalize(torch.randn(12, 3, generator=g, dtype=torch.float64), dim=1)
    changed = emb.clone()
    changed[6:] = F.normalize(torch.randn(6, 3, generator=g, dtype=torch.float64), dim=1)
    assert structure_loss(x_in, emb, 6).item() == structure_loss(x_in, changed, 6).item()


def test_structure_loss_is_zero_when_orders_agree_and_positive_on_flips():
    g = torch.Generator().manual_seed(2)
    x_in = torch.randn(20, 8, generator=g, dtype=torch.float64)
    emb = F.normalize(x_in.clone(), dim=1).requires_grad_()
    loss = structure_loss(x_in, emb)
    assert loss.item() == 0.0
    (grad,) = _grads(loss, (emb,))
    assert torch.count_nonzero(grad) == 0
    scrambled = F.normalize(torch.randn(20, 8, generator=g, dtype=torch.float64), dim=1)
    assert structure_loss(x_in, scrambled).item() > 0.0


def test_structure_loss_gradient_step_reduces_order_flips():
    g = torch.Generator().manual_seed(3)
    x_in = torch.randn(40, 6, generator=g, dtype=torch.float64)
    emb = torch.randn(40, 6, generator=g, dtype=torch.float64, requires_grad=True)

    def flips(e):
        d_in = -(F.normalize(x_in, dim=1) @ F.normalize(x_in, dim=1).t())
        d_emb = -(F.normalize(e, dim=1) @ F.normalize(e, dim=1).t())
        return int((torch.sign(d_in[:, :-1] - d_in[:, 1:]) != torch.sign(d_emb[:, :-1] - d_emb[:, 1:])).sum())

    before = flips(emb.detach())
    optimizer = torch.optim.Adam([emb], lr=0.02)
    for _ in range(100):
        optimizer.zero_grad()
        structure_loss(x_in, emb).backward()
        optimizer.step()
    assert flips(emb.detach()) < 0.5 * before  # 734 → about 250 flips


def test_structure_loss_with_duplicate_vectors_and_tiny_batches():
    g = torch.Generator().manual_seed(4)
    x_in = torch.randn(6, 5, generator=g, dtype=torch.float64)
    x_in[4] = x_in[2]
    emb = F.normalize(torch.randn(6, 3, generator=g, dtype=torch.float64), dim=1)
    emb[5] = emb[1]
    emb.requires_grad_()
    fast = structure_loss(x_in, emb)
    slow = reference_structure(x_in, emb, 100)
    assert fast.item() == pytest.approx(slow.item(), rel=1e-10, abs=1e-14)
    torch.testing.assert_close(_grads(fast, (emb,))[0], _grads(slow, (emb,))[0])
    one = structure_loss(x_in[:1], emb[:1])
    assert one.item() == 0.0 and not math.isnan(one.item())
