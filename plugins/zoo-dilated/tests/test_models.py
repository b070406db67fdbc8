"""Models against torchvision (same logits from the same weights), their configs and errors."""

import copy

import pytest
import torch
import torchvision
from torch import nn
from torch.utils.checkpoint import checkpoint

import zoo_core as zoo


def randomise_norms(model: nn.Module) -> nn.Module:
    """Non-trivial BN statistics, so that a wrong mapping of BN tensors shows."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(m.num_features, generator=g) - 0.5)
    return model


def test_deeplabv3_resnet50_parity_with_torchvision(tmp_path):
    torch.manual_seed(0)
    ref = torchvision.models.segmentation.deeplabv3_resnet50(
        weights=None, weights_backbone=None, aux_loss=True)
    ref = randomise_norms(ref).eval()
    zoo.save_safetensors(ref.state_dict(), tmp_path / "tv.safetensors")
    ours = zoo.create("model:deeplabv3", preset="resnet50", aux_loss=True).eval()
    zoo.load_state_dict(ours, zoo.read_safetensors(tmp_path / "tv.safetensors"), "torchvision")
    x = torch.randn(1, 3, 72, 88)
    with torch.no_grad():
        want, got = ref(x), ours(x)
    torch.testing.assert_close(got["logits"], want["out"], rtol=0, atol=1e-5)
    assert got["logits"].shape == (1, 21, 72, 88)
    torch.testing.assert_close(got["aux_logits"], want["aux"], rtol=0, atol=1e-5)


def test_aux_head_only_when_asked():
    model = zoo.create("model:deeplabv3", preset="tiny", aux_loss=False).eval()
    assert list(model(**model.example_inputs())) == ["logits"] and model.aux_head is None


@pytest.mark.parametrize("arch,os,dilate", [
    ("resnet50", 16, [False, False, True]),
    ("resnet50", 8, [False, True, True]), ("resnet18", 32, None),
])
def test_dilated_resnet_parity_with_torchvision(arch, os, dilate):
    torch.manual_seed(0)
    ref = randomise_norms(getattr(torchvision.models, arch)(
        replace_stride_with_dilation=dilate)).eval()
    ours = zoo.create("model:dilated-resnet", arch=arch, output_stride=os).eval()
    zoo.load_state_dict(ours, dict(ref.state_dict()), "torchvision")
    x = torch.randn(1, 3, 64, 48)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=0, atol=1e-5)


def test_features_keep_output_stride():
    for os in (32, 16, 8):
        net = zoo.create("model:dilated-resnet", arch="resnet18", width=4, output_stride=os,
                         num_classes=0)
        assert net(torch.randn(1, 3, 96, 64)).shape == (1, 32, 96 // os, 64 // os)
    classifier_free = zoo.create("model:dilated-resnet", preset="resnet18", num_classes=0)
    state = torchvision.models.resnet18().state_dict()
    zoo.load_state_dict(classifier_free, dict(state), "torchvision")  # drops fc.*


def test_rates_scale_with_output_stride():
    assert zoo.create("model:deeplabv3", preset="resnet50-os16").config.rates == (6, 12, 18)
    model = zoo.create("model:deeplabv3", preset="resnet50")
    assert model.config.rates == (12, 24, 36)
    assert [b.conv.dilation[0] for b in model.aspp.branches] == [1, 12, 24, 36]


def test_block_rates_set_the_last_stage():
    net = zoo.create("model:dilated-resnet", arch="resnet50", width=4, output_stride=16,
                     block_rates=(2, 4, 8))
    assert [b.conv2.dilation[0] for b in net.layer4] == [2, 4, 8]
    default = zoo.create("model:dilated-resnet", arch="resnet50", width=4, output_stride=8)
    assert [b.conv2.dilation[0] for b in default.layer3] == [1] + [2] * 5
    assert [b.conv2.dilation[0] for b in default.layer4] == [2, 4, 4]


def test_deeplabv3_plus_decoder():
    model = zoo.create("model:deeplabv3", backbone="resnet18", width=8, aspp_channels=16,
                       decoder="plus", decoder_channels=16, separable=True, num_classes=4)
    out = model.eval()(torch.randn(2, 3, 64, 64))
    assert out["logits"].shape == (2, 4, 64, 64)
    assert model.decoder.fuse[0].conv.depthwise.groups == 16 + 48


def test_context_module_identity_init():
    x = torch.randn(1, 6, 40, 40)
    basic = zoo.create("model:context-module", preset="basic", num_classes=6)
    torch.testing.assert_close(basic(x), torch.relu(x))
    large = zoo.create("model:context-module", preset="large", num_classes=6, init_std=0.0)
    torch.testing.assert_close(large(x), torch.relu(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("ref,fields,match", [
    ("model:dilated-resnet", {"output_stride": 4}, "output_stride=4"),
    ("model:dilated-resnet", {"arch": "resnet51"}, "arch='resnet51'"),
    ("model:dilated-resnet", {"block_rates": (1, 0, 2)}, r"block_rates\[1\]=0"),
    ("model:dilated-resnet", {"block_rates": (1, 2)}, r"has 2 rates but resnet50 has 3"),
    ("model:deeplabv3", {"decoder": "v4"}, "decoder='v4'"),
    ("model:deeplabv3", {"aspp_rates": (6, -1)}, r"aspp_rates\[1\]=-1"),
    ("model:context-module", {"padding": "full"}, "padding='full'"),
])
def test_bad_config_is_named(ref, fields, match):
    with pytest.raises(zoo.ZooError, match=match):
        zoo.create(ref, **fields)


def test_bad_input_shape_is_named():
    model = zoo.create("model:deeplabv3", preset="tiny")
    with pytest.raises(zoo.InputError, match=r"\(B, 3, H, W\), got \(1, 32, 32\)"):
        model(torch.randn(1, 32, 32))
    with pytest.raises(zoo.InputError, match=r"got \(1, 4, 32, 32\)"):
        model(torch.randn(1, 4, 32, 32))


@pytest.mark.parametrize("ref", ["model:dilated-resnet", "model:deeplabv3",
                                 "model:context-module"])
def test_checkpointing_blocks_recompute_exactly(ref):
    # What transform:checkpoint does, done by hand: wrap each declared block's forward.
    model = zoo.create(ref, preset="tiny").train()
    twin = copy.deepcopy(model)
    for block in twin.grad_checkpointing_blocks():
        block.forward = (lambda f: lambda *a: checkpoint(f, *a, use_reentrant=False))(
            block.forward)
    inputs = model.example_inputs()
    grads = []
    for m in (model, twin):
        torch.manual_seed(1)
        out = m(**inputs)
        tensors = list(out.values()) if isinstance(out, dict) else [out]
        sum(t.float().mean() for t in tensors).backward()
        grads.append({n: p.grad for n, p in m.named_parameters()})
    for n, g in grads[0].items():
        torch.testing.assert_close(grads[1][n], g, rtol=1e-5, atol=1e-6, msg=n)
    assert len(twin.grad_checkpointing_blocks()) > 1


def test_fused_batchnorm_matches_torchvision():
    torch.manual_seed(0)
    ref = randomise_norms(torchvision.models.resnet18()).eval()
    ours = zoo.create("model:dilated-resnet", preset="resnet18").eval()
    zoo.load_state_dict(ours, dict(ref.state_dict()), "torchvision")
    ours.fuse_batchnorm()
    assert not any(isinstance(m, nn.BatchNorm2d) for m in ours.modules())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=1e-4, atol=1e-4)


def test_fused_batchnorm_deeplab_plus_separable():
    model = randomise_norms(zoo.create("model:deeplabv3", backbone="resnet10", width=8,
                                       aspp_channels=16, decoder="plus", separable=True,
                                       decoder_channels=16, num_classes=3, aux_loss=True))
    with pytest.raises(zoo.InputError, match=r"call model\.eval\(\) first"):
        model.fuse_batchnorm()
    model.eval()
    x = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        want = model(x)
        got = copy.deepcopy(model).fuse_batchnorm()(x)
    for key in want:
        torch.testing.assert_close(got[key], want[key], rtol=1e-4, atol=1e-5)
