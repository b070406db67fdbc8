"""The training loop: streamed corpus chunks, vectorised windows, worker threads, processes.

The corpus is read once per epoch, sentence by sentence (it never has to fit in memory),
and converted to word ids in chunks of about ``batch_words`` raw words. A worker subsamples a
chunk, draws every centre word's reduced window ``b`` (uniform in ``1..window``, as in the
released tool), groups the centre words by ``b`` so each group's windows have the same width
``2b``, and runs closed-form steps (:mod:`zoo_word2vec.sgd`) over batches of centre words.
With the compiled engine (the default for float32 weights on the CPU) the worker instead
hands the subsampled chunk and its reduced windows to one compiled loop
(:mod:`zoo_word2vec.compiled`: C built on first use, else numba) that steps through it word
by word, as the released tool does.
``workers`` threads train different chunks at once on the shared weights (Hogwild); PyTorch
releases the GIL inside its kernels, so the threads use separate cores.

The learning rate decays linearly from ``alpha`` to ``min_alpha`` over all epochs' words.

Distributed (``torch.distributed`` initialised, e.g. by torchrun): every rank counts the
whole corpus (so all ranks build the same vocabulary), starts from rank 0's weights, trains on
the sentences ``i`` with ``i % world_size == rank``, and the ranks average their weights with
an all-reduce each ``sync_fraction`` of training and once at the end, after which rank 0's
weights are broadcast so every rank holds bit-identical vectors.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

import zoo_core as zoo

from . import compiled
from .sgd import (
    OutputBlock,
    Workspace,
    cbow_step,
    hierarchical_block,
    negative_block,
    skipgram_step,
)
from .vocab import check_sentence, noise_table

if TYPE_CHECKING:
    from .word2vec import Word2Vec

# Centre words per closed-form step. All predictions of a step see one snapshot of the
# weights, so a row used n times moves by n summed steps at once; the inner nodes near the
# Huffman root are used by every prediction: above a few hundred centres that diverges, and
# below 64 quality matches sequential SGD on WordSim353 and analogies (head500 benchmark).
CENTRES_PER_STEP = 1024
CENTRES_PER_STEP_HS = 64


@dataclass
class Chunk:
    ids: Tensor  # (N,) int64 in-vocabulary word ids of the chunk's sentences, concatenated
    lengths: Tensor  # (S,) int64 in-vocabulary words per sentence
    raw_words: int  # words read, out-of-vocabulary ones included
    alpha: float = 0.0


@dataclass
class TrainReport:
    """What one ``train`` call did: words, time, and the mean loss per prediction.

    An epoch (or interval) that made no prediction, because subsampling dropped all but
    isolated words of a tiny corpus, adds no loss: its mean is 0.0 and its
    ``epoch_predictions`` entry 0. ``loss_sum`` is the summed loss of the call (gensim's
    ``get_latest_training_loss()``).
    """

    raw_words: int = 0
    trained_words: int = 0
    seconds: float = 0.0
    epoch_losses: list[float] = field(default_factory=list)
    epoch_predictions: list[int] = field(default_factory=list)
    interval_losses: list[tuple[int, float]] = field(default_factory=list)
    loss_sum: float = 0.0

    def __iter__(self) -> Iterator[int]:
        """Unpacks as gensim's ``train`` result: ``trained, raw = model.train(...)``."""
        return iter((self.trained_words, self.raw_words))

    @property
    def words_per_second(self) -> float:
        return self.raw_words / self.seconds if self.seconds else 0.0


def iter_chunks(sentences: Iterable[Sequence[str]], index: dict[str, int], chunk_words: int,
                max_sentence_length: int, rank: int = 0, world: int = 1) -> Iterator[Chunk]:
    """Convert sentences to id chunks of about ``chunk_words`` raw words (a shard of them)."""
    ids: array[int] = array("q")
    lengths: list[int] = []
    raw = 0
    get = index.get
    for i, sentence in enumerate(sentences):
        if world > 1 and i % world != rank:
            continue
        sentence = check_sentence(sentence, i)
        for start in range(0, len(sentence), max_sentence_length):
            piece = sentence[start:start + max_sentence_length]
            known = [x for x in map(get, piece) if x is not None]
            ids.extend(known)
            lengths.append(len(known))
            raw += len(piece)
        if raw >= chunk_words:
            yield Chunk(_tensor(ids), torch.tensor(lengths, dtype=torch.long), raw)
            ids, lengths, raw = array("q"), [], 0
    if raw:
        yield Chunk(_tensor(ids), torch.tensor(lengths, dtype=torch.long), raw)


