"""Entry module of zoo-transformer: light, imports no torch."""

from __future__ import annotations

from typing import Any

from zoo_core import component, hookimpl

BERT = "https://arxiv.org/abs/1810.04805"
GPT2 = ("https://cdn.openai.com/better-language-models/"
        "language_models_are_unsupervised_multitask_learners.pdf")
_M = "zoo_transformer"


@hookimpl
def zoo_components() -> list[Any]:
    tags = ["nlp", "encoder", "bert"]
    return [
        component("model:bert", f"{_M}.bert:BertModel", summary="BERT encoder "
                  "(presets tiny, mini, base, large)", tags=tags, paper=BERT),
        component("model:roberta", f"{_M}.bert:RobertaModel", summary="RoBERTa encoder",
                  tags=[*tags, "roberta"], paper="https://arxiv.org/abs/1907.11692"),
        component("model:distilbert", f"{_M}.bert:DistilBertModel", summary="DistilBERT encoder",
                  tags=[*tags, "distilbert"], paper="https://arxiv.org/abs/1910.01108"),
        component("model:albert", f"{_M}.bert:AlbertModel",
                  summary="ALBERT encoder (factorised embeddings, shared layers)",
                  tags=[*tags, "albert"], paper="https://arxiv.org/abs/1909.11942"),
        component("model:bert-mlm", f"{_M}.bert_heads:BertForMaskedLM",
                  summary="BERT with the masked-LM head (tied decoder)",
                  tags=[*tags, "fill-mask"], paper=BERT),
        component("model:bert-pretraining", f"{_M}.bert_heads:BertForPreTraining",
                  summary="BERT with masked-LM and next-sentence heads", tags=tags, paper=BERT),
        component("model:bert-classifier", f"{_M}.bert_heads:BertForSequenceClassification",
                  summary="BERT sequence classification on the pooled [CLS]", tags=tags,
                  paper=BERT),
        component("model:bert-token-classifier", f"{_M}.bert_heads:BertForTokenClassification",
                  summary="BERT token classification", tags=tags, paper=BERT),
        component("model:bert-sentence-embedding", f"{_M}.bert_heads:BertForSentenceEmbedding",
                  summary="BERT sentence embeddings: masked mean pooling + L2 normalisation",
                  tags=[*tags, "sentence-embedding"], paper="https://arxiv.org/abs/1908.10084"),
        component("model:transformer", f"{_M}.transformer:Transformer",
                  summary="Transformer encoder-decoder with greedy and beam search",
                  tags=["nlp", "seq2seq"], paper="https://arxiv.org/abs/1706.03762"),
        component("model:gpt2", f"{_M}.gpt2:GPT2", summary="GPT-2 decoder with a KV cache "
                  "(presets tiny, small, medium, large, xl)", tags=["nlp", "decoder", "gpt2"],
                  paper=GPT2),
    ]


_FLOATS = {"type": "array", "items": {"type": "number"}}
_CANDIDATE = {"type": "object", "required": ["token", "id", "score"], "properties": {
    "token": {"type": "string"}, "id": {"type": "integer"}, "score": {"type": "number"}}}
_PREDICTION = {"type": "object", "required": ["input", "position", "candidates"], "properties": {
    "input": {"type": "integer"}, "position": {"type": "integer"},
    "candidates": {"type": "array", "items": _CANDIDATE}}}


@hookimpl
def zoo_task_runners() -> dict[str, Any]:
    return {
        "sentence-similarity": {
            "runner": f"{_M}.tasks:sentence_similarity",
            "usage": "TEXT TEXT [TEXT ...]: two texts or more, each compared with each",
            "at_least": 2,
            "render": f"{_M}.tasks:similarity_table",
            "schema": {"description": "the (N, N) cosine similarities of the N inputs",
                       "type": "object", "required": ["similarity"],
                       "properties": {"similarity": {"type": "array", "items": _FLOATS}}}},
        "fill-mask": {
            "runner": f"{_M}.tasks:fill_mask",
            "usage": "TEXT [TEXT ...]: texts holding the tokenizer's mask token ([MASK])",
            "render": f"{_M}.tasks:fill_mask_table",
            "schema": {"description": "per mask token: the input it is in, its position and "
                                      "the candidates, best first",
                       "type": "object", "required": ["predictions"],
                       "properties": {"predictions": {"type": "array", "items": _PREDICTION}}}},
        "text-generation": {
            "runner": f"{_M}.tasks:text_generation",
            "usage": "TEXT [TEXT ...]: prompts, each continued greedily",
            "schema": {"description": "per prompt, the prompt continued greedily (generated_text "
                                      "holds the prompt and its continuation)",
                       "type": "object", "required": ["columns", "rows"],
                       "properties": {
                           "columns": {"type": "array", "items": {"type": "string"}},
                           "rows": {"type": "array", "items": {
                               "type": "array", "items": [{"type": "string"}, {"type": "string"},
                                                          {"type": "integer"}]}}}}},
    }


@hookimpl
def zoo_foreign_config(config: dict[str, Any]) -> dict[str, Any] | None:
    from . import hf, hf_gpt2

    return hf.foreign_config(config) or hf_gpt2.foreign_config(config)

