"""Task heads on the BERT encoder, Devlin et al. 2018 (arXiv:1810.04805).

* masked LM (Section 3.1, Task #1): ``softmax(LN(act(W h)) Eᵀ + b)`` over the vocabulary,
  the output matrix tied to the word embeddings ``E``;
* pre-training: masked LM plus next-sentence prediction (Task #2) on the pooled ``[CLS]``;
* sequence classification on the pooled ``[CLS]`` and token classification on every token
  (Section 4, Figure 4);
* sentence embedding: the attention-masked mean of the last hidden states, optionally
  L2-normalised (Reimers & Gurevych 2019, arXiv:1908.10084, Section 3).

Losses are cross-entropy; label ``-100`` is ignored, as in the MLM convention.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo_core import Model

from . import hf
from ._inputs import check_labels
from .bert import HEAD_PRESETS, BertConfig, BertModel, bad_inputs, example_inputs, init_weights
from .layers.activations import activation
from .layers.attention import BACKENDS
from .outputs import ModelOutput
from .sentence import SentenceEncoder

# heads on the pooled [CLS] vector exist only for encoders with a pooler (not DistilBERT)
POOLED_PRESETS = {name: c for name, c in HEAD_PRESETS.items() if c.pooler}
IGNORE = -100


@dataclass
class MaskedLMOutput(ModelOutput):
    logits: Tensor  # (B, S, V)
    loss: Tensor | None = None


@dataclass
class PreTrainingOutput(ModelOutput):
    mlm_logits: Tensor  # (B, S, V)
    nsp_logits: Tensor  # (B, 2)
    loss: Tensor | None = None


@dataclass
class ClassifierOutput(ModelOutput):
    logits: Tensor  # (B, num_labels) or (B, S, num_labels)
    loss: Tensor | None = None


class MLMHead(nn.Module):
    """Transform, layer norm, and the decoder tied to the word embeddings."""

    def __init__(self, c: BertConfig, word: nn.Embedding) -> None:
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.embedding_dim)
        self.act = activation(c.hidden_act)
        self.norm = nn.LayerNorm(c.embedding_dim, eps=c.layer_norm_eps)
        self.word = [word]  # a list, so the tied matrix is registered once, by the encoder
        self.bias = nn.Parameter(torch.zeros(c.vocab_size))

    def forward(self, hidden: Tensor) -> Tensor:  # (B, S, H) -> (B, S, V)
        return F.linear(self.norm(self.act(self.dense(hidden))), self.word[0].weight, self.bias)


class _Head(Model):
    """Shared plumbing: the encoder sits under ``bert.`` and keeps the key layouts."""

    config_class = BertConfig
    presets: ClassVar[dict[str, BertConfig]] = HEAD_PRESETS
    contract_opt_outs: ClassVar[dict[str, str]] = {
        "parameter_count": "a head adds its layers to the encoder, whose presets' counts "
        "BertModel and its variants declare"}
    supports_grad_checkpointing = True
    attention_backends = BACKENDS
    layouts = hf.LAYOUTS
    with_pooler = False

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        self.bert = BertModel(config, with_pooler=self.with_pooler)

    def grad_checkpointing_blocks(self) -> Sequence[nn.Module]:
        return list(self.bert.layers)

    def convert_state_dict(self, state_dict: dict[str, Any], layout: str) -> dict[str, Any]:
        return hf.convert(self, state_dict, layout, prefix="bert.")

    def example_inputs(self) -> dict[str, Tensor]:
        return example_inputs(self.config)

    def bad_inputs(self) -> list[dict[str, Tensor]]:
        bad = bad_inputs(self.config)
        if "labels" in inspect.signature(self.forward).parameters:    # one label short a row
            good = self.example_inputs()
            bad.append({**good, "labels": good["input_ids"][:, :-1]})
        return bad

    def _encode(self, input_ids: Tensor, attention_mask: Tensor | None,
                token_type_ids: Tensor | None) -> Any:
        return self.bert(input_ids, attention_mask, token_type_ids)


class BertForMaskedLM(_Head):
    """BERT with the masked-LM head; ``labels`` (B, S) with -100 where not predicted."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        self.mlm = MLMHead(config, self.bert.embeddings.word)
        self.mlm.apply(init_weights)

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None, labels: Tensor | None = None
                ) -> MaskedLMOutput:
        check_labels(labels, tuple(input_ids.shape))
        logits = self.mlm(self._encode(input_ids, attention_mask, token_type_ids)
                          .last_hidden_state)  # (B, S, V)
        loss = None if labels is None else F.cross_entropy(
            logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE)
        return MaskedLMOutput(logits, loss)


