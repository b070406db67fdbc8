"""MoCo's Algorithm 1 against an independent re-computation: the momentum formula applied
before the keys, logits ``[q·k, q·queue] / T`` with labels 0, the queue as a circular buffer
(pointer wrap), eval mode changing nothing, v3's symmetric logits, and ``loss:infonce``
against the written-out formula."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from zoo_moco.moco import MoCo

import zoo_core as zoo

N, K, M, T = 4, 10, 0.9, 0.2


def _moco(**overrides) -> MoCo:
    torch.manual_seed(0)
    fields = dict(queue_size=K, momentum=M, temperature=T, **overrides)
    return zoo.create("model:moco", preset="tiny", **fields).train()


def _views(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N, 1, 8, 8, generator=g)
    return x + 0.1 * torch.randn(x.shape, generator=g), x + 0.1 * torch.randn(x.shape, generator=g)


def _perturb(moco: MoCo) -> None:
    """Make the key encoder differ from the query encoder, as after some training."""
    with torch.no_grad():
        for p in moco.encoder_q.parameters():
            p.add_(0.1 * torch.randn_like(p))


def test_one_step_equals_algorithm_1():
    moco = _moco()
    _perturb(moco)
    enc_q, enc_k = copy.deepcopy(moco.encoder_q), copy.deepcopy(moco.encoder_k)
    queue, ptr = moco.queue.clone(), int(moco.queue_ptr)
    im_q, im_k = _views(1)
    logits, labels = moco(im_q, im_k)
    with torch.no_grad():  # θ_k ← m θ_k + (1 − m) θ_q, then the keys with the new θ_k
        for pk, pq in zip(enc_k.parameters(), enc_q.parameters(), strict=True):
            pk.copy_(M * pk + (1 - M) * pq)
        for got, want in zip(moco.encoder_k.parameters(), enc_k.parameters(), strict=True):
            torch.testing.assert_close(got, want)
        q = F.normalize(enc_q(im_q), dim=1)
        k = F.normalize(enc_k(im_k), dim=1)
        want = torch.cat([(q * k).sum(1, keepdim=True), q @ queue], 1) / T
    torch.testing.assert_close(logits, want)
    assert torch.equal(labels, torch.zeros(N, dtype=torch.long))
    slots = [(ptr + i) % K for i in range(N)]
    queue[:, slots] = k.T
    torch.testing.assert_close(moco.queue, queue)
    assert int(moco.queue_ptr) == (ptr + N) % K


def test_queue_is_a_circular_buffer():
    moco = _moco()
    columns: list[torch.Tensor | None] = [None] * K  # a plain circular buffer, kept by hand
    write = 0
    for step in range(4):  # 4 batches of 4 into 10 slots: the pointer wraps twice
        snapshot = copy.deepcopy(moco.encoder_k)
        im_q, im_k = _views(10 + step)
        moco(im_q, im_k)
        with torch.no_grad():
            for pk, pq in zip(snapshot.parameters(), moco.encoder_q.parameters(), strict=True):
                pk.copy_(M * pk + (1 - M) * pq)
            k = F.normalize(snapshot(im_k), dim=1)
        for row in k:
            columns[write] = row
            write = (write + 1) % K
        assert int(moco.queue_ptr) == write
    torch.testing.assert_close(moco.queue, torch.stack(columns, dim=1))  # type: ignore[arg-type]
    torch.testing.assert_close(moco.queue.norm(dim=0), torch.ones(K))


def test_eval_mode_changes_nothing_and_only_the_query_encoder_learns():
    moco = _moco()
    _perturb(moco)
    state = copy.deepcopy(moco.state_dict())
    moco.eval()
    first = moco(*_views(2))
    for key, value in moco.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert torch.equal(moco(*_views(2))[0], first[0])
    moco.train()
    F.cross_entropy(*moco(*_views(3))).backward()
    assert all(p.grad is None for p in moco.encoder_k.parameters())
    assert all(p.grad is not None for p in moco.encoder_q.parameters())


def test_symmetric_loss_without_queue():
    moco = _moco(symmetric=True)
    _perturb(moco)
    assert moco.K == 0
    enc_q, enc_k = copy.deepcopy(moco.encoder_q), copy.deepcopy(moco.encoder_k)
    x1, x2 = _views(4)
    logits, labels = moco(x1, x2)
    with torch.no_grad():
        for pk, pq in zip(enc_k.parameters(), enc_q.parameters(), strict=True):
            pk.copy_(M * pk + (1 - M) * pq)
        q1, q2 = F.normalize(enc_q(x1), dim=1), F.normalize(enc_q(x2), dim=1)
        k1, k2 = F.normalize(enc_k(x1), dim=1), F.normalize(enc_k(x2), dim=1)
        ctr = [F.cross_entropy(q @ k.T / T, torch.arange(N)) for q, k in ((q1, k2), (q2, k1))]
    torch.testing.assert_close(logits[..., 0], q1 @ k2.T / T)
    torch.testing.assert_close(logits[..., 1], q2 @ k1.T / T)
    torch.testing.assert_close(F.cross_entropy(logits, labels), (ctr[0] + ctr[1]) / 2)


def test_wraps_a_module_or_a_component():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 12))
    moco = MoCo.wrap(net, preset="tiny", feature_dim=12)
    assert moco.encoder_q.backbone is net and moco.encoder_k.backbone is not net
    logits, _ = moco(*_views(5))
    assert logits.shape == (N, 1 + moco.K)
    with pytest.raises(zoo.ConfigError, match="set feature_dim"):
        MoCo.wrap(net, preset="tiny")
    other = zoo.create("model:moco", preset="tiny", backbone="model:convnet",
                       backbone_preset="digits", mlp=False)
    assert isinstance(other.encoder_q.head, nn.Linear) and other.encoder_q.head.in_features == 128


def test_refusals():
    with pytest.raises(zoo.ConfigError, match="temperature -1.0"):
        zoo.create("model:moco", preset="tiny", temperature=-1.0)
    moco = _moco()
    x = torch.randn(K + 1, 1, 8, 8)
    with pytest.raises(zoo.InputError, match="global batch of 11 keys does not fit"):
        moco(x, x)


def _infonce(q, k, negatives, t):
    """The formula written out, one query at a time, in float64."""
    q, k = F.normalize(q.double(), dim=1), F.normalize(k.double(), dim=1)
    total = 0.0
    for i in range(q.shape[0]):
        if negatives is None:
            others = [k[j] for j in range(k.shape[0]) if j != i]
        else:
            others = list(F.normalize(negatives.double(), dim=1))
        pos = math.exp(float(q[i] @ k[i]) / t)
        total += -math.log(pos / (pos + sum(math.exp(float(q[i] @ n) / t) for n in others)))
    return total / q.shape[0]


@pytest.mark.parametrize("with_queue", [False, True])
def test_infonce_equals_the_formula(with_queue):
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(5, 6, generator=g), torch.randn(5, 6, generator=g)
    negatives = torch.randn(7, 6, generator=g) if with_queue else None
    loss = zoo.create("loss:infonce", temperature=0.07)
    got = loss(q, k, negatives) if with_queue else loss(q, k)
    assert abs(got.item() - _infonce(q, k, negatives, 0.07)) < 1e-5


def test_moco_logits_give_infonce():
    moco = _moco()
    _perturb(moco)
    queue = moco.queue.clone()
    im_q, im_k = _views(6)
    logits, labels = moco(im_q, im_k)
    q = F.normalize(moco.encoder_q(im_q), dim=1)
    k = moco.queue[:, :N].T  # the keys just enqueued
    want = zoo.create("loss:infonce", temperature=T)(q, k, queue.T)
    torch.testing.assert_close(F.cross_entropy(logits, labels), want)
