"""BERT pre-training: masked LM (+ next-sentence prediction), Devlin et al. 2018, Section 3.1.

The loop: dynamic 15% masking with 80/10/10 replacement (optionally whole words), NSP pairs
(50% the actual next sentence, label 0; 50% a random sentence of another document, label 1),
AdamW with linear warm-up then linear decay (Appendix A.2), gradient accumulation, gradient
clipping, mixed precision (bf16 autocast on CPU, fp16 with a grad scaler on CUDA), checkpoints
in safetensors with the optimizer, scheduler and RNG state, and DDP under ``torchrun``.

Micro-batch ``i`` and its mask depend only on ``(seed, i)``; under DDP rank ``r`` of ``w``
takes micro-batches ``step·accum·w + a·w + r``, so 2 ranks give the same update as one
process accumulating 2 micro-batches.

Example:
    $ torchrun --nproc-per-node 2 -m zoo_transformer.pretrain --corpus lee --steps 300
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

import zoo_core as zoo
from zoo_core import InputError, ZooError

from .masking import mask_tokens, word_ids


@dataclass
class TrainConfig:
    """Hyper-parameters of :func:`pretrain` (defaults: a short CPU run)."""

    steps: int = 300
    batch_size: int = 16
    accumulation: int = 1
    lr: float = 5e-4
    weight_decay: float = 0.01
    warmup: int = 30
    max_grad_norm: float = 1.0
    mask_prob: float = 0.15
    whole_word: bool = False
    nsp: bool = True
    max_length: int = 64
    amp: bool = False
    seed: int = 0
    save_every: int = 0


# -- data ----------------------------------------------------------------------------------
def nsp_pairs(documents: Sequence[Sequence[str]], seed: int = 0) -> list[tuple[str, str, int]]:
    """Sentence pairs ``(a, b, label)``: label 0 when b follows a, 1 when b is random."""
    rng = random.Random(seed)
    docs = [d for d in documents if len(d) >= 2]
    if len(docs) < 2:
        raise InputError(f"NSP needs two or more documents of two or more sentences, got "
                         f"{len(docs)!r}; pass nsp=False to train masked LM only")
    pairs = []
    for di, doc in enumerate(docs):
        for si in range(len(doc) - 1):
            if rng.random() < 0.5:
                pairs.append((doc[si], doc[si + 1], 0))
            else:
                other = rng.choice([d for j, d in enumerate(docs) if j != di])
                pairs.append((doc[si], rng.choice(other), 1))
    rng.shuffle(pairs)
    return pairs


def lee_documents() -> list[list[str]]:
    """gensim's Lee background corpus: 300 news documents split into sentences."""
    import importlib.util
    import re

    spec = importlib.util.find_spec("gensim")
    if spec is None or not spec.submodule_search_locations:
        raise ZooError("the Lee corpus ships inside gensim's wheel; pip install gensim")
    path = Path(next(iter(spec.submodule_search_locations))) / "test/test_data/lee_background.cor"
    docs = []
    for line in path.read_text("utf-8", errors="replace").splitlines():
        sents = [s.strip() for s in re.split(r"(?<=[.!?])\s+", line) if len(s.strip()) > 10]
        if sents:
            docs.append(sents)
    return docs


class MLMBatches:
    """Micro-batch ``i``: tokenized pairs (or sentences), masked with seed ``(seed, i)``."""

    def __init__(self, tokenizer: Any, documents: Sequence[Sequence[str]], cfg: TrainConfig,
                 vocab_size: int) -> None:
        self.tok, self.cfg, self.vocab_size = tokenizer, cfg, vocab_size
        if cfg.nsp:
            self.examples: list[tuple[str, str | None, int]] = list(nsp_pairs(documents, cfg.seed))
        else:
            self.examples = [(s, None, 0) for d in documents for s in d]
        if not self.examples:
            raise InputError("the corpus gave no training examples; give it documents of "
                             "sentences longer than 10 characters")

    def __call__(self, i: int) -> dict[str, Tensor]:
        n, bs = len(self.examples), self.cfg.batch_size
        rows = [self.examples[(i * bs + j) % n] for j in range(bs)]
        pairs = [r[1] for r in rows] if self.cfg.nsp else None
        enc = self.tok([r[0] for r in rows], pairs, padding=True, truncation=True,
                       max_length=self.cfg.max_length, return_tensors="pt")
        ids = enc["input_ids"]
        special = (ids == self.tok.cls_token_id) | (ids == self.tok.sep_token_id) | \
            (ids == self.tok.pad_token_id)
        words = None
        if self.cfg.whole_word:
            words = word_ids([self.tok.convert_ids_to_tokens(r) for r in ids.tolist()], special)
        g = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + i)
        masked, labels = mask_tokens(ids, special, self.tok.mask_token_id, self.vocab_size,
                                     self.cfg.mask_prob, g, words)
        batch = {"input_ids": masked, "attention_mask": enc["attention_mask"],
                 "token_type_ids": enc["token_type_ids"], "labels": labels}
        if self.cfg.nsp:
            batch["next_sentence_label"] = torch.tensor([r[2] for r in rows])
        return batch


