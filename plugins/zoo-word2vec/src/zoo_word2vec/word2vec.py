"""Word2Vec: skip-gram and CBOW with negative sampling and hierarchical softmax.

Mikolov, Chen, Corrado, Dean 2013, "Efficient Estimation of Word Representations in Vector
Space" (arXiv:1301.3781): CBOW predicts a word from the mean (or sum) of its window's vectors,
skip-gram predicts the word from each of its window's words. Mikolov et al. 2013,
"Distributed Representations of Words and Phrases and their Compositionality"
(arXiv:1310.4546): negative sampling (eq. 4) with noise drawn from the unigram distribution
raised to 3/4, hierarchical softmax over a Huffman tree (eq. 3) and frequent-word subsampling.

Example:
    >>> import zoo_core as zoo
    >>> model = zoo.create("model:word2vec", sg=1, vector_size=100, min_count=5)
    >>> model.build_vocab(sentences)              # any re-iterable of token lists
    >>> report = model.train(sentences)          # progress bar with words/s and loss
    >>> model.wv.most_similar("king", topn=5)
    >>> model.save_pretrained("w2v")              # config.json + model.safetensors
    >>> model.wv.save_word2vec_format("w2v.bin", binary=True)
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import zoo_core as zoo
from zoo_core import ConfigError, InputError, Model, build_config

from .corpus import LineSentences
from .keyedvectors import KeyedVectors, read_saved
from .trainer import Trainer, TrainReport
from .vocab import (
    Vocab,
    alias_table,
    count_words,
    decode_words,
    encode_words,
    huffman,
    keep_probabilities,
    unigram_cdf,
)

_FORMAT = "zoo-word2vec"
_SAVED = ("corpus_count", "corpus_total_words", "compute_loss")  # beside config and weights


class _ConfigField:
    """A model attribute backed by the config field of the same name (gensim's
    ``model.window``); setting it replaces the config."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        return self if obj is None else getattr(obj.config, self.name)

    def __set__(self, obj: Any, value: Any) -> None:
        obj.config = dataclasses.replace(obj.config, **{self.name: value})


@dataclass(frozen=True)
class Word2VecConfig:
    """Hyper-parameters (gensim's names) and the vocabulary's size.

    ``vocab_size`` and ``vocab_utf8_bytes`` are set by :meth:`Word2Vec.build_vocab`; they size
    the weight and vocabulary tensors so a saved model loads strictly.
    """

    vector_size: int = 100
    window: int = 5
    sg: int = 0  # 1 = skip-gram, 0 = CBOW
    hs: int = 0  # 1 = hierarchical softmax
    negative: int = 5  # noise words per prediction; 0 = no negative sampling
    ns_exponent: float = 0.75
    cbow_mean: int = 1  # 1 = mean of the window's vectors, 0 = sum
    sample: float = 1e-3
    min_count: int = 5
    max_vocab_size: int | None = None
    max_final_vocab: int | None = None
    alpha: float = 0.025
    min_alpha: float = 0.0001
    epochs: int = 5
    seed: int = 1
    workers: int = 2
    batch_words: int = 10_000
    shrink_windows: bool = True
    max_sentence_length: int = 10_000
    vocab_size: int = 0
    vocab_utf8_bytes: int = 0

    def __post_init__(self) -> None:
        positive = ("vector_size", "window", "min_count", "epochs", "workers", "batch_words",
                    "max_sentence_length")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name}={value!r} is invalid; it must be an integer >= 1")
        for name in ("sg", "hs", "cbow_mean"):
            if getattr(self, name) not in (0, 1):
                raise ConfigError(f"{name}={getattr(self, name)!r} is invalid; use 0 or 1")
        if not isinstance(self.negative, int) or self.negative < 0:
            raise ConfigError(f"negative={self.negative!r} is invalid; use 0 (off) or a count > 0")
        if not self.hs and not self.negative:
            raise ConfigError("hs=0 and negative=0 leave nothing to train; set hs=1 or negative=5")
        if not 0 <= self.sample or not 0 < self.alpha or not 0 <= self.min_alpha <= self.alpha:
            raise ConfigError(f"need sample >= 0 and 0 <= min_alpha <= alpha > 0, got sample="
                              f"{self.sample!r}, alpha={self.alpha!r}, "
                              f"min_alpha={self.min_alpha!r}")
        if self.vocab_size < 0 or self.vocab_utf8_bytes < 0:
            raise ConfigError(f"vocab_size={self.vocab_size!r} and vocab_utf8_bytes="
                              f"{self.vocab_utf8_bytes!r} must be >= 0")


