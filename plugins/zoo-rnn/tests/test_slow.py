"""Long trainings (``-m slow``), run from the benchmark scripts: the Lee-corpus language model
against the unigram baseline, and seq2seq sequence reversal."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[3] / "benchmarks"


def _bench(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_lee_lm_beats_unigram():
    r = _bench("rnn_lm_lee").run(minutes=6.0, hidden=256, log=False)
    assert r["model"] < 0.5 * r["unigram"], r


@pytest.mark.slow
def test_seq2seq_learns_reversal():
    r = _bench("rnn_seq2seq_reverse").run(steps=2000, log=False)
    assert r["greedy"] >= 0.99, r
