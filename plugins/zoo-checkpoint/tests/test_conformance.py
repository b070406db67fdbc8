"""The peers' everyday checkpointing, run beside ours with only that line changed:
``model.gradient_checkpointing_enable()`` (transformers) or ``checkpoint_sequential``
(torch.utils.checkpoint) against ``zoo.create("transform:checkpoint", policy=...).apply(model)``;
gradients equal to the un-checkpointed run and to the peer's."""

from __future__ import annotations

import copy

import pytest
import torch
import transformers
from torch import nn
from torch.utils.checkpoint import checkpoint_sequential
from zoo_checkpoint.transform import find_blocks

import zoo_core as zoo

POLICIES = ["every", "every-k", "sqrt", "selective"]


def _bert() -> nn.Module:
    cfg = transformers.BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=4,
                                  num_attention_heads=2, intermediate_size=48,
                                  hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)
    torch.manual_seed(0)
    return transformers.BertModel(cfg).train()


def _grads(model: nn.Module, run) -> dict[str, torch.Tensor]:
    model.zero_grad()
    torch.manual_seed(1)                                  # same dropout masks in every run
    run(model).pow(2).mean().backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def _assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-6, msg=name)


def bert_step(model: nn.Module) -> torch.Tensor:
    ids = torch.randint(1, 64, (2, 12), generator=torch.Generator().manual_seed(2))
    mask = torch.ones_like(ids)
    mask[1, 8:] = 0
    return model(input_ids=ids, attention_mask=mask).last_hidden_state


def test_finds_the_layer_list_of_a_transformers_model():
    model = _bert()
    assert find_blocks(model) == list(model.encoder.layer)


@pytest.mark.parametrize("policy", POLICIES)
def test_bert_gradients_match_gradient_checkpointing_enable(policy):
    plain, peer, ours = _bert(), _bert(), _bert()
    peer.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    zoo.create("transform:checkpoint", policy=policy).apply(ours)     # the swapped line
    want = _grads(plain, bert_step)
    _assert_same(_grads(peer, bert_step), want)
    _assert_same(_grads(ours, bert_step), want)


def _mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(*[nn.Sequential(nn.Linear(16, 16), nn.GELU(), nn.Dropout(0.1))
                           for _ in range(6)], nn.Linear(16, 4))


X = torch.randn(5, 16, generator=torch.Generator().manual_seed(3))


@pytest.mark.parametrize("policy", POLICIES)
def test_sequential_gradients_match_checkpoint_sequential(policy):
    plain, peer, ours = _mlp(), _mlp(), _mlp()
    want = _grads(plain, lambda m: m(X))
    _assert_same(_grads(peer, lambda m: checkpoint_sequential(m, 3, X, use_reentrant=False)),
                 want)
    zoo.create("transform:checkpoint", policy=policy).apply(ours)
    _assert_same(_grads(ours, lambda m: m(X)), want)


@pytest.mark.parametrize("blocks", ["encoder.layer", "list"])
def test_named_blocks(blocks):
    plain, ours = _bert(), _bert()
    named = "encoder.layer" if blocks == "encoder.layer" else list(ours.encoder.layer)[1:3]
    zoo.create("transform:checkpoint", policy="every", blocks=named).apply(ours)
    _assert_same(_grads(ours, bert_step), _grads(plain, bert_step))


def test_policy_none_restores_the_module():
    model = _bert()
    twin = copy.deepcopy(model)
    zoo.create("transform:checkpoint", policy="sqrt").apply(model)
    zoo.create("transform:checkpoint", policy="none").apply(model)
    assert all("forward" not in vars(layer) for layer in model.encoder.layer)
    _assert_same(_grads(model, bert_step), _grads(twin, bert_step))