class Word2Vec(Model):
    """Word vectors (``vectors``, gensim's ``wv.vectors``) and output weights ``syn1neg`` /
    ``syn1``, with the vocabulary (words and counts) kept as tensors in the state dict.

    ``forward`` is the differentiable loss of a batch of predictions (for autograd users and
    the checks); :meth:`train` uses closed-form updates instead: the released tool's
    sequential SGD compiled (C, else numba) on the CPU (:mod:`zoo_word2vec.compiled`), batched
    steps in torch ops elsewhere (:mod:`zoo_word2vec.sgd`).
    """

    config_class = Word2VecConfig
    contract_opt_outs: ClassVar[dict[str, str]] = {
        "parameter_count": "the vectors are sized by the corpus vocabulary, built by train()"}
    presets: ClassVar[dict[str, Word2VecConfig]] = {
        "tiny": Word2VecConfig(vector_size=8, window=2, hs=1, negative=2, min_count=1,
                               vocab_size=12),
        "sgns": Word2VecConfig(sg=1, negative=5),
        "cbow": Word2VecConfig(sg=0, negative=5),
        "sg-hs": Word2VecConfig(sg=1, hs=1, negative=0),
        "cbow-hs": Word2VecConfig(sg=0, hs=1, negative=0),
    }

    def __init__(self, config: Word2VecConfig | Iterable[Sequence[str]] | None = None, /, *,
                 sentences: Iterable[Sequence[str]] | None = None,
                 corpus_file: str | os.PathLike[str] | None = None,
                 compute_loss: bool = False, **hyper: Any) -> None:
        """``Word2Vec(config)``, or gensim's constructor: ``Word2Vec(sentences=corpus,
        vector_size=100, window=5, min_count=1, workers=4)`` builds the vocabulary and trains
        when a corpus (``sentences``, the first positional argument, or ``corpus_file``) is
        given; without one, call :meth:`build_vocab` and :meth:`train`."""
        if config is not None and not isinstance(config, Word2VecConfig):
            if sentences is not None:
                raise InputError("the corpus is given twice, positionally and as sentences=; "
                                 "pass it once")
            config, sentences = None, config
        if config is None:
            config = build_config(Word2Vec, None, hyper)
        elif hyper:
            raise ConfigError(f"Word2Vec(config) takes no other settings, got {sorted(hyper)!r}; "
                              "use dataclasses.replace(config, ...)")
        super().__init__(config)
        v, d = config.vocab_size, config.vector_size
        gen = torch.Generator().manual_seed(config.seed)  # uniform(-1/D, 1/D), as gensim
        self.vectors = nn.Parameter((torch.rand(v, d, generator=gen) * 2 - 1) / d)
        self.syn1neg = nn.Parameter(torch.zeros(v, d)) if config.negative else None
        self.syn1 = nn.Parameter(torch.zeros(max(v - 1, 0), d)) if config.hs else None
        self.register_buffer("counts", torch.zeros(v, dtype=torch.long))
        self.register_buffer("vocab_utf8", torch.zeros(config.vocab_utf8_bytes, dtype=torch.uint8))
        self.register_buffer("vocab_offsets", torch.zeros(v + 1, dtype=torch.long))
        self._wv: KeyedVectors | None = None
        self._tables: dict[str, Tensor] | None = None
        self.last_report: TrainReport | None = None
        self.compute_loss = compute_loss
        self.corpus_count = self.corpus_total_words = 0
        if corpus_file is not None:
            if sentences is not None:
                raise InputError("pass sentences= or corpus_file=, not both")
            sentences = LineSentences(corpus_file)
        if sentences is not None:
            self.build_vocab(sentences)
            self.train(sentences, total_examples=self.corpus_count, epochs=config.epochs)

    # gensim's model attributes, read from (and written to) the config
    vector_size = _ConfigField()
    window = _ConfigField()
    min_count = _ConfigField()
    sg = _ConfigField()
    hs = _ConfigField()
    negative = _ConfigField()
    ns_exponent = _ConfigField()
    cbow_mean = _ConfigField()
    sample = _ConfigField()
    alpha = _ConfigField()
    min_alpha = _ConfigField()
    epochs = _ConfigField()
    seed = _ConfigField()
    workers = _ConfigField()
    max_vocab_size = _ConfigField()
    max_final_vocab = _ConfigField()
    batch_words = _ConfigField()

    # -- the loss (autograd) -------------------------------------------------------------
    def forward(self, inputs: Tensor, targets: Tensor, input_mask: Tensor | None = None,
                negatives: Tensor | None = None) -> Tensor:
        """Mean negative log-likelihood per prediction of ``targets`` from ``inputs``.

        Args:
            inputs: (B, C) context word ids of each target word.
            targets: (B,) the centre words to predict.
            input_mask: (B, C) bool, False where a slot is padding.
            negatives: (B, K) noise words (required with negative sampling).
        """
        cfg = self.config
        _check_batch(inputs, targets, input_mask, negatives)
        mask = torch.ones_like(inputs, dtype=torch.bool) if input_mask is None else input_mask
        m = mask.to(self.vectors.dtype)
        v_in = self.vectors[inputs]  # (B, C, D)
        if cfg.sg:
            h, weight = v_in, m  # each context word is one prediction
        else:
            count = m.sum(1, keepdim=True)
            h = (v_in * m[..., None]).sum(1, keepdim=True)  # (B, 1, D)
            if cfg.cbow_mean:
                h = h / count.clamp_min(1)[..., None]
            weight = (count > 0).to(m.dtype)  # (B, 1)
        loss = h.new_zeros(())
        if cfg.hs:
            tables = self.training_tables()
            depth = tables["points"].shape[1]
            rows = self.syn1[tables["points"][targets]]  # (B, L, D)
            sign = 1.0 - 2.0 * tables["codes"][targets].to(h.dtype)  # +1 for label 1
            node = (torch.arange(depth) < tables["code_lengths"][targets, None]).to(h.dtype)
            scores = h @ rows.transpose(1, 2)  # (B, C, L)
            loss = loss + (F.softplus(-sign[:, None, :] * scores) * node[:, None, :]
                           * weight[..., None]).sum()
        if cfg.negative:
            if negatives is None:
                raise InputError("negative sampling needs negatives=(B, K) noise word ids")
            rows = self.syn1neg[torch.cat([targets[:, None], negatives], 1)]  # (B, 1+K, D)
            scores = h @ rows.transpose(1, 2)  # (B, C, 1+K)
            keep = torch.cat([torch.ones_like(targets[:, None], dtype=torch.bool),
                              negatives != targets[:, None]], 1).to(h.dtype)  # (B, 1+K)
            nll = torch.cat([F.softplus(-scores[..., :1]), F.softplus(scores[..., 1:])], -1)
            loss = loss + (nll * keep[:, None, :] * weight[..., None]).sum()
        return loss / weight.sum().clamp_min(1)

    def example_inputs(self) -> dict[str, Any]:
        gen = torch.Generator().manual_seed(0)
        v, c = max(self.config.vocab_size, 1), 2 * self.config.window
        out: dict[str, Any] = {
            "inputs": torch.randint(0, v, (4, c), generator=gen),
            "targets": torch.randint(0, v, (4,), generator=gen),
            "input_mask": torch.rand(4, c, generator=gen) < 0.8,
        }
        if self.config.negative:
            out["negatives"] = torch.randint(0, v, (4, self.config.negative), generator=gen)
        return out

    def bad_inputs(self) -> list[dict[str, Any]]:
        good = self.example_inputs()
        inputs, targets = good["inputs"], good["targets"]
        return [{**good, "inputs": inputs[0]},                  # no batch dimension
                {**good, "targets": targets[:-1]},              # one target short
                {**good, "inputs": inputs.float()},             # float word ids
                {**good, "input_mask": good["input_mask"][:, :-1]}]

    # -- vocabulary ----------------------------------------------------------------------
    @property
    def wv(self) -> KeyedVectors:
        """The word vectors with their queries (shares ``vectors``' storage)."""
        if self._wv is None or self._wv.tensor is not self.vectors:
            if self.config.vocab_size == 0:
                raise InputError("the model has no vocabulary yet: call build_vocab(sentences) "
                                 "and train(sentences), or load a trained model")
            words = decode_words(self.vocab_utf8, self.vocab_offsets)
            self._wv = KeyedVectors(words, self.vectors, self.counts.tolist())
        return self._wv

    def build_vocab(self, corpus_iterable: Iterable[Sequence[str]] | None = None,
                    update: bool = False, *, corpus_file: str | os.PathLike[str] | None = None,
                    **gensim_options: Any) -> Word2Vec:
        """Count the corpus in one streaming pass, keep words with ``count >= min_count``,
        and (re)initialise the weights for that vocabulary.

        With ``update=True`` (gensim's online training), the new corpus' counts are added to
        the known words, its new words with ``count >= min_count`` are appended (the known
        ones keep their rows and trained weights; new rows are drawn fresh, output rows
        zero) and the sampling tables are rebuilt. ``progress_per``, ``keep_raw_vocab`` and
        ``trim_rule=None`` are accepted for gensim's signature and have no effect.
        """
        unknown = set(gensim_options) - {"progress_per", "keep_raw_vocab", "trim_rule"}
        if unknown or gensim_options.get("trim_rule") is not None:
            raise ConfigError(f"build_vocab: unsupported option(s) "
                              f"{sorted(unknown) or ['trim_rule']!r}; filter the corpus before "
                              "counting instead")
        corpus = _corpus(corpus_iterable, corpus_file)
        cfg = self.config
        counts, total, n_sent = count_words(corpus, cfg.max_vocab_size)
        if update:
            self._add_vocab(counts)
        else:
            vocab = Vocab.from_counts(counts, cfg.min_count, cfg.max_final_vocab)
            self.set_vocab(vocab.words, vocab.counts)
        self.corpus_total_words, self.corpus_count = total, n_sent
        return self

    def _add_vocab(self, counts: Counter[str]) -> None:
        if self.config.vocab_size == 0:
            raise InputError("build_vocab(update=True) extends a vocabulary, and the model has "
                             "none yet: call build_vocab(sentences) first")
        kv = self.wv
        new = [w for w, c in counts.items() if c >= self.config.min_count and w not in kv]
        old_counts = [c + counts.get(w, 0) for w, c in zip(kv.index_to_key, self.counts.tolist(),
                                                           strict=True)]
        old = {"vectors": self.vectors.data, "syn1neg": self.syn1neg, "syn1": self.syn1}
        v = len(kv)
        self.set_vocab(kv.index_to_key + new, old_counts + [counts[w] for w in new])
        with torch.no_grad():
            self.vectors[:v] = old["vectors"]
            for name in ("syn1neg", "syn1"):
                if old[name] is not None:
                    getattr(self, name)[:old[name].shape[0]] = old[name]

    def set_vocab(self, words: Sequence[str], counts: Sequence[int]) -> None:
        """Install a vocabulary (most frequent first) and fresh weights sized for it."""
        table, offsets = encode_words(words)
        cfg = dataclasses.replace(self.config, vocab_size=len(words),
                                  vocab_utf8_bytes=int(table.numel()))
        fresh = Word2Vec(cfg)
        self.config = cfg
        self.vectors, self.syn1neg, self.syn1 = fresh.vectors, fresh.syn1neg, fresh.syn1
        self.counts = torch.tensor(list(counts), dtype=torch.long)
        self.vocab_utf8, self.vocab_offsets = table, offsets
        self._wv, self._tables = None, None

    def training_tables(self) -> dict[str, Tensor]:
        """Derived tables: keep probabilities, noise CDF and alias tables, Huffman paths (cached;
        the torch engine adds its noise table)."""
        if self._tables is None:
            cfg = self.config
            counts = self.counts.cpu()
            t: dict[str, Tensor] = {"keep_prob": keep_probabilities(counts, cfg.sample)}
            if cfg.negative:
                t["cdf"] = unigram_cdf(counts, cfg.ns_exponent)
                t["noise_cut"], t["noise_alias"] = alias_table(t["cdf"])
            if cfg.hs:
                t["points"], t["codes"], t["code_lengths"] = huffman(counts.tolist())
            self._tables = t
        return self._tables

    def _apply(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        self._tables = None  # tables follow no device/dtype; rebuild on next use
        return super()._apply(fn, *args, **kwargs)

    # -- training ------------------------------------------------------------------------
    def train(self, sentences: Iterable[Sequence[str]] | bool = True,  # type: ignore[override]
              total_examples: int | None = None, total_words: int | None = None,
              epochs: int | None = None, start_alpha: float | None = None,
              end_alpha: float | None = None, *, corpus_file: str | os.PathLike[str] | None = None,
              alpha: float | None = None, min_alpha: float | None = None,
              workers: int | None = None, progress: bool | None = None,
              compute_loss: bool | None = None, engine: str = "auto", **gensim_options: Any
              ) -> Any:
        """Train on a re-iterable corpus of token lists (``nn.Module.train(bool)`` still works).

        gensim's call ``train(corpus, total_examples=model.corpus_count, epochs=model.epochs)``
        works as it is (``word_count``, ``queue_factor``, ``report_delay`` and empty
        ``callbacks`` are accepted and have no effect).

        Args:
            sentences: the corpus (read once per epoch), e.g. :class:`LineSentences`; or
                ``corpus_file=``, a text file of one sentence per line.
            total_examples: sentences per epoch, as gensim takes it: the words of the corpus
                ``build_vocab`` counted when it is that corpus, else counted here.
            epochs, alpha (``start_alpha``), min_alpha (``end_alpha``), workers: override
                the config's values.
            total_words: raw words per epoch (for the learning-rate schedule); counted by
                ``build_vocab`` when omitted.
            compute_loss: keep the summed loss for :meth:`get_latest_training_loss`.
            progress: show a progress bar (None: only on a terminal).
            engine: ``"compiled"``: the released tool's sequential SGD in C (built by the
                system compiler on first use) or, without a compiler, numba (CPU, float32;
                what ``"auto"`` picks there); ``"torch"``: batched closed-form
                steps in torch ops, on any device (what ``"auto"`` picks elsewhere).

        Returns:
            a :class:`TrainReport` (words/s, mean loss per prediction per epoch and interval).
        """
        if isinstance(sentences, bool) and corpus_file is None:
            return super().train(sentences)
        if set(gensim_options) - {"word_count", "queue_factor", "report_delay", "callbacks"} \
                or gensim_options.get("callbacks"):
            raise ConfigError(f"train: unsupported option(s) {sorted(gensim_options)!r}; "
                              "callbacks are not run: read the returned TrainReport instead")
        sentences = _corpus(None if isinstance(sentences, bool) else sentences, corpus_file)
        alpha = start_alpha if alpha is None else alpha
        min_alpha = end_alpha if min_alpha is None else min_alpha
        if compute_loss is not None:
            self.compute_loss = compute_loss
        if iter(sentences) is sentences:  # type: ignore[comparison-overlap]
            raise InputError(f"the corpus is a one-shot iterator ({type(sentences).__name__}); "
                             "training reads it once per epoch: pass a list or a re-iterable "
                             "such as LineSentences(path)")
        cfg = self.config
        if cfg.vocab_size == 0:
            self.build_vocab(sentences)
        if total_words is None and total_examples in (None, self.corpus_count) \
                and self.corpus_total_words:
            total_words = self.corpus_total_words
        if total_words is None:
            total_words = sum(len(s) for s in sentences)
        dist = torch.distributed.is_available() and torch.distributed.is_initialized()
        if dist:
            total_words = -(-total_words // torch.distributed.get_world_size())
        epochs = cfg.epochs if epochs is None else epochs
        alpha = cfg.alpha if alpha is None else alpha
        min_alpha = cfg.min_alpha if min_alpha is None else min_alpha
        workers = cfg.workers if workers is None else workers
        _check_schedule(epochs, alpha, min_alpha, workers)
        trainer = Trainer(self, epochs=epochs, total_words=total_words, alpha=alpha,
                          min_alpha=min_alpha, workers=workers, progress=progress, seed=cfg.seed,
                          engine=engine)
        index = self.wv.key_to_index
        with torch.no_grad():
            self.last_report = trainer.run(sentences, index)
        return self.last_report

    def get_latest_training_loss(self) -> float:
        """gensim's: the loss summed over every prediction of the latest ``train`` call when
        the model computes its loss (``compute_loss=True``), else 0.0. The mean per
        prediction of each epoch is in ``last_report.epoch_losses``."""
        if not self.compute_loss or self.last_report is None:
            return 0.0
        return self.last_report.loss_sum

    # -- files ---------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the whole model (config, vocabulary, counts, weights) to one safetensors
        file, atomically; :meth:`load` reads it back. No pickle is written or read."""
        meta = {"format": _FORMAT, "config": json.dumps(self.config_dict()),
                "attributes": json.dumps({k: getattr(self, k) for k in _SAVED})}
        zoo.save_safetensors(self, path, metadata=meta)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Word2Vec:  # type: ignore[override]
        """A model written by :meth:`save` (gensim's pickled ``.model`` files are refused,
        with the way to convert them)."""
        state = read_saved(path, _FORMAT)
        meta = state.pop("__metadata__")
        model = cls(cls.config_from_json(meta["config"]))
        zoo.load_state_dict(model, state)
        for key, value in json.loads(meta["attributes"]).items():
            if key in _SAVED:
                setattr(model, key, value)
        return model


def _corpus(corpus: Iterable[Sequence[str]] | None,
            corpus_file: str | os.PathLike[str] | None) -> Iterable[Sequence[str]]:
    if (corpus is None) == (corpus_file is None):
        raise InputError("pass one corpus: a re-iterable of token lists, or corpus_file= "
                         f"a text file (got {type(corpus).__name__} and {corpus_file!r})")
    return corpus if corpus is not None else LineSentences(corpus_file)


def _check_schedule(epochs: int, alpha: float, min_alpha: float, workers: int) -> None:
    """Validate ``train``'s overrides; 0 is a value here (0 epochs, a rate of 0), not "unset"."""
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 0:
        raise ConfigError(f"epochs={epochs!r} is invalid; pass an integer >= 0")
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ConfigError(f"workers={workers!r} is invalid; pass an integer >= 1")
    if not 0 <= min_alpha <= alpha:
        raise ConfigError(f"need 0 <= min_alpha <= alpha, got alpha={alpha!r}, "
                          f"min_alpha={min_alpha!r}")


def _check_batch(inputs: Tensor, targets: Tensor, input_mask: Tensor | None,
                 negatives: Tensor | None) -> None:
    """Shapes and dtypes of a training batch (metadata only: no device sync)."""
    for name, t, rank in (("inputs", inputs, 2), ("targets", targets, 1),
                          ("negatives", negatives, 2)):
        if t is not None and (t.dim() != rank or t.is_floating_point() or t.dtype == torch.bool):
            raise InputError(f"{name} must be an integer tensor of rank {rank} (word ids), got "
                             f"{t.dtype} of shape {tuple(t.shape)!r}; see forward's docstring")
    b = inputs.shape[0]
    if targets.shape[0] != b or (negatives is not None and negatives.shape[0] != b):
        raise InputError(f"batch sizes differ: inputs {tuple(inputs.shape)!r}, targets "
                         f"{tuple(targets.shape)!r}; give one target (and one row of "
                         "negatives) per row of context words")
    if input_mask is not None and input_mask.shape != inputs.shape:
        raise InputError(f"input_mask has shape {tuple(input_mask.shape)!r}, inputs "
                         f"{tuple(inputs.shape)!r}; give one mask entry per context slot")
