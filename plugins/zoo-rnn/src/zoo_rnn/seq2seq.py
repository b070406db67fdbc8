"""GRU encoder–decoder with additive attention (Bahdanau, Cho & Bengio, ICLR 2015,
arXiv:1409.0473, appendix A):

    encoder:  h_j = [→h_j ; ←h_j]                 a bidirectional GRU over the source
    init:     s_0 = tanh(W_s ←h_1)
    step t:   c_t = attend(s_{t−1}, h_1..h_S)     (``layers/bahdanau.py``)
              s_t = GRU([E y_{t−1} ; c_t], s_{t−1})
              p(y_t | y_<t, x) = softmax(W_o tanh(U_o [s_t ; c_t ; E y_{t−1}]))

The output layer is a single tanh layer in place of the paper's maxout. Training uses teacher
forcing (the decoder reads the gold y_{t−1}; ``teacher_forcing`` < 1 feeds the model's own
greedy choice instead with that probability). Decoding: greedy, or beam search ranking
finished hypotheses by log p(y | x) / |y|^α (``length_penalty`` α).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import zoo_core as zoo

from .layers import AdditiveAttention, GRUCell
from .layers.sequence import check_ids
from .recurrent import GRU, GRUConfig


@dataclass(frozen=True)
class Seq2SeqConfig:
    """Sizes and special token ids of a :class:`Seq2Seq`."""

    src_vocab_size: int = 32
    tgt_vocab_size: int = 32
    embed_size: int = 64
    hidden_size: int = 128
    attn_size: int = 128
    encoder_layers: int = 1
    dropout: float = 0.0
    pad_id: int = 0
    bos_id: int = 1
    eos_id: int = 2

    def __post_init__(self) -> None:
        for key in ("src_vocab_size", "tgt_vocab_size", "embed_size", "hidden_size",
                    "attn_size", "encoder_layers"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise zoo.ConfigError(f"Seq2SeqConfig: {key} must be a positive int, got {value!r}")
        ids = {"pad_id": self.pad_id, "bos_id": self.bos_id, "eos_id": self.eos_id}
        bad = {k: v for k, v in ids.items() if not 0 <= v < self.tgt_vocab_size}
        if bad or len(set(ids.values())) != 3:
            raise zoo.ConfigError(f"Seq2SeqConfig: special ids {ids} must be distinct and in "
                                  f"[0, tgt_vocab_size={self.tgt_vocab_size})")


@dataclass
class Seq2SeqOutput:
    """``logits`` (B, T, V), ``loss`` (mean over non-pad labels), ``attention`` (B, T, S)."""

    logits: Tensor
    loss: Tensor | None
    attention: Tensor


class Seq2Seq(zoo.Model):
    """Attention encoder–decoder over token ids.

    Example:
        >>> model = zoo.create("model:seq2seq", preset="tiny")
        >>> src, lengths = torch.randint(3, 16, (2, 5)), torch.tensor([5, 3])
        >>> model.generate(src, lengths, max_length=8, num_beams=3)   # (B, ≤ 8) token ids
    """

    config_class = Seq2SeqConfig
    presets: ClassVar[dict[str, Seq2SeqConfig]] = {
        "tiny": Seq2SeqConfig(src_vocab_size=16, tgt_vocab_size=16, embed_size=8,
                              hidden_size=12, attn_size=10),
    }

    def __init__(self, config: Seq2SeqConfig) -> None:
        super().__init__(config)
        c = config
        self.src_embed = nn.Embedding(c.src_vocab_size, c.embed_size, padding_idx=c.pad_id)
        self.tgt_embed = nn.Embedding(c.tgt_vocab_size, c.embed_size, padding_idx=c.pad_id)
        self.encoder = GRU(GRUConfig(input_size=c.embed_size, hidden_size=c.hidden_size,
                                     num_layers=c.encoder_layers, bidirectional=True,
                                     batch_first=True, dropout=c.dropout))
        self.init_state = nn.Linear(c.hidden_size, c.hidden_size)          # W_s
        self.attention = AdditiveAttention(c.hidden_size, 2 * c.hidden_size, c.attn_size)
        self.decoder = GRUCell(c.embed_size + 2 * c.hidden_size, c.hidden_size)
        self.pre_output = nn.Linear(3 * c.hidden_size + c.embed_size, c.embed_size)  # U_o
        self.output = nn.Linear(c.embed_size, c.tgt_vocab_size)                    # W_o
        self.drop = nn.Dropout(c.dropout)

    def encode(self, src_ids: Tensor, src_lengths: Tensor) -> tuple[Tensor, Tensor, Tensor,
                                                                      Tensor]:
        """→ memory h (B, S, 2H), keys U_a h (B, S, A), source mask (B, S), s_0 (B, H)."""
        check_ids("src_ids", src_ids)
        lengths = torch.as_tensor(src_lengths)
        memory, h_n = self.encoder(self.drop(self.src_embed(src_ids)), lengths=lengths,
                                   enforce_sorted=False)                   # (B, S, 2H)
        steps = torch.arange(src_ids.shape[1], device=src_ids.device)
        mask = steps[None, :] < lengths.to(src_ids.device)[:, None]        # (B, S)
        s0 = torch.tanh(self.init_state(h_n[-1]))                          # ←h_1 of the top layer
        return memory, self.attention.keys(memory), mask, s0

    def step(self, y_prev: Tensor, s: Tensor, enc: tuple[Tensor, Tensor, Tensor]
             ) -> tuple[Tensor, Tensor, Tensor]:
        """One decoder step: y_{t−1} (B,), s_{t−1} (B, H) → logits (B, V), s_t, α_t (B, S)."""
        memory, keys, mask = enc
        e = self.drop(self.tgt_embed(y_prev))                              # (B, E)
        ctx, alpha = self.attention(s, keys, memory, mask)                 # (B, 2H), (B, S)
        s = self.decoder(torch.cat([e, ctx], -1), s)                       # (B, H)
        hidden = torch.tanh(self.pre_output(torch.cat([s, ctx, e], -1)))
        return self.output(self.drop(hidden)), s, alpha

    def forward(self, src_ids: Tensor, src_lengths: Tensor, decoder_input_ids: Tensor,
                labels: Tensor | None = None, teacher_forcing: float = 1.0) -> Seq2SeqOutput:
        """Teacher-forced decoding: ``decoder_input_ids`` (B, T) = BOS y_1 … y_{T−1}, and
        ``labels`` (B, T) = y_1 … y_T (pad ids are ignored in the loss)."""
        check_ids("decoder_input_ids", decoder_input_ids)
        if labels is not None:
            check_ids("labels", labels, tuple(decoder_input_ids.shape))
        memory, keys, mask, s = self.encode(src_ids, src_lengths)
        logits, alphas = [], []
        y_prev = decoder_input_ids[:, 0]
        for t in range(decoder_input_ids.shape[1]):
            if t and teacher_forcing < 1.0:
                own = logits[-1].argmax(-1)
                use_gold = torch.rand(own.shape, device=own.device) < teacher_forcing
                y_prev = torch.where(use_gold, decoder_input_ids[:, t], own)
            elif t:
                y_prev = decoder_input_ids[:, t]
            out, s, alpha = self.step(y_prev, s, (memory, keys, mask))
            logits.append(out)
            alphas.append(alpha)
        stacked = torch.stack(logits, 1)                                   # (B, T, V)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(stacked.reshape(-1, stacked.shape[-1]), labels.reshape(-1),
                                   ignore_index=self.config.pad_id)
        return Seq2SeqOutput(stacked, loss, torch.stack(alphas, 1))

    def example_inputs(self) -> dict[str, Any]:
        c = self.config
        src = torch.randint(3, c.src_vocab_size, (3, 5))
        tgt = torch.randint(3, c.tgt_vocab_size, (3, 4))
        tgt[:, 0] = c.bos_id
        return {"src_ids": src, "src_lengths": torch.tensor([5, 2, 4]), "decoder_input_ids": tgt}

    def bad_inputs(self) -> list[dict[str, Any]]:
        good = self.example_inputs()
        src, tgt = good["src_ids"], good["decoder_input_ids"]
        return [{**good, "src_ids": src[0]},                    # no batch dimension
                {**good, "decoder_input_ids": tgt.float()},     # float ids
                {**good, "src_lengths": torch.tensor([5, 2])},  # one length short
                {**good, "labels": tgt[:, 1:]}]                 # one label short per row

    @torch.no_grad()
    def generate(self, src_ids: Tensor, src_lengths: Tensor, max_length: int = 50,
                 num_beams: int = 1, length_penalty: float = 1.0) -> Tensor:
        """Decode each source: greedy (``num_beams=1``) or beam search.

        Returns (B, L) token ids after BOS, each ending with EOS or cut at ``max_length``,
        padded with ``pad_id``.
        """
        if num_beams < 1 or max_length < 1:
            raise zoo.InputError(f"num_beams and max_length must be ≥ 1, got {num_beams!r}, "
                                 f"{max_length!r}")
        was_training = self.training
        self.eval()
        memory, keys, mask, s = self.encode(src_ids, src_lengths)
        if num_beams == 1:
            seqs = self._greedy(s, (memory, keys, mask), max_length)
        else:
            seqs = [self._beam(s[b:b + 1], (memory[b:b + 1], keys[b:b + 1], mask[b:b + 1]),
                               max_length, num_beams, length_penalty)
                    for b in range(src_ids.shape[0])]
        self.train(was_training)
        out = torch.full((len(seqs), max(map(len, seqs))), self.config.pad_id, dtype=torch.long)
        for b, seq in enumerate(seqs):
            out[b, :len(seq)] = torch.tensor(seq, dtype=torch.long)
        return out.to(src_ids.device)

    def _greedy(self, s: Tensor, enc: tuple[Tensor, Tensor, Tensor], max_length: int
                ) -> list[list[int]]:
        c = self.config
        y = torch.full((s.shape[0],), c.bos_id, dtype=torch.long, device=s.device)
        seqs: list[list[int]] = [[] for _ in range(s.shape[0])]
        done = [False] * s.shape[0]
        for _ in range(max_length):
            logits, s, _ = self.step(y, s, enc)
            y = logits.argmax(-1)
            for b, tok in enumerate(y.tolist()):
                if not done[b]:
                    seqs[b].append(tok)
                    done[b] = tok == c.eos_id
            if all(done):
                break
        return seqs

    def _beam(self, s: Tensor, enc: tuple[Tensor, Tensor, Tensor], max_length: int, k: int,
              alpha: float) -> list[int]:
        """Beam search for one source (batch of 1); beams are a batch of ≤ k rows.

        Of the 2k best extensions, an EOS among the k best ends a hypothesis; the others
        extend the beam. Search stops when k hypotheses have ended and the best of them
        outscores the best live one at its current length.
        """
        c = self.config
        beams: list[tuple[float, list[int]]] = [(0.0, [])]
        states, finished = s, []
        for step in range(max_length):
            y = torch.tensor([seq[-1] if seq else c.bos_id for _, seq in beams], device=s.device)
            n = len(beams)
            logits, states, _ = self.step(y, states, tuple(t.expand(n, *t.shape[1:])
                                                           for t in enc))  # type: ignore[arg-type]
            logp = F.log_softmax(logits.float(), -1)                       # (n, V)
            total = torch.tensor([sc for sc, _ in beams], device=s.device)[:, None] + logp
            top = total.flatten().topk(min(2 * k, total.numel()))
            keep_rows, new_beams = [], []
            for rank, (score, idx) in enumerate(zip(top.values.tolist(), top.indices.tolist(),
                                                    strict=True)):
                row, tok = divmod(idx, logp.shape[1])
                seq = beams[row][1] + [tok]
                if tok == c.eos_id or step == max_length - 1:
                    if rank < k:  # a hypothesis ends only from within the k best candidates
                        finished.append((score / len(seq) ** alpha, seq))
                elif len(new_beams) < k:
                    new_beams.append((score, seq))
                    keep_rows.append(row)
            if not new_beams:
                break
            best_alive = new_beams[0][0] / (step + 1) ** alpha
            if len(finished) >= k and max(f[0] for f in finished) >= best_alive:
                break
            beams, states = new_beams, states[torch.tensor(keep_rows, device=s.device)]
        if not finished:
            finished = [(sc / len(seq) ** alpha, seq) for sc, seq in beams]
        return max(finished, key=lambda f: f[0])[1]
