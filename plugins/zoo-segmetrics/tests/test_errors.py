"""Bad input gives clear errors that name the bad value."""

from __future__ import annotations

import pytest
import torch

import zoo_core as zoo
from zoo_core import ConfigError, InputError


def make(**kw):
    return zoo.create("metric:segmentation", **{"num_classes": 3, **kw})


def test_shape_mismatch():
    with pytest.raises(InputError,
                       match=r"shape mismatch: preds \(2, 4, 4\) vs target \(2, 4, 5\)"):
        make().update(torch.zeros(2, 4, 4, dtype=torch.long),
                      torch.zeros(2, 4, 5, dtype=torch.long))
    with pytest.raises(InputError, match=r"scores must be \(N, C, ...\)"):
        make().update(torch.randn(2, 4, 4, 4), torch.zeros(2, 4, 4, dtype=torch.long))


def test_labels_out_of_range_name_the_values():
    target = torch.tensor([[0, 1, 7, 255, -2]])
    with pytest.raises(InputError, match=r"target holds labels \[-2, 7\] outside \[0, 3\)"):
        make().update(torch.zeros_like(target), target)
    with pytest.raises(InputError, match=r"preds hold labels \[5\] outside \[0, 3\)"):
        make().update(torch.tensor([[0, 5]]), torch.tensor([[0, 255]]))  # 255 is ignored


def test_ignore_index_none_makes_255_invalid():
    with pytest.raises(InputError, match=r"\[255\]"):
        make(ignore_index=None).update(torch.tensor([[0]]), torch.tensor([[255]]))


def test_float_targets_and_float_indices():
    with pytest.raises(InputError, match="target must be .*integer.*, got dtype torch.float32"):
        make().update(torch.zeros(1, 4, dtype=torch.long), torch.zeros(1, 4))
    with pytest.raises(InputError, match=r"preds.long\(\)"):
        make().update(torch.zeros(1, 4), torch.zeros(1, 4, dtype=torch.long))


@pytest.mark.parametrize("bad", [1, 0, -3, 2.5, True])
def test_num_classes_below_two(bad):
    with pytest.raises(ConfigError, match=f"num_classes={bad!r} is invalid"):
        make(num_classes=bad)


@pytest.mark.parametrize("kw, match", [
    ({"mode": "multi"}, "mode='multi' is not a segmentation mode"),
    ({"aggregation": "batch"}, "aggregation='batch' is unknown"),
    ({"absent_score": 0.5}, "absent_score=0.5 must be None"),
    ({"mode": "binary"}, "num_classes=3 with mode='binary'"),
    ({"threshold": 2}, "threshold=2 must lie in"),
])
def test_bad_options(kw, match):
    with pytest.raises(ConfigError, match=match):
        make(**kw)


def test_merge_refuses_other_configurations():
    with pytest.raises(ConfigError, match="configured differently"):
        make().merge(make(ignore_index=None))
    with pytest.raises(ConfigError, match=r"configured differently: \(3, .* vs \(4, "):
        make().merge(make(num_classes=4))


@pytest.mark.parametrize("aggregation", ["dataset", "image"])
@pytest.mark.parametrize("ignore_index", [None, 255, 1])
def test_label_equal_to_num_classes_is_caught(aggregation, ignore_index):
    # label C with prediction 0 lands on index C*C, the bin the ignored pixels use
    m = make(ignore_index=ignore_index, aggregation=aggregation)
    with pytest.raises(InputError, match=r"target holds labels \[3\]"):
        m.update(torch.tensor([[0, 2, 0]]), torch.tensor([[0, 3, 3]]))


def test_multilabel_targets_must_be_zero_one():
    m = make(mode="multilabel")
    with pytest.raises(InputError, match=r"target holds labels \[2\] outside \[0, 2\)"):
        m.update(torch.zeros(1, 3, 4, dtype=torch.long), torch.full((1, 3, 4), 2))
