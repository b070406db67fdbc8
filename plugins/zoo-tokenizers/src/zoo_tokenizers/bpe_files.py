"""Byte-level BPE files: tiktoken ranks, GPT-2 ``encoder.json`` + ``vocab.bpe`` (named
``vocab.json`` + ``merges.txt`` on the Hub), HF ``tokenizer.json``, and our own layout
(``bpe.tiktoken`` + ``zoo_bpe.json``).

GPT-2's files spell bytes as printable characters (Radford et al. 2019, section 2.2: the
byte-level alphabet without whitespace or control characters): printable Latin-1 bytes stand
for themselves and the others take the code points from 256 up, in byte order.
"""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path
from typing import Any

from zoo_core import ConfigError, atomic_write

from .patterns import PATTERNS

OURS_CONFIG, OURS_RANKS = "zoo_bpe.json", "bpe.tiktoken"
_SAVED_FIELDS = frozenset({"name", "pattern", "special_tokens"})  # what save_bpe writes
_KNOWN_SPECIALS = {
    "cl100k_base": {"<|endoftext|>": 100257, "<|fim_prefix|>": 100258, "<|fim_middle|>": 100259,
                    "<|fim_suffix|>": 100260, "<|endofprompt|>": 100276},
    "o200k_base": {"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
}


def _byte_chars() -> dict[int, str]:
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    table, extra = {b: chr(b) for b in printable}, 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table


BYTE_TO_CHAR = _byte_chars()
CHAR_TO_BYTE = {c: b for b, c in BYTE_TO_CHAR.items()}


def token_to_bytes(token: str, where: str) -> bytes:
    """GPT-2's printable spelling of a token back to its bytes."""
    try:
        return bytes(CHAR_TO_BYTE[c] for c in token)
    except KeyError as e:
        raise ConfigError(f"{where}: token {token!r} has character {e.args[0]!r}, which is not "
                         "in the byte-level alphabet; is this a byte-level BPE file?") from None


def bytes_to_token(data: bytes) -> str:
    return "".join(BYTE_TO_CHAR[b] for b in data)


def check_ranks(ranks: dict[bytes, int], specials: dict[str, int]) -> dict[int, bytes]:
    """Validate ranks and special tokens; return id -> bytes."""
    decoder: dict[int, bytes] = {}
    for tok, r in ranks.items():
        if not isinstance(r, int) or r < 0:
            raise ConfigError(f"token {tok!r} has rank {r!r}; ranks must be ints >= 0")
        if r in decoder:
            raise ConfigError(f"tokens {decoder[r]!r} and {tok!r} share rank {r}; each rank "
                             "must name one token")
        decoder[r] = tok
    missing = [b for b in range(256) if bytes([b]) not in ranks]
    if missing:
        raise ConfigError(f"the vocabulary lacks {len(missing)} single bytes (first: "
                         f"{bytes([missing[0]])!r}); byte-level BPE needs all 256")
    for text, i in specials.items():
        if i in decoder:
            raise ConfigError(f"special token {text!r} has id {i}, already the id of "
                             f"{decoder[i]!r}; give it an id outside the ranks")
        decoder[i] = text.encode("utf-8")
    return decoder


def read_tiktoken(path: Path) -> dict[bytes, int]:
    """A tiktoken rank file (``base64 rank`` per line), plain or gzipped."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    ranks: dict[bytes, int] = {}
    for n, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        try:
            tok_b64, rank = line.split()
            tok, r = base64.b64decode(tok_b64, validate=True), int(rank)
        except ValueError:
            raise ConfigError(f"{str(path)!r} line {n}: {line[:60]!r} is not 'base64 rank'; "
                             "is this a tiktoken file?") from None
        if tok in ranks:
            raise ConfigError(f"{str(path)!r} line {n}: token {tok!r} appears twice (ranks "
                             f"{ranks[tok]} and {r}); remove the duplicate")
        ranks[tok] = r
    return ranks


def write_tiktoken(ranks: dict[bytes, int], path: Path) -> None:
    lines = (f"{base64.b64encode(t).decode()} {r}\n" for t, r in
             sorted(ranks.items(), key=lambda kv: kv[1]))
    atomic_write(path, "".join(lines))


def read_gpt2(encoder_json: Path, vocab_bpe: Path) -> tuple[dict[bytes, int], dict[str, int]]:
    """GPT-2's ``encoder.json`` + ``vocab.bpe``: ranks, and the special tokens in the encoder."""
    encoder = json.loads(encoder_json.read_text("utf-8"))
    specials = {t: i for t, i in encoder.items() if t.startswith("<|") and t.endswith("|>")}
    where = str(encoder_json)
    ranks = {token_to_bytes(t, where): i for t, i in encoder.items() if t not in specials}
    if len(ranks) != len(encoder) - len(specials):
        raise ConfigError(f"{where!r}: two tokens spell the same bytes")
    lines = vocab_bpe.read_text("utf-8").splitlines()
    for n, line in enumerate(lines, 1):
        if n == 1 and line.startswith("#version") or not line.strip():
            continue
        parts = line.split(" ")
        if len(parts) != 2 or any(p not in encoder for p in parts) \
                or parts[0] + parts[1] not in encoder:
            raise ConfigError(f"{str(vocab_bpe)!r} line {n}: broken merge {line!r}; each line "
                             "must join two tokens of encoder.json into a third")
    return ranks, specials


def derive_merges(ranks: dict[bytes, int]) -> list[tuple[bytes, bytes]]:
    """The merge pair of every multi-byte token: its bytes merged with lower ranks only."""
    from .bpe import bpe_ranks

    merges = []
    for tok, r in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(tok) < 2:
            continue
        parts = bpe_ranks(tok, ranks, max_rank=r)
        if len(parts) != 2:
            raise ConfigError(f"token {tok!r} (rank {r}) cannot be built by merging two tokens "
                             "of lower rank; the ranks are not a BPE vocabulary")
        merges.append((parts[0], parts[1]))
    return merges


def bpe_tokenizer_json(tok: Any) -> dict[str, Any]:
    """An HF ``tokenizers`` description equivalent to ``tok``."""
    pattern = tok.pattern.replace("{1,3}+", "{1,3}")  # Oniguruma reads '{n,m}+' as a repeat
    vocab = {bytes_to_token(t): r for t, r in sorted(tok.ranks.items(), key=lambda kv: kv[1])}
    vocab |= tok.special_tokens  # HF renumbers added tokens not in the model's vocab past gaps
    merges = [[bytes_to_token(a), bytes_to_token(b)] for a, b in derive_merges(tok.ranks)]
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": i, "content": t, "single_word": False, "lstrip": False,
                          "rstrip": False, "normalized": False, "special": True}
                         for t, i in sorted(tok.special_tokens.items(), key=lambda kv: kv[1])],
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated",
             "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
             "use_regex": False}]},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
                    "use_regex": False},
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": False, "byte_fallback": False, "ignore_merges": True,
                  "vocab": vocab, "merges": merges},
    }


