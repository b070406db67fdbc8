"""Word2vec on CPU: zoo-word2vec against gensim 4.x, same corpus and hyper-parameters.

Trains both on gensim's head500 corpus (and, with --corpora, Lee + a shortened English
Wikipedia dump) with 100 dimensions, window 5, 5 epochs, min_count 5, 2 workers, for
skip-gram and CBOW with negative sampling (5 noise words) and skip-gram with hierarchical
softmax; prints raw words/s, WordSim353 and SimLex-999 Spearman and Google analogy accuracy
(restricted to the 300k most frequent words) for each, and our/gensim ratios.

    python benchmarks/word2vec_cpu.py [--runs 1] [--corpora head500,lee-enwiki] [--device cpu]
"""

from __future__ import annotations

import argparse
import logging
import os
import time

import torch
from gensim.models import Word2Vec as GensimWord2Vec
from gensim.test.utils import datapath
from zoo_word2vec import KeyedVectors, LineSentences

import zoo_core as zoo

SETTINGS = {
    "SGNS": {"sg": 1, "hs": 0, "negative": 5},
    "CBOW-NS": {"sg": 0, "hs": 0, "negative": 5},
    "SG-HS": {"sg": 1, "hs": 1, "negative": 0},
}
COMMON = {"vector_size": 100, "window": 5, "min_count": 5, "epochs": 5, "workers": 2,
          "sample": 1e-3, "alpha": 0.025, "min_alpha": 0.0001}


def corpus(name: str) -> list[list[str]]:
    if name == "head500":
        return list(LineSentences(datapath("head500.noblanks.cor")))
    if name == "lee-enwiki":
        from gensim.corpora.wikicorpus import WikiCorpus

        lee = [line.lower().split() for line in
               open(datapath("lee_background.cor"), encoding="utf-8")]
        wiki = WikiCorpus(datapath("enwiki-latest-pages-articles1.xml-p000000010p000030302"
                                   "-shortened.bz2"), dictionary={}, processes=1)
        return lee + [list(doc) for doc in wiki.get_texts()]
    raise SystemExit(f"unknown corpus {name!r}; choose head500 or lee-enwiki")


def quality(kv: object) -> dict[str, float]:
    ws = kv.evaluate_word_pairs(datapath("wordsim353.tsv"))
    sl = kv.evaluate_word_pairs(datapath("simlex999.txt"))
    an = kv.evaluate_word_analogies(datapath("questions-words.txt"))
    if isinstance(ws, dict):  # ours
        return {"ws353": ws["spearman"], "simlex": sl["spearman"], "analogy": an["accuracy"]}
    return {"ws353": float(ws[1][0]), "simlex": float(sl[1][0]), "analogy": float(an[0])}


def run_gensim(sentences: list[list[str]], setting: dict[str, int], seed: int) -> dict[str, float]:
    t = time.perf_counter()
    m = GensimWord2Vec(sentences, seed=seed, **setting, **COMMON)
    dt = time.perf_counter() - t
    words = COMMON["epochs"] * sum(map(len, sentences))
    return {"words/s": words / dt, "seconds": dt, **quality(m.wv)}


def run_ours(sentences: list[list[str]], setting: dict[str, int], seed: int,
             device: str) -> dict[str, float]:
    t = time.perf_counter()
    m = zoo.create("model:word2vec", seed=seed, **setting, **COMMON).to(device)
    m.build_vocab(sentences)
    m.train(sentences, progress=False)
    dt = time.perf_counter() - t
    words = COMMON["epochs"] * sum(map(len, sentences))
    kv = KeyedVectors(m.wv.index_to_key, m.vectors.detach().cpu())
    return {"words/s": words / dt, "seconds": dt, **quality(kv)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1, help="seeds per setting (means are shown)")
    ap.add_argument("--corpora", default="head500")
    ap.add_argument("--settings", default=",".join(SETTINGS))
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f} (shared machine)")
    rows = []
    for cname in args.corpora.split(","):
        sentences = corpus(cname)
        n = sum(map(len, sentences))
        for sname in args.settings.split(","):
            res: dict[str, list[dict[str, float]]] = {"gensim": [], "zoo": []}
            for seed in range(1, args.runs + 1):  # interleaved so both see the same load
                res["gensim"].append(run_gensim(sentences, SETTINGS[sname], seed))
                res["zoo"].append(run_ours(sentences, SETTINGS[sname], seed, args.device))
            mean = {k: {m: sum(r[m] for r in v) / len(v) for m in v[0]} for k, v in res.items()}
            rows.append((cname, n, sname, mean))
    head = (f"{'corpus':<11}{'words':>8} {'setting':<8} {'impl':<7}{'words/s':>10}"
            f"{'WS353 ρ':>9}{'SimLex ρ':>10}{'analogy':>9}")
    print(head)
    print("-" * len(head))
    for cname, n, sname, mean in rows:
        for impl in ("gensim", "zoo"):
            r = mean[impl]
            print(f"{cname:<11}{n:>8} {sname:<8} {impl:<7}{r['words/s']:>10.0f}"
                  f"{r['ws353']:>9.3f}{r['simlex']:>10.3f}{r['analogy']:>9.3f}")
        g, z = mean["gensim"], mean["zoo"]
        print(f"{'':<28}ratio {z['words/s'] / g['words/s']:>9.2f}x  Δρ WS353 "
              f"{z['ws353'] - g['ws353']:+.3f}  Δρ SimLex {z['simlex'] - g['simlex']:+.3f}")


if __name__ == "__main__":
    main()
