"""``kernel:attention``: exact softmax attention with FlashAttention-2 backends.

Computes ``O = softmax(S) V`` with ``S = Q Kᵀ · sm_scale`` (Vaswani et al. 2017, Eq. 1) plus
the options FlashAttention-2 (Dao 2023, arXiv:2307.08691) serves: causal and sliding-window
masks, softcapping, ALiBi, dropout, grouped-query attention, packed variable-length batches
and the log-sum-exp ``L = log Σⱼ exp(S_ij)``. Conventions: :mod:`zoo_flashattn._spec`.

Backends, fastest first:

* ``triton``: our FlashAttention-2 forward and backward kernels (CUDA; on CPU only under
  ``TRITON_INTERPRET=1`` when forced, for testing); the backward is deterministic (no
  atomics). On an H100 it ran 1.2-1.6x SDPA's FlashAttention-2 backend and 0.65-0.93x its
  cuDNN backend (benchmarks/attention_gpu.py); force ``backend="sdpa"`` to let SDPA choose;
* ``sdpa``: ``torch.nn.functional.scaled_dot_product_attention`` where it has the options;
* ``torch``: the same blockwise algorithm in plain PyTorch, O(S) extra memory, any device.

Example:
    >>> import zoo_core as zoo
    >>> attn = zoo.create("kernel:attention")
    >>> q = k = v = torch.randn(2, 8, 128, 64)                 # (B, H, S, D)
    >>> out = attn(q, k, v, causal=True)                        # (B, H, S, D)
    >>> out = attn(q, k, v, attn_mask=mask, is_causal=False, scale=0.1)  # SDPA's arguments
    >>> out, lse = attn(q, k, v, window=(32, 0), return_lse=True, backend="torch")
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from zoo_core import Backend, InputError, Kernel

from . import sdpa_backend, torch_backend, triton_backend
from ._spec import Call, validate, with_seed
from .torch_backend import dropout_keep, scores


def _naive_dense(q: Tensor, k: Tensor, v: Tensor, call: Call, slopes: Tensor | None,
                 kpm: Tensor | None, b0: int) -> tuple[Tensor, Tensor]:
    """The whole (B, H, Sq, Sk) score matrix in float64; returns out, lse."""
    spec = call.spec
    b, h, sq, d = q.shape
    hkv, sk = k.shape[1], k.shape[2]
    qg = q.double().reshape(b, hkv, spec.groups, sq, d)
    rows, cols = torch.arange(sq).view(-1, 1), torch.arange(sk).view(1, -1)
    rows, cols = rows.to(q.device), cols.to(q.device)
    sl = None if slopes is None else slopes.double().view(b, hkv, spec.groups, 1, 1)
    kp = None if kpm is None else kpm.view(b, 1, 1, 1, sk)
    s, _ = scores(qg, k.double()[:, :, None], rows, cols, sq, sk, spec, sl, kp)
    if call.mask is not None:  # SDPA's attn_mask, (B, H, Sq, Sk) once broadcast
        m = call.mask.expand(b, h, sq, sk).reshape(b, hkv, spec.groups, sq, sk)
        s = s.masked_fill(~m, float("-inf")) if m.dtype == torch.bool else s + m.double()
    lse = torch.logsumexp(s, -1)  # (B, Hkv, G, Sq)
    p = torch.exp(s - lse.masked_fill(lse == float("-inf"), float("inf"))[..., None])
    if spec.dropout_p > 0:
        heads = torch.arange(h, device=q.device).view(1, hkv, spec.groups, 1, 1)
        bh = torch.arange(b0, b0 + b, device=q.device).view(b, 1, 1, 1, 1) * h + heads
        p = p * dropout_keep(spec.seed or 0, bh, rows, cols, spec.dropout_p) \
            / (1 - spec.dropout_p)
    out = p @ v.double()[:, :, None]
    lse = lse.reshape(b, h, sq)
    return out.reshape(b, h, sq, d), lse if q.dtype == torch.float64 else lse.float()


def _as_4d(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None
           ) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
    """SDPA's (..., H, S, D) with other than one batch dim → (B, H, S, D); 3-D is one head."""
    def four(t: Tensor) -> Tensor:
        return t.unsqueeze(1) if t.dim() == 3 else t.reshape(-1, *t.shape[-3:])

    if mask is not None:
        shape = (*q.shape[:-1], k.shape[-2])                          # (..., H, Sq, Sk)
        if isinstance(mask, Tensor):
            try:
                mask = four(mask.expand(shape))
            except RuntimeError:
                raise InputError(f"attn_mask has shape {tuple(mask.shape)!r}, which does not "
                                 f"broadcast to {shape}") from None
    return four(q), four(k), four(v), mask


def _as_call(*args: Any, **kwargs: Any) -> Call:
    """A call validated once: a ``Call`` passes through, raw arguments are validated."""
    if len(args) == 1 and not kwargs and isinstance(args[0], Call):
        return args[0]
    return validate(*args, **kwargs)


