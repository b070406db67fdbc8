"""Eight processes fetch, load and verify the same entries while some are SIGKILLed."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

import zoo_core as zoo
from zoo_core.cli import main

TOY_SRC = Path(__file__).parent / "thirdparty" / "zoo-toy" / "src"
WORKER = """
import os, random, sys, time, zoo_toy.plugin, zoo_core as zoo
from zoo_core.cli import main
zoo.register_plugin(zoo_toy.plugin, "toy")
zoo.CATALOG.entries()
loads = sys.argv[2] == "load"
if loads:
    import torch
print("ready", flush=True)
rng, stop = random.Random(os.getpid()), time.time() + float(sys.argv[1])
while time.time() < stop:
    action = rng.choice(["load", "load-conv", "fetch", "verify"] if loads else ["fetch", "verify"])
    if action == "load":
        zoo.load("toy")
    elif action == "load-conv":
        zoo.load("conv")
    elif action == "fetch":
        assert main(["fetch", rng.choice(["toy", "data", "conv"])]) == 0
    else:
        main(["verify", rng.choice(["toy", "data", "conv"])])  # may race a fetch: any code
print("done", file=sys.stderr, flush=True)
"""


def _tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_concurrent_fetch_load_verify_with_kills(toy, cache, catalog, tmp_path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    model = zoo.create("model:toy-mlp", preset="tiny")
    model.save_pretrained(src)
    torch.save(model.state_dict(), src / "weights.pt")
    (src / "data.bin").write_bytes(random.Random(0).randbytes(16 << 20))  # slow enough to kill
    digest = hashlib.sha256((src / "model.safetensors").read_bytes()).hexdigest()
    catalog(
        f'[entries.toy]\ncomponent = "model:toy-mlp"\npreset = "tiny"\nsources = ["dir:{src}"]\n'
        f'files = {{ "model.safetensors" = "{digest}" }}\n'
        f'[entries.data]\ncomponent = "model:toy-mlp"\nsources = ["dir:{src}"]\n'
        'files = { "data.bin" = "" }\n'
        f'[entries.conv]\ncomponent = "model:toy-mlp"\npreset = "tiny"\nsources = ["dir:{src}"]\n'
        'files = { "model.safetensors" = "" }\n'
        'convert = { "model.safetensors" = { from = "weights.pt" } }\n')
    before = _tree(tmp_path)  # everything outside the store (the store is tmp_path/zoo)
    env = {**os.environ, "PYTHONPATH": str(TOY_SRC), "OMP_NUM_THREADS": "1"}
    # two workers load models (torch imported); six fetch and verify (no torch: quick start)
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, "3", role], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for role in ["load"] * 2 + ["fetch"] * 6]
    for p in procs:  # past their imports: the workers are busy from now on, for 3 s
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    rng = random.Random(1)
    victims = rng.sample(procs, 3)
    for p in victims:
        time.sleep(rng.uniform(0.1, 0.6))
        p.send_signal(signal.SIGKILL)
    for p in procs:
        out, err = p.communicate(timeout=120)
        if p in victims:
            assert p.returncode in (-signal.SIGKILL, 0)
        else:
            assert p.returncode == 0 and "done" in err, err[-3000:]

    assert main(["verify"]) == 0  # also removes the temporary files of the killed workers
    leftovers = [p for p in cache.rglob("*") if p.name.endswith((".tmp", ".lnk", ".incomplete"))]
    assert not leftovers and not list((cache / "tmp").iterdir())
    assert _tree(tmp_path) == {**before, **_tree_of_store(cache, tmp_path)}
    x = torch.randn(3, 4)
    assert torch.equal(zoo.load("toy")(x), model(x)) and torch.equal(zoo.load("conv")(x), model(x))
    pins = zoo.STORE.pins(zoo.CATALOG.get("data"))
    assert pins == {"data.bin": hashlib.sha256((src / "data.bin").read_bytes()).hexdigest()}


def _tree_of_store(cache: Path, base: Path) -> dict[str, str]:
    return {str(Path(cache.name) / k): v for k, v in _tree(cache).items()}
