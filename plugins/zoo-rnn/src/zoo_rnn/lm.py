"""Recurrent language model (Mikolov et al. 2010; regularised as in Zaremba et al. 2014,
arXiv:1409.2329; tied input and output embeddings, Press & Wolf 2017, arXiv:1608.05859):

    e_t = E[w_t],   h_t^ℓ = cell(h_t^{ℓ−1}, h_{t−1}^ℓ)   (h_t^0 = e_t),
    p(w_{t+1} | w_≤t) = softmax(E · P h_t^L + b)

with E the embedding matrix shared by the output layer (``tie_weights``) and P a projection
to the embedding width when the hidden width differs. Dropout is applied to the embeddings,
between layers and before the output layer.

Training uses truncated backpropagation through time: a long token stream is cut into
``batch_size`` parallel streams (:func:`batchify`), read in windows of ``bptt`` steps; the state
is carried from one window to the next and detached there (:func:`detach_state`), and the
gradient norm is clipped (:func:`train_epoch`). :meth:`RNNLM.generate` samples with
temperature and top-k.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import zoo_core as zoo

from .layers import GRUCell, LSTMCell, RNNCell
from .layers.directions import RecurrentLayer
from .layers.sequence import check_ids

CELLS = ("lstm", "gru", "rnn")
LayerState = Tensor | tuple[Tensor, Tensor]


@dataclass(frozen=True)
class RNNLMConfig:
    """Sizes of an :class:`RNNLM`; ``cell`` is "lstm", "gru" or "rnn" (tanh)."""

    vocab_size: int = 256
    embed_size: int = 128
    hidden_size: int = 256
    num_layers: int = 2
    cell: str = "lstm"
    dropout: float = 0.2
    tie_weights: bool = True

    def __post_init__(self) -> None:
        for key in ("vocab_size", "embed_size", "hidden_size", "num_layers"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise zoo.ConfigError(f"RNNLMConfig: {key} must be a positive int, got {value!r}")
        if self.cell not in CELLS:
            raise zoo.ConfigError(f"RNNLMConfig: unknown cell {self.cell!r}; valid: {CELLS}")
        if not 0 <= self.dropout < 1:
            raise zoo.ConfigError(f"RNNLMConfig: dropout must be in [0, 1), got {self.dropout!r}")


@dataclass
class LMOutput:
    """``logits`` (B, T, V); ``loss`` mean cross-entropy when labels were given; ``state``
    the per-layer state after the last step, to carry into the next window."""

    logits: Tensor
    loss: Tensor | None
    state: tuple[LayerState, ...]


class RNNLM(zoo.Model):
    """Word- or character-level recurrent language model.

    Example:
        >>> lm = zoo.create("model:rnn-lm", preset="tiny")
        >>> out = lm(torch.randint(0, 32, (2, 7)), labels=torch.randint(0, 32, (2, 7)))
        >>> out.logits.shape, out.loss                    # (2, 7, 32), scalar
    """

    config_class = RNNLMConfig
    contract_opt_outs: ClassVar[dict[str, str]] = {
        "parameter_count": "char-small is our own size, with no published count"}
    presets: ClassVar[dict[str, RNNLMConfig]] = {
        "tiny": RNNLMConfig(vocab_size=32, embed_size=8, hidden_size=12, num_layers=2),
        "char-small": RNNLMConfig(vocab_size=256, embed_size=128, hidden_size=256,
                                  num_layers=2, dropout=0.1),
    }
    supports_grad_checkpointing = True

    def __init__(self, config: RNNLMConfig) -> None:
        super().__init__(config)
        c = config
        self.embed = nn.Embedding(c.vocab_size, c.embed_size)
        self.layers = nn.ModuleList(
            RecurrentLayer([_cell(c.cell, c.embed_size if i == 0 else c.hidden_size,
                                  c.hidden_size)], fused=True)
            for i in range(c.num_layers))
        self.proj = (nn.Linear(c.hidden_size, c.embed_size, bias=False)
                     if c.tie_weights and c.hidden_size != c.embed_size else None)
        self.head = nn.Linear(c.embed_size if self.proj is not None else c.hidden_size,
                              c.vocab_size)
        nn.init.uniform_(self.embed.weight, -0.1, 0.1)
        if c.tie_weights:
            self.head.weight = self.embed.weight
        self.drop = nn.Dropout(c.dropout)

    def grad_checkpointing_blocks(self) -> list[nn.Module]:
        return list(self.layers)

    def init_state(self, batch_size: int) -> tuple[LayerState, ...]:
        """Zero state for ``batch_size`` streams."""
        w = self.embed.weight
        zeros = [w.new_zeros(batch_size, self.config.hidden_size) for _ in self.layers]
        if self.config.cell == "lstm":
            return tuple((z, torch.zeros_like(z)) for z in zeros)
        return tuple(zeros)

    def forward(self, input_ids: Tensor, state: tuple[LayerState, ...] | None = None,
                labels: Tensor | None = None) -> LMOutput:
        """input_ids (B, T) → logits (B, T, V); ``labels`` (B, T), −100 = ignored."""
        check_ids("input_ids", input_ids)
        if labels is not None:
            check_ids("labels", labels, tuple(input_ids.shape))
        if state is None:
            state = self.init_state(input_ids.shape[0])
        elif len(state) != len(self.layers):
            raise zoo.InputError(f"state has {len(state)} layer states, the model has "
                                 f"{len(self.layers)} layers; pass the state a forward returned")
        x = self.drop(self.embed(input_ids)).transpose(0, 1)       # (T, B, E)
        new_state = []
        for i, layer in enumerate(self.layers):
            x, (s,) = layer(x, [state[i]], None)                    # (T, B, H)
            new_state.append(s)
            x = self.drop(x)
        x = x.transpose(0, 1)                                       # (B, T, H)
        logits = self.head(self.proj(x) if self.proj is not None else x)  # (B, T, V)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))
        return LMOutput(logits, loss, tuple(new_state))

    def example_inputs(self) -> dict[str, Any]:
        return {"input_ids": torch.randint(0, self.config.vocab_size, (2, 6))}

    def bad_inputs(self) -> list[dict[str, Any]]:
        ids = self.example_inputs()["input_ids"]
        return [{"input_ids": ids[0]},                          # no batch dimension
                {"input_ids": ids.float()},                     # float ids
                {"input_ids": ids, "labels": ids[:, :-1]},      # one label short per row
                {"input_ids": ids, "state": ()}]                # a state of no layer

    @torch.no_grad()
    def generate(self, prompt_ids: Tensor, max_new_tokens: int, temperature: float = 1.0,
                 top_k: int | None = None, generator: torch.Generator | None = None) -> Tensor:
        """Sample a continuation of ``prompt_ids`` (B, T) → (B, T + max_new_tokens).

        ``temperature`` 0 means greedy; ``top_k`` keeps the k most likely tokens.
        """
        if temperature < 0:
            raise zoo.InputError(f"temperature must be ≥ 0 (0 = greedy), got {temperature!r}")
        if top_k is not None and not 1 <= top_k <= self.config.vocab_size:
            raise zoo.InputError(f"top_k must be in [1, vocab_size={self.config.vocab_size}], "
                                 f"got {top_k!r}")
        was_training = self.training
        self.eval()
        out = self(prompt_ids)
        ids, state, logits = [prompt_ids], out.state, out.logits[:, -1]
        for _ in range(max_new_tokens):
            if temperature == 0:
                nxt = logits.argmax(-1, keepdim=True)
            else:
                logits = logits / temperature
                if top_k is not None:
                    kth = logits.topk(top_k, -1).values[:, -1:]
                    logits = logits.masked_fill(logits < kth, float("-inf"))
                nxt = torch.multinomial(logits.softmax(-1), 1, generator=generator)
            ids.append(nxt)
            out = self(nxt, state)
            state, logits = out.state, out.logits[:, -1]
        self.train(was_training)
        return torch.cat(ids, 1)


def _cell(kind: str, input_size: int, hidden_size: int) -> nn.Module:
    if kind == "lstm":
        return LSTMCell(input_size, hidden_size)
    return GRUCell(input_size, hidden_size) if kind == "gru" else RNNCell(input_size, hidden_size)


def detach_state(state: Any) -> Any:
    """Cut the graph at a window boundary, keeping the values (truncated BPTT)."""
    if isinstance(state, Tensor):
        return state.detach()
    return type(state)(detach_state(s) for s in state)


def batchify(ids: Tensor, batch_size: int) -> Tensor:
    """A token stream (N,) → ``batch_size`` contiguous streams (B, N // B), the tail dropped."""
    n = ids.numel() // batch_size
    if n < 2:
        raise zoo.InputError(f"{ids.numel()} tokens are too few for batch_size={batch_size}")
    return ids[: n * batch_size].view(batch_size, n)


def windows(data: Tensor, bptt: int) -> Iterator[tuple[Tensor, Tensor]]:
    """(inputs, targets) windows of at most ``bptt`` steps over streams (B, N)."""
    for i in range(0, data.shape[1] - 1, bptt):
        n = min(bptt, data.shape[1] - 1 - i)
        yield data[:, i:i + n], data[:, i + 1:i + 1 + n]


def train_epoch(model: RNNLM, data: Tensor, optimizer: torch.optim.Optimizer, bptt: int = 64,
                clip: float = 1.0) -> float:
    """One pass of truncated BPTT with carried state and gradient-norm clipping; mean loss."""
    model.train()
    state, total, count = None, 0.0, 0
    for x, y in windows(data, bptt):
        state = detach_state(state) if state is not None else None
        out = model(x, state, labels=y)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()  # type: ignore[union-attr]
        nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        state = out.state
        total, count = total + out.loss.item() * y.numel(), count + y.numel()  # type: ignore[arg-type]
    return total / count


@torch.no_grad()
def perplexity(model: RNNLM, data: Tensor, bptt: int = 128) -> float:
    """exp(mean negative log-likelihood) of streams (B, N), state carried across windows."""
    model.eval()
    state, nll, count = None, 0.0, 0
    for x, y in windows(data, bptt):
        out = model(x, state, labels=y)
        state = out.state
        nll, count = nll + float(out.loss) * y.numel(), count + y.numel()  # type: ignore[arg-type]
    return math.exp(nll / count)
