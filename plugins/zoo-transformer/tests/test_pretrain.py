"""MLM pre-training: masking statistics, NSP pairs, the schedule against transformers',
checkpoint resume, mixed precision and DDP over 2 gloo processes."""

from __future__ import annotations

import pytest
import torch
from zoo_transformer.masking import IGNORE, mask_tokens, word_ids
from zoo_transformer.pretrain import TrainConfig, linear_schedule, nsp_pairs, pretrain

import zoo_core as zoo
from zoo_core.testing import run_distributed

MASK, VOCAB = 4, 1000


def test_masking_follows_15_80_10_10():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(10, VOCAB, (256, 128), generator=g)
    special = torch.zeros_like(ids, dtype=torch.bool)
    special[:, 0] = special[:, -1] = True
    special[:, 100:] = True  # padding
    out, labels = mask_tokens(ids, special, MASK, VOCAB, 0.15, g)
    chosen = labels.ne(IGNORE)
    assert not chosen[special].any()
    assert torch.equal(labels[chosen], ids[chosen])
    assert torch.equal(out[~chosen], ids[~chosen])
    n = chosen.sum().item()
    eligible = (~special).sum().item()
    sd = (0.15 * 0.85 / eligible) ** 0.5
    assert abs(n / eligible - 0.15) < 5 * sd
    masked = (out[chosen] == MASK).float().mean().item()
    same = (out[chosen] == ids[chosen]).float().mean().item()
    for got, want in ((masked, 0.8), (same, 0.1)):  # 10% random (≈ all differ from the id)
        assert abs(got - want) < 5 * (want * (1 - want) / n) ** 0.5 + 1e-3


def test_whole_word_masking_masks_every_piece():
    tokens = [["[CLS]", "un", "##believ", "##able", "news", "to", "##day", "[SEP]"]] * 400
    special = torch.zeros(400, 8, dtype=torch.bool)
    special[:, [0, 7]] = True
    words = word_ids(tokens, special)
    assert words[0].tolist() == [-1, 0, 0, 0, 1, 2, 2, -1]
    ids = torch.arange(10, 18).expand(400, 8).clone()
    _, labels = mask_tokens(ids, special, MASK, VOCAB, 0.3, torch.Generator().manual_seed(1),
                            words)
    chosen = labels.ne(IGNORE)
    assert chosen.any()
    assert torch.equal(chosen[:, 1], chosen[:, 2]) and torch.equal(chosen[:, 1], chosen[:, 3])
    assert torch.equal(chosen[:, 5], chosen[:, 6])


def test_nsp_pairs():
    docs = [[f"d{d} s{s}" for s in range(6)] for d in range(8)]
    pairs = nsp_pairs(docs, seed=0)
    assert len(pairs) == 8 * 5
    frac = sum(p[2] for p in pairs) / len(pairs)
    assert 0.3 < frac < 0.7
    for a, b, label in pairs:
        da, sa = a.split()
        db, sb = b.split()
        if label == 0:
            assert da == db and int(sb[1:]) == int(sa[1:]) + 1
        else:
            assert da != db


@pytest.mark.filterwarnings("ignore:Detected call of")
def test_schedule_matches_transformers():
    from transformers import get_linear_schedule_with_warmup

    p = torch.nn.Parameter(torch.zeros(1))
    ours = torch.optim.lr_scheduler.LambdaLR(torch.optim.SGD([p], lr=1.0),
                                             linear_schedule(10, 50))
    peer = get_linear_schedule_with_warmup(torch.optim.SGD([p], lr=1.0), 10, 50)
    for _ in range(50):
        assert ours.get_last_lr()[0] == pytest.approx(peer.get_last_lr()[0], abs=1e-12)
        ours.step()
        peer.step()


def _batches(i: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(100 + i)
    ids = torch.randint(10, 200, (4, 12), generator=g)
    ids[:, 6:] = ids[:, :6]  # a copy task the model can learn
    mask = torch.ones_like(ids)
    mask[-1, 9:] = 0
    ids[-1, 9:] = 0
    special = mask.eq(0)
    masked, labels = mask_tokens(ids, special, MASK, 200, 0.3, g)
    return {"input_ids": masked, "attention_mask": mask, "labels": labels}


def _model():
    torch.manual_seed(0)
    return zoo.create("model:bert-mlm", preset="tiny", vocab_size=200, hidden_dropout=0.0,
                      attention_dropout=0.0)


CFG = dict(batch_size=4, lr=3e-3, warmup=2, nsp=False)


def test_resume_continues_exactly(tmp_path):
    straight = _model()
    full = pretrain(straight, _batches, TrainConfig(steps=6, **CFG))
    part = _model()
    pretrain(part, _batches, TrainConfig(steps=6, save_every=3, **CFG), tmp_path / "a")
    (tmp_path / "a" / "step-0000006").rename(tmp_path / "unused")  # keep only step 3
    resumed = _model()
    history = pretrain(resumed, _batches, TrainConfig(steps=6, **CFG), tmp_path / "a",
                       resume=True)
    assert history == pytest.approx(full, rel=1e-5)
    for (n, a), b in zip(straight.state_dict().items(), resumed.state_dict().values(),
                         strict=True):
        torch.testing.assert_close(a, b, msg=n)


def test_bf16_autocast_on_cpu():
    history = pretrain(_model(), _batches, TrainConfig(steps=3, amp=True, **CFG))
    assert all(torch.isfinite(torch.tensor(history)))


def _worker(rank: int, world_size: int) -> tuple:
    model = _model()
    history = pretrain(model, _batches, TrainConfig(steps=3, **CFG))
    return history, {k: v.numpy() for k, v in model.state_dict().items()}


def test_ddp_two_gloo_processes_equal_accumulation():
    got = run_distributed(_worker)
    single = _model()
    history = pretrain(single, _batches, TrainConfig(steps=3, accumulation=2, **CFG))
    for rank in (0, 1):
        assert got[rank][0] == pytest.approx(history, rel=1e-5)
        for k, v in single.state_dict().items():
            torch.testing.assert_close(torch.from_numpy(got[rank][1][k]), v, rtol=1e-5,
                                       atol=1e-6, msg=f"rank {rank}: {k}")
