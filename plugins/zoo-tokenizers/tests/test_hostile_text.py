"""Text an attacker chooses: runs long enough to overflow a compiled regex engine, lone
surrogates. Every backend answers the same, and never with a Rust panic (issue 22)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import zoo_core as zoo

LONG_RUNS = ["o200k_base", "tekken-240718"]


@pytest.fixture(scope="module")
def tokenizers() -> dict:
    return {name: zoo.load(name) for name in [*LONG_RUNS, "cl100k_base", "gpt2",
                                              "mistral-7b-v0.1-tokenizer", "bert-base-uncased"]}


@pytest.mark.parametrize("name", LONG_RUNS)
def test_a_million_spaces_do_not_panic(tokenizers, name: str) -> None:
    """tiktoken's engine raised pyo3's PanicException (a BaseException) here."""
    tok = tokenizers[name]
    assert tok.backend == "tiktoken"
    for text in (" " * 1_000_000, "\t" * 1_000_000):
        ids = tok.encode(text)
        assert tok.decode(ids) == text
    assert [len(ids) for ids in tok.encode_batch(["a b", " " * 1_000_000])][0] == 2


@pytest.mark.parametrize("name", LONG_RUNS)
def test_long_runs_routed_away_from_tiktoken_keep_tiktokens_ids(tokenizers, name: str) -> None:
    import tiktoken

    tok = tokenizers[name]
    peer = tiktoken.Encoding(name, pat_str=tok.pattern, mergeable_ranks=tok.ranks,
                             special_tokens=tok.special_tokens)
    text = "x" + " " * 100_000 + "y \n" + "\t" * 70_000 + "z"  # long, but tiktoken survives
    assert tok.encode(text) == peer.encode_ordinary(text)


SURROGATES = ["a\ud800b", "\udfff", "ok " * 10 + "\udc80", "😀\ud83d"]


@pytest.mark.parametrize("name", ["o200k_base", "cl100k_base", "gpt2", "tekken-240718",
                                  "mistral-7b-v0.1-tokenizer", "bert-base-uncased"])
@pytest.mark.parametrize("text", SURROGATES)
def test_lone_surrogates_are_an_input_error_with_every_backend(tokenizers, name: str,
                                                               text: str) -> None:
    """Mistral's default backend raised RuntimeError; HF tokenizers TypeError; the others
    silently replaced or dropped the surrogate."""
    tok = tokenizers[name]
    for backend in tok.backends:
        tok.use_backend(backend)
        try:
            with pytest.raises(zoo.InputError, match="lone surrogate") as caught:
                tok.encode(text)
            assert "index" in str(caught.value)
            if hasattr(tok, "encode_batch"):
                with pytest.raises(zoo.InputError, match="lone surrogate"):
                    tok.encode_batch(["fine", text])
        finally:
            tok.use_backend()


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=60)
       | st.text(alphabet=st.characters(categories=["Cs", "Ll", "Zs", "Lo", "So"]), max_size=20)
       | st.builds(lambda c, n: c * n, st.sampled_from([" ", "\t", "\n", "a", "1", "!"]),
                   st.integers(0, 3000)))
def test_fuzz_any_text_encodes_or_is_an_input_error(tokenizers, text: str) -> None:
    for name in ("o200k_base", "mistral-7b-v0.1-tokenizer", "bert-base-uncased"):
        tok = tokenizers[name]
        try:
            ids = tok.encode(text)
        except zoo.InputError as e:
            assert any(0xD800 <= ord(c) <= 0xDFFF for c in text) or "special token" in str(e)
            continue
        assert all(isinstance(i, int) for i in ids)
        if name == "o200k_base":
            assert tok.decode(ids) == text


@settings(max_examples=300, deadline=None)
@given(runs=st.lists(st.tuples(st.sampled_from([" ", "\t", "\n", "\u3000", "a", "é"]),
                               st.integers(1, 40)), max_size=12))
def test_fuzz_the_long_run_check_against_a_plain_scan(runs) -> None:
    """The check looks at a few points only; it must agree with scanning every run."""
    import re

    from zoo_tokenizers import engines

    text = "".join(c * n for c, n in runs)
    plain = max((len(m.group()) for m in re.finditer(r"\s+", text)), default=0) > 8
    saved, engines.SAFE_SPACE_RUN = engines.SAFE_SPACE_RUN, 8  # small, to reach every case
    try:
        assert engines.has_long_space_run(text) == plain, text
    finally:
        engines.SAFE_SPACE_RUN = saved