class BertForPreTraining(_Head):
    """BERT pre-training: masked LM + next-sentence prediction (label 1 = random B)."""

    with_pooler = True
    presets = POOLED_PRESETS

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        self.mlm = MLMHead(config, self.bert.embeddings.word)
        self.nsp = nn.Linear(config.hidden_size, 2)
        self.mlm.apply(init_weights)
        init_weights(self.nsp)

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None, labels: Tensor | None = None,
                next_sentence_label: Tensor | None = None) -> PreTrainingOutput:
        check_labels(labels, tuple(input_ids.shape))
        out = self._encode(input_ids, attention_mask, token_type_ids)
        mlm, nsp = self.mlm(out.last_hidden_state), self.nsp(out.pooler_output)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(mlm.flatten(0, 1), labels.flatten(), ignore_index=IGNORE)
        if next_sentence_label is not None:
            nsp_loss = F.cross_entropy(nsp, next_sentence_label.view(-1))
            loss = nsp_loss if loss is None else loss + nsp_loss
        return PreTrainingOutput(mlm, nsp, loss)


class BertForSequenceClassification(_Head):
    """Pooled ``[CLS]`` → dropout → linear (cross-entropy; MSE when ``num_labels == 1``)."""

    with_pooler = True
    presets = POOLED_PRESETS

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        self.dropout = nn.Dropout(config.hidden_dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        init_weights(self.classifier)

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None, labels: Tensor | None = None
                ) -> ClassifierOutput:
        check_labels(labels, (input_ids.shape[0],))
        pooled = self._encode(input_ids, attention_mask, token_type_ids).pooler_output
        logits = self.classifier(self.dropout(pooled))  # (B, num_labels)
        loss = None
        if labels is not None:
            loss = F.mse_loss(logits.squeeze(-1), labels.float()) if logits.shape[-1] == 1 \
                else F.cross_entropy(logits, labels)
        return ClassifierOutput(logits, loss)


class BertForTokenClassification(_Head):
    """Every hidden state → dropout → linear; ``labels`` (B, S), -100 ignored."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        self.dropout = nn.Dropout(config.hidden_dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        init_weights(self.classifier)

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None, labels: Tensor | None = None
                ) -> ClassifierOutput:
        check_labels(labels, tuple(input_ids.shape))
        hidden = self._encode(input_ids, attention_mask, token_type_ids).last_hidden_state
        logits = self.classifier(self.dropout(hidden))  # (B, S, num_labels)
        loss = None if labels is None else F.cross_entropy(
            logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE)
        return ClassifierOutput(logits, loss)


def mean_pool(hidden: Tensor, mask: Tensor | None) -> Tensor:
    """Average of the hidden states (B, S, H) over attended tokens → (B, H)."""
    if mask is None:
        return hidden.mean(dim=1)
    m = mask.to(hidden.dtype).unsqueeze(-1)  # (B, S, 1)
    return (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1e-9)


class BertForSentenceEmbedding(SentenceEncoder, _Head):
    """Sentence vectors: masked mean pooling, L2-normalised when ``config.normalize``.

    Texts in, vectors out with sentence-transformers' API (:class:`~.sentence.SentenceEncoder`:
    ``encode``, ``similarity``, ``max_seq_length``...).
    """

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        self.prompts = {"query": "", "document": ""}  # sentence-transformers' defaults

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None) -> Tensor:
        hidden = self.token_embeddings(input_ids, attention_mask, token_type_ids)
        emb = mean_pool(hidden, attention_mask)  # (B, H)
        return F.normalize(emb, p=2, dim=-1) if self.config.normalize else emb

    def token_embeddings(self, input_ids: Tensor, attention_mask: Tensor | None = None,
                         token_type_ids: Tensor | None = None) -> Tensor:
        """The last hidden states (B, S, H), before pooling."""
        return self._encode(input_ids, attention_mask, token_type_ids).last_hidden_state  # type: ignore[no-any-return]
