"""Pre-tokenization patterns of byte-level BPE (GPT-2, cl100k, o200k) and a fast splitter.

Radford et al., "Language Models are Unsupervised Multitask Learners" (2019), section 2.2:
BPE runs inside pre-tokens cut by a regex (letters, digits, punctuation and whitespace apart,
a leading space kept with the word), so merges never cross word classes.

The patterns use Unicode properties (``\\p{L}``, ``\\p{N}`` …), which the ``regex`` package
understands and the standard ``re`` does not. ``re`` is several times faster, so for the
built-in patterns :class:`Splitter` first maps every character to a representative of its
class (ASCII stays itself; a non-ASCII upper-case letter becomes ``Ā``, a digit ``٠``, a
space ``\\u2000`` …), runs an equivalent ``re`` pattern over that same-length string and cuts
the original text at the same places. Any other pattern goes through ``regex`` as written.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from itertools import accumulate
from typing import Any

import regex

from zoo_core import ConfigError

GPT2 = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
CL100K = (r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++"""
          r"""[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""")
_UP = r"[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]"
_LO = r"[\p{Ll}\p{Lm}\p{Lo}\p{M}]"
_CONTRACTION = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
O200K = "|".join([
    rf"[^\r\n\p{{L}}\p{{N}}]?{_UP}*{_LO}+{_CONTRACTION}",
    rf"[^\r\n\p{{L}}\p{{N}}]?{_UP}+{_LO}*{_CONTRACTION}",
    r"\p{N}{1,3}", r" ?[^\s\p{L}\p{N}]+[\r\n/]*", r"\s*[\r\n]+", r"\s+(?!\S)", r"\s+",
])
# Mistral's Tekken (tekken_*.json): o200k without contractions, one digit per pre-token.
TEKKEN = "|".join([
    rf"[^\r\n\p{{L}}\p{{N}}]?{_UP}*{_LO}+", rf"[^\r\n\p{{L}}\p{{N}}]?{_UP}+{_LO}*",
    r"\p{N}", r" ?[^\s\p{L}\p{N}]+[\r\n/]*", r"\s*[\r\n]+", r"\s+(?!\S)", r"\s+",
])
PATTERNS = {"gpt2": GPT2, "r50k": GPT2, "p50k": GPT2, "cl100k": CL100K, "o200k": O200K,
            "tekken": TEKKEN}
# The same patterns as spelled elsewhere: HF tokenizer.json exports drop cl100k's '{1,3}+'
# possessive '+' (Oniguruma reads it as a repeat).
_SPELLINGS = {CL100K.replace("{1,3}+", "{1,3}"): CL100K}

# Class representatives (all non-ASCII, so ASCII text maps to itself).
_REP = {"upper": "\u0100", "lower": "\u0101", "other_letter": "\u01bb", "mark": "\u0300",
        "number": "\u0660", "space": "\u2000", "other": "\u00a7"}
# Non-ASCII characters kept as themselves: U+017F folds to 's' in the (?i:'s) contractions.
_KEEP = {"\u017f"}
_L = r"A-Za-z\u017f\u0100\u0101\u01bb"
_N = r"0-9\u0660"
_S = r"\t\n\x0b\x0c\r \u2000"  # Unicode White_Space: ASCII ones and the representative
_UPC = r"A-Z\u0100\u01bb\u0300"
_LOC = r"a-z\u017f\u0101\u01bb\u0300"
_FAST = {
    GPT2: rf"""'(?:[sdmt]|ll|ve|re)| ?[{_L}]++| ?[{_N}]++| ?[^{_S}{_L}{_N}]++|[{_S}]++$"""
          rf"""|[{_S}]+(?![^{_S}])|[{_S}]""",
    CL100K: rf"""'(?i:[sdmt]|ll|ve|re)|[^\r\n{_L}{_N}]?+[{_L}]++|[{_N}]{{1,3}}+"""
            rf"""| ?[^{_S}{_L}{_N}]++[\r\n]*+|[{_S}]++$|[{_S}]*[\r\n]|[{_S}]+(?![^{_S}])|[{_S}]""",
    O200K: "|".join([
        rf"[^\r\n{_L}{_N}]?[{_UPC}]*[{_LOC}]+{_CONTRACTION}",
        rf"[^\r\n{_L}{_N}]?[{_UPC}]+[{_LOC}]*{_CONTRACTION}",
        rf"[{_N}]{{1,3}}", rf" ?[^{_S}{_L}{_N}]+[\r\n/]*", rf"[{_S}]*[\r\n]+",
        rf"[{_S}]+(?![^{_S}])", rf"[{_S}]+",
    ]),
    TEKKEN: "|".join([
        rf"[^\r\n{_L}{_N}]?[{_UPC}]*[{_LOC}]+", rf"[^\r\n{_L}{_N}]?[{_UPC}]+[{_LOC}]*",
        rf"[{_N}]", rf" ?[^{_S}{_L}{_N}]+[\r\n/]*", rf"[{_S}]*[\r\n]+",
        rf"[{_S}]+(?![^{_S}])", rf"[{_S}]+",
    ]),
}
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
_WHITE_SPACE = set("\x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000") | {
    chr(c) for c in range(0x2000, 0x200B)}
