"""BERT, Devlin et al. 2018 (arXiv:1810.04805), and its variants as configurations.

The encoder is the Transformer encoder of Vaswani et al. 2017 with post-layer-norm residual
blocks, ``h = LN(x + MHA(x)); y = LN(h + FFN(h))``, fed by the sum of word, position and
segment (token type) embeddings (BERT Section 3, Figure 2). Variants are configurations:

* RoBERTa (Liu et al. 2019, arXiv:1907.11692): positions count from ``pad_token_id + 1``
  over non-padding tokens (``position_type="padding-offset"``), one token type;
* DistilBERT (Sanh et al. 2019, arXiv:1910.01108): no token types, no pooler;
* ALBERT (Lan et al. 2019, arXiv:1909.11942): factorised embeddings ``E < H`` projected to
  ``H`` (Section 3.1) and one set of layer weights shared by all layers (``share_layers``).

Heads (masked LM, pre-training, classification, sentence embedding) live in
:mod:`zoo_transformer.bert_heads`; Hugging Face key layouts in :mod:`zoo_transformer.hf`.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from zoo_core import ConfigError, InputError, Model

from . import hf
from ._inputs import check_ids, check_length, check_mask
from .layers.attention import BACKENDS, MultiHeadAttention, add_linear, check_backend
from .layers.feedforward import FeedForward
from .layers.packing import Packing
from .outputs import ModelOutput

POSITION_TYPES = ("absolute", "padding-offset")


@dataclass(frozen=True)
class BertConfig:
    """Configuration of the BERT family.

    Attributes:
        type_vocab_size: segment vocabulary; 0 means no token-type embedding.
        position_type: ``"absolute"`` (0, 1, 2 …) or ``"padding-offset"`` (RoBERTa).
        embedding_size: ALBERT's factorised embedding width ``E``; None means ``hidden_size``.
        share_layers: ALBERT's cross-layer parameter sharing.
        pooler: whether the encoder has the tanh pooler over the first token.
        attn_backend: ``"eager"``, ``"sdpa"`` or ``"zoo"`` (``kernel:attention``).
        num_labels: outputs of the classification heads.
        normalize: L2-normalise the sentence embeddings.
        max_seq_length: tokens kept per text by the sentence-embedding head's ``encode``
            (sentence-transformers' ``max_seq_length``); None keeps every position.
    """

    vocab_size: int = 30522
    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12
    intermediate_size: int = 3072
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    hidden_act: str = "gelu"
    hidden_dropout: float = 0.1
    attention_dropout: float = 0.1
    layer_norm_eps: float = 1e-12
    position_type: str = "absolute"
    embedding_size: int | None = None
    share_layers: bool = False
    pooler: bool = True
    pad_token_id: int = 0
    attn_backend: str = "sdpa"
    num_labels: int = 2
    normalize: bool = True
    max_seq_length: int | None = None
    embedding_dim: int = dataclasses.field(init=False, default=0)
    max_length: int = dataclasses.field(init=False, default=0)

    def __post_init__(self) -> None:
        check_backend(self.attn_backend)
        if self.position_type not in POSITION_TYPES:
            raise ConfigError(f"unknown position_type {self.position_type!r}; valid: "
                              f"{list(POSITION_TYPES)}")
        if self.hidden_size % self.num_heads:
            raise ConfigError(f"hidden_size {self.hidden_size!r} is not divisible by num_heads "
                              f"{self.num_heads!r}; choose a head count that divides it")
        object.__setattr__(self, "embedding_dim", self.embedding_size or self.hidden_size)
        offset = self.pad_token_id + 1 if self.position_type == "padding-offset" else 0
        object.__setattr__(self, "max_length", self.max_position_embeddings - offset)


_TINY = dict(vocab_size=1000, hidden_size=32, num_layers=2, num_heads=4, intermediate_size=64,
             max_position_embeddings=64)
PRESETS: dict[str, BertConfig] = {  # model:bert's own
    "tiny": BertConfig(**_TINY),
    "mini": BertConfig(hidden_size=384, num_layers=6, num_heads=12, intermediate_size=1536),
    "base": BertConfig(),
    "large": BertConfig(hidden_size=1024, num_layers=24, num_heads=16, intermediate_size=4096),
}
_ROBERTA = dict(type_vocab_size=1, position_type="padding-offset", pad_token_id=1,
                layer_norm_eps=1e-5)
_ALBERT = dict(share_layers=True, hidden_act="gelu_new", hidden_dropout=0.0,
               attention_dropout=0.0)
VARIANT_PRESETS: dict[str, dict[str, BertConfig]] = {  # each variant's, under its component
    "roberta": {"tiny": BertConfig(**{**_TINY, "max_position_embeddings": 66}, **_ROBERTA),
                "base": BertConfig(vocab_size=50265, max_position_embeddings=514, **_ROBERTA)},
    "distilbert": {"tiny": BertConfig(**_TINY, type_vocab_size=0, pooler=False),
                   "base": BertConfig(num_layers=6, type_vocab_size=0, pooler=False)},
    "albert": {"tiny": BertConfig(**_TINY, embedding_size=16, **_ALBERT),
               "base-v2": BertConfig(embedding_size=128, vocab_size=30000, **_ALBERT)},
}
# The heads serve every variant: their presets name the family ("roberta-base").
HEAD_PRESETS: dict[str, BertConfig] = {**PRESETS, **{
    f"{family}-{name}": config for family, presets in VARIANT_PRESETS.items()
    for name, config in presets.items()}}


@dataclass
class EncoderOutput(ModelOutput):
    """``last_hidden_state`` (B, S, H); ``pooler_output`` (B, H) when the encoder has one."""

    last_hidden_state: Tensor
    pooler_output: Tensor | None = None


class Embeddings(nn.Module):
    """Word + position (+ token type) embeddings, layer norm and dropout (BERT Figure 2)."""

    def __init__(self, c: BertConfig) -> None:
        super().__init__()
        self.c = c
        self.word = nn.Embedding(c.vocab_size, c.embedding_dim, padding_idx=c.pad_token_id)
        self.position = nn.Embedding(c.max_position_embeddings, c.embedding_dim)
        self.token_type = nn.Embedding(c.type_vocab_size, c.embedding_dim) \
            if c.type_vocab_size else None
        self.norm = nn.LayerNorm(c.embedding_dim, eps=c.layer_norm_eps)
        self.dropout = nn.Dropout(c.hidden_dropout)

    def positions(self, input_ids: Tensor) -> Tensor:  # (B, S) -> (B, S)
        if self.c.position_type == "padding-offset":
            real = input_ids.ne(self.c.pad_token_id).long()
            return torch.cumsum(real, dim=1) * real + self.c.pad_token_id
        return torch.arange(input_ids.shape[1], device=input_ids.device).expand_as(input_ids)

    def forward(self, input_ids: Tensor, token_type_ids: Tensor | None,
                packing: Packing | None = None) -> Tensor:
        """(B, S, E), or the (N, E) real tokens alone with their ``packing``."""
        positions = self.positions(input_ids)
        if packing is not None:  # embed the real tokens alone
            input_ids, positions = packing.pack(input_ids), packing.pack(positions)
            if token_type_ids is not None:
                token_type_ids = packing.pack(token_type_ids)
        x = self.word(input_ids) + self.position(positions)
        if self.token_type is not None:
            if token_type_ids is None:
                token_type_ids = torch.zeros_like(input_ids)
            x = x + self.token_type(token_type_ids)
        return self.dropout(self.norm(x))


class EncoderLayer(nn.Module):
    """One post-LN Transformer encoder block (Vaswani et al. 2017, Section 3.1)."""

    def __init__(self, c: BertConfig) -> None:
        super().__init__()
        self.attn = MultiHeadAttention(c.hidden_size, c.num_heads, c.attention_dropout,
                                       c.attn_backend)
        self.attn_norm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.ffn = FeedForward(c.hidden_size, c.intermediate_size, c.hidden_act, c.hidden_dropout)
        self.ffn_norm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.dropout = nn.Dropout(c.hidden_dropout)

    def forward(self, x: Tensor, mask: Tensor | Packing | None = None) -> Tensor:
        """(B, S, H) with a key-padding mask, or packed tokens (N, H) with their packing."""
        # h = LN(x + MultiHead(x)); y = LN(h + FFN(h)); residuals added inside the output GEMMs
        packed = isinstance(mask, Packing)  # inference: the sums overwrite their operands
        mixed = self.attn.mix_packed(x, mask) if packed \
            else self.attn.mix(x, key_padding_mask=mask)
        x = self.attn_norm(add_linear(x, mixed, self.attn.o, self.dropout, packed))
        return self.ffn_norm(add_linear(x, self.ffn.hidden(x, packed), self.ffn.fc2,
                                        self.ffn.dropout, packed))


class Pooler(nn.Module):
    """``tanh(W h_[CLS] + b)``: the sentence-level representation fed to NSP (Section 3.1)."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)

    def forward(self, hidden: Tensor) -> Tensor:  # (B, S, H) -> (B, H)
        return torch.tanh(self.dense(hidden[:, 0]))


class BertModel(Model):
    """The BERT encoder: ids (B, S) → hidden states (B, S, H) and the pooled (B, H)."""

    config_class = BertConfig
    presets: ClassVar[dict[str, BertConfig]] = PRESETS
    #: transformers' BertModel of the published checkpoints (MiniLM-L6-H384, bert-base,
    #: bert-large), pooler included
    parameter_counts: ClassVar[dict[str, int]] = {
        "mini": 22_713_216, "base": 109_482_240, "large": 335_141_888}
    supports_grad_checkpointing = True
    attention_backends = BACKENDS
    layouts = hf.LAYOUTS

    def __init__(self, config: BertConfig, *, with_pooler: bool = True) -> None:
        super().__init__(config)
        c = config
        device = torch.get_default_device()
        on_meta = device.type == "meta"  # a loader's build: the weights come from a file
        # allocate once, initialise once (below), not twice
        with contextlib.nullcontext() if on_meta else torch.device("meta"):
            self.embeddings = Embeddings(c)
            self.project = nn.Linear(c.embedding_dim, c.hidden_size) \
                if c.embedding_dim != c.hidden_size else None
            self.layers = nn.ModuleList(EncoderLayer(c)
                                        for _ in range(1 if c.share_layers else c.num_layers))
            self.pooler = Pooler(c.hidden_size) if c.pooler and with_pooler else None
        if not on_meta:
            self.to_empty(device=device)
            self.apply(init_weights)

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None) -> EncoderOutput:
        mask = self.check_inputs(input_ids, attention_mask, token_type_ids)
        # inference on the CPU skips the padding: the layers see the N real tokens (N, E)
        packing = Packing.of(input_ids, mask)
        x = self.embeddings(input_ids, token_type_ids, packing)  # (B, S, E) or (N, E)
        if self.project is not None:
            x = self.project(x)  # (B, S, H) or (N, H)
        for i in range(self.config.num_layers):
            x = self.layers[0 if self.config.share_layers else i](x, packing or mask)
        if packing is not None:
            x = packing.unpack(x)  # (B, S, H), zeros at the padding
        pooled = self.pooler(x) if self.pooler is not None else None
        return EncoderOutput(x, pooled)

    def check_inputs(self, input_ids: Tensor, attention_mask: Tensor | None,
                     token_type_ids: Tensor | None) -> Tensor | None:
        """Raise on shapes, lengths and token types the model cannot take; values only under
        ``ZOO_DEBUG=1`` (no device synchronisation otherwise)."""
        c = self.config
        check_ids(input_ids, c.vocab_size)
        check_length(input_ids.shape[1], c.max_length)
        if token_type_ids is not None:
            if not c.type_vocab_size:
                raise InputError("this model has no token types (type_vocab_size=0) but "
                                 "token_type_ids were given; drop them")
            if token_type_ids.shape != input_ids.shape:
                raise InputError(f"token_type_ids has shape {tuple(token_type_ids.shape)!r}, "
                                 f"the ids {tuple(input_ids.shape)}; give one type per token")
            check_ids(token_type_ids, c.type_vocab_size, "token_type_ids")
        return check_mask(attention_mask, input_ids)

    def grad_checkpointing_blocks(self) -> Sequence[nn.Module]:
        return list(self.layers)

    def convert_state_dict(self, state_dict: dict[str, Any], layout: str) -> dict[str, Any]:
        return hf.convert(self, state_dict, layout, prefix="")

    def example_inputs(self) -> dict[str, Tensor]:
        return example_inputs(self.config)

    def bad_inputs(self) -> list[dict[str, Tensor]]:
        return bad_inputs(self.config)


