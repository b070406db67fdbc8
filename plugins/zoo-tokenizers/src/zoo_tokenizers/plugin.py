"""Entry module of zoo-tokenizers: light, imports no torch."""

from zoo_core import component, hookimpl

_BERT = "https://arxiv.org/abs/1810.04805"
_BPE = "https://arxiv.org/abs/1508.07909"


@hookimpl
def zoo_components():
    return [
        component("tokenizer:wordpiece", "zoo_tokenizers.wordpiece:WordPiece",
                  summary="BERT WordPiece: basic tokenizer + greedy longest-match subwords",
                  tags=["wordpiece", "bert", "trainable"], paper=_BERT),
        component("tokenizer:bpe", "zoo_tokenizers.bpe:BPE",
                  summary="byte-level BPE with regex pre-tokenization (GPT-2, cl100k, o200k)",
                  tags=["bpe", "byte-level", "tiktoken", "trainable"], paper=_BPE),
    ]


@hookimpl
def zoo_task_runners():
    return {"tokenize": "zoo_tokenizers.run:tokenize"}
