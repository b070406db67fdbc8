"""Figures that cannot flatter us: baselines labelled, quality as differences, peers at their
fastest on their own files, and every README figure table generated from benchmarks/results/."""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"


def _module(name: str):
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location(f"zoo_bench_{name}", BENCH / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH))


@pytest.fixture
def harness(monkeypatch):
    monkeypatch.delenv("ZOO_BENCH_OUT", raising=False)
    return _module("_harness")


def test_quality_near_zero_is_a_difference_not_a_ratio(harness) -> None:
    bench = harness.Bench("t")
    row = bench.record("SimLex ρ", peer=("gensim", 0.007128), ours=0.028022, unit="ρ")
    assert row["difference"] == pytest.approx(0.020894)
    line = harness.table([row]).splitlines()[-1]
    assert "+0.0209" in line and "3.93×" not in line


def test_a_baseline_is_labelled_in_the_scoreboard(harness) -> None:
    bench = harness.Bench("t")
    rows = [bench.record("Partial FC", peer=("full FC r=1", 1.2), ours=0.1, unit="s",
                         higher_is_better=False, baseline=True),
            bench.record("ArcFace", peer=("pytorch-metric-learning", 1.5), ours=0.6, unit="s",
                         higher_is_better=False)]
    lines = harness.table(rows).splitlines()
    assert "| baseline: full FC r=1 |" in lines[2]
    assert "| pytorch-metric-learning |" in lines[3] and "baseline" not in lines[3]


def test_readme_blocks_take_the_newest_line_and_label_old_baselines(tmp_path, monkeypatch):
    run = _module("run")
    old = {"bench": "face_cpu", "what": "Partial FC", "peer": "full FC r=1", "unit": "s",
           "peer_value": 1.0, "ours": 0.5, "ratio": 2.0, "goal": None, "met": None,
           "load": 1.5, "machine": "m", "higher_is_better": False}
    quality = {**old, "what": "SimLex ρ", "peer": "gensim", "unit": "ρ", "peer_value": 0.007,
               "ours": 0.028, "ratio": 4.0, "higher_is_better": True}
    quality = {**quality, "bench": "word2vec_cpu"}
    unfair = {**old, "what": "ArcFace", "peer": "a weakened peer"}
    (tmp_path / "2026-01-01.jsonl").write_text(
        "\n".join(json.dumps(r) for r in (old, unfair, quality)))
    (tmp_path / "2026-01-02.jsonl").write_text(json.dumps({**old, "ours": 0.25, "ratio": 4.0}))
    monkeypatch.setattr(run, "RESULTS", tmp_path)
    rows, sources = run.figures()
    assert sources == ["2026-01-01.jsonl", "2026-01-02.jsonl"]
    assert [r["what"] for r in rows] == ["Partial FC", "SimLex ρ"]  # face_cpu's newest run
    assert rows[0]["ours"] == 0.25 and rows[0]["role"] == "baseline"
    assert rows[1]["role"] == "peer" and rows[1]["difference"] == pytest.approx(0.021)
    text = run.block(rows, ["face_cpu", "word2vec_cpu"])
    assert text.startswith("<!-- scoreboard:start face_cpu,word2vec_cpu -->") and "4×" in text
    assert "baseline: full FC r=1" in text and "+0.021" in text
    assert "No figure" in run.block(rows, ["attention_gpu"])


def test_every_readme_figure_table_is_generated() -> None:
    """Every README that shows benchmark figures has a generated block, and regenerating
    from benchmarks/results/ changes nothing: no hand-typed figure table is left."""
    run = _module("run")
    rows, _ = run.figures()
    for path in run.READMES:
        text = path.read_text("utf-8")
        if path.parent.name.startswith("zoo-") and "benchmarks/" in text:
            assert run.BLOCK.search(text), f"{path}: figures without a generated block"
        assert run.BLOCK.sub(lambda m: run.block(
            rows, m.group(1).split(",") if m.group(1) else None), text) == text, \
            f"{path} differs from `benchmarks/run.py --readme`"
        outside = run.BLOCK.sub("", text)
        ratios = [line for line in outside.splitlines()
                  if line.startswith("|") and re.search(r"\d[×x] *\|", line)]
        assert not ratios, f"{path}: hand-typed figures {ratios}"


def _calls(path: Path, name: str) -> list[ast.Call]:
    tree = ast.parse(path.read_text("utf-8"))
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call)
            and getattr(n.func, "id", getattr(n.func, "attr", None)) == name]


def test_torchmetrics_runs_at_its_fastest_with_its_default_beside() -> None:
    (call,) = _calls(BENCH / "segmetrics_cpu.py", "MulticlassJaccardIndex")
    assert any(k.arg == "validate_args" for k in call.keywords)
    source = (BENCH / "segmetrics_cpu.py").read_text("utf-8")
    assert "validate_args=False, its fastest" in source and "its default" in source


def test_hf_peers_read_their_own_published_files() -> None:
    source = (BENCH / "tokenizers_cpu.py").read_text("utf-8")
    assert "to_tokenizer_json" not in source  # never our export
    assert _calls(BENCH / "tokenizers_cpu.py", "ByteLevelBPETokenizer")
    assert "encode_batch" in source and "cold cache" in source and "warm cache" in source
