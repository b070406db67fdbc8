"""Byte-level LSTM language model on gensim's Lee background corpus vs a unigram baseline.

The corpus (``gensim/test/test_data/lee_background.cor``, shipped in gensim's wheel) is split
90/10 into training and validation text; the baseline is the add-one-smoothed byte unigram
model of the training text. Training is truncated BPTT with carried state and gradient
clipping (``zoo_rnn.lm.train_epoch``), within a wall-clock budget.

    python benchmarks/rnn_lm_lee.py [--minutes 6] [--hidden 256]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
from _harness import Bench  # noqa: E402
from zoo_rnn.lm import RNNLM, batchify, perplexity, windows  # noqa: E402


def lee_bytes() -> torch.Tensor:
    import gensim

    path = Path(gensim.__file__).parent / "test" / "test_data" / "lee_background.cor"
    return torch.tensor(list(path.read_bytes()), dtype=torch.long)


def unigram_perplexity(train: torch.Tensor, valid: torch.Tensor, vocab: int = 256) -> float:
    counts = torch.bincount(train, minlength=vocab).double() + 1.0
    logp = (counts / counts.sum()).log()
    return math.exp(-float(logp[valid].mean()))


def run(minutes: float = 6.0, hidden: int = 256, batch_size: int = 32, bptt: int = 64,
        lr: float = 3e-3, seed: int = 0, log: bool = True) -> dict[str, float]:
    torch.manual_seed(seed)
    ids = lee_bytes()
    cut = int(0.9 * ids.numel())
    train, valid = ids[:cut], ids[cut:]
    model = RNNLM.from_config("char-small", hidden_size=hidden)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    streams, valid_streams = batchify(train, batch_size), batchify(valid, 8)
    start, steps, epoch = time.perf_counter(), 0, 0
    deadline = start + 60 * minutes
    while time.perf_counter() < deadline:
        epoch += 1
        state = None
        model.train()
        for x, y in windows(streams, bptt):
            out = model(x, state, labels=y)
            opt.zero_grad(set_to_none=True)
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            state = tuple(s.detach() if isinstance(s, torch.Tensor)
                          else tuple(t.detach() for t in s) for s in out.state)
            steps += 1
            if time.perf_counter() > deadline:
                break
        if log:
            print(f"epoch {epoch}: {steps} windows, {time.perf_counter() - start:.0f}s, "
                  f"valid ppl {perplexity(model, valid_streams):.2f}", flush=True)
    return {"unigram": unigram_perplexity(train, valid), "model": perplexity(model, valid_streams),
            "windows": steps, "seconds": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=6.0)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads; 1 avoids OpenMP stalls on a shared machine")
    args = parser.parse_args()
    bench = Bench("rnn_lm_lee", threads=args.threads)
    r = run(args.minutes, args.hidden)
    bench.record(f"byte LM valid perplexity, LSTM 2x{args.hidden}, {r['windows']:.0f} windows "
                 f"of 32x64 in {r['seconds']:.0f}s", peer=("byte unigram (add-one)",
                                                            r["unigram"]),
                 ours=r["model"], unit="ppl", higher_is_better=False)
    bench.finish()

if __name__ == "__main__":
    main()
