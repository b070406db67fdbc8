"""Word vectors and their queries: similarity, nearest neighbours, analogies.

Analogies "a is to b as c is to ?" follow Levy & Goldberg 2014, "Linguistic Regularities in
Sparse and Explicit Word Representations" (CoNLL): 3CosAdd (their eq. 3, Mikolov et al.'s
vector offset) ranks ``x`` by ``cos(x, b) - cos(x, a) + cos(x, c)``; 3CosMul (eq. 4) by
``cos(x, b) cos(x, c) / (cos(x, a) + eps)`` with cosines shifted to ``[0, 1]`` by
``(1 + cos) / 2``; we take ``eps = 1e-6`` (the paper uses 0.001), the value gensim uses, so
rankings agree with it.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

import zoo_core as zoo
from zoo_core import InputError

Key = str | Tensor | np.ndarray
_FORMAT = "zoo-keyedvectors"


class KeyedVectors:
    """Words mapped to rows of a (V, D) tensor, with gensim's ``KeyedVectors`` queries.

    As in gensim, ``kv[word]``, ``get_vector`` and ``vectors`` are numpy arrays (``vectors``
    shares memory with ``tensor``, the torch view, on the CPU); ``key_to_index`` and
    ``index_to_key`` map words and rows.

    Example:
        >>> kv = model.wv
        >>> kv.most_similar("king", topn=3)
        [('queen', 0.71), ...]
        >>> kv.analogy("man", "king", "woman")    # man : king :: woman : ?
    """

    def __init__(self, words: Sequence[str], vectors: Tensor,
                 counts: Sequence[int] | None = None) -> None:
        if vectors.dim() != 2 or vectors.shape[0] != len(words):
            raise InputError(f"{len(words)} words need a ({len(words)}, D) tensor, got shape "
                             f"{tuple(vectors.shape)}")
        self.index_to_key = list(words)
        self.key_to_index = {w: i for i, w in enumerate(self.index_to_key)}
        if len(self.key_to_index) != len(self.index_to_key):
            dup = next(w for i, w in enumerate(words) if self.key_to_index[w] != i)
            raise InputError(f"word {dup!r} appears twice in the vocabulary; words must be unique")
        self.tensor = vectors
        self.counts = list(counts) if counts is not None else None
        self._normed: tuple[tuple[int, int], Tensor] | None = None

    # -- lookup --------------------------------------------------------------------------
    @property
    def vectors(self) -> np.ndarray:
        """(V, D) numpy array of the vectors (the same memory as ``tensor`` on the CPU)."""
        return self.tensor.detach().cpu().numpy()

    @property
    def vector_size(self) -> int:
        return int(self.tensor.shape[1])

    def __len__(self) -> int:
        return len(self.index_to_key)

    def __contains__(self, word: object) -> bool:
        return word in self.key_to_index

    def __getitem__(self, word: str | Sequence[str]) -> np.ndarray:
        """The vector of a word (D,), or of several words (n, D), as numpy arrays."""
        if isinstance(word, str):
            return self.get_vector(word)
        return np.stack([self.get_vector(w) for w in word]) if len(word) else \
            np.zeros((0, self.vector_size), dtype=self.vectors.dtype)

    def get_vector(self, key: str, norm: bool = False) -> np.ndarray:
        """The vector of ``key`` (a copy; unit length with ``norm=True``)."""
        row = self.normed()[self.index(key)] if norm else self.tensor[self.index(key)]
        return row.detach().cpu().numpy().copy()

    def get_index(self, key: str, default: int | None = None) -> int:
        """Row of ``key``; ``default`` when unknown (raises when ``default`` is None)."""
        if key in self.key_to_index:
            return self.key_to_index[key]
        if default is not None:
            return default
        raise self._unknown(key)

    def has_index_for(self, key: str) -> bool:
        return key in self.key_to_index

    def get_vecattr(self, key: str, attr: str) -> int:
        """gensim's per-word attribute; ``"count"`` is the only one kept."""
        if attr != "count" or self.counts is None:
            raise InputError(f"no attribute {attr!r} for words here; 'count' is kept "
                             "for trained models")
        return self.counts[self.index(key)]

    def get_normed_vectors(self) -> np.ndarray:
        """(V, D) unit-length rows as a numpy array."""
        return self.normed().cpu().numpy()

    def index(self, word: str) -> int:
        """Row of ``word``; an unknown word raises with the closest known ones."""
        try:
            return self.key_to_index[word]
        except (KeyError, TypeError):
            raise self._unknown(word) from None

    def _unknown(self, word: object) -> InputError:
        if not isinstance(word, str):
            return InputError(f"words are str, got {word!r} ({type(word).__name__})")
        near = difflib.get_close_matches(word, self.index_to_key[:200_000], n=5, cutoff=0.6)
        hint = f"; closest: {', '.join(map(repr, near))}" if near else ""
        return InputError(f"word {word!r} is not in the vocabulary ({len(self)} words){hint}. "
                          "Check spelling and case, or train with a lower min_count")

    def normed(self) -> Tensor:
        """(V, D) unit-length rows (cached until the vectors change)."""
        v = self.tensor.detach()
        key = (v._version, v.data_ptr())
        if self._normed is None or self._normed[0] != key:
            self._normed = (key, v / v.norm(dim=1, keepdim=True).clamp_min(1e-12))
        return self._normed[1]

    def _unit(self, key: Key) -> Tensor:
        if isinstance(key, np.ndarray):
            key = torch.from_numpy(key)
        if isinstance(key, Tensor):
            v = key.detach().to(self.tensor.dtype).reshape(-1)
            if v.numel() != self.vector_size:
                raise InputError(f"a query vector needs {self.vector_size} values, got {v.numel()}")
            return v / v.norm().clamp_min(1e-12)
        return self.normed()[self.index(key)]

    # -- queries -------------------------------------------------------------------------
    def similarity(self, w1: Key, w2: Key) -> float:
        """Cosine similarity of two words (or vectors)."""
        return float(self._unit(w1) @ self._unit(w2))

    def most_similar(self, positive: Key | Sequence[Key] | None = None,
                     negative: Key | Sequence[Key] | None = None, topn: int = 10,
                     restrict_vocab: int | None = None) -> list[tuple[str, float]]:
        """Words closest by cosine to the mean of ``positive`` minus ``negative`` (3CosAdd)."""
        pos, neg = _as_list(positive), _as_list(negative)
        if not pos and not neg:
            raise InputError("most_similar needs at least one positive or negative word")
        query = torch.stack([self._unit(k) for k in pos] + [-self._unit(k) for k in neg]).mean(0)
        query = query / query.norm().clamp_min(1e-12)
        scores = self._candidates(restrict_vocab) @ query
        return self._top(scores, topn, exclude=[k for k in pos + neg if isinstance(k, str)])

    def similar_by_word(self, word: str, topn: int = 10,
                        restrict_vocab: int | None = None) -> list[tuple[str, float]]:
        return self.most_similar(word, topn=topn, restrict_vocab=restrict_vocab)

    def similar_by_vector(self, vector: Tensor | np.ndarray, topn: int = 10,
                          restrict_vocab: int | None = None) -> list[tuple[str, float]]:
        return self.most_similar([vector], topn=topn, restrict_vocab=restrict_vocab)

    def distance(self, w1: Key, w2: Key) -> float:
        """Cosine distance, 1 − similarity."""
        return 1.0 - self.similarity(w1, w2)

    def n_similarity(self, ws1: Sequence[Key], ws2: Sequence[Key]) -> float:
        """Cosine similarity of the means of two sets of unit vectors."""
        if not len(ws1) or not len(ws2):
            raise InputError(f"n_similarity needs two non-empty lists, got {ws1!r} and {ws2!r}")
        a = torch.stack([self._unit(k) for k in ws1]).mean(0)
        b = torch.stack([self._unit(k) for k in ws2]).mean(0)
        return float(a @ b / (a.norm() * b.norm()).clamp_min(1e-12))

    def most_similar_cosmul(self, positive: Key | Sequence[Key] | None = None,
                            negative: Key | Sequence[Key] | None = None, topn: int = 10,
                            restrict_vocab: int | None = None) -> list[tuple[str, float]]:
        """3CosMul: product of shifted cosines to ``positive`` over those to ``negative``."""
        pos, neg = _as_list(positive), _as_list(negative)
        if not pos:
            raise InputError("most_similar_cosmul needs at least one positive word")
        cand = self._candidates(restrict_vocab)
        score = torch.ones(cand.shape[0], dtype=cand.dtype)
        for k in pos:
            score = score * ((1 + cand @ self._unit(k)) / 2)
        denom = torch.ones_like(score)
        for k in neg:
            denom = denom * ((1 + cand @ self._unit(k)) / 2)
        return self._top(score / (denom + 1e-6), topn,
                         exclude=[k for k in pos + neg if isinstance(k, str)])

    def analogy(self, a: str, b: str, c: str, method: str = "3cosadd", topn: int = 1,
                restrict_vocab: int | None = None) -> list[tuple[str, float]]:
        """``a`` is to ``b`` as ``c`` is to ? (``method`` "3cosadd" or "3cosmul")."""
        if method == "3cosadd":
            return self.most_similar([b, c], [a], topn, restrict_vocab)
        if method == "3cosmul":
            return self.most_similar_cosmul([b, c], [a], topn, restrict_vocab)
        raise InputError(f"unknown analogy method {method!r}; valid: '3cosadd', '3cosmul'")

    def doesnt_match(self, words: Sequence[str]) -> str:
        """The word furthest from the mean of the others' unit vectors."""
        if len(words) < 2:
            raise InputError(f"doesnt_match needs at least two words, got {list(words)!r}")
        units = torch.stack([self._unit(w) for w in words])
        mean = units.mean(0)
        mean = mean / mean.norm().clamp_min(1e-12)
        return words[int((units @ mean).argmin())]

    def nearest(self, queries: Sequence[str] | Tensor | np.ndarray, topn: int = 10,
                exclude_self: bool = True, block: int = 4096) -> tuple[Tensor, Tensor]:
        """Nearest neighbours of many words or vectors (rows of a tensor or array) at once.

        Returns:
            scores: (Q, topn) cosine similarities, best first.
            indices: (Q, topn) word rows (``index_to_key[i]`` gives the words).
        """
        normed = self.normed()
        if isinstance(queries, np.ndarray):
            queries = torch.from_numpy(queries)
        if isinstance(queries, Tensor):
            q = queries.detach().to(normed.dtype)
            q = q / q.norm(dim=1, keepdim=True).clamp_min(1e-12)
            self_idx = None
        else:
            self_idx = torch.tensor([self.index(w) for w in queries], dtype=torch.long)
            q = normed[self_idx]
        k = min(topn, len(self) - (1 if self_idx is not None and exclude_self else 0))
        out_s, out_i = [], []
        for start in range(0, q.shape[0], block):
            sims = q[start:start + block] @ normed.T  # (b, V)
            if self_idx is not None and exclude_self:
                rows = torch.arange(sims.shape[0])
                sims[rows, self_idx[start:start + block]] = -torch.inf
            s, i = sims.topk(k, dim=1)
            out_s.append(s)
            out_i.append(i)
        return torch.cat(out_s), torch.cat(out_i)

    def _candidates(self, restrict_vocab: int | None) -> Tensor:
        normed = self.normed()
        return normed if restrict_vocab is None else normed[:restrict_vocab]

    def _top(self, scores: Tensor, topn: int, exclude: Iterable[str]) -> list[tuple[str, float]]:
        drop = [self.key_to_index[w] for w in exclude if self.key_to_index.get(w, -1) <
                scores.numel()]
        if drop:
            scores = scores.clone()
            scores[torch.tensor(drop)] = -torch.inf
        k = min(topn, scores.numel() - len(drop))
        s, i = scores.topk(k)
        return [(self.index_to_key[j], float(v)) for v, j in zip(s.tolist(), i.tolist(),
                                                                 strict=True)]

    # -- evaluation and files ------------------------------------------------------------
    def evaluate_word_pairs(self, path: str | os.PathLike[str], **options: Any) -> dict[str, Any]:
        """Pearson/Spearman against human scores (WordSim353, SimLex-999); see ``evaluate``."""
        from .evaluate import evaluate_word_pairs

        return evaluate_word_pairs(self, path, **options)

    def evaluate_word_analogies(self, path: str | os.PathLike[str], **options: Any,
                                ) -> dict[str, Any]:
        """Accuracy per section on Google analogies; see ``evaluate``."""
        from .evaluate import evaluate_word_analogies

        return evaluate_word_analogies(self, path, **options)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the words, counts and vectors to one safetensors file (atomically; no
        pickle). :meth:`load` reads it back."""
        from .vocab import encode_words

        utf8, offsets = encode_words(self.index_to_key)
        tensors = {"vectors": self.tensor.detach(), "vocab_utf8": utf8,
                   "vocab_offsets": offsets}
        if self.counts is not None:
            tensors["counts"] = torch.tensor(self.counts, dtype=torch.long)
        zoo.save_safetensors(tensors, path, metadata={"format": _FORMAT})

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> KeyedVectors:
        """Read a file written by :meth:`save` (gensim's pickles are refused: convert them
        with gensim's ``save_word2vec_format`` and read that with ``load_word2vec_format``)."""
        from .vocab import decode_words

        state = read_saved(path, _FORMAT)
        counts = state.get("counts")
        return cls(decode_words(state["vocab_utf8"], state["vocab_offsets"]),
                   state["vectors"].clone(), None if counts is None else counts.tolist())

    def save_word2vec_format(self, path: str | os.PathLike[str], binary: bool = False) -> None:
        """Write the word2vec C text (or binary) format, most frequent words first."""
        from .formats import save_word2vec_format

        save_word2vec_format(path, self.index_to_key, self.tensor.detach(), binary=binary)

    @classmethod
    def load_word2vec_format(cls, path: str | os.PathLike[str], binary: bool = False,
                             limit: int | None = None) -> KeyedVectors:
        """Read the word2vec C text (or binary) format."""
        from .formats import load_word2vec_format

        words, vectors = load_word2vec_format(path, binary=binary, limit=limit)
        return cls(words, vectors)


def _as_list(keys: Key | Sequence[Key] | None) -> list[Key]:
    if keys is None:
        return []
    if isinstance(keys, (str, Tensor, np.ndarray)):
        return [keys]
    return list(keys)


def read_saved(path: str | os.PathLike[str], fmt: str) -> dict[str, Any]:
    """The tensors of a file our ``save`` wrote in format ``fmt`` (and its metadata under
    ``"__metadata__"``); anything else, gensim's pickles included, raises with the fix."""
    from safetensors import SafetensorError, safe_open

    how = ("gensim's own .model files are pickles, which zoo never loads: in gensim, write "
           "model.wv.save_word2vec_format('vectors.bin', binary=True) and read it with "
           "KeyedVectors.load_word2vec_format('vectors.bin', binary=True)")
    if not os.path.isfile(path):
        raise InputError(f"no file {os.fspath(path)!r}; pass the path a save() wrote")
    try:
        state: dict[str, Any] = dict(zoo.read_safetensors(path))
        with safe_open(os.fspath(path), "pt") as f:
            meta = f.metadata() or {}
    except (zoo.ZooError, SafetensorError, OSError) as err:
        raise InputError(f"{os.fspath(path)!r} is not a file zoo's save() wrote ({err}); "
                         f"{how}") from None
    if meta.get("format") != fmt:
        raise InputError(f"{os.fspath(path)!r} holds {meta.get('format')!r}, not {fmt!r}; "
                         f"load it with the class that saved it. {how}")
    state["__metadata__"] = meta
    return state
