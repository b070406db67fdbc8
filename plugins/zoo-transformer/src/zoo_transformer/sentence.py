"""The sentence-transformers surface of a sentence-embedding model.

Reimers & Gurevych 2019 (arXiv:1908.10084): a sentence is the pooled output of the encoder,
compared by cosine similarity. :class:`SentenceEncoder` gives a zoo model the everyday API of
``SentenceTransformer``, so code written for it runs with only the loading line changed::

    model = zoo.load("sentence-transformers/all-MiniLM-L6-v2")  # was SentenceTransformer(...)
    emb = model.encode(["A man is eating food.", "A man is eating pasta."])  # (2, 384) numpy
    model.similarity(emb, emb)                                               # (2, 2) tensor

Quantized precisions follow sentence-transformers' ``quantize_embeddings``: ``int8``/``uint8``
cut each dimension's range over the batch into 256 buckets (so they need two texts or more),
``binary``/``ubinary`` pack the signs into bits (8 dimensions a byte).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

import zoo_core as zoo
from zoo_core import InputError

PRECISIONS = ("float32", "int8", "uint8", "binary", "ubinary")
OUTPUTS = ("sentence_embedding", "token_embeddings")


def _matrix(x: Any) -> Tensor:
    """Embeddings (a tensor, an array or a list of either) as a 2-D float tensor."""
    if isinstance(x, list):
        x = torch.stack([torch.as_tensor(e) for e in x]) if x else torch.empty(0, 0)
    t = torch.as_tensor(x)
    return (t.unsqueeze(0) if t.dim() == 1 else t).float()


def _cosine(a: Tensor, b: Tensor) -> Tensor:
    return F.normalize(a, p=2, dim=-1) @ F.normalize(b, p=2, dim=-1).T


SIMILARITY = {  # (N, H), (M, H) -> (N, M); distances are negated, so larger means closer
    "cosine": _cosine,
    "dot": lambda a, b: a @ b.T,
    "euclidean": lambda a, b: -torch.cdist(a, b, p=2.0),
    "manhattan": lambda a, b: -torch.cdist(a, b, p=1.0),
}
PAIRWISE = {  # (N, H), (N, H) -> (N,)
    "cosine": lambda a, b: (F.normalize(a, p=2, dim=-1) * F.normalize(b, p=2, dim=-1)).sum(-1),
    "dot": lambda a, b: (a * b).sum(-1),
    "euclidean": lambda a, b: -(a - b).norm(p=2, dim=-1),
    "manhattan": lambda a, b: -(a - b).abs().sum(-1),
}


def quantize(emb: np.ndarray, precision: str, ranges: np.ndarray | None = None) -> np.ndarray:
    """``emb`` (N, H) float32 at ``precision``; int8/uint8 use ``ranges`` (2, H) (min and max
    of each dimension), by default those of ``emb`` itself."""
    if precision == "float32":
        return emb.astype(np.float32)
    if precision in ("binary", "ubinary"):
        bits = np.packbits(emb > 0, axis=-1)  # (N, ceil(H / 8)) uint8
        return bits if precision == "ubinary" else (bits - 128).astype(np.int8)
    if ranges is None:
        if emb.ndim == 1 or emb.shape[0] < 2:
            raise InputError(f"precision={precision!r} buckets each dimension by its range over "
                             f"the batch, and {emb.shape[0] if emb.ndim > 1 else 1} embedding has "
                             "none; encode two texts or more, or use precision='float32'")
        ranges = np.vstack((emb.min(axis=0), emb.max(axis=0)))
    start = ranges[0].astype(np.float32)
    step = (ranges[1].astype(np.float32) - start) / 255
    step = np.where(step == 0, 1, step)
    buckets = np.clip(np.floor((emb - start) / step), 0, 255)  # 256 buckets a dimension
    return buckets.astype(np.uint8) if precision == "uint8" else (buckets - 128).astype(np.int8)


class SentenceEncoder:
    """``SentenceTransformer``'s everyday API on a model whose ``forward(input_ids,
    attention_mask, token_type_ids)`` gives sentence embeddings and whose
    ``token_embeddings(...)`` gives the last hidden states.

    Attributes:
        prompts: prompt name to the text put before each input (``encode(prompt_name=...)``);
            sentence-transformers' defaults, ``{"query": "", "document": ""}``.
        default_prompt_name: the prompt used when ``encode`` names none.
        truncate_dim: keep this many leading dimensions of every embedding (Matryoshka
            models; ``None``: all), unless ``encode`` says otherwise.
    """

    config: Any
    prompts: dict[str, str]
    default_prompt_name: str | None = None
    truncate_dim: int | None = None
    _similarity_fn_name = "cosine"
    _max_seq_length: int | None = None
    _tokenizer: Any = None

    def encode(self, sentences: str | Sequence[str], prompt_name: str | None = None,
               prompt: str | None = None, batch_size: int = 32,
               show_progress_bar: bool | None = None,
               output_value: str = "sentence_embedding", precision: str = "float32",
               convert_to_numpy: bool = True, convert_to_tensor: bool = False,
               device: str | torch.device | None = None, normalize_embeddings: bool = False,
               truncate_dim: int | None = None, tokenizer: Any = None) -> Any:
        """Embed texts with sentence-transformers' ``encode`` conventions.

        Texts are sorted by length (longest first) so each batch pads little, embedded
        ``batch_size`` at a time, and returned in the input order.

        Args:
            sentences: a text, or a list of texts.
            prompt_name: a key of :attr:`prompts`; its text goes before each input.
            prompt: a text to put before each input (wins over ``prompt_name``).
            batch_size: texts per forward pass.
            show_progress_bar: a ``zoo.progress`` bar over batches; None: on a terminal only.
            output_value: ``"sentence_embedding"``, or ``"token_embeddings"`` for each text's
                last hidden states, (tokens, H) without padding, as a list.
            precision: ``"float32"``, ``"int8"``, ``"uint8"``, ``"binary"`` or ``"ubinary"``.
            convert_to_numpy: return a ``numpy`` array (else a list of tensors).
            convert_to_tensor: return one stacked tensor (takes precedence over numpy).
            device: where to run (default: where the model is).
            normalize_embeddings: L2-normalise the result (again, if the model does).
            truncate_dim: keep the first ``truncate_dim`` dimensions (Matryoshka models;
                default :attr:`truncate_dim`).
            tokenizer: default: :attr:`tokenizer`.

        Returns:
            (N, H) embeddings, or (H,) for a single text.

        Example:
            >>> model = zoo.load("all-minilm-l6-v2")
            >>> model.encode(["A man is eating food.", "A man is eating pasta."]).shape
            (2, 384)
        """
        if output_value not in OUTPUTS:
            raise InputError(f"output_value={output_value!r} is not one of {OUTPUTS}")
        if precision not in PRECISIONS:
            raise InputError(f"precision={precision!r} is not one of {PRECISIONS}")
        if not isinstance(batch_size, int) or batch_size <= 0:
            raise InputError(f"batch_size={batch_size!r}: pass a positive int")
        single = isinstance(sentences, str)
        texts: list[str] = [sentences] if isinstance(sentences, str) else list(sentences)
        if prompt is None and prompt_name is None:
            prompt_name = self.default_prompt_name
        if prompt is None and prompt_name is not None:
            if prompt_name not in self.prompts:
                raise InputError(f"prompt_name={prompt_name!r} is not one of the model's prompts "
                                 f"{sorted(self.prompts)}; set model.prompts[{prompt_name!r}]")
            prompt = self.prompts[prompt_name]
        if prompt:
            texts = [prompt + t for t in texts]
        truncate_dim = truncate_dim if truncate_dim is not None else self.truncate_dim
        rows = self._embed(texts, tokenizer, batch_size, show_progress_bar, output_value,
                           device, normalize_embeddings, truncate_dim)
        if output_value == "token_embeddings":
            tokens: list[Any] = rows
            if precision != "float32" and rows:  # shared buckets over every token of every text
                flat = np.concatenate([r.float().cpu().numpy() for r in rows])
                ranges = None if precision.endswith("binary") else \
                    np.vstack((flat.min(axis=0), flat.max(axis=0)))
                tokens = [quantize(r.float().cpu().numpy(), precision, ranges) for r in rows]
            return tokens[0] if single else tokens
        if not rows:  # sentence-transformers' empty results
            return torch.tensor([]) if convert_to_tensor else np.array([]) \
                if convert_to_numpy else []
        result: Any = torch.stack(rows)  # (N, H)
        if precision != "float32":
            result = quantize(result.float().cpu().numpy(), precision)
        if convert_to_tensor:
            result = torch.as_tensor(result)
        elif convert_to_numpy:
            result = result if isinstance(result, np.ndarray) else result.float().cpu().numpy()
        else:
            result = list(torch.as_tensor(result))
        return result[0] if single else result

    def token_embeddings(self, input_ids: Tensor, attention_mask: Tensor | None = None,
                         token_type_ids: Tensor | None = None) -> Tensor:
        """The last hidden states (B, S, H) of a batch (the model provides it)."""
        raise NotImplementedError

    def _embed(self, texts: list[str], tokenizer: Any, batch_size: int,
               show_progress_bar: bool | None, output_value: str,
               device: str | torch.device | None, normalize: bool,
               truncate_dim: int | None) -> list[Tensor]:
        """One tensor per text, in the input order."""
        tok = tokenizer if tokenizer is not None else self.tokenizer
        if tok.vocab_size > self.config.vocab_size:
            raise InputError(f"the tokenizer has {tok.vocab_size!r} ids, more than the model's "
                             f"vocabulary of {self.config.vocab_size}; use the entry's own "
                             "tokenizer")
        where = torch.device(device) if device is not None else self.device
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))  # longest first
        out: list[Tensor] = [torch.empty(0)] * len(texts)
        self.eval()  # type: ignore[attr-defined]
        starts = range(0, len(texts), batch_size)
        with torch.inference_mode():
            for start in zoo.progress(starts, desc="encode", unit="batch",
                                      disable=None if show_progress_bar is None
                                      else not show_progress_bar):
                rows = order[start:start + batch_size]
                batch = tok([texts[i] for i in rows], padding=True, truncation=True,
                            max_length=self.max_seq_length, return_tensors="pt")
                types = batch.get("token_type_ids") if self.config.type_vocab_size else None
                args = (batch["input_ids"].to(where), batch["attention_mask"].to(where),
                        None if types is None else types.to(where))
                if output_value == "token_embeddings":  # (b, S, H), cut to each text's length
                    hidden = self.token_embeddings(*args)
                    for i, h, n in zip(rows, hidden, batch["attention_mask"].sum(1).tolist(),
                                       strict=True):
                        out[i] = h[:n]
                    continue
                emb = self(*args)[:, :truncate_dim]  # type: ignore[operator]  # (b, H)
                if normalize:
                    emb = F.normalize(emb, p=2, dim=-1)
                for i, e in zip(rows, emb, strict=True):
                    out[i] = e
        return out

    def encode_query(self, sentences: str | Sequence[str], **options: Any) -> Any:
        """:meth:`encode` with the ``"query"`` prompt when none is named (retrieval queries)."""
        if options.get("prompt_name") is None and options.get("prompt") is None \
                and "query" in self.prompts:
            options["prompt_name"] = "query"
        return self.encode(sentences, **options)

    def encode_document(self, sentences: str | Sequence[str], **options: Any) -> Any:
        """:meth:`encode` with the ``"document"`` (or ``"passage"``, ``"corpus"``) prompt when
        none is named (the texts retrieval searches)."""
        if options.get("prompt_name") is None and options.get("prompt") is None:
            named = [p for p in ("document", "passage", "corpus") if p in self.prompts]
            options["prompt_name"] = named[0] if named else None
        return self.encode(sentences, **options)

    # -- the rest of SentenceTransformer's everyday surface ----------------------------------
    @property
    def similarity_fn_name(self) -> str:
        """``"cosine"`` (default), ``"dot"``, ``"euclidean"`` or ``"manhattan"``: what
        :meth:`similarity` computes."""
        return self._similarity_fn_name

    @similarity_fn_name.setter
    def similarity_fn_name(self, value: Any) -> None:
        value = getattr(value, "value", value)  # sentence-transformers' SimilarityFunction
        if value not in SIMILARITY:
            raise InputError(f"similarity_fn_name={value!r} is not one of {sorted(SIMILARITY)}")
        self._similarity_fn_name = value

    def similarity(self, embeddings1: Any, embeddings2: Any) -> Tensor:
        """(N, M) scores of every pair by :attr:`similarity_fn_name` (1-D inputs count as one
        row); distances come negated, so larger always means more similar."""
        return SIMILARITY[self.similarity_fn_name](_matrix(embeddings1), _matrix(embeddings2))

    def similarity_pairwise(self, embeddings1: Any, embeddings2: Any) -> Tensor:
        """(N,) scores of row i with row i."""
        return PAIRWISE[self.similarity_fn_name](_matrix(embeddings1), _matrix(embeddings2))

    def get_sentence_embedding_dimension(self) -> int:
        """The size of one sentence embedding (at most :attr:`truncate_dim`)."""
        return min(int(self.config.hidden_size), self.truncate_dim or self.config.hidden_size)

    get_embedding_dimension = get_sentence_embedding_dimension

    @property
    def max_seq_length(self) -> int:
        """Tokens kept per text ([CLS] and [SEP] included); longer texts are truncated.
        Settable, as in sentence-transformers."""
        return int(self._max_seq_length or self.config.max_seq_length or self.config.max_length)

    @max_seq_length.setter
    def max_seq_length(self, value: int) -> None:
        if not isinstance(value, int) or not 0 < value <= self.config.max_length:
            raise InputError(f"max_seq_length={value!r}: pass an int in 1..{self.config.max_length}"
                             " (the model's position embeddings)")
        self._max_seq_length = value

    def get_max_seq_length(self) -> int:
        return self.max_seq_length

    @property
    def device(self) -> torch.device:
        """Where the model's parameters are."""
        return next(self.parameters()).device  # type: ignore[attr-defined,no-any-return]

    @property
    def tokenizer(self) -> Any:
        """The tokenizer named by the catalogue entry this model was loaded from (loaded
        once); assign another to replace it."""
        if self._tokenizer is None:
            entry = getattr(self, "zoo_entry", None)
            if entry is None or not entry.tokenizer:
                what = f"entry {entry.name!r}" if entry else "this model (not loaded by name)"
                raise zoo.ConfigError(f"{what} names no tokenizer; assign one: "
                                      "model.tokenizer = zoo.load('bert-base-uncased')")
            self._tokenizer = zoo.load(entry.tokenizer)
        return self._tokenizer

    @tokenizer.setter
    def tokenizer(self, value: Any) -> None:
        self._tokenizer = value
