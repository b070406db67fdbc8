"""Analytic receptive fields against the empirical ones: back-propagate one output position
through a copy of the net whose weights are positive (so no path cancels) and whose max
pooling is swapped for average pooling of the same geometry (so every window position gets
gradient), then read which input positions received gradient."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from zoo_dilated.layers import DilatedCausalStack
from zoo_dilated.rf import min_input_size, receptive_field

import zoo_core as zoo


def positive_copy(model: nn.Module) -> nn.Module:
    model = copy.deepcopy(model).double().eval()
    for m in list(model.modules()):
        for child_name, child in list(m.named_children()):
            if isinstance(child, nn.MaxPool2d):
                setattr(m, child_name, nn.AvgPool2d(child.kernel_size, child.stride,
                                                    child.padding, ceil_mode=child.ceil_mode))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv1d, nn.Conv2d)):
                m.weight.copy_(torch.rand_like(m.weight) + 0.5)
                m.weight /= m.weight[0].numel()  # keep activations O(1)
                if m.bias is not None:
                    m.bias.fill_(0.1)
            elif isinstance(m, nn.BatchNorm2d):
                m.running_mean.zero_()
                m.running_var.fill_(1.0)
                m.weight.data.fill_(1.0)
                m.bias.data.fill_(0.1)
    return model


def empirical_box(model, shape, index, output=None):
    """Inclusive (first, last) per spatial dim of inputs that reach output ``index``."""
    net = positive_copy(model)
    x = (torch.rand(shape, dtype=torch.double) + 0.5).requires_grad_()
    out = net(x)
    out = out[output] if output is not None else out
    out[(0, 0, *index)].backward()
    reached = x.grad[0].abs().sum(0) > 0
    boxes = []
    for d in range(reached.dim()):
        other = tuple(i for i in range(reached.dim()) if i != d)
        line = reached.any(dim=other) if other else reached
        nz = line.nonzero().flatten()
        boxes.append((int(nz.min()), int(nz.max())))
    return tuple(boxes), reached


def clipped(interval, shape):
    return tuple((max(0, int(a)), min(n - 1, int(b))) for (a, b), n in
                 zip(interval, shape[2:], strict=True))


def resnet18_trunk():
    m = torchvision.models.resnet18()
    return nn.Sequential(m.conv1, m.bn1, m.relu, m.maxpool, m.layer1, m.layer2, m.layer3,
                         m.layer4)


def chain():
    return nn.Sequential(nn.Conv2d(2, 3, 3, stride=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(3, 3, 5, padding=4, dilation=2), nn.AvgPool2d(3, 2, 1),
                         nn.Conv2d(3, 2, (3, 1), dilation=(3, 1)))


CASES = {
    # name: (factory, input shape, output index)
    "chain": (chain, (1, 2, 128, 80), (3, 4)),
    "torchvision-resnet18": (resnet18_trunk, (1, 3, 448, 8), (7, 0)),
    "dilated-resnet18-os8": (lambda: zoo.create("model:dilated-resnet", arch="resnet18",
                                                width=4, output_stride=8, num_classes=0),
                             (1, 3, 480, 48), (30, 2)),
    "dilated-resnet50-os16": (lambda: zoo.create("model:dilated-resnet", arch="resnet50",
                                                 width=4, output_stride=16, num_classes=0),
                              (1, 3, 512, 40), (16, 1)),
    "dilated-resnet-hdc": (lambda: zoo.create("model:dilated-resnet", arch="resnet34",
                                              width=2, output_stride=8, block_rates=(1, 2, 5),
                                              num_classes=0), (1, 3, 800, 24), (50, 1)),
    "context-module": (lambda: zoo.create("model:context-module", preset="basic",
                                          num_classes=2, init="kaiming"), (1, 2, 90, 90),
                       (45, 40)),
}


@pytest.mark.parametrize("name", CASES)
def test_analytic_matches_empirical(name):
    torch.manual_seed(0)
    factory, shape, index = CASES[name]
    model = factory()
    rf = receptive_field(model)
    # the first dimension is large enough that the interval is not clipped by the image
    a, b = rf.interval(index)[0]
    assert a >= 0 and b <= shape[2] - 1, f"{name}: test input too small to see the full RF"
    want = clipped(rf.interval(index), shape)
    got, _ = empirical_box(model, shape, index)
    assert got == want, f"{name}: empirical {got} vs analytic {want} ({rf})"


def test_known_values():
    # Yu & Koltun Table 1: the basic context module's receptive field is 67 × 67.
    ctx = zoo.create("model:context-module", preset="basic")
    rf = receptive_field(ctx)
    assert rf.size == (67, 67) and rf.jump == (1, 1) and rf.centre == (0, 0)
    assert [layer[1][0] for layer in rf.layers if layer[0].endswith(".0")] == \
        [3, 5, 9, 17, 33, 65, 67]
    # A plain chain by the textbook recurrence r_l = r_{l-1} + (k_l - 1) d_l j_{l-1}.
    net = chain()
    r, j, start = 1, 1, 0
    for k, s, d, p in [(3, 2, 1, 0), (2, 2, 1, 0), (5, 1, 2, 4), (3, 2, 1, 1), (3, 1, 3, 0)]:
        r, start, j = r + (k - 1) * d * j, start - p * j, j * s
    got = receptive_field(net)
    assert got.size[0] == r and got.jump[0] == j and got.start[0] == start
    assert got.size[1] == r - 2 * 3 * j  # the last layer is (3, 1) with dilation (3, 1)


def test_torchvision_resnet_full_net_is_global_and_trunk_sizes():
    assert receptive_field(torchvision.models.resnet18()).is_global
    rf = receptive_field(resnet18_trunk())
    assert rf.size == (435, 435) and rf.jump == (32, 32)


def test_causal_stack_1d_matches_its_formula():
    stack = DilatedCausalStack(4, rates=(1, 2, 4, 8, 16))
    rf = receptive_field(stack)
    assert rf.size == (stack.receptive_field,) and rf.start == (-(stack.receptive_field - 1),)
    assert rf.interval((10,)) == ((10 - 31, 10),)


def test_functional_net():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.randn(2, 1, 3, 3))

        def forward(self, x):
            x = F.pad(x, (2, 0, 1, 1))
            y = F.conv2d(x, self.w, dilation=2)
            return F.max_pool2d(torch.relu(y), 2) + F.avg_pool2d(y, 2)

    rf = receptive_field(Net())
    assert rf.size == (6, 6) and rf.jump == (2, 2) and rf.start == (-1, -2)


def test_global_operations():
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.GroupNorm(2, 4), nn.Conv2d(4, 1, 1))
    assert receptive_field(net).is_global
    deeplab = zoo.create("model:deeplabv3", preset="tiny")
    # the ASPP image-pooling branch sees the whole image
    assert receptive_field(deeplab.aspp, spatial_dims=2).is_global
    assert math.isinf(receptive_field(deeplab, output="logits").size[0])


def test_deeplab_without_pooling_names_the_upsampling():
    model = zoo.create("model:deeplabv3", preset="tiny", aspp_pooling=False)
    with pytest.raises(zoo.UnsupportedError, match="interpolate"):
        receptive_field(model)
    assert receptive_field(model.backbone).jump == (8, 8)


def test_unsupported_layer_is_named():
    net = nn.Sequential(nn.Conv2d(1, 1, 3), nn.ConvTranspose2d(1, 1, 2, stride=2))
    with pytest.raises(zoo.UnsupportedError, match=r"'1' \(ConvTranspose2d\)"):
        receptive_field(net)

    class TwoScales(nn.Module):
        def __init__(self):
            super().__init__()
            self.down = nn.Conv2d(1, 1, 3, stride=2, padding=1)
            self.up = nn.Upsample(scale_factor=2)

        def forward(self, x):
            return x + self.up(self.down(x))

    with pytest.raises(zoo.UnsupportedError, match="'up'"):
        receptive_field(TwoScales())


def test_min_input_size_against_torch():
    net = nn.Sequential(nn.Conv2d(1, 1, 3, dilation=4), nn.MaxPool2d(3, 2), nn.Conv2d(1, 1, 3),
                        nn.Conv2d(1, 1, 3, dilation=2))
    smallest = next(n for n in range(1, 100) if _runs(net, n))
    assert min_input_size(net) == smallest
    with pytest.raises(zoo.InputError, match=r"layer '\d'"):
        receptive_field(net, input_size=(smallest - 1, smallest - 1))
    receptive_field(net, input_size=(smallest, smallest))


def _runs(net, n):
    try:
        net(torch.zeros(1, 1, n, n))
    except RuntimeError:
        return False
    return True


def test_valid_context_module_refuses_small_inputs():
    ctx = zoo.create("model:context-module", preset="basic", num_classes=2, padding="valid")
    assert min_input_size(ctx) == 67
    assert ctx(torch.randn(1, 2, 67, 70)).shape == (1, 2, 1, 4)
    with pytest.raises(zoo.InputError, match="66×70 is smaller than the network's minimum 67×67"):
        ctx(torch.randn(1, 2, 66, 70))


def test_bad_output_key():
    with pytest.raises(zoo.InputError, match="output='out'"):
        receptive_field(zoo.create("model:deeplabv3", preset="tiny"), output="out")