_CLASSES = [(regex.compile(r"[\p{Lu}\p{Lt}]"), "upper"), (regex.compile(r"\p{Ll}"), "lower"),
            (regex.compile(r"[\p{Lm}\p{Lo}]"), "other_letter"), (regex.compile(r"\p{M}"), "mark"),
            (regex.compile(r"\p{N}"), "number")]


def resolve(pattern: str, trust_pattern: bool = False) -> str:
    """A pattern name (``"gpt2"``, ``"cl100k"``, ``"o200k"``, ``"tekken"``) or regex, as a regex.

    A regex read from a downloaded file is untrusted: a pattern such as ``(a|a)+$`` takes time
    exponential in the text's length, so only the known patterns (any spelling of the names
    above) are accepted unless ``trust_pattern=True``.
    """
    if pattern in PATTERNS:
        return PATTERNS[pattern]
    pattern = _SPELLINGS.get(pattern, pattern)
    if pattern in _FAST or trust_pattern:
        return pattern
    raise ConfigError(
        f"pre-tokenization pattern {pattern[:200]!r} is not one of the known patterns "
        f"{sorted(PATTERNS)}; an unknown regex may take exponential time on some texts. Pass "
        "one of those names, or trust_pattern=True if you trust the pattern's author")


class _ClassMap(dict):  # type: ignore[type-arg]
    """``str.translate`` table filled on first sight of each code point."""

    def __missing__(self, cp: int) -> str:
        ch = chr(cp)
        if cp < 128 or ch in _KEEP:
            rep = ch
        elif ch in _WHITE_SPACE:
            rep = _REP["space"]
        else:
            rep = next((_REP[name] for rx, name in _CLASSES if rx.match(ch)), _REP["other"])
        self[cp] = rep
        return rep


class Splitter:
    """Cut text into pre-tokens with ``pattern`` (every character lands in one piece).

    Example:
        >>> Splitter(CL100K).split("Hello  world123!")
        ['Hello', ' ', ' world', '123', '!']
    """

    _table = _ClassMap()

    def __init__(self, pattern: str) -> None:
        self.pattern = PATTERNS.get(pattern, pattern)  # trusted: callers check with resolve()
        try:
            self._regex = regex.compile(self.pattern)
        except regex.error as e:
            raise ConfigError(f"pre-tokenization pattern {pattern!r} does not compile: {e}; "
                             f"pass a regex or one of {sorted(PATTERNS)}") from None
        fast = _FAST.get(self.pattern)
        self._fast = re.compile(fast) if fast else None

    def split(self, text: str) -> list[str]:
        """The pre-tokens of ``text``, in order."""
        if self._fast is None:
            return self._regex.findall(text)  # type: ignore[no-any-return]
        if text.isascii():
            return self._fast.findall(text)
        pieces = self._fast.findall(text.translate(self._table))
        bounds = list(accumulate(map(len, pieces), initial=0))
        runs = [m.span() for m in _NON_ASCII.finditer(text)]
        if len(runs) * 4 > len(pieces):  # mostly non-ASCII: cut every piece from the text
            return list(map(text.__getitem__, map(slice, bounds, bounds[1:])))
        for start, end in runs:  # ASCII pieces are already right; redo those with a run
            for k in range(bisect_right(bounds, start) - 1, bisect_left(bounds, end)):
                pieces[k] = text[bounds[k]:bounds[k + 1]]
        return pieces

    def spans(self, text: str) -> list[tuple[int, int]]:
        """``(start, end)`` character spans of the pre-tokens."""
        bounds = list(accumulate(map(len, self.split(text)), initial=0))
        return list(zip(bounds, bounds[1:], strict=False))

    def __reduce__(self) -> tuple[Any, ...]:
        return (Splitter, (self.pattern,))
