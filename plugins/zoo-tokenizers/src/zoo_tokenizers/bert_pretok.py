"""BERT's basic tokenizer: text clean-up, lower-casing, accent stripping, word splitting.

Devlin et al., "BERT: Pre-training of Deep Bidirectional Transformers for Language
Understanding" (2018), https://arxiv.org/abs/1810.04805, section 3 and appendix A.2: the
text is normalised (control characters dropped, every whitespace a space, optionally lower-
cased with accents removed by NFD decomposition minus non-spacing marks), CJK ideographs
and punctuation become words of their own, and the rest is split on whitespace.

The normaliser works one input character at a time, so every character of every word keeps
the index of the input character it came from; word and token offsets are spans of the
*input* string (Python character indices), as users of ``return_offsets_mapping`` expect.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

# CJK Unified Ideographs and their extensions and compatibility blocks (the ranges BERT's
# release splits into single-character words; Hangul and kana are not among them). Extension
# E starts at U+2B920 here, as in HF tokenizers (BERT's Python release says U+2B820), so that
# ids match the fast tokenizers every BERT checkpoint ships with.
_CJK_RANGES = (
    (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F), (0x2B920, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F),
)
_WORD, _SPACE, _ALONE = 0, 1, 2  # how a normalised character ends up: in a word, a gap, alone
# ASCII fast path: controls (dropped, so words may join across them) send text the slow way
_ASCII_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_ASCII_WORD = re.compile(r"[^\t\n\r !-/:-@\[-`{-~]+|[!-/:-@\[-`{-~]")


def is_cjk(cp: int) -> bool:
    """Whether code point ``cp`` is a CJK ideograph BERT isolates."""
    return any(lo <= cp <= hi for lo, hi in _CJK_RANGES)


def is_control(ch: str) -> bool:
    """Control, format, surrogate or private-use, except tab, LF and CR.

    Unassigned code points (``Cn``) are kept: they may be assigned in newer Unicode versions,
    and HF tokenizers keeps them too.
    """
    if ch in "\t\n\r":
        return False
    return unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co")


def is_whitespace(ch: str) -> bool:
    """Tab, LF, CR, or a Unicode white-space character."""
    return ch in "\t\n\r " or ch.isspace()


def is_punctuation(ch: str) -> bool:
    """ASCII punctuation (``$``, ``+``, ``^`` included) or a Unicode ``P*`` character."""
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


@dataclass(frozen=True)
class BertNormalizer:
    """The normalisation half of BERT's basic tokenizer.

    Args:
        clean_text: drop NUL, U+FFFD and control characters; map whitespace to a space.
        handle_chinese_chars: make every CJK ideograph a word of its own.
        strip_accents: NFD-decompose and drop non-spacing marks; ``None`` follows ``lowercase``.
        lowercase: lower-case every character.
    """

    clean_text: bool = True
    handle_chinese_chars: bool = True
    strip_accents: bool | None = None
    lowercase: bool = True

    def char(self, ch: str) -> tuple[str, int]:
        """The normalised form of one input character and how it splits words."""
        if self.clean_text:
            if ch in "\x00\ufffd" or is_control(ch):
                return "", _SPACE
            if is_whitespace(ch):
                return " ", _SPACE
        elif is_whitespace(ch):
            return " ", _SPACE
        out = ch
        strip = self.lowercase if self.strip_accents is None else self.strip_accents
        if strip:  # NFD also maps CJK compatibility ideographs to the unified ones
            out = "".join(c for c in unicodedata.normalize("NFD", out)
                          if unicodedata.category(c) != "Mn")
        if self.lowercase:
            out = out.lower()
        if self.handle_chinese_chars and is_cjk(ord(ch)) or len(out) == 1 and is_punctuation(out):
            return out, _ALONE
        return out, _WORD

    def normalize(self, text: str) -> str:
        """The normalised text, CJK ideographs padded with spaces (for inspection)."""
        parts = []
        for ch in text:
            out, how = self.char(ch)
            parts.append(f" {out} " if how == _ALONE and is_cjk(ord(ch)) else out)
        return "".join(parts)


class BertPreTokenizer:
    """Split ``text`` into normalised words, each with the input index of every character.

    Example:
        >>> words = BertPreTokenizer(BertNormalizer()).split("Héllo, World!")
        >>> [w for w, _ in words]
        ['hello', ',', 'world', '!']
    """

    def __init__(self, normalizer: BertNormalizer) -> None:
        self.normalizer = normalizer
        self._table: dict[str, tuple[str, int]] = {}

    def split(self, text: str, base: int = 0) -> list[tuple[str, Sequence[int]]]:
        """Words of ``text`` as ``(word, source_index_per_char)``; indices start at ``base``."""
        if text.isascii() and not _ASCII_CONTROL.search(text):  # one char in, one char out
            norm = text.lower() if self.normalizer.lowercase else text
            return [(m.group(), range(base + m.start(), base + m.end()))
                    for m in _ASCII_WORD.finditer(norm)]
        table, char = self._table, self.normalizer.char
        words: list[tuple[str, Sequence[int]]] = []
        cur: list[str] = []
        src: list[int] = []
        for i, ch in enumerate(text, base):
            hit = table.get(ch)
            if hit is None:
                hit = table[ch] = char(ch)
            out, how = hit
            if how == _WORD and len(out) == 1:
                cur.append(out)
                src.append(i)
                continue
            for c in out:  # a multi-character result may hold spaces or punctuation
                if how == _SPACE or c == " " or c.isspace():
                    if cur:
                        words.append(("".join(cur), src))
                        cur, src = [], []
                elif how == _ALONE or is_punctuation(c):
                    if cur:
                        words.append(("".join(cur), src))
                        cur, src = [], []
                    words.append((c, [i]))
                else:
                    cur.append(c)
                    src.append(i)
        if cur:
            words.append(("".join(cur), src))
        return words