def _tensor(ids: array[int]) -> Tensor:
    if not ids:
        return torch.zeros(0, dtype=torch.long)
    return torch.frombuffer(ids, dtype=torch.long).clone()


class Trainer:
    """Runs the epochs of :meth:`Word2Vec.train`; see the module docstring for the scheme."""

    def __init__(self, model: Word2Vec, *, epochs: int, total_words: int, alpha: float,
                 min_alpha: float, workers: int, progress: bool | None, seed: int,
                 sync_fraction: float = 0.05, engine: str = "auto") -> None:
        self.model = model
        cfg = model.config
        self.cfg = cfg
        self.epochs = epochs
        self.alpha, self.min_alpha = alpha, min_alpha
        self.workers = max(1, workers)
        self.progress = progress
        self.seed = seed
        self.dist = torch.distributed.is_available() and torch.distributed.is_initialized()
        self.rank = torch.distributed.get_rank() if self.dist else 0
        self.world = torch.distributed.get_world_size() if self.dist else 1
        self.total = max(1, total_words * epochs)  # this rank's raw words over all epochs
        self.syncs = max(1, round(1 / sync_fraction)) if self.dist else 1
        tables = model.training_tables()
        self.keep_prob = tables["keep_prob"].float()
        self.points, self.codes, self.lengths = (tables.get(k) for k in ("points", "codes",
                                                                        "code_lengths"))
        self.vocab_size = model.config.vocab_size
        self.engine = _choose_engine(engine, model)
        if self.engine == "torch" and cfg.negative:  # the compiled loop draws from alias tables
            if "noise_table" not in tables:  # kept with the model's other derived tables
                tables["noise_table"] = noise_table(tables["cdf"])
            self.noise = tables["noise_table"]
        if self.engine == "compiled":  # numpy views sharing the weights' memory
            self.weights_np = {name: p.data.numpy() for name, p in model.named_parameters()}
            self.tables_np = {k: v.numpy() for k, v in (
                ("noise_cut", tables.get("noise_cut")), ("noise_alias", tables.get("noise_alias")),
                ("points", self.points), ("codes", self.codes), ("lengths", self.lengths))
                if v is not None}
        self._lock = threading.Lock()
        self._done_words = 0
        self._loss = [0.0, 0]  # sum, predictions since the last report
        self._epoch_loss = [0.0, 0]

    # -- one chunk ---------------------------------------------------------------------
    def train_chunk(self, chunk: Chunk, gen: torch.Generator, ws: Workspace,
                    ) -> tuple[float, int, int]:
        """Subsample, window and step through one chunk; return (loss sum, predictions, words)."""
        cfg = self.cfg
        ids = chunk.ids
        sid = torch.repeat_interleave(torch.arange(chunk.lengths.numel()), chunk.lengths)
        if cfg.sample > 0 and ids.numel():
            keep = torch.rand(ids.numel(), generator=gen) < self.keep_prob[ids]
            ids, sid = ids[keep], sid[keep]
        n = ids.numel()
        if n < 2:
            return 0.0, 0, n
        w = cfg.window
        if self.engine == "compiled":
            windows = torch.randint(1, w + 1, (n,), generator=gen) if cfg.shrink_windows \
                else torch.full((n,), w, dtype=torch.long)
            seed = int(torch.randint(0, 1 << 48, (1,), generator=gen))
            loss, preds = self._compiled_chunk(ids, sid, windows, chunk.alpha, seed)
            return loss, preds, n
        if cfg.shrink_windows:
            reduced = torch.randint(1, w + 1, (n,), generator=gen)
            groups = [(b, (reduced == b).nonzero().squeeze(1)) for b in range(1, w + 1)]
        else:
            groups = [(w, torch.arange(n))]
        loss, preds = 0.0, 0
        per_step = CENTRES_PER_STEP_HS if cfg.hs else CENTRES_PER_STEP
        for b, positions in groups:
            offsets = torch.cat([torch.arange(-b, 0), torch.arange(1, b + 1)])  # (2b,)
            for pos in positions.split(per_step):
                cpos = pos[:, None] + offsets  # (B, 2b)
                valid = (cpos >= 0) & (cpos < n)
                cpos.clamp_(0, n - 1)
                valid &= sid[cpos] == sid[pos, None]
                step_loss, step_preds = self.step(ids[pos], ids[cpos], valid, chunk.alpha, gen, ws)
                loss += step_loss
                preds += step_preds
        return loss, preds, n

    def _compiled_chunk(self, ids: Tensor, sid: Tensor, windows: Tensor, alpha: float,
                        seed: int) -> tuple[float, int]:
        cfg, t, w = self.cfg, self.tables_np, self.weights_np
        work = np.empty((2, cfg.vector_size), dtype=np.float32)
        return compiled.train_chunk(
            w["vectors"], w.get("syn1neg"), w.get("syn1"), ids.numpy(), sid.numpy(),
            windows.numpy(), alpha, sg=bool(cfg.sg), hs=bool(cfg.hs), negative=cfg.negative,
            cbow_mean=bool(cfg.cbow_mean), noise_cut=t.get("noise_cut"),
            noise_alias=t.get("noise_alias"), points=t.get("points"),
            codes=t.get("codes"), code_lengths=t.get("lengths"), seed=seed, work=work)

    def step(self, centre: Tensor, ctx: Tensor, valid: Tensor, alpha: float,
             gen: torch.Generator, ws: Workspace) -> tuple[float, int]:
        """One closed-form step on ``B`` centre words; windows and noise are drawn on the CPU
        and moved to the weights' device."""
        cfg, m = self.cfg, self.model
        dev = m.vectors.device
        preds = int(valid.sum()) if cfg.sg else int(valid.any(1).sum())
        mask: Tensor | None = None if bool(valid.all()) else valid.to(dev)
        centre_d, ctx = centre.to(dev), ctx.to(dev)
        blocks: list[OutputBlock] = []
        if cfg.hs:
            blk = hierarchical_block(m.syn1.data, centre, self.points, self.codes, self.lengths)
            blk.ids, blk.labels = blk.ids.to(dev), blk.labels.to(dev)
            blk.mask = blk.mask.to(dev) if blk.mask is not None else None
            blocks.append(blk)
        if cfg.negative:
            slots = torch.randint(0, self.noise.numel(), (centre.numel() * cfg.negative,),
                                  generator=gen)
            neg = self.noise[slots].long().view(-1, cfg.negative).to(dev)
            blocks.append(negative_block(m.syn1neg.data, centre_d, neg))
        if cfg.sg:
            loss = skipgram_step(m.vectors.data, ctx, mask, blocks, alpha, ws)
        else:
            loss = cbow_step(m.vectors.data, ctx, mask, blocks, alpha, bool(cfg.cbow_mean), ws)
        return float(loss), preds

    # -- epochs ------------------------------------------------------------------------
    def alpha_at(self, done: int) -> float:
        frac = min(1.0, done / self.total)
        return max(self.min_alpha, self.alpha - (self.alpha - self.min_alpha) * frac)

    def run(self, corpus: Iterable[Sequence[str]], index: dict[str, int]) -> TrainReport:
        report = TrainReport()
        show = self.progress if self.rank == 0 else False
        bar = zoo.progress(total=self.total, desc="word2vec", unit="word",
                           disable=None if show is None else not show).__enter__()
        threads_before = torch.get_num_threads()
        torch.set_flush_denormal(True)  # subnormal floats are ~100x slower; off again after
        torch.set_num_threads(1)  # parallel over workers; intra-op barriers only cost here
        if self.dist:
            self._broadcast()
        start = time.perf_counter()
        syncs_done = 0
        try:
            # a corpus already in memory is converted to ids once, not once per epoch
            kept: list[Chunk] | None = [] if isinstance(corpus, (list, tuple)) else None
            for epoch in range(self.epochs):
                self._epoch_loss = [0.0, 0]
                if kept and epoch:
                    chunks: Iterator[Chunk] = iter(kept)
                else:
                    chunks = iter_chunks(corpus, index, self.cfg.batch_words,
                                         self.cfg.max_sentence_length, self.rank, self.world)
                    if kept is not None:
                        chunks = _keeping(chunks, kept)
                dispatched = epoch * (self.total // self.epochs)
                for chunk in self._run_chunks(chunks, dispatched, report, bar):
                    del chunk
                    while self.dist and syncs_done < self.syncs - 1 and \
                            self._done_words >= (syncs_done + 1) * self.total / self.syncs:
                        self._wait_idle()
                        self._average()
                        syncs_done += 1
                s, p = self._epoch_loss
                report.epoch_losses.append(s / p if p else 0.0)
                report.epoch_predictions.append(p)
                report.loss_sum += s
            if self.dist:
                self._wait_idle()
                while syncs_done < self.syncs:
                    self._average()
                    syncs_done += 1
                self._broadcast()
        finally:
            self._shutdown()
            torch.set_num_threads(threads_before)
            torch.set_flush_denormal(False)
            bar.close()
        report.seconds = time.perf_counter() - start
        report.raw_words = self._done_words
        return report

    def _run_chunks(self, chunks: Iterator[Chunk], dispatched: int, report: TrainReport,
                    bar: Any) -> Iterator[Chunk]:
        """Feed chunks to the workers; yields each chunk after dispatching it."""
        for chunk in chunks:
            chunk = dataclasses.replace(chunk, alpha=self.alpha_at(dispatched))
            dispatched += chunk.raw_words
            if self.workers == 1:
                if not hasattr(self, "_ws0"):
                    self._ws0 = Workspace()
                self._finish(*self.train_chunk(chunk, self._gen(0), self._ws0), chunk.raw_words,
                             report, bar)
            else:
                self._ensure_pool(report, bar)
                self._raise_worker_error()
                self._queue.put(chunk)
            yield chunk
        if self.workers > 1:
            self._wait_idle()

    def _finish(self, loss: float, preds: int, trained: int, raw: int, report: TrainReport,
                bar: Any) -> None:
        with self._lock:
            self._done_words += raw
            report.trained_words += trained
            self._loss[0] += loss
            self._loss[1] += preds
            self._epoch_loss[0] += loss
            self._epoch_loss[1] += preds
            now = time.perf_counter()
            if now - getattr(self, "_last_report", 0.0) >= 1.0 or \
                    self._done_words >= self.total:
                self._last_report = now
                mean = self._loss[0] / self._loss[1] if self._loss[1] else 0.0
                report.interval_losses.append((self._done_words, mean))
                self._loss = [0.0, 0]
                bar.update(raw, loss=mean)
            else:
                bar.update(raw)

    # -- worker threads ----------------------------------------------------------------
    def _gen(self, worker: int) -> torch.Generator:
        gens = self.__dict__.setdefault("_gens", {})
        if worker not in gens:
            gens[worker] = torch.Generator().manual_seed(
                self.seed * 1_000_003 + worker * 7919 + self.rank * 104_729)
        return gens[worker]  # type: ignore[no-any-return]

    def _ensure_pool(self, report: TrainReport, bar: Any) -> None:
        if getattr(self, "_threads", None):
            return
        self._queue: queue.Queue[Chunk | None] = queue.Queue(maxsize=2 * self.workers)
        self._error: BaseException | None = None
        self._threads = [threading.Thread(target=self._work, args=(i, report, bar), daemon=True)
                         for i in range(self.workers)]
        for t in self._threads:
            t.start()

    def _work(self, worker: int, report: TrainReport, bar: Any) -> None:
        gen, ws = self._gen(worker), Workspace()
        while True:
            chunk = self._queue.get()
            try:
                if chunk is None:
                    return
                if self._error is None:
                    self._finish(*self.train_chunk(chunk, gen, ws), chunk.raw_words, report, bar)
            except BaseException as e:  # surfaced in the main thread
                self._error = e
            finally:
                self._queue.task_done()

    def _wait_idle(self) -> None:
        if getattr(self, "_threads", None):
            self._queue.join()
        self._raise_worker_error()

    def _raise_worker_error(self) -> None:
        err = getattr(self, "_error", None)
        if err is not None:
            raise err

    def _shutdown(self) -> None:
        for _ in getattr(self, "_threads", []) or []:
            self._queue.put(None)
        for t in getattr(self, "_threads", []) or []:
            t.join()
        self._threads = []

    # -- distributed -------------------------------------------------------------------
    def _params(self) -> list[Tensor]:
        return [p.data for p in self.model.parameters()]

    def _average(self) -> None:
        for p in self._params():
            torch.distributed.all_reduce(p, op=torch.distributed.ReduceOp.SUM)
            p.div_(self.world)

    def _broadcast(self) -> None:
        for p in self._params():
            torch.distributed.broadcast(p, src=0)


def _keeping(chunks: Iterator[Chunk], kept: list[Chunk]) -> Iterator[Chunk]:
    for chunk in chunks:
        kept.append(chunk)
        yield chunk


ENGINES = ("auto", "compiled", "torch")


def _choose_engine(engine: str, model: Word2Vec) -> str:
    """``"compiled"`` (the loop of :mod:`.compiled`, in C or numba) for float32 weights on the
    CPU when either can run, else ``"torch"`` (batched closed-form steps of :mod:`.sgd`, any
    device).
    """
    if engine not in ENGINES:
        raise zoo.ConfigError(f"engine={engine!r} is unknown; valid: {ENGINES}")
    fits = model.vectors.device.type == "cpu" and model.vectors.dtype == torch.float32
    if engine == "compiled" and not (fits and compiled.available()):
        raise zoo.ConfigError("engine='compiled' needs float32 weights on the CPU and a C "
                              "compiler (set CC) or numba (pip install numba); use "
                              "engine='torch' otherwise")
    if engine == "auto":
        return "compiled" if fits and compiled.available() else "torch"
    return engine
