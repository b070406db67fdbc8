"""sync() over 2 gloo processes equals one process that saw all the data."""

from __future__ import annotations

import torch

import zoo_core as zoo
from zoo_core.testing import run_distributed

C = 4


def _batches():
    g = torch.Generator().manual_seed(0)
    out = []
    for _ in range(4):
        target = torch.randint(0, C, (2, 6, 6), generator=g)
        target[torch.rand(target.shape, generator=g) < 0.2] = 255
        out.append((torch.randn(2, C, 6, 6, generator=g), target))
    return out


def _worker(rank: int, world_size: int) -> dict:
    results = {}
    for aggregation in ("dataset", "image"):
        m = zoo.create("metric:segmentation", num_classes=C, aggregation=aggregation)
        for preds, target in _batches()[rank::world_size]:
            m.update(preds, target)
        res = m.sync().compute()  # tensors go back as numpy: no shared-memory handles
        results[aggregation] = {k: v.numpy() if isinstance(v, torch.Tensor) else v
                                for k, v in res.items()}
    return results


def test_sync_over_two_gloo_processes_equals_one_process():
    got = run_distributed(_worker)
    for aggregation in ("dataset", "image"):
        whole = zoo.create("metric:segmentation", num_classes=C, aggregation=aggregation)
        for preds, target in _batches():
            whole.update(preds, target)
        want = whole.compute()
        for rank in (0, 1):
            res = got[rank][aggregation]
            assert (res["confusion_matrix"] == want["confusion_matrix"].numpy()).all()
            for k, v in want.items():
                torch.testing.assert_close(torch.as_tensor(res[k]), torch.as_tensor(v),
                                           rtol=1e-12, atol=1e-12, equal_nan=True, msg=k)
