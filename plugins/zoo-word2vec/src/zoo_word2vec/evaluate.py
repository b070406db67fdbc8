"""Intrinsic evaluation: word-pair similarity and Google analogies.

* Word pairs (WordSim353, Finkelstein et al. 2002; SimLex-999, Hill et al. 2015): Pearson and
  Spearman correlation between the cosine of each in-vocabulary pair and the human score,
  with the share of pairs skipped as out of vocabulary.
* Analogies (Mikolov et al. 2013, arXiv:1301.3781, sec. 4.1): "a b c d" is right when the
  best 3CosAdd answer for ``a : b :: c : ?`` among the ``restrict_vocab`` most frequent words,
  excluding ``a``, ``b`` and ``c``, is ``d``; questions with an unknown word are skipped.

Both restrict the vocabulary to the ``restrict_vocab`` most frequent words and, by default,
compare words case-insensitively (the most frequent casing represents a word), as is usual.
The gensim test data ships these files: ``gensim/test/test_data/{wordsim353.tsv,
simlex999.txt,questions-words.txt}``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from zoo_core import InputError

if TYPE_CHECKING:
    from .keyedvectors import KeyedVectors


def _restricted(kv: KeyedVectors, restrict_vocab: int, case_insensitive: bool,
                ) -> dict[str, int]:
    keys = kv.index_to_key[:restrict_vocab]
    if not case_insensitive:
        return {w: i for i, w in enumerate(keys)}
    out: dict[str, int] = {}
    for i, w in enumerate(keys):
        out.setdefault(w.upper(), i)
    return out


def _read_lines(path: str | os.PathLike[str]) -> list[str]:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().splitlines()
    except OSError as e:
        raise InputError(f"cannot read evaluation file {str(path)!r}: {e}") from None


def rankdata(x: Tensor) -> Tensor:
    """Ranks starting at 1, ties given their average rank (float64)."""
    x = x.double()
    order = torch.argsort(x, stable=True)
    ranks = torch.empty_like(x)
    ranks[order] = torch.arange(1, x.numel() + 1, dtype=torch.float64)
    uniq, inverse = torch.unique(x, return_inverse=True)
    sums = torch.zeros(uniq.numel(), dtype=torch.float64).index_add_(0, inverse, ranks)
    counts = torch.bincount(inverse, minlength=uniq.numel()).double()
    return (sums / counts)[inverse]


def pearson(x: Tensor, y: Tensor) -> float:
    x, y = x.double() - x.double().mean(), y.double() - y.double().mean()
    return float((x * y).sum() / (x.norm() * y.norm()).clamp_min(1e-300))


def spearman(x: Tensor, y: Tensor) -> float:
    return pearson(rankdata(x), rankdata(y))


def evaluate_word_pairs(kv: KeyedVectors, path: str | os.PathLike[str], delimiter: str = "\t",
                        restrict_vocab: int = 300_000, case_insensitive: bool = True,
                        ) -> dict[str, Any]:
    """Correlation of cosine similarities with the human scores of a word-pair file.

    Returns:
        ``{"pearson", "spearman", "oov_ratio" (percent of pairs skipped), "pairs" (used)}``.
    """
    vocab = _restricted(kv, restrict_vocab, case_insensitive)
    normed = kv.normed()
    model, gold, oov = [], [], 0
    for n, line in enumerate(_read_lines(path), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split(delimiter)
        if len(parts) < 3:
            raise InputError(f"{str(path)!r} line {n}: expected 'word1{delimiter}word2"
                             f"{delimiter}score', got {line!r}")
        a, b = (w.upper() for w in parts[:2]) if case_insensitive else parts[:2]
        if a not in vocab or b not in vocab:
            oov += 1
            continue
        gold.append(float(parts[2]))
        model.append(float(normed[vocab[a]] @ normed[vocab[b]]))
    total = len(gold) + oov
    if len(gold) < 2:
        raise InputError(f"only {len(gold)} of {total} pairs of {str(path)!r} are in the "
                         "vocabulary; cannot correlate (train on a larger corpus)")
    m, g = torch.tensor(model), torch.tensor(gold)
    return {"pearson": pearson(m, g), "spearman": spearman(m, g),
            "oov_ratio": 100.0 * oov / total, "pairs": len(gold)}


def evaluate_word_analogies(kv: KeyedVectors, path: str | os.PathLike[str],
                            restrict_vocab: int = 300_000, case_insensitive: bool = True,
                            ) -> dict[str, Any]:
    """Accuracy on an analogy file (``: section`` lines, then ``a b c d`` questions).

    Returns:
        ``{"accuracy", "correct", "total", "oov_ratio" (percent skipped), "sections":
        [{"section", "correct", "total", "accuracy"}, ...]}``.
    """
    vocab = _restricted(kv, restrict_vocab, case_insensitive)
    keys = [w.upper() if case_insensitive else w for w in kv.index_to_key[:restrict_vocab]]
    normed = kv.normed()[:restrict_vocab]
    sections: list[dict[str, Any]] = []
    questions: list[tuple[int, list[int], int]] = []  # (section, [a, b, c], expected)
    skipped = 0
    for n, line in enumerate(_read_lines(path), 1):
        if line.startswith(":"):
            sections.append({"section": line[1:].strip(), "correct": 0, "total": 0})
            continue
        if not line.strip():
            continue
        words = line.split()
        if len(words) != 4 or not sections:
            raise InputError(f"{str(path)!r} line {n}: expected four words under a ': section' "
                             f"line, got {line!r}")
        if case_insensitive:
            words = [w.upper() for w in words]
        if any(w not in vocab for w in words):
            skipped += 1
            continue
        ids = [vocab[w] for w in words]
        questions.append((len(sections) - 1, ids[:3], ids[3]))
    for start in range(0, len(questions), 2048):
        part = questions[start:start + 2048]
        abc = torch.tensor([q[1] for q in part], dtype=torch.long)  # (Q, 3)
        query = normed[abc[:, 1]] + normed[abc[:, 2]] - normed[abc[:, 0]]  # (Q, D)
        scores = query @ normed.T  # (Q, N); the query's norm does not change the ranking
        scores.scatter_(1, abc, -torch.inf)
        top = scores.topk(min(5, scores.shape[1]), dim=1).indices.tolist()
        for (sec, ids, expected), cands in zip(part, top, strict=True):
            banned = {keys[i] for i in ids}
            guess = next((keys[c] for c in cands if keys[c] not in banned), None)
            sections[sec]["total"] += 1
            sections[sec]["correct"] += int(guess == keys[expected])
    for s in sections:
        s["accuracy"] = s["correct"] / s["total"] if s["total"] else float("nan")
    correct = sum(s["correct"] for s in sections)
    total = sum(s["total"] for s in sections)
    return {"accuracy": correct / total if total else float("nan"), "correct": correct,
            "total": total, "oov_ratio": 100.0 * skipped / max(1, total + skipped),
            "sections": sections}
