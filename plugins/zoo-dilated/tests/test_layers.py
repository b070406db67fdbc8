"""Layers against torch.nn and torchvision, and their bad-input errors."""

import pytest
import torch
from torch import nn
from torchvision.models.segmentation.deeplabv3 import ASPP as TorchvisionASPP
from zoo_dilated.layers import (
    ASPP,
    CausalConv1d,
    DilatedCausalStack,
    DilatedConv1d,
    DilatedConv2d,
    SeparableAtrousConv2d,
    effective_kernel_size,
    same_padding,
)

import zoo_core as zoo


@pytest.mark.parametrize("k,r", [(1, 1), (3, 1), (3, 2), (3, 6), (5, 3), (7, 4)])
def test_dilated_conv2d_matches_torch_same_padding(k, r):
    torch.manual_seed(0)
    ours = DilatedConv2d(3, 5, kernel_size=k, rate=r)
    ref = nn.Conv2d(3, 5, k, padding="same", dilation=r)
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(2, 3, 23, 17)
    y = ours(x)
    assert y.shape == (2, 5, 23, 17)
    torch.testing.assert_close(y, ref(x))


@pytest.mark.parametrize("k,r", [(3, 1), (3, 5), (5, 2), (2, 3)])
def test_effective_kernel_size_is_the_span_of_taps(k, r):
    # A conv with unit weights on a delta: its non-zero outputs span the effective kernel.
    conv = nn.Conv1d(1, 1, k, dilation=r, padding=r * (k - 1), bias=False)
    nn.init.ones_(conv.weight)
    x = torch.zeros(1, 1, 41)
    x[0, 0, 20] = 1
    nz = conv(x)[0, 0].nonzero().flatten()
    assert effective_kernel_size(k, r) == int(nz.max() - nz.min()) + 1 == k + (k - 1) * (r - 1)


def test_dilated_conv1d_keeps_length():
    conv = DilatedConv1d(4, 4, kernel_size=3, rate=7)
    assert conv.padding == (7,)
    assert conv(torch.randn(1, 4, 30)).shape == (1, 4, 30)


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, "2"])
def test_bad_rate_is_named(bad):
    with pytest.raises(zoo.ConfigError, match=repr(bad).replace("(", r"\(")):
        DilatedConv2d(3, 3, 3, rate=bad)


def test_even_kernel_same_padding_refused():
    with pytest.raises(zoo.ConfigError, match="kernel_size=4"):
        same_padding(4, 2)
    with pytest.raises(zoo.ConfigError, match="kernel_size=2 is even"):
        DilatedConv2d(3, 3, kernel_size=2, rate=3)
    assert DilatedConv2d(3, 3, kernel_size=2, rate=3, padding=0).dilation == (3, 3)


def test_separable_equals_depthwise_then_pointwise():
    torch.manual_seed(0)
    ours = SeparableAtrousConv2d(6, 10, kernel_size=3, rate=4, norm="none", act="none")
    dw = nn.Conv2d(6, 6, 3, padding="same", dilation=4, groups=6, bias=False)
    pw = nn.Conv2d(6, 10, 1, bias=False)
    dw.weight.data.copy_(ours.depthwise.weight)
    pw.weight.data.copy_(ours.pointwise.weight)
    x = torch.randn(2, 6, 19, 19)
    torch.testing.assert_close(ours(x), pw(dw(x)))
    assert sum(p.numel() for p in ours.parameters()) == 3 * 3 * 6 + 6 * 10


def test_causal_conv_equals_truncated_full_padding():
    torch.manual_seed(0)
    ours = CausalConv1d(3, 4, kernel_size=3, rate=5)
    ref = nn.Conv1d(3, 4, 3, dilation=5, padding=10)
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(2, 3, 40)
    torch.testing.assert_close(ours(x), ref(x)[..., :40])


def test_causal_stack_is_causal_and_its_receptive_field_is_exact():
    torch.manual_seed(0)
    stack = DilatedCausalStack(4, rates=(1, 2, 4, 8), repeats=2).double()
    x = torch.randn(1, 4, 64, dtype=torch.double, requires_grad=True)
    t = 50
    stack(x)[0, :, t].sum().backward()
    reached = x.grad[0].abs().sum(0).nonzero().flatten()
    assert int(reached.max()) == t  # nothing from the future
    assert t - int(reached.min()) + 1 == stack.receptive_field == 1 + 2 * (1 + 2 + 4 + 8)


def test_aspp_matches_torchvision():
    torch.manual_seed(0)
    ref = TorchvisionASPP(16, [2, 4, 6], out_channels=8).eval()
    for m in ref.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    ours = ASPP(16, 8, rates=(2, 4, 6)).eval()
    names = {"convs.4.1.": "pool.conv.", "convs.4.2.": "pool.bn.", "project.0.": "project.conv.",
             "project.1.": "project.bn."}
    state = {}
    for key, value in ref.state_dict().items():
        new = key
        for a, b in names.items():
            new = new.replace(a, b)
        for i in range(4):
            new = new.replace(f"convs.{i}.0.", f"branches.{i}.conv.")
            new = new.replace(f"convs.{i}.1.", f"branches.{i}.bn.")
        state[new] = value
    ours.load_state_dict(state)
    x = torch.randn(2, 16, 13, 11)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-5)


def test_aspp_bad_rate_names_branch():
    with pytest.raises(zoo.ConfigError, match=r"ASPP rates\[1\]=0"):
        ASPP(8, 8, rates=(6, 0, 18))
