"""Gradient checkpointing policies on a BERT-base-shaped encoder vs transformers' own.

One training step (forward + backward of mean(last_hidden_state**2)) of a randomly
initialised 12-layer BERT-base encoder (zoo ``model:bert`` preset "base") at batch 4 x 512,
for the policies none / every / every-k / sqrt / budget(30%) / selective, and the same-shaped
``transformers.BertModel`` without and with ``gradient_checkpointing_enable()``, in the same
run. Saved-activation bytes are counted with ``saved_tensors_hooks`` (plus the inputs each
checkpoint holds), once per storage, parameters excluded; step time is the median of
``--repeats`` steps after one warm-up step. Figures go through benchmarks/_harness.py
(``record``: each policy beside the no-checkpointing run of the same model, measured in this
run); the goal of issues 19 and 27 is sqrt at <= 1.25x the time of none with <= 0.05x its
memory.

    python benchmarks/checkpoint_cpu.py [--batch 4] [--seq 512] [--repeats 2] [--threads 2]
    python benchmarks/checkpoint_cpu.py --quick      # 2 layers, batch 2 x 256 (development)
    python benchmarks/checkpoint_cpu.py --interleaved sqrt --hf   # a loaded machine
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
import transformers
from zoo_checkpoint import _engine
from zoo_checkpoint.profiler import counting

import zoo_core as zoo

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import Bench  # noqa: E402

POLICIES: list[tuple[str, dict[str, Any]]] = [
    ("none", {}), ("every", {}), ("every-k", {"k": 2}), ("sqrt", {}),
    ("budget", {"fraction": 0.3}), ("selective", {})]


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def measure(model: Any, inputs: dict[str, Any], repeats: int, device: str,
            held_hooks: list[Any]) -> tuple[int, float]:
    """(saved bytes of one forward, median step seconds)."""
    times = []
    for i in range(repeats + 1):
        model.zero_grad(set_to_none=True)
        sync(device)
        t0 = time.perf_counter()
        if i == 0:
            with counting(model) as counter:
                handles = [h(counter) for h in held_hooks]
                out = model(**inputs)
                for h in handles:
                    h.remove()
            nbytes = counter.total
        else:
            out = model(**inputs)
        out.last_hidden_state.float().pow(2).mean().backward()
        sync(device)
        times.append(time.perf_counter() - t0)
        del out
    return nbytes, statistics.median(times[1:])


def hf_held(model: transformers.BertModel) -> list[Any]:
    """Count the inputs transformers' checkpointed layers hold (as ours report theirs)."""
    def hook(counter: Any) -> Any:
        class Handles:
            def __init__(self) -> None:
                self.hs = [layer.register_forward_pre_hook(self.pre, with_kwargs=True)
                           for layer in model.encoder.layer]

            def pre(self, module: Any, a: Any, k: Any) -> None:
                for t in _engine._tensors((a, k)):
                    counter.add(t)

            def remove(self) -> None:
                for h in self.hs:
                    h.remove()
        return Handles()
    return [hook]


