"""SentencePiece parity with the ``sentencepiece`` library on mistral-common's packaged models and
on models trained here by ``SentencePieceTrainer``; export to HF ``tokenizers``."""

from __future__ import annotations

import io
import json

import pytest
import sentencepiece as spm  # a dev dependency: missing fails, never skips
from zoo_tokenizers.sentencepiece import SentencePiece

import zoo_core as zoo

MODELS = {"mistral-7b-v0.1-tokenizer": "tokenizer.model.v1",
          "mistral-instruct-v2-tokenizer": "mistral_instruct_tokenizer_240216.model.v2",
          "mistral-instruct-v3-tokenizer": "mistral_instruct_tokenizer_240323.model.v3",
          "mistral-instruct-v7-tokenizer": "mistral_instruct_tokenizer_241114.model.v7"}
HARD = ["  two  spaces  ", "\n\n\t", "▁already▁escaped", "<s> [INST] not control [/INST]",
        "ＡＢＣ ﬁ ① ｶﾞ ℌ", "a" * 3000, "🦜" * 50, "x\u0301\u0302 \u200d\ufeff"]


@pytest.fixture(scope="module")
def corpus(gensim_texts, mixed):
    return [*mixed, *HARD, *gensim_texts["lee"], *gensim_texts["head500"],
            *gensim_texts["enwiki"][:30]]


def _same(ours, ref, texts):
    assert ours.backend == "sentencepiece"  # installed, and it passed its self-check
    ours.use_backend("python")  # parity: our implementation against the peer
    for text in texts:
        ids = ref.encode(text)
        assert ours.encode(text) == ids, text[:80]
        assert ours.decode(ids) == ref.decode(ids), text[:80]
    # the "sentencepiece" engine is the peer itself: comparing it with the peer is no
    # evidence, so it only checks the wiring (the model bytes reach it), on a few texts
    ours.use_backend("sentencepiece")
    for text in texts[:5]:
        assert ours.encode(text) == ref.encode(text)


@pytest.mark.parametrize("entry", list(MODELS))
def test_mistral_models_like_sentencepiece(pkgdir, corpus, entry):
    data = (pkgdir("mistral_common") / "data" / MODELS[entry]).read_bytes()
    ref = spm.SentencePieceProcessor(model_proto=data)
    ours = zoo.load(entry)  # the catalogue entry: pinned file from the mistral-common package
    assert ours.model_bytes == data and ours.vocab_size == ref.get_piece_size()
    assert [ours.id_to_piece(i) for i in range(ours.vocab_size)] == \
        [ref.id_to_piece(i) for i in range(ref.get_piece_size())]
    assert (ours.bos_id(), ours.eos_id(), ours.unk_id()) == \
        (ref.bos_id(), ref.eos_id(), ref.unk_id())
    _same(ours, ref, corpus)
    text = "Hello world"
    assert ours.encode(text, add_bos=True, add_eos=True) == ref.encode(text, add_bos=True,
                                                                      add_eos=True)


TRAINED = [
    dict(model_type="unigram"),
    dict(model_type="bpe"),
    dict(model_type="unigram", byte_fallback=True, user_defined_symbols=["<sep>", "hello"],
         control_symbols=["<ctl>"]),
    dict(model_type="bpe", byte_fallback=True, user_defined_symbols=["<sep>"],
         remove_extra_whitespaces=False),
    dict(model_type="bpe", add_dummy_prefix=False, normalization_rule_name="identity"),
]


@pytest.mark.parametrize("options", TRAINED, ids=lambda o: "-".join(map(str, o.values()))[:40])
def test_trained_models_like_sentencepiece(gensim_texts, corpus, options):
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(gensim_texts["lee"] + gensim_texts["head500"]), model_writer=buf,
        vocab_size=800, minloglevel=3, num_threads=1, **options)
    ref = spm.SentencePieceProcessor(model_proto=buf.getvalue())
    ours = SentencePiece(buf.getvalue())
    _same(ours, ref, [*corpus[:200], "hello<sep>world<sep><sep> <ctl> hellohello"])


