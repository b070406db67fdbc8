"""The segment tape: dropout masks kept as bits and written back in the re-run (no random
numbers drawn there), other random ops replayed from the RNG state, and attention's safe
softmax replayed in one pass; gradients stay those of the un-checkpointed run."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils._python_dispatch import TorchDispatchMode
from zoo_checkpoint._tape import pack_bits, unpack_bits_into

import zoo_core as zoo


class _CountSeeded(TorchDispatchMode):
    """Random ops (those tagged nondeterministic_seeded) run inside, by name."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (),
                           kwargs: Any = None) -> Any:
        if torch.Tag.nondeterministic_seeded in func.tags:
            self.names.append(func.__name__)
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("shape", [(8,), (3, 5), (2, 3, 7, 11)])
def test_bits_round_trip(shape, dtype):
    g = torch.Generator().manual_seed(0)
    mask = (torch.rand(shape, generator=g) < 0.7).to(dtype)
    bits = pack_bits(mask)
    assert bits.dtype == torch.uint8 and bits.numel() == -(-mask.numel() // 8)
    assert torch.equal(unpack_bits_into(bits, torch.empty_like(mask)), mask)
    strided = torch.empty(shape[::-1], dtype=dtype).t() if len(shape) == 2 else None
    if strided is not None:  # a non-contiguous target of the same shape
        assert torch.equal(unpack_bits_into(bits, strided), mask)


def test_bit_order_is_row_major_little_endian():
    assert pack_bits(torch.tensor([1.0, 0, 0, 0, 0, 0, 0, 1, 0, 1])).tolist() == [129, 2]


class Attention(nn.Module):
    """Self-attention with dropout and a padding mask that can hide a whole query row."""

    def __init__(self, dim: int = 16, noise: bool = False) -> None:
        super().__init__()
        self.qkv, self.out = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.noise = noise

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        h = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=0.2)
        if self.noise:  # a random op other than a Bernoulli draw: the RNG state is replayed
            h = h + 0.1 * torch.randn_like(h)
        return x + F.dropout(self.out(h), 0.1, self.training)


class Stack(nn.Module):
    supports_grad_checkpointing = True

    def __init__(self, depth: int = 4, noise: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.blocks = nn.ModuleList(Attention(noise=noise) for _ in range(depth))

    def grad_checkpointing_blocks(self) -> list[nn.Module]:
        return list(self.blocks)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        for block in self.blocks:
            x = block(x, mask)
        return x


def _step(model: nn.Module, x: Tensor, mask: Tensor) -> tuple[dict[str, Tensor], list[str]]:
    model.train().zero_grad(set_to_none=True)
    torch.manual_seed(1)
    loss = model(x, mask).pow(2).mean()
    with _CountSeeded() as seeded:
        loss.backward()
    return {n: p.grad.clone() for n, p in model.named_parameters()}, seeded.names


@pytest.mark.parametrize("noise", [False, True])
@pytest.mark.parametrize("hide_a_row", [False, True])
def test_gradients_equal_uncheckpointed_and_the_rerun_draws_nothing(noise, hide_a_row):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 12, 16, generator=g)
    mask = torch.ones(12, 12, dtype=torch.bool)
    mask[:, -3:] = False  # padding keys
    if hide_a_row:
        mask[4] = False  # a query that sees nothing: the safe softmax's zero row
    plain = Stack(noise=noise)
    want, none_draws = _step(plain, x, mask)
    assert none_draws == []
    for policy in ("sqrt", "every-k"):
        twin = zoo.create("transform:checkpoint", policy=policy).apply(copy.deepcopy(plain))
        got, draws = _step(twin, x, mask)
        for name in want:
            torch.testing.assert_close(got[name], want[name], rtol=1e-6, atol=1e-6,
                                       msg=f"{policy}: gradient of {name} differs")
        if noise:  # replayed from the RNG state: the re-run draws the masks again
            assert any(name.startswith("bernoulli") for name in draws), draws
        else:  # masks written back from their bits
            assert draws == [], f"{policy}: the re-run drew {draws}"


def test_bert_with_kept_products_and_padding():
    """A BERT whose FFN down-projection is kept (inner size 1024), with dropout and padding."""
    torch.manual_seed(0)
    model = zoo.create("model:bert", preset="tiny", num_layers=4, intermediate_size=1024)
    inputs = model.example_inputs()
    twin = copy.deepcopy(model).set_grad_checkpointing("sqrt")
    grads = []
    for m in (model, twin):
        m.train().zero_grad(set_to_none=True)
        torch.manual_seed(1)
        m(**inputs).last_hidden_state.pow(2).mean().backward()
        grads.append({n: p.grad.clone() for n, p in m.named_parameters() if p.grad is not None})
    assert grads[1].keys() == grads[0].keys() and len(grads[0]) > 30
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], rtol=1e-6, atol=1e-6,
                                   msg=f"gradient of {name} differs")