def interleaved(args: Any, bench: Bench, inputs: dict[str, Any]) -> None:
    """Each policy's steps alternate with steps of the un-checkpointed model (A B A B ...);
    with ``--hf``, transformers' gradient_checkpointing_enable() alternates with its plain
    BertModel in the same run. Besides wall time (the figure), the process CPU time of each
    step is printed: on a loaded machine it moves less with the other processes."""
    cpu: dict[int, list[float]] = {}

    def build(policy: str) -> Any:
        torch.manual_seed(0)
        model = zoo.create("model:bert", preset="base", num_layers=args.layers).train()
        if policy != "none":
            model.set_grad_checkpointing(policy, inputs=inputs, **dict(POLICIES)[policy])
        return model

    def build_hf(ckpt: bool) -> Any:
        torch.manual_seed(0)
        hf = transformers.BertModel(transformers.BertConfig(num_hidden_layers=args.layers),
                                    add_pooling_layer=False).train()
        if ckpt:
            hf.gradient_checkpointing_enable()
        return hf

    def step(model: Any) -> None:
        t0 = time.process_time()
        model.zero_grad(set_to_none=True)
        model(**inputs).last_hidden_state.float().pow(2).mean().backward()
        cpu.setdefault(id(model), []).append(time.process_time() - t0)

    def saved(model: Any, held: tuple[Any, ...] | list[Any] = ()) -> int:
        with counting(model) as counter:
            handles = [h(counter) for h in held]
            out = model(**inputs)
            for h in handles:
                h.remove()
        del out
        return counter.total

    def cpu_ratio(label: str, base: Any, model: Any) -> None:
        a, b = min(cpu[id(base)][1:]), min(cpu[id(model)][1:])
        print(f"    {label}: CPU time (min of the timed steps) {b:.2f} s vs {a:.2f} s: "
              f"{b / a:.3f}x the time", flush=True)

    base = build("none")
    base_bytes = saved(base)
    shape = f"BERT-base shape, {args.layers} layers, {args.batch}x{args.seq}"
    for policy in args.interleaved:
        model = build(policy)
        nbytes = saved(model)
        bench.compare(f"checkpointing {policy}, {shape}: step time (interleaved)", unit="s",
                      peer=("zoo none (no checkpointing)", lambda: step(base)), baseline=True,
                      ours=lambda model=model: step(model), repeats=args.repeats,
                      goal=1 / 1.25 if policy == "sqrt" else None)
        bench.record(f"checkpointing {policy}, {shape}: saved activations", unit="bytes",
                     peer=("zoo none (no checkpointing)", base_bytes), ours=nbytes, baseline=True,
                     higher_is_better=False, goal=1 / 0.05 if policy == "sqrt" else None)
        print(f"    {policy}: {nbytes / base_bytes:.4f}x the saved activations of none "
              f"({nbytes / 2**20:.1f} MiB of {base_bytes / 2**20:.1f})", flush=True)
        cpu_ratio(policy, base, model)
        del model
    if args.hf:
        del base
        hf_none, hf_ckpt = build_hf(False), build_hf(True)
        none_bytes, ckpt_bytes = saved(hf_none), saved(hf_ckpt, hf_held(hf_ckpt))
        bench.compare(f"HF gradient_checkpointing_enable(), {shape}: step time (interleaved)",
                      unit="s", peer=("HF none", lambda: step(hf_none)), baseline=True,
                      ours=lambda: step(hf_ckpt), repeats=args.repeats)
        print(f"    HF gradient_checkpointing_enable(): {ckpt_bytes / none_bytes:.4f}x the "
              f"saved activations of HF none ({ckpt_bytes / 2**20:.1f} MiB of "
              f"{none_bytes / 2**20:.1f})", flush=True)
        cpu_ratio("HF gradient_checkpointing_enable()", hf_none, hf_ckpt)
    bench.finish()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="2 layers, batch 2 x 256")
    ap.add_argument("--interleaved", nargs="+", metavar="POLICY",
                    help="time these zoo policies step by step against none, alternating "
                         "(what a shared machine needs); no transformers run unless --hf")
    ap.add_argument("--hf", action="store_true",
                    help="with --interleaved: transformers' gradient_checkpointing_enable() "
                         "against its plain BertModel, interleaved, in the same run")
    ap.add_argument("--zoo-only", nargs="*", metavar="POLICY",
                    help="measure only these zoo policies (none first), and no transformers run")
    args = ap.parse_args()
    if args.quick:
        args.layers, args.batch, args.seq = 2, 2, 256
    dev = args.device
    bench = Bench("checkpoint_cpu", threads=args.threads, device=dev)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1, 30522, (args.batch, args.seq), generator=g).to(dev)
    mask = torch.ones_like(ids)
    inputs = {"input_ids": ids, "attention_mask": mask}
    def zoo_run(policy: str, options: dict[str, Any]) -> tuple[str, int, float]:
        torch.manual_seed(0)
        model = zoo.create("model:bert", preset="base", num_layers=args.layers).to(dev).train()
        if policy != "none":
            model.set_grad_checkpointing(policy, inputs=inputs, **options)
        label = policy + (f"({options['fraction']:.0%})" if "fraction" in options else "")
        return ("zoo " + label, *measure(model, inputs, args.repeats, dev, []))

    if args.interleaved:
        interleaved(args, bench, inputs)
        return

    def hf_run(ckpt: bool) -> tuple[str, int, float]:
        torch.manual_seed(0)
        cfg = transformers.BertConfig(num_hidden_layers=args.layers)
        hf = transformers.BertModel(cfg, add_pooling_layer=False).to(dev).train()
        if ckpt:
            hf.gradient_checkpointing_enable()
        label = "HF gradient_checkpointing_enable()" if ckpt else "HF none"
        return (label, *measure(hf, inputs, args.repeats, dev, hf_held(hf) if ckpt else []))

    # interleaved, so that a change of load on a shared machine hits both sides alike
    order: list[Any] = [("zoo", 0), ("hf", False), ("zoo", 1), ("hf", True)] \
        + [("zoo", i) for i in range(2, len(POLICIES))]
    if args.zoo_only is not None:
        order = [("zoo", i) for i, (p, _) in enumerate(POLICIES) if p in args.zoo_only]
    done: dict[Any, tuple[str, int, float]] = {}
    for side, key in order:
        done[(side, key)] = zoo_run(*POLICIES[key]) if side == "zoo" else hf_run(key)
        print("measured", done[(side, key)], flush=True)
    zoo_none = done[("zoo", 0)]
    shape = f"BERT-base shape, {args.layers} layers, {args.batch}x{args.seq}"
    for key, (name, nbytes, secs) in done.items():
        if key == ("zoo", 0) or key[0] != "zoo":
            continue
        policy = name.removeprefix("zoo ")
        goal = 1 / 1.25 if policy == "sqrt" else None
        bench.record(f"checkpointing {policy}, {shape}: step time", unit="s",
                     peer=("zoo none (no checkpointing)", zoo_none[2]), ours=secs, baseline=True,
                     higher_is_better=False, goal=goal,
                     memory_ratio=round(nbytes / zoo_none[1], 4),
                     saved_mib=round(nbytes / 2**20, 1),
                     none_saved_mib=round(zoo_none[1] / 2**20, 1))
        print(f"    {policy}: {nbytes / zoo_none[1]:.3f}x the saved activations of none "
              f"({nbytes / 2**20:.1f} MiB of {zoo_none[1] / 2**20:.1f})"
              + (" (goal <= 0.05x)" if policy == "sqrt" else ""), flush=True)
    if ("hf", True) in done:
        hf_none, hf_ckpt = done[("hf", False)], done[("hf", True)]
        bench.record(f"HF gradient_checkpointing_enable(), {shape}: step time", unit="s",
                     peer=("HF none", hf_none[2]), ours=hf_ckpt[2], higher_is_better=False,
                     baseline=True,
                     memory_ratio=round(hf_ckpt[1] / hf_none[1], 4))
        bench.record(f"no checkpointing, {shape}: step time", unit="s",
                     peer=("transformers BertModel", hf_none[2]), ours=zoo_none[2],
                     higher_is_better=False)
    bench.finish()


if __name__ == "__main__":
    main()
