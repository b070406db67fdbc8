"""Partial FC on 2 gloo processes against the single-process full-FC loss."""

from __future__ import annotations

import traceback

import pytest
import torch
import torch.distributed as dist

import zoo_core as zoo
from zoo_core.testing import run_distributed

D, C, B = 6, 11, 5   # 11 classes over 2 ranks: 6 + 5


def _data(seed: int):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2 * B, D, generator=g, dtype=torch.float64) * 4
    t = torch.randint(0, C, (2 * B,), generator=g)
    t[3] = -100                                    # an ignored row
    w = torch.randn(C, D, generator=g, dtype=torch.float64)
    return x, t, w


CASES = [("arcface", {"s": 16.0, "m": 0.5}), ("cosface", {"s": 16.0}),
         ("magface", {"s": 16.0}), ("adaface", {"s": 16.0})]


def _full(name, opts, x, t, w):
    full = zoo.create(f"loss:{name}", embedding_size=D, num_classes=C, **opts).double()
    full.weight.data.copy_(w)
    x = x.clone().requires_grad_()
    loss = full(x, t)
    loss.backward()
    return loss.detach(), x.grad, full.weight.grad


def _worker(rank: int, world_size: int) -> str:
    """One rank's checks; returns "ok" or the traceback (so that a failure is shown)."""
    try:
        assert world_size == 2
        for i, (name, opts) in enumerate(CASES):
            x, t, w = _data(i)
            pfc = zoo.create("loss:partial-fc", loss=name, embedding_size=D, num_classes=C,
                             sample_rate=1.0, **opts).double()
            lo, hi = pfc.class_start, pfc.class_end
            assert (lo, hi) == ((0, 6) if rank == 0 else (6, 11))
            assert pfc.margin_loss.weight.shape == (hi - lo, D)   # C / world_size per rank
            pfc.margin_loss.weight.data.copy_(w[lo:hi])
            xr = x[rank * B:(rank + 1) * B].clone().requires_grad_()
            loss = pfc(xr, t[rank * B:(rank + 1) * B])
            loss.backward()
            ref_loss, ref_xg, ref_wg = _full(name, opts, x, t, w)
            torch.testing.assert_close(loss.detach(), ref_loss, msg=f"{name}: loss")
            torch.testing.assert_close(xr.grad, ref_xg[rank * B:(rank + 1) * B],
                                       msg=f"{name}: embedding gradient")
            torch.testing.assert_close(pfc.margin_loss.weight.grad, ref_wg[lo:hi],
                                       msg=f"{name}: centre gradient")
        # sampling: positives of the global batch are always among the kept centres
        pfc = zoo.create("loss:partial-fc", loss="arcface", embedding_size=D, num_classes=40,
                         sample_rate=0.25)
        g = torch.Generator().manual_seed(rank)
        xr, tr = torch.randn(B, D, generator=g), torch.randint(0, 40, (B,), generator=g)
        labels = [torch.empty_like(tr) for _ in range(2)]
        dist.all_gather(labels, tr)
        local = torch.cat(labels) - pfc.class_start
        local = torch.where((local >= 0) & (local < pfc.num_local), local, -1)
        index, remapped = pfc.sample(local)
        assert index.numel() == max(5, len(set(local[local >= 0].tolist())))
        assert set(local[local >= 0].tolist()) <= set(index.tolist())
        assert torch.equal(index[remapped[remapped >= 0]], local[local >= 0])
        loss = pfc(xr.requires_grad_(), tr)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(xr.grad).all()
        return "ok"
    except Exception:
        return traceback.format_exc()


def test_partial_fc_two_gloo_ranks_equal_full_fc():
    results = run_distributed(_worker, world_size=2)
    assert results == ["ok", "ok"], "\n".join(results)


def test_single_process_rate_one_equals_full_fc():
    x, t, w = _data(0)
    pfc = zoo.create("loss:partial-fc", loss="arcface", embedding_size=D, num_classes=C,
                     sample_rate=1.0, s=16.0).double()
    pfc.margin_loss.weight.data.copy_(w)
    xg = x.clone().requires_grad_()
    loss = pfc(xg, t)
    loss.backward()
    ref_loss, ref_xg, ref_wg = _full("arcface", {"s": 16.0}, x, t, w)
    torch.testing.assert_close(loss.detach(), ref_loss)
    torch.testing.assert_close(xg.grad, ref_xg)
    torch.testing.assert_close(pfc.margin_loss.weight.grad, ref_wg)


def test_sampled_loss_equals_full_loss_on_the_kept_classes():
    x, t, w = _data(1)
    t[3] = 0
    torch.manual_seed(0)
    pfc = zoo.create("loss:partial-fc", loss="cosface", embedding_size=D, num_classes=C,
                     sample_rate=0.9, s=16.0).double()
    pfc.margin_loss.weight.data.copy_(w)
    torch.manual_seed(0)
    index, _ = pfc.sample(t)
    assert index.numel() == 10
    sub = {int(c): i for i, c in enumerate(index)}
    ref = zoo.create("loss:cosface", embedding_size=D, num_classes=10, s=16.0).double()
    ref.weight.data.copy_(w[index])
    torch.manual_seed(0)
    torch.testing.assert_close(pfc(x, t), ref(x, torch.tensor([sub[int(c)] for c in t])))


def test_sparse_gradient_holds_only_sampled_rows():
    pfc = zoo.create("loss:partial-fc", loss="arcface", embedding_size=8, num_classes=100,
                     sample_rate=0.1, sparse_grad=True)
    x = torch.randn(4, 8, requires_grad=True)
    pfc(x, torch.tensor([1, 2, 3, 50])).backward()
    grad = pfc.margin_loss.weight.grad
    assert grad.is_sparse
    rows = grad.coalesce().indices()[0]
    assert rows.numel() == 10 and {1, 2, 3, 50} <= set(rows.tolist())


@pytest.mark.parametrize("kw, match", [({"sample_rate": 0.0}, "sample_rate=0.0"),
                                       ({"sample_rate": 1.5}, "sample_rate=1.5")])
def test_bad_sample_rate(kw, match):
    with pytest.raises(zoo.ConfigError, match=match):
        zoo.create("loss:partial-fc", embedding_size=4, num_classes=10, **kw)


def test_bad_label_names_the_value(monkeypatch):
    monkeypatch.setenv("ZOO_DEBUG", "1")
    pfc = zoo.create("loss:partial-fc", embedding_size=4, num_classes=10)
    with pytest.raises(zoo.InputError, match="label 10"):
        pfc(torch.randn(2, 4), torch.tensor([0, 10]))
