"""Shuffled BN over 2 gloo processes: the key encoder of each rank sees a slice of the
permuted global batch, the keys come back to their owners in order (each equal to the key
encoder run on the slice that held it, BN statistics of that slice), and every rank enqueues
the keys of all ranks."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from zoo_moco.moco import MoCo

import zoo_core as zoo
from zoo_core.testing import run_distributed

N = 4


class Recorder(nn.Module):
    """A tiny ConvNet (with BN) that remembers the batches it encoded."""

    def __init__(self) -> None:
        super().__init__()
        self.net = zoo.create("model:convnet", preset="tiny")
        self.num_features = self.net.num_features
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.detach().clone())
        return self.net(x)


def _build(**overrides) -> MoCo:
    torch.manual_seed(0)  # the same weights on every rank
    return MoCo.wrap(Recorder(), preset="tiny", momentum=0.9, **overrides).train()


def _images(rank: int) -> torch.Tensor:
    return torch.randn(N, 1, 8, 8, generator=torch.Generator().manual_seed(100 + rank))


def _worker(rank: int, world_size: int) -> dict:
    moco = _build()
    x = _images(rank)
    moco(x + 0.01, x)
    sym = _build(symmetric=True, queue_size=0)
    logits, labels = sym(x + 0.01, x)
    return {"seen": moco.encoder_k.backbone.seen[0].numpy(), "queue": moco.queue.numpy(),
            "ptr": int(moco.queue_ptr),
            "key_encoder": {k: v.numpy() for k, v in moco.encoder_k.state_dict().items()},
            "sym_shape": tuple(logits.shape), "sym_labels": labels.numpy()}


def test_shuffled_bn_over_two_gloo_processes():
    results = run_distributed(_worker)
    images = torch.cat([_images(r) for r in range(2)])  # (2N, 1, 8, 8), in rank order
    seen = [torch.from_numpy(r["seen"]) for r in results]
    # each rank encoded N samples of the global batch, all of them once between the two
    owner = [[int(((images - s).abs().amax(dim=(1, 2, 3)) == 0).nonzero()) for s in part]
             for part in seen]
    assert sorted(owner[0] + owner[1]) == list(range(2 * N))
    assert owner[0] != list(range(N)), "the key batch was not shuffled across ranks"
    # the keys, recomputed rank by rank on the slices seen, back in the global order
    moco = _build()
    moco.encoder_k.load_state_dict({k: torch.from_numpy(v)
                                    for k, v in results[0]["key_encoder"].items()})
    keys = torch.empty(2 * N, moco.config.dim)
    with torch.no_grad():
        for part, own in zip(seen, owner, strict=True):
            keys[own] = F.normalize(moco.encoder_k(part), dim=1)  # BN over this slice
    for r in results:
        assert r["ptr"] == 2 * N
        torch.testing.assert_close(torch.from_numpy(r["queue"][:, :2 * N]), keys.T)
    np.testing.assert_array_equal(results[0]["queue"], results[1]["queue"])
    # v3: the keys of the whole global batch, each query's positive in its own rank's slice
    assert results[1]["sym_shape"] == (N, 2 * N, 2)
    np.testing.assert_array_equal(results[1]["sym_labels"][:, 0], np.arange(N) + N)
