"""The synthetic shapes set: determinism, classes, ignore label exactly on boundaries."""

import numpy as np
import pytest
import torch
from scipy import ndimage
from zoo_dilated.data import CLASSES, IGNORE_INDEX, SyntheticShapes

import zoo_core as zoo


def test_deterministic_per_index():
    a, b = SyntheticShapes(10, 48, seed=3), SyntheticShapes(10, 48, seed=3)
    for i in (0, 7):
        assert torch.equal(a[i][0], b[i][0]) and torch.equal(a[i][1], b[i][1])
    assert not torch.equal(a[0][0], SyntheticShapes(10, 48, seed=4)[0][0])


def test_all_classes_and_ignore_label_appear():
    _, labels = SyntheticShapes(40, 48, seed=0).tensors()
    assert len(CLASSES) >= 6  # background + at least five shape classes
    assert set(labels.unique().tolist()) == set(range(len(CLASSES))) | {IGNORE_INDEX}


@pytest.mark.parametrize("border", [1, 2])
def test_ignore_label_marks_class_boundaries(border):
    clean = SyntheticShapes(6, 40, seed=1, border=0)
    marked = SyntheticShapes(6, 40, seed=1, border=border)
    for i in range(6):
        image0, lab0 = clean[i]
        image1, lab1 = marked[i]
        assert torch.equal(image0, image1)
        lab = lab0.numpy()
        edge = np.zeros_like(lab, dtype=bool)  # a 4-neighbour has another class
        edge[1:] |= lab[1:] != lab[:-1]
        edge[:-1] |= lab[1:] != lab[:-1]
        edge[:, 1:] |= lab[:, 1:] != lab[:, :-1]
        edge[:, :-1] |= lab[:, 1:] != lab[:, :-1]
        if border > 1:
            edge = ndimage.binary_dilation(edge, np.ones((3, 3)), iterations=border - 1)
        ignored = (lab1 == IGNORE_INDEX).numpy()
        assert (ignored == edge).all()
        assert torch.equal(lab1[~torch.from_numpy(ignored)], lab0[~torch.from_numpy(ignored)])


def test_bad_arguments():
    with pytest.raises(zoo.InputError, match="size=8"):
        SyntheticShapes(4, size=8)
    with pytest.raises(IndexError):
        SyntheticShapes(4)[4]
