"""Never quadratic, never catastrophic: long pre-tokens and untrusted pre-tokenization patterns."""

from __future__ import annotations

import json
import random
import time

import pytest
from zoo_tokenizers.bpe import BPE
from zoo_tokenizers.patterns import CL100K, PATTERNS

import zoo_core as zoo


@pytest.fixture(scope="module")
def cl100k():
    enc = zoo.load("cl100k_base")
    enc.use_backend("python")  # the pure-Python engine is the one under test here
    return enc


@pytest.mark.timeout(120)
def test_a_million_a_like_tiktoken(cl100k, tiktoken_peers):
    text = "a" * 1_000_000  # one pre-token: quadratic merging would take hours
    assert cl100k.encode(text) == tiktoken_peers["cl100k_base"].encode(text)


@pytest.mark.parametrize("name", ["gpt2", "cl100k_base", "o200k_base"])
def test_long_pieces_like_tiktoken(tiktoken_peers, name):
    rng = random.Random(0)
    enc, ref = zoo.load(name), tiktoken_peers[name]
    enc.use_backend("python")
    # long single pre-tokens (letters only, digits, punctuation) cross the heap threshold
    texts = ["".join(rng.choice("aabcdeéz") for _ in range(3000)),
             "".join(rng.choice("ab") for _ in range(5000)),
             "!?.-=" * 400, "ab" * 2000, " " * 3000 + "x", "é" * 2000]
    for text in texts:
        assert enc.encode_ordinary(text) == ref.encode_ordinary(text), text[:40]


@pytest.mark.timeout(30)
def test_untrusted_pattern_refused():
    ranks = {bytes([b]): b for b in range(256)}
    start = time.perf_counter()
    with pytest.raises(zoo.ConfigError, match=r"\(a\|a\)\+\$.*trust_pattern=True"):
        BPE(ranks, pattern="(a|a)+$")
    assert time.perf_counter() - start < 5
    trusted = BPE(ranks, pattern=r"\w+|\s+", trust_pattern=True)
    assert trusted.encode("ab cd") == list(b"ab cd")
    for name, regex in PATTERNS.items():  # names and the regexes themselves are known
        assert BPE(ranks, pattern=name).pattern == BPE(ranks, pattern=regex).pattern == regex


@pytest.mark.timeout(30)
def test_untrusted_pattern_in_a_downloaded_file(tmp_path, cl100k):
    doc = cl100k.to_tokenizer_json()  # exports spell cl100k's '{1,3}+' as '{1,3}': still known
    assert BPE.from_file(_write(tmp_path / "ok.json", doc)).pattern == CL100K
    doc["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(a|a)+$"
    bad = _write(tmp_path / "tokenizer.json", doc)
    with pytest.raises(zoo.ConfigError, match="trust_pattern"):
        BPE.from_file(bad)
    # trusted, it loads (the engines self-check runs the pattern: python only here)
    assert BPE.from_file(bad, trust_pattern=True, backend="python").pattern == "(a|a)+$"


def _write(path, doc):
    path.write_text(json.dumps(doc))
    return path


def test_unknown_keyword_is_a_type_error(cl100k, tiktoken_peers):
    for enc in (cl100k, tiktoken_peers["cl100k_base"]):
        with pytest.raises(TypeError):
            enc.encode("hello", typo_kw=1)