def test_byte_pieces_decode_like_sentencepiece(pkgdir):
    data = (pkgdir("mistral_common") / "data" / MODELS["mistral-7b-v0.1-tokenizer"]).read_bytes()
    ref, ours = spm.SentencePieceProcessor(model_proto=data), SentencePiece(data)
    ids = ref.encode("🦜 and 🦚, 𝄞")  # emoji outside the vocabulary: UTF-8 byte pieces
    assert sum(ours.id_to_piece(i).startswith("<0x") for i in ids) >= 8
    for k in range(len(ids) + 1):  # cut anywhere, even inside a character
        assert ours.decode(ids[:k]) == ref.decode(ids[:k])
        assert ours.decode(ids[k:]) == ref.decode(ids[k:])
    assert ours.decode([1, *ids, 2]) == ref.decode([1, *ids, 2])


@pytest.mark.timeout(120)
def test_long_piece_like_sentencepiece(pkgdir):
    data = (pkgdir("mistral_common") / "data" / MODELS["mistral-7b-v0.1-tokenizer"]).read_bytes()
    ref = spm.SentencePieceProcessor(model_proto=data)
    ours = SentencePiece(data, backend="python")
    for text in ("a" * 200_000, "ab" * 50_000 + "▁" * 5000):
        assert ours.encode(text) == ref.encode(text)


def test_export_to_hf_tokenizers(corpus, pkgdir):
    import tokenizers
    ours = zoo.load("mistral-7b-v0.1-tokenizer")
    hf = tokenizers.Tokenizer.from_str(json.dumps(ours.to_tokenizer_json()))
    # HF matches control pieces written in the text (added tokens); SentencePiece does not
    for text in [t for t in corpus if not any(s in t for s in ours.special_tokens)]:
        ids = ours.encode(text)
        assert hf.encode(text, add_special_tokens=False).ids == ids, text[:80]
        assert hf.decode(ids) == ours.decode(ids)
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(corpus[:300]), model_writer=buf,
                                   vocab_size=300, minloglevel=3, model_type="unigram")
    with pytest.raises(zoo.ConfigError, match="'unigram'"):
        SentencePiece(buf.getvalue()).to_tokenizer_json()


def test_files_and_errors(tmp_path, pkgdir):
    ours = zoo.load("mistral-instruct-v3-tokenizer")
    assert ours.save(tmp_path) == ["tokenizer.model", "config.json"]  # config.json: the core's
    again = SentencePiece.load(tmp_path)
    assert again.encode("Round trip [INST]") == ours.encode("Round trip [INST]")
    assert ours.special_tokens["[INST]"] == 3
    with pytest.raises(zoo.InputError, match="32768"):
        ours.decode([1, 32768])
    with pytest.raises(zoo.InputError, match="str"):
        ours.encode(b"bytes")
    (tmp_path / "bad.model").write_bytes(b"\x0a\xff\xff\xff not a model")
    with pytest.raises(zoo.ConfigError, match="SentencePiece"):
        SentencePiece.from_file(tmp_path / "bad.model")
    with pytest.raises(TypeError):
        ours.encode("hello", typo_kw=1)


def test_backend_refused_with_reason(monkeypatch):
    import sys

    from zoo_tokenizers.spm_export import tiny_model

    assert SentencePiece(tiny_model()).backend == "sentencepiece"
    monkeypatch.setitem(sys.modules, "sentencepiece", None)  # as if it were not installed
    assert SentencePiece(tiny_model()).backend == "python"
    with pytest.raises(zoo.UnsupportedError, match="sentencepiece is not installed"):
        SentencePiece(tiny_model(), backend="sentencepiece")


def test_zoo_run_tokenize_gives_sentencepiece_pieces(pkgdir):
    from zoo_tokenizers.run import tokenize

    data = (pkgdir("mistral_common") / "data" / MODELS["mistral-7b-v0.1-tokenizer"]).read_bytes()
    ref = spm.SentencePieceProcessor(model_proto=data)
    text = "Hello 世界, zoo!"
    (toks,) = tokenize("mistral-7b-v0.1-tokenizer", [text])["tokens"]
    assert [t["id"] for t in toks] == ref.encode(text)
    assert [t["token"] for t in toks] == ref.encode(text, out_type=str)
    assert toks[0]["start"] == 0 and toks[-1]["end"] == len(text)
