"""Synthetic identities: deterministic identities, varied views; end-to-end training (slow)."""

from __future__ import annotations

import pytest
import torch
from zoo_face.synthetic import SyntheticFaces, identity_params

import zoo_core as zoo


def test_an_identity_is_the_same_face_whatever_the_batch():
    a = identity_params(torch.tensor([3, 7]))
    b = identity_params(torch.tensor([7, 1, 3]))
    for k in a:
        assert a[k][0] == b[k][2] and a[k][1] == b[k][0]
    assert not torch.equal(a["face_w"], identity_params(torch.tensor([3, 7]), seed=1)["face_w"])


def test_views_of_one_identity_are_closer_than_views_of_two():
    data = SyntheticFaces(50, size=24, strength=0.5)
    g = torch.Generator().manual_seed(0)
    imgs, _ = data.batch(torch.tensor([0, 0, 1, 1] * 8), g)
    assert imgs.shape == (32, 3, 24, 24) and imgs.min() >= -1 and imgs.max() <= 1
    flat = imgs.flatten(1)
    same = (flat[0::4] - flat[1::4]).norm(dim=1).mean()
    diff = (flat[0::4] - flat[2::4]).norm(dim=1).mean()
    assert same < diff
    again, _ = data.batch(torch.tensor([0, 0, 1, 1] * 8), torch.Generator().manual_seed(0))
    torch.testing.assert_close(imgs, again)


def test_pairs_are_half_genuine_and_impostors_differ():
    data = SyntheticFaces(30, size=16)
    g = torch.Generator().manual_seed(0)
    a, b, same = data.pairs(torch.arange(20, 30), 40, g)
    assert a.shape == b.shape == (40, 3, 16, 16) and int(same.sum()) == 20


def test_bad_ids():
    with pytest.raises(zoo.InputError, match=r"\[0, 5\)"):
        SyntheticFaces(5).batch(torch.tensor([5]), torch.Generator())


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_end_to_end_margins_train_and_verify():
    """A few minutes on a free CPU (benchmarks/face_e2e.py runs the full comparison)."""
    from zoo_face.e2e import train_and_verify

    out = train_and_verify("arcface", steps=100, batch_size=64, train_ids=200, test_ids=100,
                           num_pairs=1000, loss_options={"s": 32.0, "m": 0.5})
    assert out["accuracy"] > 0.8 and out["tar@far=0.1"] > 0.6, out
