"""The closed-form step equals minus alpha times the autograd gradient of eq. 4 (1310.4546)."""

import pytest
import torch
import torch.nn.functional as F
from zoo_word2vec.sgd import cbow_step, hierarchical_block, negative_block, skipgram_step
from zoo_word2vec.vocab import huffman

import zoo_core as zoo

V, D, B, C, K = 30, 8, 6, 4, 3
ALPHA = 0.05


def _setup(seed=0):
    g = torch.Generator().manual_seed(seed)
    syn0 = torch.randn(V, D, generator=g, dtype=torch.float64) * 0.3
    syn1neg = torch.randn(V, D, generator=g, dtype=torch.float64) * 0.3
    syn1 = torch.randn(V - 1, D, generator=g, dtype=torch.float64) * 0.3
    centre = torch.randint(0, V, (B,), generator=g)
    ctx = torch.randint(0, V, (B, C), generator=g)
    mask = torch.rand(B, C, generator=g) < 0.7
    mask[0] = False  # a centre word without context
    neg = torch.randint(0, V, (B, K), generator=g)
    neg[1, 0] = centre[1]  # a noise word equal to the centre word is skipped
    counts = torch.randint(1, 100, (V,), generator=g).tolist()
    return syn0, syn1neg, syn1, centre, ctx, mask, neg, counts


def _paper_loss(h, rows, labels):
    """-[y log s(u.h) + (1 - y) log s(-u.h)] summed (eq. 4 of arXiv:1310.4546)."""
    s = (rows * h).sum(-1)
    return -(labels * F.logsigmoid(s) + (1 - labels) * F.logsigmoid(-s)).sum()


def _reference(syn0, syn1neg, syn1, centre, ctx, mask, neg, counts, sg, cbow_mean):
    """Autograd of the loss, written prediction by prediction from the paper.

    CBOW applies the tool's convention to the context words: each gets dL/dh itself with the
    mean (cbow_mean=1), dL/dh / window size with the sum (cbow_mean=0), as gensim does.
    """
    syn0, syn1neg, syn1 = (t.clone().requires_grad_() for t in (syn0, syn1neg, syn1))
    points, codes, lengths = huffman(counts)
    total = torch.zeros((), dtype=torch.float64)
    cbow_grad = torch.zeros_like(syn0)
    for b in range(B):
        ctx_ids = ctx[b][mask[b]]
        if ctx_ids.numel() == 0:
            continue
        keep = [n for n in neg[b].tolist() if n != centre[b]]
        ns_ids = torch.tensor([int(centre[b])] + keep)
        ns_lab = torch.tensor([1.0] + [0.0] * len(keep), dtype=torch.float64)
        n = int(lengths[centre[b]])
        hs_ids, hs_lab = points[centre[b], :n], 1.0 - codes[centre[b], :n].double()
        if sg:
            inputs = [syn0[c] for c in ctx_ids]
        else:
            h = syn0.detach()[ctx_ids].sum(0)
            inputs = [(h / len(ctx_ids) if cbow_mean else h).requires_grad_()]
        for h in inputs:
            loss = _paper_loss(h, syn1neg[ns_ids], ns_lab) + _paper_loss(h, syn1[hs_ids], hs_lab)
            if not sg:
                (gh,) = torch.autograd.grad(loss, h, retain_graph=True)
                scale = 1.0 if cbow_mean else 1.0 / len(ctx_ids)
                cbow_grad.index_add_(0, ctx_ids, (gh * scale).expand(len(ctx_ids), D))
            total = total + loss
    total.backward()
    g0 = syn0.grad if sg else cbow_grad
    return g0, syn1neg.grad, syn1.grad, float(total.detach())


@pytest.mark.parametrize("sg, cbow_mean", [(1, 1), (0, 1), (0, 0)])
def test_step_is_minus_alpha_gradient(sg, cbow_mean):
    syn0, syn1neg, syn1, centre, ctx, mask, neg, counts = _setup()
    g0, g1neg, g1, ref_loss = _reference(syn0, syn1neg, syn1, centre, ctx, mask, neg, counts,
                                         sg, cbow_mean)
    new0, new1neg, new1 = syn0.clone(), syn1neg.clone(), syn1.clone()
    points, codes, lengths = huffman(counts)
    blocks = [hierarchical_block(new1, centre, points, codes, lengths),
              negative_block(new1neg, centre, neg)]
    if sg:
        loss = skipgram_step(new0, ctx, mask, blocks, ALPHA)
    else:
        loss = cbow_step(new0, ctx, mask, blocks, ALPHA, bool(cbow_mean))
    assert float(loss) == pytest.approx(ref_loss, rel=1e-10)
    torch.testing.assert_close(new1neg - syn1neg, -ALPHA * g1neg)
    torch.testing.assert_close(new1 - syn1, -ALPHA * g1)
    torch.testing.assert_close(new0 - syn0, -ALPHA * g0)


def test_forward_is_the_paper_loss():
    model = zoo.create("model:word2vec", preset="tiny", sg=1, vocab_size=V).double()
    syn0, syn1neg, syn1, centre, ctx, mask, neg, counts = _setup()
    with torch.no_grad():
        model.vectors.copy_(syn0)
        model.syn1neg.copy_(syn1neg)
        model.syn1.copy_(syn1)
        model.counts.copy_(torch.tensor(counts))
    model._tables = None
    negk = neg[:, :2]
    _, _, _, ref = _reference(syn0, syn1neg, syn1, centre, ctx, mask, negk, counts, 1, 1)
    with torch.no_grad():
        got = model(ctx, centre, mask, negk)
    assert float(got) == pytest.approx(ref / int(mask.sum()), rel=1e-10)
