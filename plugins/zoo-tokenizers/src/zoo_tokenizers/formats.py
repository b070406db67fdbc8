"""WordPiece files: BERT ``vocab.txt``, ``tokenizer_config.json``, HF ``tokenizer.json``.

The files are written in the layout of a Hub tokenizer repo, so ``transformers``'
``BertTokenizerFast.from_pretrained(dir)`` and ``tokenizers.Tokenizer.from_file`` read them.
Every write goes through ``zoo.atomic_write`` (a temporary file and a rename).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from zoo_core import ConfigError, atomic_write

_CLEANUPS = ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
             (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"))


def check_unique_ids(vocab: dict[str, int], what: str) -> None:
    """Refuse a vocabulary in which two tokens share an id or an id is negative."""
    seen: dict[int, str] = {}
    for tok, i in vocab.items():
        if not isinstance(i, int) or i < 0:
            raise ConfigError(f"{what}: token {tok!r} has id {i!r}; ids must be ints >= 0")
        if i in seen:
            raise ConfigError(f"{what}: tokens {seen[i]!r} and {tok!r} share id {i}; "
                             "each id must name one token")
        seen[i] = tok


def read_vocab_txt(path: Path) -> dict[str, int]:
    """``vocab.txt``: one token per line, the id is the line number; duplicates are an error."""
    vocab: dict[str, int] = {}
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f):
            tok = line.rstrip("\n")
            if tok in vocab:
                raise ConfigError(f"{str(path)!r}: token {tok!r} appears twice (lines "
                                 f"{vocab[tok] + 1} and {i + 1}); remove the duplicate line")
            vocab[tok] = i
    return vocab


def join_wordpieces(tokens: list[str], prefix: str = "##", cleanup: bool = True) -> str:
    """Join WordPiece tokens: ``##`` pieces glue to the previous one, others take a space.

    ``cleanup`` removes the space before ``. ? ! ,`` and before contractions (``n't``, ``'s``)
    when they are tokens of their own; it works token by token, so ``it ' s`` stays as is.
    """
    parts = []
    for i, tok in enumerate(tokens):
        if i and tok.startswith(prefix):
            piece = tok[len(prefix):]
        else:
            piece = f" {tok}" if i else tok
        if cleanup:
            for a, b in _CLEANUPS:
                piece = piece.replace(a, b)
        parts.append(piece)
    return "".join(parts)


def _config_options(cfg: dict[str, Any]) -> dict[str, Any]:
    """Our constructor options from a ``tokenizer_config.json``."""
    names = {"do_lower_case": "lowercase", "strip_accents": "strip_accents",
             "tokenize_chinese_chars": "tokenize_chinese_chars",
             "model_max_length": "model_max_length", "pad_token": "pad_token",
             "unk_token": "unk_token", "cls_token": "cls_token", "sep_token": "sep_token",
             "mask_token": "mask_token"}
    out = {}
    for key, ours in names.items():
        value = cfg.get(key)
        if isinstance(value, dict):  # an AddedToken written out in full
            value = value.get("content")
        if value is not None and not (key == "model_max_length" and value > 1e12):
            out[ours] = value
    return out


def _tokenizer_json_options(doc: dict[str, Any], path: Path) -> tuple[dict[str, int], dict]:
    model = doc.get("model") or {}
    if model.get("type") != "WordPiece":
        raise ConfigError(f"{str(path)!r} holds a {model.get('type')!r} model, not WordPiece; "
                         "load it with zoo.create('tokenizer:bpe').from_file(...) if it is BPE")
    opts: dict[str, Any] = {"unk_token": model.get("unk_token", "[UNK]"),
                            "continuing_subword_prefix": model.get("continuing_subword_prefix",
                                                                   "##"),
                            "max_input_chars_per_word": model.get("max_input_chars_per_word", 100)}
    norm = doc.get("normalizer") or {}
    if norm.get("type") == "BertNormalizer":
        opts |= {"clean_text": norm.get("clean_text", True),
                 "tokenize_chinese_chars": norm.get("handle_chinese_chars", True),
                 "strip_accents": norm.get("strip_accents"), "lowercase": norm.get("lowercase",
                                                                                   True)}
    elif norm:
        raise ConfigError(f"{str(path)!r}: normalizer {norm.get('type')!r} is not supported; "
                         "WordPiece here reads BertNormalizer (or none)")
    else:
        opts |= {"lowercase": False, "clean_text": False, "tokenize_chinese_chars": False,
                 "strip_accents": False}
    pad = doc.get("padding") or {}
    if pad.get("pad_token"):
        opts["pad_token"] = pad["pad_token"]
    trunc = doc.get("truncation") or {}
    if trunc.get("max_length"):
        opts["model_max_length"] = trunc["max_length"]
    post = doc.get("post_processor") or {}
    if post.get("type") == "BertProcessing":
        opts["sep_token"], opts["cls_token"] = post["sep"][0], post["cls"][0]
    elif post.get("type") == "TemplateProcessing":
        single = [p["SpecialToken"]["id"] for p in post.get("single", []) if "SpecialToken" in p]
        if len(single) == 2:
            opts["cls_token"], opts["sep_token"] = single
    return dict(model.get("vocab") or {}), opts


def load_wordpiece_file(cls: Any, path: Path, **options: Any) -> Any:
    """A WordPiece tokenizer from one ``vocab.txt`` or ``tokenizer.json``."""
    if not path.is_file():
        raise FileNotFoundError(f"{str(path)!r} does not exist; pass a vocab.txt or "
                                "tokenizer.json file")
    if path.suffix == ".json":
        vocab, opts = _tokenizer_json_options(json.loads(path.read_text("utf-8")), path)
        return cls(vocab, **(opts | options))
    return cls(read_vocab_txt(path), **options)


def load_wordpiece(cls: Any, directory: Path, **options: Any) -> Any:
    """A WordPiece tokenizer from a folder laid out like a Hub repo."""
    cfg_file = directory / "tokenizer_config.json"
    cfg = _config_options(json.loads(cfg_file.read_text("utf-8"))) if cfg_file.is_file() else {}
    if (directory / "tokenizer.json").is_file():
        vocab, opts = _tokenizer_json_options(
            json.loads((directory / "tokenizer.json").read_text("utf-8")),
            directory / "tokenizer.json")
        if "model_max_length" in cfg:
            opts["model_max_length"] = cfg["model_max_length"]
        return cls(vocab, **(opts | options))
    if (directory / "vocab.txt").is_file():
        return cls(read_vocab_txt(directory / "vocab.txt"), **(cfg | options))
    raise FileNotFoundError(f"{str(directory)!r} has neither vocab.txt nor tokenizer.json; a "
                            "WordPiece tokenizer needs one of them")


def wordpiece_tokenizer_json(tok: Any) -> dict[str, Any]:
    """The HF ``tokenizers`` description of ``tok`` (no padding or truncation set)."""
    o = tok.options()
    specials = sorted(tok.special_tokens.items(), key=lambda kv: kv[1])
    cls_id, sep_id = tok.cls_token_id, tok.sep_token_id
    cls_t, sep_t = tok.cls_token, tok.sep_token
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": i, "content": t, "single_word": False, "lstrip": False,
                          "rstrip": False, "normalized": False, "special": True}
                         for t, i in specials],
        "normalizer": {"type": "BertNormalizer", "clean_text": o["clean_text"],
                       "handle_chinese_chars": o["tokenize_chinese_chars"],
                       "strip_accents": o["strip_accents"], "lowercase": o["lowercase"]},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": cls_t, "type_id": 0}},
                       {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": sep_t, "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": cls_t, "type_id": 0}},
                     {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": sep_t, "type_id": 0}},
                     {"Sequence": {"id": "B", "type_id": 1}},
                     {"SpecialToken": {"id": sep_t, "type_id": 1}}],
            "special_tokens": {cls_t: {"id": cls_t, "ids": [cls_id], "tokens": [cls_t]},
                               sep_t: {"id": sep_t, "ids": [sep_id], "tokens": [sep_t]}}},
        "decoder": {"type": "WordPiece", "prefix": o["continuing_subword_prefix"],
                    "cleanup": True},
        "model": {"type": "WordPiece", "unk_token": o["unk_token"],
                  "continuing_subword_prefix": o["continuing_subword_prefix"],
                  "max_input_chars_per_word": o["max_input_chars_per_word"],
                  "vocab": dict(sorted(tok.vocab.items(), key=lambda kv: kv[1]))},
    }


def save_wordpiece(tok: Any, directory: Path) -> list[str]:
    """Write the Hub tokenizer files of ``tok`` into ``directory``; return their names."""
    ids = sorted(tok.inv_vocab)
    if ids != list(range(len(ids))):
        raise ConfigError("vocab.txt needs contiguous ids 0..n-1; this vocabulary has gaps")
    o = tok.options()
    atomic_write(directory / "vocab.txt", "".join(f"{tok.inv_vocab[i]}\n" for i in ids))
    specials = {r: o[r] for r in ("unk_token", "sep_token", "pad_token", "cls_token",
                                  "mask_token")}
    config = {"tokenizer_class": "BertTokenizer", "do_lower_case": o["lowercase"],
              "strip_accents": o["strip_accents"],
              "tokenize_chinese_chars": o["tokenize_chinese_chars"],
              "model_max_length": o["model_max_length"], "clean_up_tokenization_spaces": True,
              **specials}
    atomic_write(directory / "tokenizer_config.json", json.dumps(config, indent=2) + "\n")
    atomic_write(directory / "special_tokens_map.json", json.dumps(specials, indent=2) + "\n")
    atomic_write(directory / "tokenizer.json",
                 json.dumps(wordpiece_tokenizer_json(tok), indent=2, ensure_ascii=False) + "\n")
    return ["vocab.txt", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.json"]
