"""What a segment's forward leaves behind so that its re-run does less: the tape.

A dispatch mode over the segment's forward records, and over its re-run plays back:

- the outputs of the matrix products that are dear to recompute for the bytes they take (each
  element the sum of at least ``KEEP_MIN_INNER`` products: a transformer's FFN
  down-projection), handed back instead of computed again; one changed in place after the
  forward (its version counter moved) is computed again from the re-run's inputs;
- the 0/1 draws of every Bernoulli op (dropout masks), packed 8 to a byte, written back
  instead of drawn again: exact, 1/32 of a float32 mask's bytes, and no random-number
  generation in the re-run. When the forward ran any other random op, the masks are dropped
  and the re-run replays the RNG state instead (``needs_rng``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.utils._python_dispatch import TorchDispatchMode

from zoo_core import ZooError

_aten = torch.ops.aten

# Keep a matrix product's output when each element is a sum of at least this many products
# (2048 FLOPs per stored element): in BERT-base the FFN down-projection (inner size 3072,
# 6 MiB at 4x512 for 30% of a layer's matmul FLOPs) is kept; the up-projection, the attention
# products and the q/k/v and output projections are recomputed.
KEEP_MIN_INNER = 1024
_KEEP_OPS = {_aten.mm.default: 0, _aten.addmm.default: 1, _aten.bmm.default: 0,
             _aten.baddbmm.default: 1}  # op: position of the left factor
_BERNOULLI = {_aten.bernoulli_.float: True, _aten.bernoulli_.Tensor: True,  # op: in place?
              _aten.bernoulli.default: False, _aten.bernoulli.p: False}
_SEEDED = torch.Tag.nondeterministic_seeded

_NOT_DETERMINISTIC = ("the blocks are not deterministic given their inputs (data-dependent "
                      "control flow?); use policy='every' for this model")

_BYTE_BITS = torch.arange(8)
_TABLES: dict[tuple[torch.dtype, torch.device], Tensor] = {}


def pack_bits(t: Tensor) -> Tensor:
    """The 0/1 elements of ``t`` in row-major order, 8 to a uint8 (element i: bit i % 8).

    One matrix-vector product with the powers of two: exact, every partial sum an integer
    below 256.
    """
    flat = t.reshape(-1)
    if flat.dtype not in (torch.float32, torch.float64):
        flat = flat.float()
    pad = -flat.numel() % 8
    if pad:
        flat = torch.cat([flat, flat.new_zeros(pad)])
    weights = (2 ** _BYTE_BITS).to(flat)
    return (flat.view(-1, 8) @ weights).to(torch.uint8)


def unpack_bits_into(bits: Tensor, target: Tensor) -> Tensor:
    """Write the elements :func:`pack_bits` packed into ``bits`` into ``target`` (its shape)."""
    key = (target.dtype, target.device)
    table = _TABLES.get(key)
    if table is None:  # row b: the 8 bits of byte b, as 0/1 of the target's dtype
        table = _TABLES[key] = ((torch.arange(256)[:, None] >> _BYTE_BITS) & 1).to(target)
    n = target.numel()
    if target.is_contiguous() and n % 8 == 0:
        torch.index_select(table, 0, bits.int(), out=target.view(-1, 8))
    else:
        target.copy_(table.index_select(0, bits.int()).view(-1)[:n].view(target.shape))
    return target


def _safe_softmax(args: Any, kwargs: Any) -> Tensor:
    """``_safe_softmax`` (attention's: a row of -inf gives zeros, not NaN) in one pass where
    no row is all -inf: ``softmax`` itself, which the safe op computes first and then copies
    through a mask (three more passes over the scores). A NaN anywhere: the safe op."""
    x, dim = args[0], args[1]
    dtype = args[2] if len(args) > 2 else kwargs.get("dtype")
    if dtype is None and x.device.type == "cpu":
        out = _aten._softmax.default(x, dim, False)
        if not out.sum().isnan():
            return out
    return _aten._safe_softmax.default(*args, **kwargs)


class Tape:
    """One forward through a segment: kept products and Bernoulli draws, in op order."""

    def __init__(self) -> None:
        self.kept: list[tuple[Tensor, int, Any]] = []
        self.draws: list[tuple[Tensor, torch.Size]] = []
        self.needs_rng = False  # another random op ran: the re-run replays the RNG state

    def held(self) -> list[Tensor]:
        return [t for t, _, _ in self.kept] + [b for b, _ in self.draws]


class TapeMode(TorchDispatchMode):
    """Record into (forward) or play back from (re-run) a :class:`Tape`."""

    def __init__(self, tape: Tape, replay: bool, report: Any = None) -> None:
        super().__init__()
        self.tape, self.replay, self.report = tape, replay, report
        self.next_kept = self.next_draw = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (),
                           kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if func in _BERNOULLI:
            return self._bernoulli(func, args, kwargs)
        left = _KEEP_OPS.get(func)
        if left is not None and args[left].shape[-1] >= KEEP_MIN_INNER:
            return self._product(func, left, args, kwargs)
        if self.replay:
            if func is _aten._safe_softmax.default:
                return _safe_softmax(args, kwargs)
        elif _SEEDED in func.tags:
            self._other_random_op()
        return func(*args, **kwargs)

    def _other_random_op(self) -> None:
        self.tape.needs_rng = True
        self.tape.draws.clear()  # the RNG replay redraws them

    def _bernoulli(self, func: Any, args: Any, kwargs: Any) -> Any:
        tape = self.tape
        if not self.replay:
            out = func(*args, **kwargs)
            if not tape.needs_rng:
                bits = pack_bits(out)
                tape.draws.append((bits, out.shape))
                if self.report is not None:
                    self.report(bits)
            return out
        if tape.needs_rng:
            return func(*args, **kwargs)
        if self.next_draw >= len(tape.draws) or tape.draws[self.next_draw][1] != args[0].shape:
            raise ZooError(f"segment recomputation drew other random masks than the forward: "
                           f"{_NOT_DETERMINISTIC}")
        bits, shape = tape.draws[self.next_draw]
        self.next_draw += 1
        target = args[0] if _BERNOULLI[func] else torch.empty_like(args[0])
        return unpack_bits_into(bits, target)

    def _product(self, func: Any, left: int, args: Any, kwargs: Any) -> Any:
        factors = (func, args[left].shape, args[left + 1].shape)
        kept = self.tape.kept
        if self.replay:
            if self.next_kept >= len(kept) or kept[self.next_kept][2] != factors:
                raise ZooError("segment recomputation ran other matrix products than the "
                               f"forward: {_NOT_DETERMINISTIC}")
            out, version, _ = kept[self.next_kept]
            self.next_kept += 1
            return out if out._version == version else func(*args, **kwargs)
        out = func(*args, **kwargs)
        # a detached alias: no grad_fn (no cycle through the graph); detached with the
        # ADInplaceOrView key on, so that it shares the output's version counter
        with torch._C._SetExcludeDispatchKeyGuard(torch._C.DispatchKey.ADInplaceOrView, False):
            alias = out.detach()
        kept.append((alias, out._version, factors))
        if self.report is not None:
            self.report(out)
        return out