def read_tokenizer_json(path: Path, doc: dict[str, Any] | None = None) -> dict[str, Any]:
    """Constructor arguments of a byte-level BPE from an HF ``tokenizer.json``."""
    if doc is None:
        doc = json.loads(path.read_text("utf-8"))
    model = doc.get("model") or {}
    if model.get("type") != "BPE":
        raise ConfigError(f"{str(path)!r} holds a {model.get('type')!r} model, not BPE; load "
                         "WordPiece files with tokenizer:wordpiece")
    where = str(path)
    specials = {t["content"]: t["id"] for t in doc.get("added_tokens", []) if t.get("special")}
    ranks = {token_to_bytes(t, where): i for t, i in model.get("vocab", {}).items()
             if t not in specials}
    pre = doc.get("pre_tokenizer") or {}
    steps = pre.get("pretokenizers", [pre]) if pre.get("type") == "Sequence" else [pre]
    pattern = "gpt2"
    for step in steps:
        if step.get("type") == "Split" and "Regex" in step.get("pattern", {}):
            pattern = step["pattern"]["Regex"]
    by_id = {i: t for t, i in ranks.items()}
    for n, m in enumerate(model.get("merges", [])):
        a, b = m.split(" ") if isinstance(m, str) else m
        ab, ba = token_to_bytes(a, where), token_to_bytes(b, where)
        if ab not in ranks or ba not in ranks or ab + ba not in ranks:
            raise ConfigError(f"{where!r}: broken merge {n} {m!r}; both parts and their join "
                             "must be in the vocabulary")
        if ranks[ab + ba] <= max(ranks[ab], ranks[ba]):
            raise ConfigError(f"{where!r}: merge {n} {m!r} gives id {ranks[ab + ba]}, not above "
                             "its parts'; only vocabularies whose ids follow the merge order "
                             "load as byte-level BPE")
    specials = {t: i for t, i in specials.items() if i not in by_id}
    return {"ranks": ranks, "pattern": pattern, "special_tokens": specials}


# Mistral's Tekken: the special tokens of files that do not list them (ids 0..19), then fillers.
TEKKEN_SPECIALS = ("<unk>", "<s>", "</s>", "[INST]", "[/INST]", "[AVAILABLE_TOOLS]",
                   "[/AVAILABLE_TOOLS]", "[TOOL_RESULTS]", "[/TOOL_RESULTS]", "[TOOL_CALLS]",
                   "[IMG]", "<pad>", "[IMG_BREAK]", "[IMG_END]", "[PREFIX]", "[MIDDLE]",
                   "[SUFFIX]", "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]", "[TOOL_CONTENT]")


