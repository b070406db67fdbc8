"""Bad input is a ZooError everywhere, checked one way: ``zoo.checks`` in every plugin, one
debug switch (``ZOO_DEBUG``), and no TypeError left on a value the caller passed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

import zoo_core as zoo

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "plugins"


def test_an_integer_attention_input_is_an_input_error() -> None:
    attn = zoo.create("kernel:attention")
    q = torch.zeros(1, 2, 4, 8, dtype=torch.long)
    with pytest.raises(zoo.InputError, match=r"q must be a tensor of dtype float.*torch.int64"):
        attn(q, q, q)
    with pytest.raises(zoo.InputError, match=r"q must be a torch.Tensor, got a list"):
        attn([1.0], q, q)


def test_tokenizers_refuse_user_values_with_input_errors() -> None:
    wordpiece_cls = zoo.REGISTRY.get("tokenizer:wordpiece").load()
    bpe_cls = zoo.REGISTRY.get("tokenizer:bpe").load()
    with pytest.raises(zoo.InputError, match="got one str"):
        bpe_cls.trained("one text, not a list", 300)
    with pytest.raises(zoo.InputError, match="got one str"):
        wordpiece_cls.trained("one text, not a list", 100)
    bpe = bpe_cls.trained(["hello world"] * 3, 260, special_tokens=["<|end|>"])
    with pytest.raises(zoo.InputError, match="allowed_special='<|end|>'"):
        bpe.encode("hi <|end|>", allowed_special="<|end|>")
    wp = wordpiece_cls.trained(["hello world"] * 3, 60)
    with pytest.raises(zoo.InputError, match=r"expected str texts, got 3"):
        wp(["a", 3])


def test_no_plugin_keeps_a_private_debug_switch() -> None:
    hits = [f"{p.relative_to(ROOT)}" for p in SRC.rglob("*.py") if ".venv" not in p.parts
            and re.search(r"ZOO_DEBUG_CHECKS|os\.environ.get\(\"ZOO_DEBUG", p.read_text("utf-8"))]
    assert not hits, hits


@pytest.mark.parametrize("path", [
    "zoo-transformer/src/zoo_transformer/_inputs.py", "zoo-dilated/src/zoo_dilated/_checks.py",
    "zoo-face/src/zoo_face/images.py", "zoo-flashattn/src/zoo_flashattn/_spec.py",
    "zoo-segmetrics/src/zoo_segmetrics/_confmat.py", "zoo-rnn/src/zoo_rnn/layers/sequence.py"])
def test_the_plugins_input_checkers_use_the_core_helper(path: str) -> None:
    text = (SRC / path).read_text("utf-8")
    assert "zoo.checks.tensor(" in text
    assert "raise TypeError" not in text
    assert not re.search(r"isinstance\(\w+, Tensor\)\s*(or|and|\))", text.split("def ")[0])


def test_the_debug_switch_is_documented_once() -> None:
    assert zoo.checks.DEBUG_ENV == "ZOO_DEBUG"
    assert "ZOO_DEBUG=1" in (zoo.checks.__doc__ or "")
