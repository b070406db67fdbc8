"""DeepFace and DeepID: layer sizes and parameter counts from the papers, locally connected
layers against a per-position reference, training with every loss."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from zoo_face.local import LocallyConnected2d

import zoo_core as zoo


def conv(k: int, cin: int, cout: int) -> int:
    return k * k * cin * cout + cout


def local(positions: int, k: int, cin: int, cout: int) -> int:
    return positions * (k * k * cin * cout + cout)    # one filter bank and bias per position


def test_deepface_parameters_follow_the_paper():
    # Taigman et al. 2014, Fig. 2: 152² → C1 32@11² → 142², M2 3/2 → 71², C3 16@9² → 63²,
    # L4 16@9² → 55², L5 16@7²/2 → 25², L6 16@5² → 21², F7 4096, F8 4030
    layers = {"c1": conv(11, 3, 32), "c3": conv(9, 32, 16), "l4": local(55 * 55, 9, 16, 16),
              "l5": local(25 * 25, 7, 16, 16), "l6": local(21 * 21, 5, 16, 16),
              "f7": 21 * 21 * 16 * 4096 + 4096}
    net = zoo.create("model:deepface")
    for name, count in layers.items():
        assert sum(p.numel() for p in getattr(net, name).parameters()) == count, name
    assert net.config.map_sizes == (71, 63, 55, 25, 21)
    built = sum(p.numel() for p in net.parameters())
    assert built == sum(layers.values()) == 102_412_864      # C1…F7 and nothing else
    # F8, the 4,030-way softmax, is the loss's class centres (weight and bias), not the model's
    f8 = zoo.create("loss:softmax", embedding_size=4096, num_classes=4030)
    f8_count = sum(p.numel() for p in f8.parameters())
    assert f8_count == conv(1, 4096, 4030)
    # the paper's "more than 120 million parameters, more than 95% in the local and fully
    # connected layers": its own table gives 118.9 M with F8, which rounds to 120 M only at two
    # significant digits; the 95% holds
    total = built + f8_count
    assert round(total / 1e6, 1) == 118.9 and round(total, -7) == 120_000_000
    local_and_fc = sum(sum(p.numel() for p in getattr(net, n).parameters())
                       for n in ("l4", "l5", "l6", "f7")) + f8_count
    assert local_and_fc / total > 0.95
    with torch.no_grad():
        assert net(torch.randn(1, 3, 152, 152)).shape == (1, 4096)


def test_deepid_parameters_follow_the_paper():
    # Sun et al. 2014, Fig. 2 (31×31 patch): conv1 20@4² → 28², pool → 14², conv2 40@3² →
    # 12², pool → 6², conv3 60@3² shared in 2×2 blocks → 4² (4 banks), pool → 2², conv4
    # 80@2² unshared → 1², DeepID 160 from pool3 (2·2·60) and conv4 (1·1·80)
    layers = {"conv1": conv(4, 3, 20), "conv2": conv(3, 20, 40),
              "conv3": local(4, 3, 40, 60), "conv4": local(1, 2, 60, 80),
              "from_pool3": 2 * 2 * 60 * 160 + 160, "from_conv4": 80 * 160}
    net = zoo.create("model:deepid")
    for name, count in layers.items():
        assert sum(p.numel() for p in getattr(net, name).parameters()) == count, name
    assert sum(p.numel() for p in net.parameters()) == sum(layers.values())


def test_deepid_layer_sees_conv3_and_conv4():
    net = zoo.create("model:deepid").eval()
    x = torch.randn(3, 3, 31, 31, requires_grad=True)
    out = net(x)
    out.sum().backward()
    assert net.from_pool3.weight.grad.abs().sum() > 0
    assert net.from_conv4.weight.grad.abs().sum() > 0


@pytest.mark.parametrize(("share", "stride"), [(1, 1), (1, 2), (2, 1)])
def test_locally_connected_equals_a_per_position_reference(share, stride):
    torch.manual_seed(0)
    layer = LocallyConnected2d(3, 5, 3, (9, 8), stride=stride, share=share)
    x = torch.randn(2, 3, 9, 8, dtype=torch.float64)
    layer = layer.double()
    out = layer(x)
    h, w = layer.output_size
    cols = -(-w // share)
    for i in range(h):
        for j in range(w):
            bank = (i // share) * cols + j // share
            patch = x[:, :, i * stride:i * stride + 3, j * stride:j * stride + 3]  # (B, 3, 3, 3)
            want = F.linear(patch.reshape(2, -1), layer.weight[bank], layer.bias[bank])
            torch.testing.assert_close(out[:, :, i, j], want)


def test_locally_connected_refuses_a_too_small_input():
    with pytest.raises(zoo.ConfigError, match="does not fit"):
        LocallyConnected2d(3, 4, 5, (4, 4))
    with pytest.raises(zoo.ConfigError, match="too small"):
        zoo.create("model:deepid", input_size=10)


LOSSES = ["softmax", "l-softmax", "sphereface", "normface", "cosface", "arcface",
          "combined-margin", "subcenter-arcface", "adaface", "magface", "partial-fc"]


@pytest.mark.parametrize("backbone", ["deepface", "deepid"])
@pytest.mark.parametrize("loss", LOSSES)
def test_trains_with_every_loss(backbone, loss, tmp_path):
    """Three steps move every weight of the backbone: the loss's gradient reaches them all."""
    from zoo_face.e2e import train_and_verify

    tiny = zoo.create(f"model:{backbone}", preset="tiny").config
    config = {k: getattr(tiny, k) for k in ("input_size", "widths", "kernels",
                                             "embedding_size")}
    out = train_and_verify(loss, steps=3, batch_size=16, train_ids=20, test_ids=10,
                           num_pairs=40, backbone=f"model:{backbone}", backbone_config=config,
                           lr=0.01, progress=False, save_to=tmp_path)
    assert torch.isfinite(torch.tensor(out["final_loss"]))
    torch.manual_seed(0)                                 # train_and_verify's seed: the init
    before = zoo.create(f"model:{backbone}", **config).state_dict()
    after = zoo.load(f"dir:{tmp_path}").state_dict()
    still = [k for k, v in before.items() if v.is_floating_point() and torch.equal(v, after[k])]
    assert not still, f"{loss} left {still} untouched"


@pytest.mark.slow
@pytest.mark.parametrize("backbone", ["deepface", "deepid"])
def test_learns_synthetic_identities(backbone):
    from zoo_face.e2e import train_and_verify

    tiny = zoo.create(f"model:{backbone}", preset="tiny").config
    config = {k: getattr(tiny, k) for k in ("input_size", "widths", "kernels",
                                             "embedding_size")}
    out = train_and_verify("arcface", steps=300, batch_size=64, train_ids=200, test_ids=100,
                           backbone=f"model:{backbone}", backbone_config=config, lr=0.05,
                           progress=False)
    assert out["accuracy"] > 0.6
