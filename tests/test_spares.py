"""zoo.spares: a step buffer comes back only when nothing but the pool holds its memory."""

from __future__ import annotations

import gc

import torch

import zoo_core as zoo


class Owner:
    """Anything that takes a weak reference can own a pool."""


def test_memory_comes_back_once_released():
    owner = Owner()
    pool = zoo.spares.of(owner)
    like = torch.zeros(1)
    a = pool.empty("x", (64, 32), like)
    ptr = a.data_ptr()
    del a
    b = pool.empty("x", (64, 32), like)
    assert b.data_ptr() == ptr
    assert b._base is None and b.shape == (64, 32) and b.dtype == like.dtype


def test_memory_still_held_anywhere_is_never_handed_out():
    owner = Owner()
    pool = zoo.spares.of(owner)
    like = torch.zeros(1)
    a = pool.empty("x", (64, 32), like)
    ptr, view = a.data_ptr(), a[3:5]                # a view keeps the storage
    del a
    assert pool.empty("x", (64, 32), like).data_ptr() != ptr
    assert view.shape == (2, 32)
    w = torch.ones(8, requires_grad=True)
    saved = pool.empty("y", (8,), like).fill_(2.0)
    out = (w * saved).sum()                         # autograd saved it for backward
    del saved
    c = pool.empty("y", (8,), like).fill_(-1.0)
    out.backward()
    torch.testing.assert_close(w.grad, torch.full((8,), 2.0))
    assert c.min() == -1.0


def test_other_shapes_dtypes_and_roles_get_their_own():
    owner = Owner()
    pool = zoo.spares.of(owner)
    a = pool.empty("x", (4, 4), torch.zeros(1))
    ptr = a.data_ptr()
    del a
    assert pool.empty("x", (4, 4), torch.zeros(1, dtype=torch.float64)).dtype == torch.float64
    assert pool.empty("x", (2, 8), torch.zeros(1)).shape == (2, 8)
    assert pool.empty("z", (4, 4), torch.zeros(1)).data_ptr() != ptr


def test_pools_are_per_owner_and_go_with_it():
    from zoo_core import spares

    first, second = Owner(), Owner()
    assert zoo.spares.of(first) is zoo.spares.of(first)
    assert zoo.spares.of(first) is not zoo.spares.of(second)
    tensor_owner = torch.zeros(3)                   # keyed by identity, never by value
    assert zoo.spares.of(tensor_owner) is not zoo.spares.of(torch.zeros(3))
    key = id(second)
    del second
    gc.collect()
    assert key not in spares._pools


def test_off_the_cpu_it_is_a_plain_new_tensor():
    like = torch.zeros(1, device="meta")
    out = zoo.spares.of(Owner()).empty("x", (3, 2), like)
    assert out.device.type == "meta" and out.shape == (3, 2)
