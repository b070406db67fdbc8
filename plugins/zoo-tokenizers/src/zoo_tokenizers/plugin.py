"""Entry module of zoo-tokenizers: light, imports no torch. Its catalogue entries (BERT, GPT-2,
tiktoken and Mistral vocabularies) live in the top-level registry.toml."""

from zoo_core import component, hookimpl

_BERT = "https://arxiv.org/abs/1810.04805"
_BPE = "https://arxiv.org/abs/1508.07909"
_SPM = "https://arxiv.org/abs/1808.06226"


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


_TOKEN = {"type": "object", "required": ["token", "id", "start", "end"], "properties": {
    "token": {"type": "string"}, "id": {"type": "integer"},
    "start": {"type": "integer"}, "end": {"type": "integer"}}}


@hookimpl
def zoo_task_runners():
    return {"tokenize": {
        "runner": "zoo_tokenizers.run:tokenize", "render": "zoo_tokenizers.run:tokens_table",
        "usage": "TEXT [TEXT ...]: texts to cut into tokens",
        "schema": {"description": "per input, its tokens with character offsets in the input",
                   "type": "object", "required": ["tokens"],
                   "properties": {"tokens": {"type": "array",
                                             "items": {"type": "array", "items": _TOKEN}}}}}}
