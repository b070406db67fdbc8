"""Margin losses against their papers' formulas (float64 NumPy), a peer, gradcheck, half types."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import zoo_core as zoo

NAMES = ["softmax", "l-softmax", "sphereface", "normface", "cosface", "arcface",
         "combined-margin", "subcenter-arcface", "adaface", "magface"]

# options under which each loss carries no margin
NO_MARGIN = {
    "l-softmax": {"m": 1}, "sphereface": {"m": 1}, "normface": {}, "cosface": {"m": 0.0},
    "arcface": {"m": 0.0}, "combined-margin": {"m1": 1.0, "m2": 0.0, "m3": 0.0},
    "subcenter-arcface": {"m": 0.0, "k": 1}, "adaface": {"m": 0.0},
    "magface": {"l_m": 0.0, "u_m": 0.0, "lambda_g": 0.0},
}


def ce(logits: np.ndarray, target: np.ndarray) -> float:
    """Mean −log softmax(logits)[target], written out in float64."""
    z = logits - logits.max(1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    return float(-logp[np.arange(len(target)), target].mean())


def unit(a: np.ndarray) -> np.ndarray:
    return a / np.linalg.norm(a, axis=-1, keepdims=True)


def data(d: int = 6, c: int = 5, b: int = 7, seed: int = 0, scale: float = 5.0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(b, d, generator=g, dtype=torch.float64) * scale,
            torch.randint(0, c, (b,), generator=g))


def make(name: str, d: int = 6, c: int = 5, **kw):
    loss = zoo.create(f"loss:{name}", embedding_size=d, num_classes=c, **kw).double()
    with torch.no_grad():
        loss.weight.normal_(generator=torch.Generator().manual_seed(1))
    return loss


def cos_np(x, w):
    return unit(x) @ unit(w).T


@pytest.mark.parametrize("name", sorted(NO_MARGIN))
def test_margin_zero_is_normalised_softmax(name):
    x, t = data()
    loss = make(name, **NO_MARGIN[name]).eval()
    got = float(loss(x, t).detach())
    xn, w = x.numpy(), loss.weight.detach().numpy()
    if name == "l-softmax":
        logits = xn @ w.T
    elif name == "sphereface":
        logits = np.linalg.norm(xn, axis=1, keepdims=True) * cos_np(xn, w)
    else:
        logits = loss.s * cos_np(xn, w.reshape(w.shape[0], -1))
    assert got == pytest.approx(ce(logits, t.numpy()), rel=1e-10)


def test_softmax_matches_linear_cross_entropy():
    x, t = data()
    loss = make("softmax")
    lin = torch.nn.Linear(6, 5).double()
    lin.load_state_dict({"weight": loss.weight, "bias": loss.bias})
    torch.testing.assert_close(loss(x, t), torch.nn.CrossEntropyLoss()(lin(x), t))


def target_margin_loss(x, w, t, s, phi, reg=0.0):
    """CE with s·cos for non-targets and s·phi(cos θ_y, row) for targets."""
    c = cos_np(x, w)
    logits = s * c
    for i, y in enumerate(t):
        logits[i, y] = s * phi(c[i, y], i)
    return ce(logits, t) + reg


def test_cosface_formula():
    x, t = data()
    loss = make("cosface", s=30.0, m=0.35)
    exp = target_margin_loss(x.numpy(), loss.weight.detach().numpy(), t.numpy(), 30.0,
                             lambda c, i: c - 0.35)
    assert float(loss(x, t).detach()) == pytest.approx(exp, rel=1e-10)


@pytest.mark.parametrize("easy", [False, True])
def test_arcface_formula_including_fallback(easy):
    x, t = data(b=40, seed=3)
    loss = make("arcface", s=16.0, m=0.9, easy_margin=easy)
    c = cos_np(x.numpy(), loss.weight.detach().numpy())[np.arange(40), t.numpy()]
    assert (np.arccos(c) + 0.9 > np.pi).any() or easy, "test data must reach the fallback"
    assert (c < 0).any()

    def phi(c, i):
        th = math.acos(c)
        if easy:
            return math.cos(th + 0.9) if c > 0 else c
        return math.cos(th + 0.9) if th + 0.9 <= math.pi else c - 0.9 * math.sin(0.9)

    # reach θ + m > π: put some embeddings opposite their centre
    exp = target_margin_loss(x.numpy(), loss.weight.detach().numpy(), t.numpy(), 16.0, phi)
    assert float(loss(x, t).detach()) == pytest.approx(exp, rel=1e-9)


def test_arcface_matches_pytorch_metric_learning():
    import pytorch_metric_learning.losses as pml
    x, t = data(d=16, c=10, b=32, seed=5)
    ours = make("arcface", d=16, c=10, s=64.0, m=0.5)
    peer = pml.ArcFaceLoss(num_classes=10, embedding_size=16, margin=math.degrees(0.5),
                           scale=64).double()
    with torch.no_grad():
        peer.W.copy_(ours.weight.t())
    c = cos_np(x.numpy(), ours.weight.detach().numpy())[np.arange(32), t.numpy()]
    assert (np.arccos(c) + 0.5 < np.pi).all()  # the peer has no fallback
    torch.testing.assert_close(ours(x, t), peer(x, t))


def test_cosface_matches_pytorch_metric_learning():
    import pytorch_metric_learning.losses as pml
    x, t = data(d=16, c=10, b=32, seed=6)
    ours = make("cosface", d=16, c=10, s=64.0, m=0.35)
    peer = pml.CosFaceLoss(num_classes=10, embedding_size=16, margin=0.35, scale=64).double()
    with torch.no_grad():
        peer.W.copy_(ours.weight.t())
    torch.testing.assert_close(ours(x, t), peer(x, t))


def test_combined_margin_formula_and_tail():
    x, t = data(b=40, seed=4)
    m1, m2, m3 = 2.0, 0.3, 0.2
    loss = make("combined-margin", s=10.0, m1=m1, m2=m2, m3=m3)
    th_star = (math.pi - m2) / m1

    def phi(c, i):
        th = math.acos(c)
        if th <= th_star:
            return math.cos(m1 * th + m2) - m3
        return c - math.cos(th_star) - 1 - m3

    exp = target_margin_loss(x.numpy(), loss.weight.detach().numpy(), t.numpy(), 10.0, phi)
    assert float(loss(x, t).detach()) == pytest.approx(exp, rel=1e-9)


def psi_np(theta: float, m: int) -> float:
    k = min(int(theta * m // math.pi), m - 1)
    return (-1) ** k * math.cos(m * theta) - 2 * k


@pytest.mark.parametrize("name", ["l-softmax", "sphereface"])
def test_multiplicative_margin_formula(name):
    x, t = data(b=30, seed=2)
    loss = make(name, m=4, anneal=False, lambda_min=2.0).eval()
    xn, w, tn = x.numpy(), loss.weight.detach().numpy(), t.numpy()
    if name == "sphereface":
        w = unit(w)
    logits = xn @ w.T
    for i, y in enumerate(tn):
        norm = np.linalg.norm(xn[i]) * np.linalg.norm(w[y])
        theta = math.acos(logits[i, y] / norm)
        logits[i, y] = (2.0 * logits[i, y] + norm * psi_np(theta, 4)) / 3.0
    assert float(loss(x, t).detach()) == pytest.approx(ce(logits, tn), rel=1e-9)


def test_lambda_annealing_schedule():
    loss = make("sphereface")
    x, t = data()
    lams = []
    for _ in range(3):
        lams.append(loss.lambda_)
        loss(x, t)
    assert lams == pytest.approx([1000.0, 1000.0 / 1.12, 1000.0 / 1.24])
    loss.step.fill_(10**6)
    assert loss.lambda_ == 5.0


def test_subcenter_takes_the_closest_centre():
    x, t = data(b=9)
    loss = make("subcenter-arcface", k=3, s=20.0, m=0.4)
    w = loss.weight.detach().numpy()                                    # (C, k, D)
    c_all = np.einsum("bd,ckd->bck", unit(x.numpy()), unit(w)).max(2)
    logits = 20.0 * c_all
    for i, y in enumerate(t.numpy()):
        logits[i, y] = 20.0 * math.cos(math.acos(c_all[i, y]) + 0.4)
    assert float(loss(x, t).detach()) == pytest.approx(ce(logits, t.numpy()), rel=1e-9)


def test_adaface_formula_and_ema():
    x, t = data(b=8, scale=3.0)
    loss = make("adaface", s=32.0, m=0.4, h=0.333)
    norms = np.linalg.norm(x.numpy(), axis=1)
    mean = 0.99 * 20.0 + 0.01 * norms.mean()
    std = 0.99 * 100.0 + 0.01 * norms.std(ddof=1)
    z = np.clip((norms - mean) / (std + 1e-3) * 0.333, -1, 1)

    def phi(c, i):
        th = min(max(math.acos(c) - 0.4 * z[i], 1e-3), math.pi - 1e-3)
        return math.cos(th) - (0.4 * z[i] + 0.4)

    exp = target_margin_loss(x.numpy(), loss.weight.detach().numpy(), t.numpy(), 32.0, phi)
    assert float(loss(x, t).detach()) == pytest.approx(exp, rel=1e-9)
    assert float(loss.batch_mean) == pytest.approx(mean)
    assert float(loss.batch_std) == pytest.approx(std)


def test_magface_formula_with_regulariser():
    x, t = data(b=8, scale=15.0)
    loss = make("magface", s=32.0)
    a = np.clip(np.linalg.norm(x.numpy(), axis=1), 10, 110)
    m = 0.45 + (0.8 - 0.45) * (a - 10) / 100
    g = 1 / a + a / 110**2

    def phi(c, i):
        th = math.acos(c)
        return math.cos(th + m[i]) if th + m[i] <= math.pi else c - m[i] * math.sin(m[i])

    exp = target_margin_loss(x.numpy(), loss.weight.detach().numpy(), t.numpy(), 32.0, phi,
                             reg=35.0 * g.mean())
    assert float(loss(x, t).detach()) == pytest.approx(exp, rel=1e-9)


@pytest.mark.parametrize("name", NAMES)
def test_gradcheck_float64(name):
    x, t = data(d=4, c=3, b=5, seed=7)
    x.requires_grad_()
    kw = {"s": 4.0} if name not in ("softmax", "l-softmax", "sphereface") else {}
    loss = make(name, d=4, c=3, **kw).eval()
    names = list(loss.class_params())
    params = [p.detach().clone().requires_grad_() for p in loss.class_params().values()]

    def f(x, *ps):
        return torch.func.functional_call(loss, dict(zip(names, ps, strict=True)), (x, t))

    if name == "adaface":  # the norm enters the margin without gradient (by design): fix x
        assert torch.autograd.gradcheck(lambda *ps: f(x.detach(), *ps), tuple(params))
    else:
        assert torch.autograd.gradcheck(f, (x, *params))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", NAMES)
def test_half_precision_no_nan_at_cos_plus_minus_one(name, dtype):
    loss = zoo.create(f"loss:{name}", embedding_size=8, num_classes=4).to(dtype)
    w = loss.weight.detach().reshape(4, -1, 8)[:, 0]
    t = torch.tensor([0, 1, 2, 3])
    x = torch.cat([w[:2] * 400, -w[2:] * 400]).to(dtype).requires_grad_()   # cos θ = +1, −1
    out = loss(x, t)
    out.backward()
    assert torch.isfinite(out), out
    assert torch.isfinite(x.grad.float()).all()
    assert torch.isfinite(loss.weight.grad.float()).all()


def test_arcface_target_logit_is_monotonic():
    loss = zoo.create("loss:arcface", embedding_size=2, num_classes=2, m=0.5)
    theta = torch.linspace(0, math.pi, 2001, dtype=torch.float64)
    phi = loss.target_logit(torch.cos(theta), torch.zeros(1))
    assert (phi[1:] <= phi[:-1] + 1e-12).all()
    comb = zoo.create("loss:combined-margin", embedding_size=2, num_classes=2, m1=2.0, m2=0.3)
    phi = comb.target_logit(torch.cos(theta), torch.zeros(1))
    assert (phi[1:] <= phi[:-1] + 1e-12).all()
    assert (phi[1:] - phi[:-1]).abs().max() < 1e-2   # continuous at θ*


def test_ignore_index_rows_are_left_out():
    x, t = data(b=6)
    loss = make("arcface")
    t2 = t.clone()
    t2[[1, 4]] = -100
    keep = torch.tensor([0, 2, 3, 5])
    torch.testing.assert_close(loss(x, t2), loss(x[keep], t[keep]))


@pytest.mark.parametrize("bad, match", [
    (torch.tensor([0, 5]), "label 5"), (torch.tensor([0, -3]), "label -3"),
])
def test_bad_labels(bad, match, monkeypatch):
    monkeypatch.setenv("ZOO_DEBUG", "1")            # value checks sync: debug only
    loss = zoo.create("loss:arcface", embedding_size=4, num_classes=5)
    with pytest.raises(zoo.InputError, match=match):
        loss(torch.randn(2, 4), bad)


def test_embedding_size_mismatch():
    loss = zoo.create("loss:cosface", embedding_size=512, num_classes=5)
    with pytest.raises(zoo.InputError, match=r"embedding_size=256"):
        loss(torch.randn(2, 256), torch.tensor([0, 1]))


@pytest.mark.parametrize("name, kw, match", [
    ("arcface", {"m": 2.0}, "m=2.0"), ("cosface", {"m": -0.1}, "m=-0.1"),
    ("arcface", {"s": 0}, "s=0"), ("sphereface", {"m": 1.5}, "m=1.5"),
    ("combined-margin", {"m1": 0.5}, "m1=0.5"), ("magface", {"l_m": 0.9}, "l_m=0.9"),
    ("adaface", {"h": 0}, "h=0"),
])
def test_bad_margins(name, kw, match):
    with pytest.raises(zoo.ConfigError, match=match):
        zoo.create(f"loss:{name}", embedding_size=4, num_classes=3, **kw)


def test_fused_path_survives_softmax_underflow():
    """Target logit ≈ −1.24·s and a rival at +s: p_y underflows float32, the loss stays exact."""
    from zoo_face.margin import MarginLoss

    loss = zoo.create("loss:arcface", embedding_size=4, num_classes=3, s=64.0, m=0.5)
    with torch.no_grad():
        loss.weight.copy_(torch.tensor([[1.0, 0, 0, 0], [-1.0, 0, 0, 0], [0, 1.0, 0, 0]]))
    x = torch.tensor([[-3.0, 0, 0, 0], [0, 2.0, 0, 0]], requires_grad=True)
    t = torch.tensor([0, 2])
    results = []
    for fn in (type(loss).forward, MarginLoss.forward):
        loss.zero_grad()
        x.grad = None
        value = fn(loss, x, t)
        value.backward()
        results.append((value.detach(), x.grad.clone(), loss.weight.grad.clone()))
    phi1, phi2 = 64 * (-1 - 0.5 * math.sin(0.5)), 64 * math.cos(0.5)   # fallback; θ = 0
    lse = lambda v: max(v) + math.log(sum(math.exp(a - max(v)) for a in v))  # noqa: E731
    exp = (lse([phi1, 64.0, 0.0]) - phi1 + lse([phi2, 0.0, 0.0]) - phi2) / 2
    assert float(results[0][0]) == pytest.approx(exp, rel=1e-5)
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b)


def test_forward_never_asks_the_device_for_a_value(monkeypatch):
    """Without ZOO_DEBUG no value check runs: a bad label fails in the kernel, not ours."""
    monkeypatch.delenv("ZOO_DEBUG", raising=False)
    loss = zoo.create("loss:arcface", embedding_size=4, num_classes=5)
    with pytest.raises((IndexError, RuntimeError)):
        loss(torch.randn(2, 4), torch.tensor([0, 5]))


def arcface_by_autograd(x, w, t, s, m):
    """ArcFace written as its formula, differentiated by plain autograd (the reference)."""
    cos = torch.nn.functional.normalize(x, dim=1) @ torch.nn.functional.normalize(w, dim=1).T
    c = cos.gather(1, t[:, None]).squeeze(1)
    theta = torch.acos(c)
    phi = torch.where(theta + m <= math.pi, torch.cos(theta + m), c - m * math.sin(m))
    logits = s * cos.scatter(1, t[:, None], phi[:, None])
    return torch.nn.functional.cross_entropy(logits, t)


def loss_and_grads(fn, x, w):
    x = x.detach().clone().requires_grad_()
    w = w.detach().clone().requires_grad_()
    value = fn(x, w)
    value.backward()
    return value.detach(), x.grad, w.grad


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-10), (torch.float32, 1e-4)])
def test_fused_arcface_gradients_match_autograd_and_peer(dtype, tol):
    """Loss, ∂/∂x and ∂/∂W of the fused kernel against the formula under autograd (float64)
    and against pytorch-metric-learning; embeddings put on both sides of the fallback."""
    import pytorch_metric_learning.losses as pml
    g = torch.Generator().manual_seed(11)
    b, d, c = 48, 32, 3000
    w = torch.randn(c, d, generator=g, dtype=torch.float64) * 0.3
    t = torch.randint(0, c, (b,), generator=g)
    x = torch.randn(b, d, generator=g, dtype=torch.float64) * 4
    x[:6] = -w[t[:6]] * 20 + 0.05 * x[:6]                                # θ + m > π
    x[6:12] = w[t[6:12]] * 20 + 0.05 * x[6:12]                           # θ ≈ 0: p_y ≈ 1
    ours = zoo.create("loss:arcface", embedding_size=d, num_classes=c, s=64.0, m=0.5)
    ours = ours.to(dtype)

    def fused(x, w):
        return torch.func.functional_call(ours, {"weight": w}, (x, t))

    got = loss_and_grads(fused, x.to(dtype), w.to(dtype))
    exp = loss_and_grads(lambda x, w: arcface_by_autograd(x, w, t, 64.0, 0.5), x, w)
    for a, e in zip(got, exp, strict=True):
        torch.testing.assert_close(a.double(), e, rtol=tol, atol=tol * e.abs().max())
    peer = pml.ArcFaceLoss(num_classes=c, embedding_size=d, margin=math.degrees(0.5), scale=64)
    peer = peer.to(dtype)
    rest = slice(6, None)                                  # the peer has no fallback past π

    def peer_fn(x, w):
        return torch.func.functional_call(peer, {"W": w.T}, (x, t[rest]))

    def fused_rest(x, w):
        return torch.func.functional_call(ours, {"weight": w}, (x, t[rest]))

    got = loss_and_grads(fused_rest, x[rest].to(dtype), w.to(dtype))
    exp = loss_and_grads(peer_fn, x[rest].to(dtype), w.to(dtype))
    for a, e in zip(got, exp, strict=True):
        torch.testing.assert_close(a, e, rtol=tol, atol=tol * e.abs().max())


def test_fused_buffers_are_reused_only_when_nothing_else_holds_them():
    """The loss writes its centre gradient into last step's memory once ``zero_grad`` let go
    of it, never into a gradient the caller still holds; every step's values stay the
    formula's (autograd, float64), with accumulation across steps intact."""
    x, t = data(d=8, c=300, b=20, seed=4)
    loss = make("arcface", d=8, c=300, s=64.0, m=0.5)
    w = loss.weight.detach().clone().requires_grad_()
    arcface_by_autograd(x, w, t, 64.0, 0.5).backward()
    step = lambda: loss(x, t).backward()                                    # noqa: E731

    step()
    kept, kept_value = loss.weight.grad, loss.weight.grad.clone()
    assert kept._base is None                       # a plain tensor, not a view of the pool
    loss.zero_grad(set_to_none=True)
    step()                                          # ``kept`` still alive: fresh memory
    assert loss.weight.grad.data_ptr() != kept.data_ptr()
    torch.testing.assert_close(kept, kept_value, rtol=0, atol=0)
    del kept
    loss.zero_grad(set_to_none=True)
    step()                                          # nothing holds the old one: reused
    reused = loss.weight.grad.data_ptr()
    loss.zero_grad(set_to_none=True)
    step()
    assert loss.weight.grad.data_ptr() == reused
    torch.testing.assert_close(loss.weight.grad, w.grad, rtol=1e-10, atol=0)
    step()                                          # no zero_grad: the two steps add up
    torch.testing.assert_close(loss.weight.grad, 2 * w.grad, rtol=1e-10, atol=0)


def test_fused_backward_twice_with_retained_graph():
    """The backward borrows the logits buffer for B entries: a retained graph runs it again."""
    x, t = data(d=8, c=50, b=20, seed=9)
    x.requires_grad_()
    loss = make("arcface", d=8, c=50)
    value = loss(x, t)
    first = torch.autograd.grad(value, [x, loss.weight], retain_graph=True)
    second = torch.autograd.grad(value, [x, loss.weight])
    for a, b in zip(first, second, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