# -- optimisation ----------------------------------------------------------------------------
def adamw(model: nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW without weight decay on biases and layer-norm weights."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.dim() < 2 or "norm" in name else decay).append(p)
    return torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)


def linear_schedule(warmup: int, total: int) -> Callable[[int], float]:
    """Factor of the peak learning rate: ``step/warmup`` rising, then linear to 0 at ``total``."""
    def factor(step: int) -> float:
        if step < warmup:
            return step / max(1, warmup)
        return max(0.0, (total - step) / max(1, total - warmup))
    return factor


# -- checkpoints -----------------------------------------------------------------------------
def save_checkpoint(directory: Path, model: nn.Module, opt: torch.optim.Optimizer,
                    sched: Any, step: int, history: list[float]) -> Path:
    """``<directory>/step-<n>``: model (save_pretrained) + trainer state.

    Each file is written atomically, and ``trainer_state.json`` last: a folder counts as a
    checkpoint only once it is there, so an interrupted save is never resumed from.
    """
    final = directory / f"step-{step:07d}"
    marker = final / "trainer_state.json"
    marker.unlink(missing_ok=True)
    model.save_pretrained(final)  # type: ignore[operator]
    state, meta = {}, {"step": step, "scheduler": sched.state_dict(), "history": history,
                       "param_groups": []}
    for gi, group in enumerate(opt.state_dict()["param_groups"]):
        meta["param_groups"].append({k: v for k, v in group.items() if k != "params"})
        for pi in group["params"]:
            for k, v in opt.state_dict()["state"].get(pi, {}).items():
                state[f"opt.{gi}.{pi}.{k}"] = torch.as_tensor(v).clone()
    state["rng.torch"] = torch.get_rng_state()
    zoo.save_safetensors(state, final / "trainer_state.safetensors")
    zoo.atomic_write(marker, json.dumps(meta, default=float))
    return final


def latest_checkpoint(directory: Path) -> Path | None:
    found = sorted(p for p in directory.glob("step-*") if (p / "trainer_state.json").is_file())
    return found[-1] if found else None


