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

import zoo_core as zoo
from zoo_core import ConfigError, InputError, Model

from . import hf
from ._inputs import check_labels
from .bert import HEAD_PRESETS, BertConfig, BertModel, bad_inputs, example_inputs, init_weights
from .layers.activations import activation
from .layers.attention import BACKENDS
from .outputs import ModelOutput

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


class BertForSentenceEmbedding(_Head):
    """Sentence vectors: masked mean pooling, L2-normalised when ``config.normalize``.

    :meth:`encode` takes texts, as sentence-transformers' ``SentenceTransformer.encode`` does.
    """

    _tokenizer: Any = None

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None) -> Tensor:
        hidden = self._encode(input_ids, attention_mask, token_type_ids).last_hidden_state
        emb = mean_pool(hidden, attention_mask)  # (B, H)
        return F.normalize(emb, p=2, dim=-1) if self.config.normalize else emb

    def encode(self, sentences: str | Sequence[str], batch_size: int = 32,
               show_progress_bar: bool | None = None, convert_to_numpy: bool = True,
               convert_to_tensor: bool = False, device: str | torch.device | None = None,
               normalize_embeddings: bool = False, tokenizer: Any = None) -> Any:
        """Embed texts with sentence-transformers' ``encode`` conventions.

        Texts are sorted by length (longest first) so each batch pads little, embedded
        ``batch_size`` at a time, and returned in the input order.

        Args:
            sentences: a text, or a list of texts.
            batch_size: texts per forward pass.
            show_progress_bar: a ``zoo.progress`` bar over batches; None: on a terminal only.
            convert_to_numpy: return a float32 ``numpy`` array (else a list of tensors).
            convert_to_tensor: return one stacked tensor (takes precedence over numpy).
            device: where to run (default: where the model is).
            normalize_embeddings: L2-normalise the result (again, if the model does).
            tokenizer: default: the tokenizer entry named by this model's catalogue entry.

        Returns:
            (N, H) embeddings, or (H,) for a single text.

        Example:
            >>> model = zoo.load("all-minilm-l6-v2")
            >>> model.encode(["A man is eating food.", "A man is eating pasta."]).shape
            (2, 384)
        """
        import numpy as np

        single = isinstance(sentences, str)
        texts = [sentences] if single else list(sentences)
        tok = tokenizer if tokenizer is not None else self.tokenizer
        if tok.vocab_size > self.config.vocab_size:
            raise InputError(f"the tokenizer has {tok.vocab_size!r} ids, more than the model's "
                             f"vocabulary of {self.config.vocab_size}; use the entry's own "
                             "tokenizer")
        device = torch.device(device) if device is not None else self.bert.embeddings.word \
            .weight.device
        length = self.config.max_seq_length or self.config.max_length
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))  # longest first
        out: list[Tensor] = [torch.empty(0)] * len(texts)
        self.eval()
        starts = range(0, len(texts), batch_size)
        with torch.inference_mode():
            for start in zoo.progress(starts, desc="encode", unit="batch",
                                      disable=None if show_progress_bar is None
                                      else not show_progress_bar):
                rows = order[start:start + batch_size]
                batch = tok([texts[i] for i in rows], padding=True, truncation=True,
                            max_length=length, return_tensors="pt")
                types = batch.get("token_type_ids") if self.config.type_vocab_size else None
                emb = self(batch["input_ids"].to(device), batch["attention_mask"].to(device),
                           None if types is None else types.to(device))  # (b, H)
                if normalize_embeddings:
                    emb = F.normalize(emb, p=2, dim=-1)
                for i, e in zip(rows, emb, strict=True):
                    out[i] = e
        if convert_to_tensor:
            result: Any = torch.stack(out) if out else torch.empty(0, self.config.hidden_size)
        elif convert_to_numpy:
            result = np.asarray([e.float().cpu().numpy() for e in out], dtype=np.float32)
        else:
            result = out
        return result[0] if single else result

    @property
    def tokenizer(self) -> Any:
        """The tokenizer named by the catalogue entry that serves this component (loaded
        once, through the catalogue); assign another to replace it."""
        if self._tokenizer is None:
            target = f"{type(self).__module__}:{type(self).__qualname__}"
            refs = {c.ref for c in zoo.REGISTRY.components().values() if c.target == target}
            names = sorted({e.tokenizer for e in zoo.CATALOG.entries().values()
                            if e.component in refs and e.tokenizer})
            if len(names) != 1:
                raise ConfigError(f"no single tokenizer entry for {sorted(refs)} in the "
                                  f"catalogue (found {names!r}); pass tokenizer=zoo.load(NAME)")
            self._tokenizer = zoo.load(names[0])
        return self._tokenizer

    @tokenizer.setter
    def tokenizer(self, value: Any) -> None:
        self._tokenizer = value
