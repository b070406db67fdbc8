"""The Transformer encoder-decoder, Vaswani et al. 2017 (arXiv:1706.03762).

Encoder and decoder stacks of Section 3.1 (post-layer-norm ``LN(x + Sublayer(x))``, or
pre-norm with ``norm_first``), embeddings scaled by ``√d_model`` and summed with sinusoidal
(Section 3.5) or learned positions, the decoder's self-attention masked causally, optional
sharing of the source/target embeddings and the pre-softmax projection (Section 3.4), and
the label-smoothed cross-entropy of Section 5.4 (``ε_ls = 0.1``). Decoding: greedy and beam
search with the length penalty ``lp(Y) = ((5 + |Y|) / 6)^α`` of Wu et al. 2016
(arXiv:1609.08144, Eq. 14), used in Section 6.1 with ``α = 0.6``; see :mod:`.search`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo_core import ConfigError, Model

from ._inputs import check_ids, check_labels, check_length
from .layers.attention import BACKENDS, MultiHeadAttention, check_backend
from .layers.feedforward import FeedForward
from .layers.kv_cache import KVCache, cached_self_attention, cross_attention, cross_keys_values
from .layers.positional import SinusoidalPositions
from .outputs import ModelOutput

POSITIONS = ("sinusoidal", "learned")


@dataclass(frozen=True)
class TransformerConfig:
    """Configuration of :class:`Transformer` (defaults: the paper's base model, Table 3).

    Attributes:
        share_embeddings: one embedding matrix for source and target (needs one vocabulary).
        tie_output: the output projection reuses the target embedding matrix.
        norm_first: pre-norm blocks ``x + Sublayer(LN(x))`` instead of the paper's post-norm.
        label_smoothing: ``ε_ls`` of the training loss.
    """

    src_vocab_size: int = 37000
    tgt_vocab_size: int = 37000
    d_model: int = 512
    num_heads: int = 8
    num_encoder_layers: int = 6
    num_decoder_layers: int = 6
    ffn_dim: int = 2048
    dropout: float = 0.1
    attention_dropout: float = 0.0
    activation: str = "relu"
    max_len: int = 512
    positions: str = "sinusoidal"
    norm_first: bool = False
    share_embeddings: bool = True
    tie_output: bool = True
    layer_norm_eps: float = 1e-5
    label_smoothing: float = 0.1
    pad_id: int = 0
    bos_id: int = 1
    eos_id: int = 2
    attn_backend: str = "sdpa"
    embed_scale: float = dataclasses.field(init=False, default=1.0)

    def __post_init__(self) -> None:
        check_backend(self.attn_backend)
        if self.positions not in POSITIONS:
            raise ConfigError(f"unknown positions {self.positions!r}; valid: {list(POSITIONS)}")
        if self.share_embeddings and self.src_vocab_size != self.tgt_vocab_size:
            raise ConfigError(f"share_embeddings needs one vocabulary, got src_vocab_size="
                              f"{self.src_vocab_size!r} and tgt_vocab_size="
                              f"{self.tgt_vocab_size!r}; set share_embeddings=False")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ConfigError(f"label_smoothing {self.label_smoothing!r} must be in [0, 1); "
                              "the paper uses 0.1")
        object.__setattr__(self, "embed_scale", math.sqrt(self.d_model))


PRESETS: dict[str, TransformerConfig] = {
    "tiny": TransformerConfig(src_vocab_size=20, tgt_vocab_size=20, d_model=32, num_heads=4,
                              num_encoder_layers=2, num_decoder_layers=2, ffn_dim=64,
                              max_len=32),
    "base": TransformerConfig(),
    "big": TransformerConfig(d_model=1024, num_heads=16, ffn_dim=4096, dropout=0.3),
}


@dataclass
class Seq2SeqOutput(ModelOutput):
    logits: Tensor  # (B, T, V_tgt)
    loss: Tensor | None = None


@dataclass
class DecoderState:
    """What a cached decode carries between steps: the self-attention cache, each layer's
    cross-attention keys and values of the memory (computed once), the source mask, and the
    target padding mask of every position decoded so far (B, T)."""

    cache: KVCache
    cross: list[tuple[Tensor, Tensor]]
    src_mask: Tensor | None
    tgt_mask: Tensor | None = None

    def reorder(self, index: Tensor) -> None:
        """Keep the rows ``index`` (beam search). Beams of one source share its memory, and
        beam search reorders only within a source, so the cross-attention rows stay."""
        self.cache.reorder(index)
        if self.tgt_mask is not None:
            self.tgt_mask = self.tgt_mask.index_select(0, index)


class _Block(nn.Module):
    """A residual sublayer wrapper: post-norm ``LN(x + f(x))`` or pre-norm ``x + f(LN(x))``."""

    def __init__(self, c: TransformerConfig) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(c.d_model, eps=c.layer_norm_eps)
        self.dropout = nn.Dropout(c.dropout)
        self.first = c.norm_first

    def forward(self, x: Tensor, f: Callable[..., Tensor], *args: object,
                **kwargs: object) -> Tensor:
        if self.first:
            return x + self.dropout(f(self.norm(x), *args, **kwargs))
        return self.norm(x + self.dropout(f(x, *args, **kwargs)))


class EncoderLayer(nn.Module):
    def __init__(self, c: TransformerConfig) -> None:
        super().__init__()
        self.attn = MultiHeadAttention(c.d_model, c.num_heads, c.attention_dropout,
                                       c.attn_backend)
        self.ffn = FeedForward(c.d_model, c.ffn_dim, c.activation)
        self.attn_block, self.ffn_block = _Block(c), _Block(c)

    def forward(self, x: Tensor, src_mask: Tensor | None) -> Tensor:  # (B, S, d)
        x = self.attn_block(x, self.attn, key_padding_mask=src_mask)
        return self.ffn_block(x, self.ffn)


class DecoderLayer(nn.Module):
    def __init__(self, c: TransformerConfig) -> None:
        super().__init__()
        self.self_attn = MultiHeadAttention(c.d_model, c.num_heads, c.attention_dropout,
                                            c.attn_backend)
        self.cross_attn = MultiHeadAttention(c.d_model, c.num_heads, c.attention_dropout,
                                             c.attn_backend)
        self.ffn = FeedForward(c.d_model, c.ffn_dim, c.activation)
        self.self_block, self.cross_block, self.ffn_block = _Block(c), _Block(c), _Block(c)

    def forward(self, y: Tensor, memory: Tensor, src_mask: Tensor | None,
                tgt_mask: Tensor | None) -> Tensor:  # (B, T, d)
        y = self.self_block(y, self.self_attn, key_padding_mask=tgt_mask, causal=True)
        y = self.cross_block(y, self.cross_attn, memory, key_padding_mask=src_mask)
        return self.ffn_block(y, self.ffn)

    def step(self, y: Tensor, state: DecoderState, index: int) -> Tensor:  # (B, s, d)
        """:meth:`forward` on new positions only, the earlier ones read from ``state``."""
        attn, (keys, values) = self.self_attn, state.cross[index]
        y = self.self_block(y, lambda h: attn.o(cached_self_attention(
            attn, h, state.cache, index, state.tgt_mask)))
        y = self.cross_block(y, lambda h: cross_attention(self.cross_attn, h, keys, values,
                                                          state.src_mask))
        return self.ffn_block(y, self.ffn)


class Transformer(Model):
    """Encoder-decoder: ``src_ids`` (B, S) and shifted ``tgt_ids`` (B, T) → logits (B, T, V).

    Padding is read from ``pad_id``; ``labels`` (B, T) give the label-smoothed loss with
    padding ignored. :meth:`generate` decodes greedily or with beam search.
    """

    config_class = TransformerConfig
    contract_opt_outs: ClassVar[dict[str, str]] = {
        "parameter_count": "Vaswani et al. round to 65 M / 213 M for their 37k shared vocabulary"}
    presets: ClassVar[dict[str, TransformerConfig]] = PRESETS
    supports_grad_checkpointing = True
    attention_backends = BACKENDS

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__(config)
        c = config
        self.src_embed = nn.Embedding(c.src_vocab_size, c.d_model, padding_idx=c.pad_id)
        self.tgt_embed = self.src_embed if c.share_embeddings else \
            nn.Embedding(c.tgt_vocab_size, c.d_model, padding_idx=c.pad_id)
        self.positions = SinusoidalPositions(c.max_len, c.d_model) \
            if c.positions == "sinusoidal" else nn.Embedding(c.max_len, c.d_model)
        self.dropout = nn.Dropout(c.dropout)
        self.encoder = nn.ModuleList(EncoderLayer(c) for _ in range(c.num_encoder_layers))
        self.decoder = nn.ModuleList(DecoderLayer(c) for _ in range(c.num_decoder_layers))
        self.enc_norm = nn.LayerNorm(c.d_model, eps=c.layer_norm_eps) if c.norm_first else None
        self.dec_norm = nn.LayerNorm(c.d_model, eps=c.layer_norm_eps) if c.norm_first else None
        self.out = nn.Linear(c.d_model, c.tgt_vocab_size, bias=False)
        self._reset_parameters()
        if c.tie_output:
            self.out.weight = self.tgt_embed.weight

    def _reset_parameters(self) -> None:
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
        for emb in {self.src_embed, self.tgt_embed}:
            nn.init.normal_(emb.weight, std=self.config.d_model ** -0.5)
            with torch.no_grad():
                emb.weight[self.config.pad_id].zero_()

    def _embed(self, embed: nn.Embedding, ids: Tensor, start: int = 0
               ) -> Tensor:  # (B, L) -> (B, L, d)
        pos = torch.arange(start, start + ids.shape[1], device=ids.device).expand_as(ids)
        return self.dropout(embed(ids) * self.config.embed_scale + self.positions(pos))

    def encode(self, src_ids: Tensor) -> tuple[Tensor, Tensor]:
        """Memory (B, S, d) and the source mask (B, S) (True = token)."""
        c = self.config
        check_ids(src_ids, c.src_vocab_size, "src_ids")
        check_length(src_ids.shape[1], c.max_len, "src_ids")
        mask = src_ids.ne(c.pad_id)
        x = self._embed(self.src_embed, src_ids)
        for layer in self.encoder:
            x = layer(x, mask)
        return (self.enc_norm(x) if self.enc_norm is not None else x), mask

    def decode(self, tgt_ids: Tensor, memory: Tensor, src_mask: Tensor | None) -> Tensor:
        """Logits (B, T, V) of the next token at every target position."""
        c = self.config
        check_ids(tgt_ids, c.tgt_vocab_size, "tgt_ids")
        check_length(tgt_ids.shape[1], c.max_len, "tgt_ids")
        tgt_mask = tgt_ids.ne(c.pad_id)
        y = self._embed(self.tgt_embed, tgt_ids)
        for layer in self.decoder:
            y = layer(y, memory, src_mask, tgt_mask)
        return self.out(self.dec_norm(y) if self.dec_norm is not None else y)

    def start_decoding(self, memory: Tensor, src_mask: Tensor | None, max_len: int
                       ) -> DecoderState:
        """A cache for up to ``max_len`` target positions of the sources behind ``memory``."""
        cross = [cross_keys_values(layer.cross_attn, memory) for layer in self.decoder]
        return DecoderState(KVCache(len(self.decoder), max_len), cross, src_mask)

    def decode_step(self, tgt_ids: Tensor, state: DecoderState) -> Tensor:
        """Logits (B, s, V) of the ``s`` new target positions ``tgt_ids`` (B, s), the earlier
        ones read from ``state`` (:meth:`start_decoding`): what :meth:`decode` gives for
        those positions on the whole prefix."""
        c = self.config
        check_ids(tgt_ids, c.tgt_vocab_size, "tgt_ids")
        past = state.cache.length
        check_length(past + tgt_ids.shape[1], c.max_len, "tgt_ids")
        new_mask = tgt_ids.ne(c.pad_id)
        state.tgt_mask = new_mask if state.tgt_mask is None \
            else torch.cat([state.tgt_mask, new_mask], dim=1)  # (B, past + s)
        y = self._embed(self.tgt_embed, tgt_ids, past)
        for i, layer in enumerate(self.decoder):
            y = layer.step(y, state, i)
        state.cache.advance(tgt_ids.shape[1])
        return self.out(self.dec_norm(y) if self.dec_norm is not None else y)

    def forward(self, src_ids: Tensor, tgt_ids: Tensor, labels: Tensor | None = None
                ) -> Seq2SeqOutput:
        check_labels(labels, tuple(tgt_ids.shape))
        memory, src_mask = self.encode(src_ids)
        logits = self.decode(tgt_ids, memory, src_mask)  # (B, T, V)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten(),
                                   ignore_index=self.config.pad_id,
                                   label_smoothing=self.config.label_smoothing)
        return Seq2SeqOutput(logits, loss)

    @torch.no_grad()
    def generate(self, src_ids: Tensor, max_new_tokens: int = 64, beam_size: int = 1,
                 length_penalty: float = 0.6, use_cache: bool = True) -> Tensor:
        """Decode (B, L) target ids (BOS first, EOS-terminated, padded); beam_size 1 = greedy.

        ``use_cache`` feeds each step only the new tokens (:meth:`decode_step`); without it
        every step re-runs the decoder on the whole prefix. Both give the same ids."""
        from .search import beam_search, greedy

        if beam_size == 1:
            return greedy(self, src_ids, max_new_tokens, use_cache)
        return beam_search(self, src_ids, beam_size, max_new_tokens, length_penalty, use_cache)

    def grad_checkpointing_blocks(self) -> Sequence[nn.Module]:
        return [*self.encoder, *self.decoder]

    def example_inputs(self) -> dict[str, Tensor]:
        c = self.config
        g = torch.Generator().manual_seed(0)
        src = torch.randint(3, c.src_vocab_size, (2, 7), generator=g)
        src[1, 5:] = c.pad_id
        tgt = torch.randint(3, c.tgt_vocab_size, (2, 6), generator=g)
        tgt[:, 0] = c.bos_id
        tgt[1, 4:] = c.pad_id
        return {"src_ids": src, "tgt_ids": tgt}

    def bad_inputs(self) -> list[dict[str, Tensor]]:
        good = self.example_inputs()
        src, tgt = good["src_ids"], good["tgt_ids"]
        return [{**good, "src_ids": src[0]},                     # no batch dimension
                {**good, "tgt_ids": tgt.float()},                # float ids
                {**good, "labels": tgt[:, 1:]},                  # one label short per row
                {**good, "src_ids": src.new_ones(2, self.config.max_len + 1)}]  # too long