def load_checkpoint(path: Path, model: nn.Module, opt: torch.optim.Optimizer,
                    sched: Any) -> tuple[int, list[float]]:
    """Restore model, optimizer, scheduler and RNG; return ``(step, loss history)``."""
    zoo.load_state_dict(model, zoo.read_safetensors(path / "model.safetensors"))
    meta = json.loads((path / "trainer_state.json").read_text("utf-8"))
    tensors = zoo.read_safetensors(path / "trainer_state.safetensors")
    sd = opt.state_dict()
    state: dict[int, dict[str, Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("opt."):
            _, _, pi, name = key.split(".", 3)
            state.setdefault(int(pi), {})[name] = value
    for group, saved in zip(sd["param_groups"], meta["param_groups"], strict=True):
        group.update(saved)
    opt.load_state_dict({"state": state, "param_groups": sd["param_groups"]})
    sched.load_state_dict(meta["scheduler"])
    torch.set_rng_state(tensors["rng.torch"])
    return int(meta["step"]), list(meta["history"])


# -- the loop ----------------------------------------------------------------------------------
def pretrain(model: nn.Module, batches: Callable[[int], dict[str, Tensor]], cfg: TrainConfig,
             output_dir: str | os.PathLike[str] | None = None, resume: bool = False,
             show_progress: bool | None = None) -> list[float]:
    """Train ``model`` (``model:bert-pretraining`` or ``model:bert-mlm``); return the loss per
    optimizer step. Under ``torch.distributed`` the model is wrapped in DDP.

    Progress (step, loss, learning rate) is drawn by ``zoo.progress`` on rank 0: on a
    terminal by default, never when ``show_progress=False``, always when ``True``.
    """
    world = dist.get_world_size() if dist.is_initialized() else 1
    rank = dist.get_rank() if dist.is_initialized() else 0
    device = next(model.parameters()).device
    opt = adamw(model, cfg)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, linear_schedule(cfg.warmup, cfg.steps))
    out = Path(output_dir) if output_dir else None
    start, history = 0, []
    if resume and out is not None and (ckpt := latest_checkpoint(out)) is not None:
        start, history = load_checkpoint(ckpt, model, opt, sched)
    net: nn.Module = model
    if world > 1:
        net = nn.parallel.DistributedDataParallel(model)
    use_amp = cfg.amp and (device.type == "cuda" or device.type == "cpu")
    amp_dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and device.type == "cuda")
    model.train()
    hide = True if rank else None if show_progress is None else not show_progress
    with zoo.progress(total=cfg.steps, desc="pretrain", unit="step", disable=hide) as bar:
        bar.update(start)
        for step in range(start, cfg.steps):
            total = 0.0
            for a in range(cfg.accumulation):
                i = (step * cfg.accumulation + a) * world + rank
                batch = {k: v.to(device) for k, v in batches(i).items()}
                last = a == cfg.accumulation - 1
                ctx = net.no_sync() if world > 1 and not last else contextlib.nullcontext()
                with ctx, torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
                    loss = net(**batch).loss / cfg.accumulation
                scaler.scale(loss).backward()
                total += loss.item()
            scaler.unscale_(opt)
            nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            scaler.step(opt)
            scaler.update()
            opt.zero_grad(set_to_none=True)
            sched.step()
            if world > 1:
                t = torch.tensor([total], device=device)
                dist.all_reduce(t)
                total = t.item() / world
            history.append(total)
            bar.update(1, loss=total, lr=sched.get_last_lr()[0])
            if out is not None and rank == 0 and cfg.save_every and \
                    (step + 1) % cfg.save_every == 0:
                save_checkpoint(out, model, opt, sched, step + 1, history)
    if out is not None and rank == 0:
        save_checkpoint(out, model, opt, sched, cfg.steps, history)
    return history


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``zoo-bert-pretrain`` / ``python -m zoo_transformer.pretrain`` (torchrun-ready)."""
    import zoo_core as zoo

    p = argparse.ArgumentParser(prog="zoo-bert-pretrain", description=__doc__.split("\n")[0])
    p.add_argument("--corpus", default="lee", help="'lee' or a text file: one document per "
                   "line, or documents separated by blank lines")
    p.add_argument("--preset", default="tiny", help="model:bert-pretraining preset")
    p.add_argument("--tokenizer", default="bert-base-uncased")
    p.add_argument("--output", default=None, help="checkpoint folder")
    p.add_argument("--resume", action="store_true")
    for f, v in asdict(TrainConfig()).items():
        kind = (lambda s: s.lower() in ("1", "true", "yes")) if isinstance(v, bool) else type(v)
        p.add_argument(f"--{f.replace('_', '-')}", type=kind, default=v)
    args = p.parse_args(argv)
    cfg = TrainConfig(**{f: getattr(args, f) for f in asdict(TrainConfig())})
    if "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1:
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    torch.manual_seed(cfg.seed)
    tok = zoo.load(args.tokenizer)
    docs = lee_documents() if args.corpus == "lee" else _read_corpus(Path(args.corpus))
    component = "model:bert-pretraining" if cfg.nsp else "model:bert-mlm"
    model = zoo.create(component, preset=args.preset, vocab_size=tok.vocab_size,
                       max_position_embeddings=max(cfg.max_length, 64))
    history = pretrain(model, MLMBatches(tok, docs, cfg, tok.vocab_size), cfg, args.output,
                       args.resume)
    if history and (not dist.is_initialized() or dist.get_rank() == 0):
        print(f"loss: first {history[0]:.4f}, last {history[-1]:.4f} "
              f"(mean of last 10: {sum(history[-10:]) / len(history[-10:]):.4f})")
    if dist.is_initialized():
        dist.destroy_process_group()
    return 0 if all(math.isfinite(h) for h in history) else 1


def _read_corpus(path: Path) -> list[list[str]]:
    if not path.is_file():
        raise InputError(f"corpus {str(path)!r} is not a file; give 'lee' or a text file")
    text = path.read_text("utf-8")
    blocks = [b for b in text.split("\n\n") if b.strip()]
    if len(blocks) > 1:
        return [[s for s in b.splitlines() if s.strip()] for b in blocks]
    import re

    return [[s for s in re.split(r"(?<=[.!?])\s+", line) if s.strip()]
            for line in text.splitlines() if line.strip()]


if __name__ == "__main__":
    raise SystemExit(main())