def read_tekken(doc: dict[str, Any], where: str) -> dict[str, Any]:
    """Constructor arguments of a BPE from a Tekken file (``tekken_*.json``).

    The file holds tiktoken-style ranks and a config; the special tokens take the first
    ``default_num_special_tokens`` ids and every rank is shifted past them. Only the first
    ``default_vocab_size`` ids are used.
    """
    cfg = doc["config"]
    n_special, size = cfg["default_num_special_tokens"], cfg["default_vocab_size"]
    listed = doc.get("special_tokens")
    names = [t["token_str"] for t in listed] if listed else list(TEKKEN_SPECIALS)
    names += [f"<SPECIAL_{i}>" for i in range(len(names), n_special)]
    vocab = doc["vocab"][:size - n_special]
    ranks = {}
    for i, tok in enumerate(vocab):
        if tok["rank"] != i:
            raise ConfigError(f"{where!r}: vocab entry {i} has rank {tok['rank']!r}; a Tekken "
                              "file lists ranks 0, 1, 2… in order")
        ranks[base64.b64decode(tok["token_bytes"])] = i + n_special
    return {"ranks": ranks, "pattern": cfg["pattern"], "name": Path(where).stem,
            "special_tokens": {t: i for i, t in enumerate(names)}}


def save_bpe(tok: Any, directory: Path) -> list[str]:
    write_tiktoken(tok.ranks, directory / OURS_RANKS)
    cfg = {"name": tok.name, "pattern": tok.pattern, "special_tokens": tok.special_tokens}
    atomic_write(directory / OURS_CONFIG, json.dumps(cfg, indent=2, ensure_ascii=False) + "\n")
    atomic_write(directory / "tokenizer.json",
                 json.dumps(bpe_tokenizer_json(tok), ensure_ascii=False) + "\n")
    return [OURS_RANKS, OURS_CONFIG, "tokenizer.json"]


def load_bpe_file(cls: Any, path: Path, **options: Any) -> Any:
    if not path.is_file():
        raise FileNotFoundError(f"{str(path)!r} does not exist; pass a tokenizer.json or a "
                                "tiktoken rank file")
    if path.suffix == ".json":
        doc = json.loads(path.read_text("utf-8"))
        if isinstance(doc.get("vocab"), list) and "config" in doc:
            return cls(**(read_tekken(doc, str(path)) | options))
        return cls(**(read_tokenizer_json(path, doc) | options))
    stem = path.name.split(".")[0]
    name = options.pop("name", stem)
    pattern = options.pop("pattern", None)
    if pattern is None:
        guess = stem.removesuffix("_base")
        if guess not in PATTERNS:
            raise ConfigError(f"{str(path)!r}: pass pattern= (a regex or one of "
                             f"{sorted(PATTERNS)}); the file holds only ranks")
        pattern = guess
    specials = options.pop("special_tokens", _KNOWN_SPECIALS.get(stem, {}))
    return cls(read_tiktoken(path), pattern=pattern, special_tokens=specials,
               name=name, **options)


def load_bpe(cls: Any, directory: Path, **options: Any) -> Any:
    if "file" in options:  # a catalogue entry names its file among the package's
        return load_bpe_file(cls, directory / options.pop("file"), **options)
    if (directory / OURS_CONFIG).is_file() and (directory / OURS_RANKS).is_file():
        cfg = json.loads((directory / OURS_CONFIG).read_text("utf-8"))
        extra = sorted(set(cfg) - _SAVED_FIELDS) if isinstance(cfg, dict) else ["(not an object)"]
        if extra:  # trust (trust_pattern …) comes from the caller, never from a file
            raise ConfigError(f"{str(directory / OURS_CONFIG)!r}: field {extra[0]!r} is not one "
                              f"of {sorted(_SAVED_FIELDS)}; remove it (pass options such as "
                              "trust_pattern=True to BPE.load yourself)")
        return cls(read_tiktoken(directory / OURS_RANKS), **(cfg | options))
    for encoder, merges in (("encoder.json", "vocab.bpe"), ("vocab.json", "merges.txt")):
        if (directory / encoder).is_file() and (directory / merges).is_file():
            ranks, specials = read_gpt2(directory / encoder, directory / merges)
            opts = {"pattern": "gpt2", "special_tokens": specials, "name": "gpt2"} | options
            return cls(ranks, **opts)
    rank_files = sorted([*directory.glob("*.tiktoken"), *directory.glob("*.tiktoken.gz")])
    if rank_files:
        return load_bpe_file(cls, rank_files[0], **options)
    if (directory / "tokenizer.json").is_file():
        return load_bpe_file(cls, directory / "tokenizer.json", **options)
    raise FileNotFoundError(f"{str(directory)!r} has no BPE files: expected {OURS_CONFIG} + "
                            f"{OURS_RANKS}, encoder.json + vocab.bpe (or vocab.json + merges.txt)"
                            ", a *.tiktoken[.gz] file or tokenizer.json")
