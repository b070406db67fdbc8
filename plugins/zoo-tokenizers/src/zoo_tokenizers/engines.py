"""Compiled engines as tokenizer backends, each admitted by a self-check at load.

The pure-Python engine of each format is the reference and always available. When the
format's well-kept compiled engine is installed (``pip install 'zoo-tokenizers[fast]'``) it
comes first: tiktoken for byte-level BPE ranks, ``sentencepiece`` for ``.model`` files (HF
``tokenizers`` for WordPiece is offered second: our Python engine is faster there). It is
used only after it gave the reference's ids on :data:`PROBE` (text that exercises every
pre-tokenizer branch: cases, contractions, digits, CJK, emoji, byte fallback, whitespace runs
and a long piece); otherwise the reason is kept and the next engine is used. Selection is the
kernels' (:func:`zoo_core.kinds.kernel.select`, through ``Tokenizer.use_backend``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from zoo_core import Backend, InputError, UnsupportedError

PROBE = ("Hello world! It's 2024; they'll say “don't” — NOW. 3.14159 -42 12345678\n"
         "我们的模型 tokenizes 中文 and 日本語のテキスト, 한국어도. Crème brûlée İstanbul\n"
         "emoji 👩‍👩‍👧‍👦 🇫🇷 👍🏽 🦜\tdef f(x):\r\n    return {'a': [1, 2]}  # ok\n\n\n"
         "   trailing   \t " + "a" * 300 + " \u00a0\u2028x\u200b")
FAST_HINT = "install it with pip install 'zoo-tokenizers[fast]'"


def checked(name: str, build: Callable[[], tuple[Any, Callable[[str], Any]]],
            reference: Callable[[str], Any], compare: Callable[[Any], Any] = list) -> Backend:
    """A backend whose ``build()`` gives ``(engine, encode)``, admitted when ``encode``'s ids on
    :data:`PROBE` equal ``reference``'s (checked once, on first ask; ``compare`` picks the ids
    out of a result). Once admitted, the backend's ``fn`` is ``encode`` itself, so calls pay
    no layer of ours."""
    state: dict[str, Any] = {}

    def supports(*_: Any, **__: Any) -> bool | str:
        if "verdict" not in state:
            state["verdict"] = _check()
        return state["verdict"]  # type: ignore[no-any-return]

    def _check() -> bool | str:
        try:
            engine, encode = build()
            got = compare(encode(PROBE))
        except ImportError:
            return f"{name} is not installed; {FAST_HINT}"
        except Exception as e:  # noqa: BLE001 - any refusal of the engine is a reason
            return f"{name} could not load this vocabulary ({type(e).__name__}: {e})"
        want = compare(reference(PROBE))
        if got != want:
            at = next((i for i, (a, b) in enumerate(zip(got, want, strict=False)) if a != b),
                      min(len(got), len(want)))
            return (f"{name} gives ids other than the reference's on the probe text (first "
                    f"difference at token {at}: {got[at:at + 3]} vs {want[at:at + 3]})")
        state["engine"], backend.fn = engine, encode
        return True

    def first_use(text: str) -> Any:
        verdict = supports()
        if verdict is not True:
            raise UnsupportedError(f"backend {name!r}: {verdict}")
        return backend.fn(text)

    backend = Backend(name, first_use, supports)
    backend.engine = lambda: state.get("engine")  # type: ignore[attr-defined]
    return backend


def tiktoken_backend(tok: Any) -> Backend:
    """tiktoken's CoreBPE on the same ranks, pattern and special tokens."""

    def build() -> tuple[Any, Callable[[str], list[int]]]:
        import tiktoken

        enc = tiktoken.Encoding(tok.name, pat_str=tok.pattern, mergeable_ranks=tok.ranks,
                                special_tokens=tok.special_tokens)
        core = getattr(enc, "_core_bpe", None)  # skip tiktoken's Python layer when it is there
        return enc, getattr(core, "encode_ordinary", enc.encode_ordinary)

    return checked("tiktoken", build, tok._encode_python)


def sentencepiece_backend(sp: Any) -> Backend:
    """The ``sentencepiece`` library on the same model bytes."""

    def build() -> tuple[Any, Callable[[str], list[int]]]:
        import sentencepiece

        proc = sentencepiece.SentencePieceProcessor(model_proto=sp.model_bytes)
        raw = getattr(getattr(proc, "_processor", None), "_EncodeAsIds", None)
        if raw is None:
            return proc, proc.encode
        # the C++ call under proc.encode (its Python layer resolves these same defaults)
        args = (False, proc._nbest_size, proc._alpha, False, False, False)
        return proc, lambda text: raw(text, *args)

    return checked("sentencepiece", build, sp._encode_python)


def tokenizers_backend(wp: Any) -> Backend:
    """HF ``tokenizers`` on WordPiece's own ``tokenizer.json`` description (no specials added)."""

    def build() -> tuple[Any, Callable[[str], Any]]:
        import json

        import tokenizers

        from .encoding import Encoding
        from .formats import wordpiece_tokenizer_json

        hf = tokenizers.Tokenizer.from_str(json.dumps(wordpiece_tokenizer_json(wp)))

        def encode(text: str) -> Encoding:
            e = hf.encode(text, add_special_tokens=False)
            n = len(e.ids)
            return Encoding(e.ids, e.tokens, e.offsets, [0] * n, [0] * n, [1] * n)

        return hf, encode

    return checked("tokenizers", build, wp._encode_plain_python, compare=lambda enc: enc.ids)


def python_backend(reference: Callable[[str], list[int]]) -> Backend:
    """The pure-Python reference engine."""
    return Backend("python", reference)


_SURROGATE = re.compile("[\ud800-\udfff]")
_SPACE_RUN = re.compile(r"\s+")
SAFE_SPACE_RUN = 65_536
"""tiktoken's regex engine overflows its stack (a Rust panic, which is no ``Exception``) on a
whitespace run of about a million characters, less in its batch threads: texts holding a
longer run than this go to the reference engine."""


def refuse_surrogates(text: str) -> None:
    """Lone surrogates (from a bad ``decode(errors='surrogateescape')``) are no text: refuse
    them the same way whatever the engine."""
    if not text.isascii():
        m = _SURROGATE.search(text)
        if m:
            raise InputError(f"text holds the lone surrogate {m.group()!r} at index "
                             f"{m.start()}, which is not Unicode text; decode the bytes with "
                             "errors='replace' (or fix the source) before encoding")


def has_long_space_run(text: str) -> bool:
    """Whether ``text`` holds a whitespace run longer than :data:`SAFE_SPACE_RUN`.

    Such a run covers a multiple of half that length, so only those points are looked at:
    a few dozen per megabyte, whatever the text."""
    safe = SAFE_SPACE_RUN
    for p in range(safe // 2, len(text) if len(text) > safe else 0, safe // 2):
        if text[p].isspace():
            before = text[max(0, p - safe):p]
            right = _SPACE_RUN.match(text, p, p + safe + 1)
            if len(before) - len(before.rstrip()) + (right.end() - p if right else 0) > safe:
                return True
    return False


def is_panic(error: BaseException) -> bool:
    """A Rust panic surfacing through pyo3 (``pyo3_runtime.PanicException``)."""
    return type(error).__name__ == "PanicException"