def _supports(verdict: Callable[[Call, bool], bool | str]) -> Callable[..., bool | str]:
    """A backend's ``supports(*call, forced=True)`` from its verdict on a validated call."""
    def supports(*args: Any, forced: bool = True, **kwargs: Any) -> bool | str:
        return verdict(_as_call(*args, **kwargs), forced)

    return supports


class Attention(Kernel):
    """Softmax attention ``attn(q, k, v, **options)``; ``backend=`` forces one.

    Args of a call: ``q`` (B, H, Sq, D), ``k``/``v`` (B, Hkv, Sk, D) with ``H % Hkv == 0``, or
    packed (total, H, D) with ``cu_seqlens_q/k``; ``causal``; ``sm_scale`` (default
    1/√D); ``key_padding_mask`` (B, Sk) bool, True = attend; ``window=(left, right)``
    (-1 = unbounded); ``softcap``; ``alibi_slopes`` (H,) or (B, H); ``dropout_p`` with
    ``seed`` (None: drawn from torch's generator); ``return_lse``; ``max_seqlen_q/k``.

    Returns ``out`` shaped like ``q``, or ``(out, lse)`` with ``lse`` (B, H, Sq) in nats —
    (H, total) in the packed form — when ``return_lse=True``: float32 (float64 for float64
    inputs), carrying no gradient.
    """

    name = "attention"

    def __init__(self) -> None:
        self.backends = {
            "triton": Backend("triton", triton_backend.attention, _supports(
                lambda call, forced: triton_backend.supports(call, auto=not forced))),
            "sdpa": Backend("sdpa", sdpa_backend.attention,
                            _supports(lambda call, forced: sdpa_backend.supports(call))),
            "torch": Backend("torch", torch_backend.attention),
        }

    def select(self, *args: Any, backend: str | None = None, **kwargs: Any) -> str:
        """The backend that would run this call (``triton`` is auto-picked on CUDA only).

        The core's ``Kernel.select`` decides; ``forced`` tells each backend whether it was
        asked for by name (the Triton interpreter on CPU runs only then).
        """
        return super().select(_as_call(*args, **kwargs), backend=backend,
                              forced=backend is not None)

    def __call__(self, query: Tensor, key: Tensor, value: Tensor,
                 attn_mask: Tensor | None = None, dropout_p: float = 0.0,
                 is_causal: bool = False, scale: float | None = None, enable_gqa: bool = False,
                 *, causal: bool = False, sm_scale: float | None = None,
                 key_padding_mask: Tensor | None = None, window: tuple[int, int] | None = None,
                 softcap: float | None = None, alibi_slopes: Tensor | None = None,
                 seed: int | None = None, return_lse: bool = False,
                 cu_seqlens_q: Tensor | None = None, cu_seqlens_k: Tensor | None = None,
                 max_seqlen_q: int | None = None, max_seqlen_k: int | None = None,
                 backend: str | None = None) -> Any:
        """``F.scaled_dot_product_attention``'s arguments, then ours (keyword only).

        Args:
            query, key, value: (..., H, Sq, D) and (..., Hkv, Sk, D), any leading dims as in
                SDPA (3-D is one head), or packed (total, H, D) with ``cu_seqlens_q/k``.
            attn_mask: bool (True = attend) or float (added to the scores), broadcastable to
                (..., H, Sq, Sk), as in SDPA (``sdpa`` and ``torch`` backends).
            dropout_p: dropout on the attention weights (applied whenever > 0, as in SDPA).
            is_causal: SDPA's causal mask, aligned to the top-left corner (query i sees keys
                j <= i); ``causal=True`` aligns it to the bottom-right (the last query sees
                the last key), as FlashAttention does. The same when Sq == Sk.
            scale: SDPA's name of ``sm_scale`` (default 1/sqrt(D)).
            enable_gqa: accepted for SDPA's signature; grouped-query attention (H a multiple
                of Hkv) is always on.
            causal, sm_scale, key_padding_mask, window, softcap, alibi_slopes, seed,
                return_lse, cu_seqlens_q/k, max_seqlen_q/k: see the class docstring.
            backend: force ``"triton"``, ``"sdpa"`` or ``"torch"``.
        """
        if is_causal and attn_mask is not None:
            raise InputError("is_causal=True and an attn_mask were both given; as in SDPA, "
                             "pass one: fold the causal mask into attn_mask")
        if scale is not None and sm_scale is not None and scale != sm_scale:
            raise InputError(f"scale={scale!r} and sm_scale={sm_scale!r} name the same "
                             "factor; pass one")
        lead = None
        if cu_seqlens_q is None and cu_seqlens_k is None and \
                all(isinstance(t, Tensor) and t.dim() >= 3 for t in (query, key, value)) \
                and query.dim() != 4:
            lead = query.shape[:-2]
            query, key, value, attn_mask = _as_4d(query, key, value, attn_mask)
        if is_causal:
            sq, sk = query.shape[-2], key.shape[-2]
            if sq == sk or cu_seqlens_q is not None:
                causal = True
            else:  # top-left alignment: a mask
                attn_mask = torch.ones(sq, sk, dtype=torch.bool, device=query.device).tril()
        call = validate(query, key, value, causal=causal,
                        sm_scale=scale if sm_scale is None else sm_scale,
                        key_padding_mask=key_padding_mask, window=window, softcap=softcap,
                        alibi_slopes=alibi_slopes, dropout_p=dropout_p, seed=seed,
                        return_lse=return_lse, cu_seqlens_q=cu_seqlens_q,
                        cu_seqlens_k=cu_seqlens_k, max_seqlen_q=max_seqlen_q,
                        max_seqlen_k=max_seqlen_k, attn_mask=attn_mask)
        name = self.select(call, backend=backend)
        if name != "sdpa":
            call = with_seed(call)
        out, lse = self.backends[name].fn(call)
        if lead is not None:
            out = out.reshape(*lead, *out.shape[-2:])
            lse = None if lse is None else lse.reshape(*lead, lse.shape[-1])
        return (out, lse) if call.spec.return_lse else out

    def reference(self, q: Tensor, k: Tensor, v: Tensor, **options: Any) -> Any:
        """Naive attention in float64 over the materialised score matrix (for checks)."""
        call = validate(q, k, v, **options)
        if call.spec.dropout_p > 0 and call.spec.seed is None:
            raise InputError("the reference needs an explicit seed with dropout_p > 0; "
                             "pass seed=<int>")
        if not call.spec.varlen:
            out, lse = _naive_dense(q, k, v, call, call.slopes, call.kpm, 0)
        else:
            out = torch.empty(q.shape, dtype=torch.float64, device=q.device)
            lse = torch.empty(call.spec.heads, q.shape[0], device=q.device)
            cu_q, cu_k = call.cu_q.tolist(), call.cu_k.tolist()  # type: ignore[union-attr]
            for b in range(len(cu_q) - 1):
                sq, sk = slice(cu_q[b], cu_q[b + 1]), slice(cu_k[b], cu_k[b + 1])
                dense = [x.transpose(0, 1)[None] for x in (q[sq], k[sk], v[sk])]
                slopes = None if call.slopes is None else call.slopes[b:b + 1]
                o, l_ = _naive_dense(*dense, call, slopes, None, b)
                out[sq], lse[:, sq] = o[0].transpose(0, 1), l_[0]
        out = out.to(q.dtype)
        return (out, lse) if call.spec.return_lse else out

    def tolerance(self, q: Tensor, *args: Any, **kwargs: Any) -> tuple[float, float]:
        return {torch.float64: (1e-7, 1e-9), torch.float32: (2e-4, 2e-5),
                torch.float16: (2e-3, 2e-3), torch.bfloat16: (2e-2, 2e-2)}[q.dtype]

    def example_calls(self) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
        """Small fp32 calls covering the options, for the contract checks."""
        g = torch.Generator().manual_seed(0)

        def r(*shape: int) -> Tensor:
            return torch.randn(*shape, generator=g)

        kpm = torch.ones(2, 19, dtype=torch.bool)
        kpm[1, 13:] = False
        cu = torch.tensor([0, 7, 20], dtype=torch.int32)
        return [
            ((r(2, 2, 19, 16), r(2, 2, 19, 16), r(2, 2, 19, 16)), {}),
            ((r(2, 4, 19, 16), r(2, 2, 19, 16), r(2, 2, 19, 16)),
             {"causal": True, "key_padding_mask": kpm}),
            ((r(1, 2, 17, 24), r(1, 1, 23, 24), r(1, 1, 23, 24)),
             {"window": (5, 3), "softcap": 2.0, "alibi_slopes": torch.tensor([0.5, 0.25]),
              "return_lse": True}),
            ((r(1, 2, 16, 16), r(1, 2, 16, 16), r(1, 2, 16, 16)),
             {"causal": True, "dropout_p": 0.25, "seed": 7}),
            ((r(20, 2, 16), r(20, 2, 16), r(20, 2, 16)),
             {"cu_seqlens_q": cu, "cu_seqlens_k": cu, "causal": True, "return_lse": True}),
            ((r(2, 2, 13, 16), r(2, 2, 17, 16), r(2, 2, 17, 16)),   # SDPA's float attn_mask
             {"attn_mask": r(2, 1, 17)}),
        ]

    def bad_inputs(self) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
        """Calls :func:`validate` refuses before any backend runs."""
        def r(*shape: int) -> Tensor:
            return torch.randn(*shape)

        q = r(2, 4, 8, 16)
        return [
            ((q, r(2, 2, 8, 8), r(2, 2, 8, 8)), {}),                    # head dims 16 vs 8
            ((q, r(2, 3, 8, 16), r(2, 3, 8, 16)), {}),                  # 3 kv heads, 4 q heads
            ((q, r(1, 2, 8, 16), r(1, 2, 8, 16)), {}),                  # batch 2 vs 1
            ((q, q.double(), q.double()), {}),                          # dtypes differ
            ((q[0], q, q), {}),                                         # q is 3-D
            ((q, q, q), {"dropout_p": 1.0}),                            # dropout_p outside [0, 1)
            ((q, q, q), {"key_padding_mask": torch.ones(2, 8)}),        # float mask
        ]