def example_inputs(c: BertConfig, batch: int = 2, seq: int = 8) -> dict[str, Tensor]:
    """Random ids with a right-padded second row."""
    g = torch.Generator().manual_seed(0)
    low = c.pad_token_id + 1
    ids = torch.randint(low, c.vocab_size, (batch, seq), generator=g)
    mask = torch.ones(batch, seq, dtype=torch.long)
    mask[-1, seq // 2:] = 0
    ids[-1, seq // 2:] = c.pad_token_id
    out = {"input_ids": ids, "attention_mask": mask}
    if c.type_vocab_size > 1:
        types = torch.zeros_like(ids)
        types[:, seq // 4:] = 1
        out["token_type_ids"] = types
    return out


def bad_inputs(c: BertConfig) -> list[dict[str, Tensor]]:
    """Inputs every BERT-family model refuses: shapes and dtypes only (no value checks)."""
    good = example_inputs(c)
    ids, mask = good["input_ids"], good["attention_mask"]
    return [{**good, "input_ids": ids[0]},                            # no batch dimension
            {**good, "input_ids": ids.float()},                       # float ids
            {**good, "attention_mask": mask[:, :-1]},                 # one mask entry short
            {"input_ids": torch.ones(1, c.max_length + 1, dtype=torch.long)}]  # too long


def init_weights(module: nn.Module, std: float = 0.02) -> None:
    """Truncated-normal-like init of BERT: N(0, 0.02) weights, zero biases, unit norms."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, std=std)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
        if isinstance(module, nn.Embedding) and module.padding_idx is not None:
            with torch.no_grad():
                module.weight[module.padding_idx].zero_()
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


class RobertaModel(BertModel):
    """RoBERTa encoder: BERT with padding-offset positions and one token type."""

    presets: ClassVar[dict[str, BertConfig]] = VARIANT_PRESETS["roberta"]
    parameter_counts: ClassVar[dict[str, int]] = {"base": 124_645_632}  # roberta-base


class DistilBertModel(BertModel):
    """DistilBERT encoder: six layers, no token types, no pooler."""

    presets: ClassVar[dict[str, BertConfig]] = VARIANT_PRESETS["distilbert"]
    parameter_counts: ClassVar[dict[str, int]] = {"base": 66_362_880}  # distilbert-base


class AlbertModel(BertModel):
    """ALBERT encoder: factorised embeddings and one layer shared by all layers."""

    presets: ClassVar[dict[str, BertConfig]] = VARIANT_PRESETS["albert"]
    parameter_counts: ClassVar[dict[str, int]] = {"base-v2": 11_683_584}  # albert-base-v2
