"""GPT-2, Radford et al. 2019 ("Language Models are Unsupervised Multitask Learners").

A decoder-only Transformer: token and learned position embeddings, ``L`` pre-LN blocks
``x = x + Attn(LN(x)); x = x + MLP(LN(x))`` with causal self-attention, a final LayerNorm,
and the output projection tied to the token embedding (Section 2.3; GPT-1, Radford et al.
2018, Section 3.1, for the decoder itself). The model predicts ``P(u_t | u_<t)``; its loss is
the next-token cross-entropy. Causal attention runs through ``kernel:attention`` (the
zoo-flashattn plugin: FlashAttention-2 on a GPU) by default. :meth:`GPT2.generate` decodes
greedily or by sampling (temperature, top-k, nucleus top-p of Holtzman et al. 2019) with a
key/value cache (:mod:`.layers.kv_cache`).

Checkpoints of ``transformers``' ``GPT2LMHeadModel`` load through the ``hf-gpt2`` layout
(:mod:`.hf_gpt2`): its ``Conv1D`` weights are stored (in, out) and are transposed here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo_core import ConfigError, InputError, Model

from . import hf_gpt2
from ._inputs import check_ids, check_labels, check_length
from .layers.attention import BACKENDS, MultiHeadAttention, check_backend
from .layers.feedforward import FeedForward
from .layers.kv_cache import KVCache, cached_self_attention
from .outputs import ModelOutput

IGNORE = -100


@dataclass(frozen=True)
class GPT2Config:
    """Configuration of :class:`GPT2` (defaults: GPT-2 small, 124M parameters).

    Attributes:
        max_positions: learned positions, the longest sequence (``n_positions``).
        dropout: on the residual branches (``resid_pdrop``); ``embed_dropout`` on the
            embeddings (``embd_pdrop``); ``attention_dropout`` on the attention probabilities.
        attn_backend: ``"zoo"`` (``kernel:attention``), ``"sdpa"`` or ``"eager"``.
    """

    vocab_size: int = 50257
    max_positions: int = 1024
    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12
    intermediate_size: int = 3072
    activation: str = "gelu_tanh"
    dropout: float = 0.1
    embed_dropout: float = 0.1
    attention_dropout: float = 0.1
    layer_norm_eps: float = 1e-5
    initializer_range: float = 0.02
    bos_token_id: int = 50256
    eos_token_id: int = 50256
    attn_backend: str = "zoo"

    def __post_init__(self) -> None:
        check_backend(self.attn_backend)
        if self.hidden_size % self.num_heads:
            raise ConfigError(f"hidden_size {self.hidden_size!r} is not divisible by num_heads "
                              f"{self.num_heads!r}; choose a head count that divides it")


def _size(hidden: int, layers: int, heads: int) -> GPT2Config:
    return GPT2Config(hidden_size=hidden, num_layers=layers, num_heads=heads,
                      intermediate_size=4 * hidden)


PRESETS: dict[str, GPT2Config] = {
    "tiny": GPT2Config(vocab_size=128, max_positions=64, hidden_size=32, num_layers=2,
                       num_heads=4, intermediate_size=128, bos_token_id=127, eos_token_id=127),
    "small": _size(768, 12, 12),
    "medium": _size(1024, 24, 16),
    "large": _size(1280, 36, 20),
    "xl": _size(1600, 48, 25),
}


@dataclass
class CausalLMOutput(ModelOutput):
    logits: Tensor  # (B, S, V)
    loss: Tensor | None = None


class Block(nn.Module):
    """Pre-LN decoder block: ``x + Attn(LN(x))`` then ``x + MLP(LN(x))``."""

    def __init__(self, c: GPT2Config) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.attn = MultiHeadAttention(c.hidden_size, c.num_heads, c.attention_dropout,
                                       c.attn_backend)
        self.ln_2 = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.ffn = FeedForward(c.hidden_size, c.intermediate_size, c.activation, c.dropout)
        self.dropout = nn.Dropout(c.dropout)

    def forward(self, x: Tensor, mask: Tensor | None, cache: KVCache | None = None,
                index: int = 0) -> Tensor:  # (B, S, H)
        heads = cached_self_attention(self.attn, self.ln_1(x), cache, index, mask)
        x = x + self.dropout(self.attn.o(heads))
        return x + self.ffn(self.ln_2(x))


class GPT2(Model):
    """Decoder-only language model: ``input_ids`` (B, S) → next-token logits (B, S, V).

    ``attention_mask`` (B, S), 1 = token, hides padding from the keys; ``labels`` (B, S)
    give the next-token loss (shifted inside, ``-100`` ignored), as in ``transformers``.
    """

    config_class = GPT2Config
    presets: ClassVar[dict[str, GPT2Config]] = PRESETS
    parameter_counts: ClassVar[dict[str, int]] = {  # GPT2LMHeadModel's, tied head counted once
        "small": 124_439_808, "medium": 354_823_168, "large": 774_030_080,
        "xl": 1_557_611_200}
    supports_grad_checkpointing = True
    attention_backends = BACKENDS
    layouts = hf_gpt2.LAYOUTS

    def __init__(self, config: GPT2Config) -> None:
        super().__init__(config)
        c = config
        self.wte = nn.Embedding(c.vocab_size, c.hidden_size)
        self.wpe = nn.Embedding(c.max_positions, c.hidden_size)
        self.drop = nn.Dropout(c.embed_dropout)
        self.layers = nn.ModuleList(Block(c) for _ in range(c.num_layers))
        self.ln_f = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.lm_head = nn.Linear(c.hidden_size, c.vocab_size, bias=False)
        self.apply(self._init)
        self.lm_head.weight = self.wte.weight

    def _init(self, module: nn.Module) -> None:
        """Normal(0, 0.02) weights; residual output projections scaled by 1/√(2L) (GPT-2,
        Section 2.3)."""
        std = self.config.initializer_range
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=std)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
        if isinstance(module, Block):
            for proj in (module.attn.o, module.ffn.fc2):
                nn.init.normal_(proj.weight, std=std / (2 * self.config.num_layers) ** 0.5)

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None,
                labels: Tensor | None = None, position_ids: Tensor | None = None,
                cache: KVCache | None = None) -> CausalLMOutput:
        """Logits of the next token at each position.

        With a ``cache`` the ids are the new positions only; ``attention_mask`` then covers
        the cached positions too (B, cache.length + S) and ``position_ids`` default to
        ``cache.length + arange(S)``.
        """
        c = self.config
        check_ids(input_ids, c.vocab_size)
        past = cache.length if cache is not None else 0
        check_length(past + input_ids.shape[1], c.max_positions)
        check_labels(labels, tuple(input_ids.shape))
        mask = self._mask(attention_mask, input_ids, past)
        if position_ids is None:
            position_ids = torch.arange(past, past + input_ids.shape[1],
                                        device=input_ids.device).expand_as(input_ids)
        x = self.drop(self.wte(input_ids) + self.wpe(position_ids))  # (B, S, H)
        for i, layer in enumerate(self.layers):
            x = layer(x, mask, cache, i)
        if cache is not None:
            cache.advance(input_ids.shape[1])
        logits = self.lm_head(self.ln_f(x))  # (B, S, V)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten(),
                                   ignore_index=IGNORE)
        return CausalLMOutput(logits, loss)

    @staticmethod
    def _mask(mask: Tensor | None, ids: Tensor, past: int) -> Tensor | None:
        if mask is None:
            return None
        want = (ids.shape[0], past + ids.shape[1])
        if tuple(mask.shape) != want:
            raise InputError(f"attention_mask has shape {tuple(mask.shape)!r}, expected "
                             f"{want!r}: one entry (1 = token) per cached and new position")
        return mask.to(torch.bool)

    @torch.no_grad()
    def generate(self, input_ids: Tensor, max_new_tokens: int = 20, do_sample: bool = False,
                 temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                 eos_token_id: int | None = None, attention_mask: Tensor | None = None,
                 pad_token_id: int | None = None, use_cache: bool = True,
                 generator: torch.Generator | None = None) -> Tensor:
        """Continue ``input_ids`` (B, S); returns (B, S + n) ids, ``n <= max_new_tokens``.

        Greedy by default; ``do_sample`` draws from the softmax of ``logits / temperature``
        restricted to the ``top_k`` most likely tokens (0 = all) and to the smallest set whose
        probability reaches ``top_p``. A row that produced ``eos_token_id`` (default: the
        config's) is continued with ``pad_token_id`` (default: EOS), and decoding stops when
        every row has. Left-padded batches take their ``attention_mask``.

        Example:
            >>> ids = torch.tensor([tok.encode("The meaning of life is")])
            >>> tok.decode(model.generate(ids, max_new_tokens=10)[0].tolist())
        """
        from .search import causal_decode

        return causal_decode(self, input_ids, max_new_tokens, do_sample=do_sample,
                             temperature=temperature, top_k=top_k, top_p=top_p,
                             eos_token_id=self.config.eos_token_id if eos_token_id is None
                             else eos_token_id, attention_mask=attention_mask,
                             pad_token_id=pad_token_id, use_cache=use_cache,
                             generator=generator)

    def grad_checkpointing_blocks(self) -> list[nn.Module]:
        return list(self.layers)

    def convert_state_dict(self, state_dict: dict[str, Any], layout: str) -> dict[str, Any]:
        """Rename by the layout's rules, then transpose the ``Conv1D`` (in, out) weights."""
        out = super().convert_state_dict(state_dict, layout)
        return {k: v.t().contiguous() if hf_gpt2.TRANSPOSED.search(k) else v
                for k, v in out.items()}

    def example_inputs(self) -> dict[str, Tensor]:
        g = torch.Generator().manual_seed(0)
        ids = torch.randint(0, self.config.vocab_size, (2, 7), generator=g)
        mask = torch.ones_like(ids)
        mask[1, 5:] = 0
        return {"input_ids": ids, "attention_mask": mask}

    def bad_inputs(self) -> list[dict[str, Tensor]]:
        good = self.example_inputs()
        ids = good["input_ids"]
        return [{**good, "input_ids": ids[0], "attention_mask": good["attention_mask"][0]},
                {**good, "input_ids": ids.float()},
                {**good, "attention_mask": good["attention_mask"][:, 1:]},
                {**good, "labels": ids[:, 1:]},
                {"input_ids": ids.new_zeros(1, self.config.max_positions + 1)}]
