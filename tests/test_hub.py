"""Push and load through the real huggingface_hub client over HTTP (loopback Hub server)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

import zoo_core as zoo
from zoo_core.testing.hub_server import HubServer

TOY_SRC = Path(__file__).parent / "thirdparty" / "zoo-toy" / "src"


def test_push_then_load_by_revision(toy: str, hub: HubServer) -> None:
    first = zoo.create("model:toy-mlp", preset="tiny")
    rev1 = zoo.push(first, "me/toy", tags=["demo"], base_model="me/base")
    second = zoo.create("model:toy-mlp", preset="tiny")
    rev2 = zoo.push(second, "me/toy")
    assert rev1 != rev2 and len(rev1) == 40

    x = torch.randn(5, 4)
    assert torch.equal(zoo.load(f"hf:me/toy@{rev1}")(x), first(x))
    assert torch.equal(zoo.load(f"hf:me/toy@{rev2}")(x), second(x))
    assert torch.equal(zoo.load("hf:me/toy")(x), second(x))  # main

    tree = hub.repos["me/toy"].commits[rev1]
    assert {"config.json", "model.safetensors", "README.md"} <= set(tree)
    config = json.loads(tree["config.json"])
    assert config["zoo"]["component"] == "model:toy-mlp" and config["zoo"]["plugin"] == "toy"
    assert config["config"] == {"in_features": 4, "hidden": 8, "out_features": 2}
    card = tree["README.md"].decode()
    front = yaml.safe_load(card.split("---")[1])
    assert front["library_name"] == "zoo" and front["license"] == "apache-2.0"
    assert "demo" in front["tags"] and front["base_model"] == "me/base"
    assert "pipeline_tag" not in front  # no catalogue entry names a task for model:toy-mlp
    assert ("POST", "/api/repos/create") in hub.requests


def test_load_unknown_revision_fails_clearly(toy: str, hub: HubServer) -> None:
    zoo.push(zoo.create("model:toy-mlp", preset="tiny"), "me/toy")
    with pytest.raises(Exception, match="(?i)revision"):
        zoo.load("hf:me/toy@" + "f" * 40)


def test_environment_variables_are_honoured(toy: str, tmp_path: Path) -> None:
    """A fresh process reads HF_ENDPOINT, HF_HOME and HF_HUB_OFFLINE as users set them."""
    model = zoo.create("model:toy-mlp", preset="tiny")
    model.save_pretrained(tmp_path / "repo")
    data = (tmp_path / "repo" / "model.safetensors").read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    with HubServer() as hub:
        oid = hub.commit("org/toy", {"model.safetensors": data})
        (tmp_path / "cat.toml").write_text(
            f'schema = 1\n[entries.toy]\ncomponent = "model:toy-mlp"\npreset = "tiny"\n'
            f'sources = ["hf:org/toy@{oid}"]\nfiles = {{ "model.safetensors" = "{digest}" }}\n')
        env = {**os.environ, "HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "hf"),
               "ZOO_CATALOG": str(tmp_path / "cat.toml"), "PYTHONPATH": str(TOY_SRC),
               "ZOO_CACHE": str(tmp_path / "zoo")}
        env.pop("HF_HUB_OFFLINE", None)
        code = ("import sys, zoo_toy.plugin, zoo_core as zoo\n"
                "zoo.register_plugin(zoo_toy.plugin, 'toy')\n"
                "from zoo_core.cli import main\nsys.exit(main(sys.argv[1:]))\n")
        run = [sys.executable, "-c", code, "--json", "fetch", "toy"]
        first = subprocess.run(run, env=env, capture_output=True, text=True, timeout=120)
        assert first.returncode == 0, first.stderr
        assert any(p.startswith("/org/toy/resolve") for _, p in hub.requests)
        assert (tmp_path / "hf" / "hub" / "models--org--toy").is_dir()  # HF_HOME honoured
    # the server is gone: offline from the cache still works; a fresh cache fails clearly
    env["HF_HUB_OFFLINE"] = "1"
    again = subprocess.run(run, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    env["ZOO_CACHE"] = str(tmp_path / "empty")
    env["HF_HOME"] = str(tmp_path / "empty-hf")
    fresh = subprocess.run(run, env=env, capture_output=True, text=True, timeout=120)
    assert fresh.returncode == 1 and "no source could provide" in fresh.stderr
