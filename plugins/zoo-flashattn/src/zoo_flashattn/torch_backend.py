"""The ``torch`` backend: FlashAttention-2's algorithm block by block in plain PyTorch.

Dao 2023 (arXiv:2307.08691), Algorithm 1 (forward) and Algorithm 2 (backward). For a query
block ``Q_i`` the key blocks ``K_j, V_j`` stream past while a running maximum ``m``, a running
sum ``ℓ`` and an unnormalised output ``Õ`` are rescaled (the online softmax):

    m⁽ʲ⁾ = max(m⁽ʲ⁻¹⁾, rowmax(S_ij)),   P̃ = exp(S_ij − m⁽ʲ⁾)
    ℓ⁽ʲ⁾ = e^{m⁽ʲ⁻¹⁾−m⁽ʲ⁾} ℓ⁽ʲ⁻¹⁾ + rowsum(P̃),   Õ⁽ʲ⁾ = e^{m⁽ʲ⁻¹⁾−m⁽ʲ⁾} Õ⁽ʲ⁻¹⁾ + P̃ V_j
    O_i = Õ / ℓ,   L_i = m + log ℓ   (the log-sum-exp kept for the backward)

The backward recomputes ``P = exp(S − L)`` block by block with ``Δ = rowsum(dO ∘ O)``:
``dV += Pᵀ dO``, ``dP = dO Vᵀ``, ``dS = P ∘ (dP − Δ)``, ``dQ += dS K``, ``dK += dSᵀ Q``.
Only (block × block) scores exist at any time: O(S) extra memory, never the S × S matrix.
It runs on any device and dtype, and is the reference the Triton kernels are tested against.

Dropout keeps score ``(i, j)`` of batch-head ``bh`` when a counter-based hash of
``(seed, bh, i, j)`` clears the threshold, so the mask is a function of the seed: forward
and backward, this backend and the Triton kernel, all draw the same mask.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._spec import Call, Spec

BLOCK = 512  # tile side; smaller when batch × heads is large (see _block)
_TILE_BUDGET = 2**24  # elements of one (B, H, block, block) tile: 64 MiB in fp32
_M32 = 0xFFFFFFFF


def _block(batch_heads: int) -> int:
    """Tile side: BLOCK, halved (down to 64) while one tile would exceed the budget."""
    size = BLOCK
    while size > 64 and batch_heads * size * size > _TILE_BUDGET:
        size //= 2
    return size


def _mix(x: Tensor) -> Tensor:
    """A 32-bit integer finaliser (xor-shift-multiply) on int64 tensors holding uint32."""
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & _M32
    x = x ^ (x >> 15)
    x = (x * 0x846CA68B) & _M32
    return x ^ (x >> 16)


def dropout_keep(seed: int, bh: Tensor, rows: Tensor, cols: Tensor, p: float) -> Tensor:
    """Bool keep-mask: ``hash(seed, bh, i, j) >> 8 >= floor(p · 2²⁴)`` (broadcasts)."""
    base = _mix(torch.as_tensor(seed, dtype=torch.int64) ^ ((bh * 0x9E3779B9) & _M32))
    row = _mix(base ^ rows)
    return (_mix(row ^ ((cols * 0x85EBCA6B) & _M32)) >> 8) >= int(p * 2**24)


def allowed(rows: Tensor, cols: Tensor, sq: int, sk: int, spec: Spec) -> Tensor:
    """(rows, cols) bool mask of the window and the key length."""
    diag = rows + (sk - sq)
    mask = cols < sk
    if spec.window_right >= 0:
        mask = mask & (cols <= diag + spec.window_right)
    if spec.window_left >= 0:
        mask = mask & (cols >= diag - spec.window_left)
    return mask


def scores(qi: Tensor, kj: Tensor, rows: Tensor, cols: Tensor, sq: int, sk: int, spec: Spec,
           slopes: Tensor | None, kpm: Tensor | None) -> tuple[Tensor, Tensor | None]:
    """Scores of one block, ``-inf`` where masked, and ``tanh`` of the capped part (or None).

    ``qi`` (B, Hkv, G, bm, D), ``kj`` (B, Hkv, 1, bn, D), ``slopes`` (B, Hkv, G, 1, 1),
    ``kpm`` (B, 1, 1, 1, bn) bool; returns (B, Hkv, G, bm, bn).
    """
    s = (qi @ kj.transpose(-1, -2)) * spec.sm_scale
    t = None
    if spec.softcap > 0:
        t = torch.tanh(s / spec.softcap)
        s = spec.softcap * t
    if slopes is not None:
        s = s - slopes * (rows + (sk - sq) - cols).abs()
    windowed = spec.window_left >= 0 or spec.window_right >= 0
    mask = allowed(rows, cols, sq, sk, spec) if windowed else None  # cols < sk always
    if kpm is not None:
        mask = kpm if mask is None else mask & kpm
    if mask is not None:
        s = s.masked_fill(~mask, float("-inf"))
    return s, t


def key_range(m0: int, m1: int, sq: int, sk: int, spec: Spec) -> tuple[int, int]:
    """Keys ``[lo, hi)`` that queries ``[m0, m1)`` may see (block skipping)."""
    lo = max(0, m0 + sk - sq - spec.window_left) if spec.window_left >= 0 else 0
    hi = min(sk, m1 + sk - sq + spec.window_right) if spec.window_right >= 0 else sk
    return lo, hi


class _Ctx:
    """Per-call constants of the block loops, for one dense (B, H, S, D) problem."""

    def __init__(self, q: Tensor, k: Tensor, spec: Spec, slopes: Tensor | None,
                 kpm: Tensor | None, b0: int, mask: Tensor | None = None) -> None:
        self.b, self.h, self.sq, self.d = q.shape
        self.hkv, self.sk, self.g = k.shape[1], k.shape[2], spec.groups
        self.spec, self.dev = spec, q.device
        self.ct = q.dtype if q.dtype == torch.float64 else torch.float32
        self.slopes = None if slopes is None else \
            slopes.view(self.b, self.hkv, self.g, 1, 1).to(self.ct)
        self.kpm = None if kpm is None else kpm.view(self.b, 1, 1, 1, self.sk)
        # SDPA's attn_mask as a (B, Hkv, G, Sq, Sk) view of the broadcast (no copy)
        self.mask = None if mask is None else mask.expand(self.b, self.h, self.sq, self.sk) \
            .view(self.b, self.hkv, self.g, self.sq, self.sk)
        heads = torch.arange(self.h, device=self.dev).view(1, self.hkv, self.g, 1, 1)
        batch = torch.arange(b0, b0 + self.b, device=self.dev).view(self.b, 1, 1, 1, 1)
        self.bh = batch * self.h + heads  # (B, Hkv, G, 1, 1)
        self.tile = _block(self.b * self.h)

    def idx(self, a: int, b: int, col: bool) -> Tensor:
        r = torch.arange(a, b, device=self.dev)
        return r.view(1, -1) if col else r.view(-1, 1)

    def block(self, qi: Tensor, k: Tensor, m0: int, m1: int, n0: int, n1: int
              ) -> tuple[Tensor, Tensor | None, Tensor, Tensor]:
        rows, cols = self.idx(m0, m1, False), self.idx(n0, n1, True)
        kj = k[:, :, None, n0:n1].to(self.ct)
        kpm = None if self.kpm is None else self.kpm[..., n0:n1]
        s, t = scores(qi, kj, rows, cols, self.sq, self.sk, self.spec, self.slopes, kpm)
        if self.mask is not None:
            m = self.mask[..., m0:m1, n0:n1]
            s = s.masked_fill(~m, float("-inf")) if m.dtype == torch.bool else s + m.to(self.ct)
        return s, t, rows, cols

    def keep(self, rows: Tensor, cols: Tensor) -> Tensor:
        return dropout_keep(self.spec.seed, self.bh, rows, cols, self.spec.dropout_p)


def forward_dense(q: Tensor, k: Tensor, v: Tensor, spec: Spec, slopes: Tensor | None,
                  kpm: Tensor | None, b0: int = 0, mask: Tensor | None = None
                  ) -> tuple[Tensor, Tensor]:
    """Algorithm 1 on (B, H, Sq, D) / (B, Hkv, Sk, D); returns out and lse (B, H, Sq).

    ``lse`` is float32, float64 for float64 inputs (the backward needs it exact). ``mask``
    is SDPA's ``attn_mask`` (bool, or float added to the scores), broadcast to (B, H, Sq, Sk).
    """
    c = _Ctx(q, k, spec, slopes, kpm, b0, mask)
    qg = q.reshape(c.b, c.hkv, c.g, c.sq, c.d)  # (B, Hkv, G, Sq, D)
    out = torch.empty_like(qg)
    lse = torch.empty(c.b, c.hkv, c.g, c.sq, device=c.dev, dtype=c.ct)
    drop = 1.0 / (1.0 - spec.dropout_p)
    for m0 in range(0, c.sq, c.tile):
        m1 = min(m0 + c.tile, c.sq)
        qi = qg[..., m0:m1, :].to(c.ct)  # (B, Hkv, G, bm, D)
        m = torch.full(qi.shape[:-1], float("-inf"), device=c.dev, dtype=c.ct)
        ell = torch.zeros_like(m)
        acc = torch.zeros_like(qi)
        lo, hi = key_range(m0, m1, c.sq, c.sk, spec)
        for n0 in range(lo, hi, c.tile):
            n1 = min(n0 + c.tile, hi)
            s, _, rows, cols = c.block(qi, k, m0, m1, n0, n1)  # (B, Hkv, G, bm, bn)
            m_new = torch.maximum(m, s.amax(-1))
            m_safe = m_new.masked_fill(m_new == float("-inf"), 0.0)
            p = torch.exp(s - m_safe[..., None])
            alpha = torch.exp(m - m_safe)
            ell = ell * alpha + p.sum(-1)
            if spec.dropout_p > 0:
                p = p * (c.keep(rows, cols) * drop)
            acc = acc * alpha[..., None] + p @ v[:, :, None, n0:n1].to(c.ct)
            m = m_new
        empty = ell == 0
        out[..., m0:m1, :] = (acc / ell.masked_fill(empty, 1.0)[..., None]).to(q.dtype)
        lse[..., m0:m1] = (m + torch.log(ell)).masked_fill(empty, float("-inf"))
    return out.view_as(q), lse.view(c.b, c.h, c.sq)


def backward_dense(do: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor,
                   spec: Spec, slopes: Tensor | None, kpm: Tensor | None, b0: int = 0,
                   mask: Tensor | None = None, mask_grad: bool = False
                   ) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
    """Algorithm 2 on dense tensors; returns dq, dk, dv in the inputs' dtypes, and with
    ``mask_grad`` the gradient of the float ``mask`` summed to its shape (else None)."""
    c = _Ctx(q, k, spec, slopes, kpm, b0, mask)
    dmask = torch.zeros(c.b, c.hkv, c.g, c.sq, c.sk, device=c.dev, dtype=c.ct) \
        if mask_grad and mask is not None and mask.is_floating_point() else None
    shape = (c.b, c.hkv, c.g, c.sq)
    qg, dog = q.reshape(*shape, c.d), do.reshape(*shape, c.d)
    delta = (dog.to(c.ct) * out.reshape(*shape, c.d).to(c.ct)).sum(-1)  # (B, Hkv, G, Sq)
    lse = lse.reshape(shape).to(c.ct)
    lse = lse.masked_fill(lse == float("-inf"), float("inf"))  # empty rows: P = 0
    dq = torch.zeros(*shape, c.d, device=c.dev, dtype=c.ct)
    dk = torch.zeros(c.b, c.hkv, c.sk, c.d, device=c.dev, dtype=c.ct)
    dv = torch.zeros_like(dk)
    drop = 1.0 / (1.0 - spec.dropout_p)
    for m0 in range(0, c.sq, c.tile):
        m1 = min(m0 + c.tile, c.sq)
        qi, doi = qg[..., m0:m1, :].to(c.ct), dog[..., m0:m1, :].to(c.ct)
        li, di = lse[..., m0:m1, None], delta[..., m0:m1, None]
        lo, hi = key_range(m0, m1, c.sq, c.sk, spec)
        for n0 in range(lo, hi, c.tile):
            n1 = min(n0 + c.tile, hi)
            s, t, rows, cols = c.block(qi, k, m0, m1, n0, n1)
            p = torch.exp(s - li)  # (B, Hkv, G, bm, bn)
            vj = v[:, :, None, n0:n1].to(c.ct)
            dp = doi @ vj.transpose(-1, -2)
            if spec.dropout_p > 0:
                scale = c.keep(rows, cols) * drop
                dv[:, :, n0:n1] += ((p * scale).transpose(-1, -2) @ doi).sum(2)
                dp = dp * scale
            else:
                dv[:, :, n0:n1] += (p.transpose(-1, -2) @ doi).sum(2)
            ds = p * (dp - di)
            if dmask is not None:      # the mask is added after the cap: ∂s/∂mask = 1
                dmask[..., m0:m1, n0:n1] = ds
            if t is not None:
                ds = ds * (1.0 - t * t)
            dq[..., m0:m1, :] += ds @ k[:, :, None, n0:n1].to(c.ct)
            dk[:, :, n0:n1] += (ds.transpose(-1, -2) @ qi).sum(2)
    dq, dk = dq.mul_(spec.sm_scale), dk.mul_(spec.sm_scale)  # in place: no extra copies
    if dmask is not None and mask is not None:
        dmask = dmask.view(c.b, c.h, c.sq, c.sk).sum_to_size(mask.shape).to(mask.dtype)
    return dq.view_as(q).to(q.dtype), dk.to(k.dtype), dv.to(v.dtype), dmask


def _sequences(call: Call) -> list[tuple[int, slice, slice]]:
    cu_q, cu_k = call.cu_q.tolist(), call.cu_k.tolist()  # type: ignore[union-attr]
    return [(b, slice(cu_q[b], cu_q[b + 1]), slice(cu_k[b], cu_k[b + 1]))
            for b in range(len(cu_q) - 1)]


def _dense(x: Tensor) -> Tensor:  # (S, H, D) -> (1, H, S, D)
    return x.transpose(0, 1).unsqueeze(0)


class _Blockwise(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, mask, call):  # type: ignore[override]
        spec = call.spec
        if not spec.varlen:
            out, lse = forward_dense(q, k, v, spec, call.slopes, call.kpm, mask=mask)
        else:
            out = torch.empty_like(q)
            ct = torch.float64 if q.dtype == torch.float64 else torch.float32
            lse = torch.empty(spec.heads, q.shape[0], device=q.device, dtype=ct)
            for b, sq, sk in _sequences(call):
                slopes = None if call.slopes is None else call.slopes[b:b + 1]
                o, l_ = forward_dense(_dense(q[sq]), _dense(k[sk]), _dense(v[sk]), spec,
                                      slopes, None, b0=b)
                out[sq] = o[0].transpose(0, 1)
                lse[:, sq] = l_[0]
        ctx.save_for_backward(q, k, v, out, lse, mask)
        ctx.call = call
        ctx.mark_non_differentiable(lse)
        return out, lse

    @staticmethod
    def backward(ctx, do, _dlse):  # type: ignore[override]
        q, k, v, out, lse, mask = ctx.saved_tensors
        call: Call = ctx.call
        spec = call.spec
        if not spec.varlen:
            return (*backward_dense(do, q, k, v, out, lse, spec, call.slopes, call.kpm,
                                    mask=mask, mask_grad=ctx.needs_input_grad[3]), None)
        dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
        for b, sq, sk in _sequences(call):
            slopes = None if call.slopes is None else call.slopes[b:b + 1]
            grads = backward_dense(_dense(do[sq]), _dense(q[sq]), _dense(k[sk]), _dense(v[sk]),
                                   _dense(out[sq]), lse[None, :, sq], spec, slopes, None, b0=b)
            for dst, g, rows in zip((dq, dk, dv), grads[:3], (sq, sk, sk), strict=True):
                dst[rows] = g[0].transpose(0, 1)
        return dq, dk, dv, None, None


def attention(call: Call) -> tuple[Tensor, Tensor]:
    """Run a validated call; returns (out, lse)."""
    return _Blockwise.apply(call.q, call.k, call.v, call.mask, call)
