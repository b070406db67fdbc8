"""Training helpers, evaluation through metric:segmentation, and the slow training run."""

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset
from zoo_dilated.data import IGNORE_INDEX, SyntheticShapes
from zoo_dilated.train import count_macs, evaluate, train

import zoo_core as zoo

needs_metric = pytest.mark.skipif(
    "metric:segmentation" not in zoo.REGISTRY.components(),
    reason="metric:segmentation (zoo-segmetrics) is not installed")


class Constant(nn.Module):
    """Predicts class 0 everywhere."""

    def __init__(self, num_classes):
        super().__init__()
        self.num_classes = num_classes

    def forward(self, x):
        logits = torch.zeros(x.shape[0], self.num_classes, *x.shape[-2:])
        logits[:, 0] = 1
        return {"logits": logits}


@needs_metric
def test_evaluate_through_the_registry():
    data = TensorDataset(*SyntheticShapes(12, 32, seed=0).tensors())
    labels = data.tensors[1]
    valid = labels != IGNORE_INDEX
    background = float((labels[valid] == 0).double().mean())
    scores = evaluate(Constant(6), data, num_classes=6)
    # all-background: IoU_0 = #background / #valid, every other class 0
    assert scores["mean_iou"] == pytest.approx(background / 6)
    assert scores["pixel_accuracy"] == pytest.approx(background)


@pytest.fixture
def one_thread():
    """Tiny models train faster on one thread (and do not stall on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_train_steps_update_the_model(one_thread):
    torch.manual_seed(0)
    data = TensorDataset(*SyntheticShapes(8, 32, seed=0).tensors())
    model = zoo.create("model:deeplabv3", preset="tiny", num_classes=6)
    before = [p.detach().clone() for p in model.parameters()]
    result = train(model, data, steps=2, batch_size=4)
    assert result.steps == 2 and torch.isfinite(torch.tensor(result.final_loss))
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_count_macs_by_hand():
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=2,
                                                                  dilation=2, groups=2))
    assert count_macs(net, 8) == 8 * 8 * 4 * 27 + 8 * 8 * 4 * 18


@pytest.mark.slow
@needs_metric
def test_dilated_deeplab_learns_the_shapes(one_thread):
    train_set = TensorDataset(*SyntheticShapes(3000, 64, seed=0).tensors())
    test_set = TensorDataset(*SyntheticShapes(200, 64, seed=12345).tensors())
    torch.manual_seed(0)  # the first run of benchmarks/dilated_synthetic.py
    model = zoo.create("model:deeplabv3", backbone="resnet34", width=8, aspp_channels=32,
                       num_classes=6, aspp_dropout=0.1, output_stride=8, aspp_rates=(1, 2, 3))
    train(model, train_set, steps=1000, batch_size=8)
    scores = evaluate(model, test_set, num_classes=6)
    labels = test_set.tensors[1]
    background = float((labels[labels != IGNORE_INDEX] == 0).double().mean())
    # observed 0.22 (1000 steps, 1 thread); predicting background everywhere gives ≈ 0.12
    assert scores["mean_iou"] > background / 6 + 0.05
