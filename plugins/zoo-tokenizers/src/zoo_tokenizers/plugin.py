"""Entry module of zoo-tokenizers: light, imports no torch."""

from zoo_core import component, hookimpl

_BERT = "https://arxiv.org/abs/1810.04805"
_BPE = "https://arxiv.org/abs/1508.07909"
_SPM = "https://arxiv.org/abs/1808.06226"
_MISTRAL = "https://arxiv.org/abs/2310.06825"
_MISTRAL_DATA = "pkg:mistral-common/mistral_common/data"
# (entry, file in mistral-common's data folder, sha256, summary)
_SENTENCEPIECE = [
    ("mistral-7b-v0.1-tokenizer", "tokenizer.model.v1",
     "dadfd56d766715c61d2ef780a525ab43b8e6da4de6865bda3d95fdef5e134055",
     "Mistral 7B v0.1 SentencePiece BPE (32,000 pieces, byte fallback; the LLaMA 2 scheme)"),
    ("mistral-instruct-v2-tokenizer", "mistral_instruct_tokenizer_240216.model.v2",
     "37f00374dea48658ee8f5d0f21895b9bc55cb0103939607c8185bfd1c6ca1f89",
     "Mistral instruct tokenizer v2 (SentencePiece BPE, 32,768 pieces, [INST] controls)"),
    ("mistral-instruct-v3-tokenizer", "mistral_instruct_tokenizer_240323.model.v3",
     "9addc8bdce5988448ae81b729336f43a81262160ae8da760674badab9d4c7d33",
     "Mistral instruct tokenizer v3 (SentencePiece BPE, 32,768 pieces, tool controls)"),
    ("mistral-instruct-v7-tokenizer", "mistral_instruct_tokenizer_241114.model.v7",
     "1b968b8dc352f42192367337c78ccc61e1eaddc6d641a579372d4f20694beb7a",
     "Mistral instruct tokenizer v7 (SentencePiece BPE, 32,768 pieces, system-prompt controls)"),
]
_TEKKEN = [
    ("tekken-240718", "tekken_240718.json",
     "eccd1665d2e477697c33cb7f0daa6f6dfefc57a0a6bceb66d4be52952f827516",
     "Mistral Tekken (Mistral NeMo): byte-level BPE, 131,072 ids, 1,000 special tokens first"),
    ("tekken-240911", "tekken_240911.json",
     "1948e2d48b0e7377f1bb5f1210f1ae5f984934e75713fc07e2452729b8365316",
     "Mistral Tekken (Pixtral): byte-level BPE, 131,072 ids, 1,000 special tokens first"),
]


@hookimpl
def zoo_components():
    return [
        component("tokenizer:wordpiece", "zoo_tokenizers.wordpiece:WordPiece",
                  summary="BERT WordPiece: basic tokenizer + greedy longest-match subwords",
                  tags=["wordpiece", "bert", "trainable"], paper=_BERT),
        component("tokenizer:bpe", "zoo_tokenizers.bpe:BPE",
                  summary="byte-level BPE with regex pre-tokenization (GPT-2, cl100k, o200k, "
                          "Tekken)",
                  tags=["bpe", "byte-level", "tiktoken", "trainable"], paper=_BPE),
        component("tokenizer:sentencepiece", "zoo_tokenizers.sentencepiece:SentencePiece",
                  summary="SentencePiece .model files: BPE by piece score, unigram by Viterbi, "
                          "byte fallback (LLaMA, Mistral)",
                  tags=["sentencepiece", "bpe", "unigram", "llama", "mistral"], paper=_SPM),
    ]


@hookimpl
def zoo_catalog():
    entries = []
    for name, file, digest, summary in _SENTENCEPIECE:
        entries.append({"name": name, "component": "tokenizer:sentencepiece",
                        "config": {"file": file, "name": name}, "task": "tokenize",
                        "license": "apache-2.0", "paper": _MISTRAL, "summary": summary,
                        "tags": ["sentencepiece", "bpe", "mistral"],
                        "sources": [_MISTRAL_DATA], "files": {file: digest}})
    for name, file, digest, summary in _TEKKEN:
        entries.append({"name": name, "component": "tokenizer:bpe",
                        "config": {"file": file, "name": name}, "task": "tokenize",
                        "license": "apache-2.0", "summary": summary,
                        "tags": ["bpe", "byte-level", "tekken", "mistral"],
                        "sources": [_MISTRAL_DATA], "files": {file: digest}})
    return entries


@hookimpl
def zoo_task_runners():
    return {"tokenize": "zoo_tokenizers.run:tokenize"}
