"""Parity of metric:segmentation with torchmetrics and with the formulas computed in numpy."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torchmetrics.classification import (
    BinaryJaccardIndex,
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassJaccardIndex,
    MulticlassPrecision,
    MultilabelJaccardIndex,
)

import zoo_core as zoo

IGNORE = 255


def reference(pred: np.ndarray, target: np.ndarray, C: int, ignore: int | None = IGNORE) -> dict:
    """The seed's formulas over p_ij (pixels of class i predicted as j), written out in numpy."""
    keep = np.ones(target.shape, bool) if ignore is None else target != ignore
    p = np.zeros((C, C), np.int64)
    for i, j in zip(target[keep].ravel(), pred[keep].ravel(), strict=True):
        p[i, j] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        t = p.sum(1)  # pixels of class i
        col = p.sum(0)  # pixels predicted as j
        diag = np.diag(p).astype(float)
        iou = diag / (t + col - diag)
        acc = diag / t
        prec = diag / col
        dice = 2 * diag / (t + col)
        return {
            "confusion_matrix": p, "iou": iou, "accuracy": acc, "precision": prec,
            "recall": acc, "dice": dice,
            "pixel_accuracy": diag.sum() / p.sum(),
            "mean_accuracy": np.nanmean(acc), "mean_iou": np.nanmean(iou),
            "fw_iou": np.nansum(t / t.sum() * iou), "mean_dice": np.nanmean(dice),
            "mean_precision": np.nanmean(prec), "mean_recall": np.nanmean(acc),
        }


def assert_matches(got: dict, ref: dict) -> None:
    for k, v in ref.items():
        value = got[k].numpy() if isinstance(got[k], torch.Tensor) else got[k]
        np.testing.assert_allclose(value, v, rtol=1e-12, atol=1e-12, err_msg=k)


def random_batch(gen: torch.Generator, C: int, shape=(3, 17, 13), ignored=0.1):
    target = torch.randint(0, C, shape, generator=gen)
    target[torch.rand(shape, generator=gen) < ignored] = IGNORE
    logits = torch.randn(shape[0], C, *shape[1:], generator=gen)
    return logits, target


@pytest.mark.parametrize("C", [2, 5, 21])
def test_random_inputs_match_numpy_and_torchmetrics(C):
    gen = torch.Generator().manual_seed(C)
    metric = zoo.create("metric:segmentation", num_classes=C, ignore_index=IGNORE)
    tm = {
        "mean_iou": MulticlassJaccardIndex(C, average="macro", ignore_index=IGNORE),
        "iou": MulticlassJaccardIndex(C, average="none", ignore_index=IGNORE),
        "pixel_accuracy": MulticlassAccuracy(C, average="micro", ignore_index=IGNORE),
        "mean_accuracy": MulticlassAccuracy(C, average="macro", ignore_index=IGNORE),
        "precision": MulticlassPrecision(C, average="none", ignore_index=IGNORE),
    }
    preds, targets = [], []
    for _ in range(3):
        logits, target = random_batch(gen, C)
        metric.update(logits, target)
        for m in tm.values():
            m.update(logits, target)
        preds.append(logits.argmax(1))
        targets.append(target)
    got = metric.compute()
    assert_matches(got, reference(torch.cat(preds).numpy(), torch.cat(targets).numpy(), C))
    for key, m in tm.items():
        torch.testing.assert_close(torch.as_tensor(got[key], dtype=torch.float32), m.compute(),
                                   rtol=1e-6, atol=1e-7, msg=key)


def test_index_predictions_equal_logit_predictions():
    gen = torch.Generator().manual_seed(0)
    logits, target = random_batch(gen, 4)
    a = zoo.create("metric:segmentation", num_classes=4)
    b = zoo.create("metric:segmentation", num_classes=4)
    a.update(logits, target)
    b.update(logits.softmax(1).argmax(1).to(torch.uint8), target.to(torch.int32))
    assert torch.equal(a.compute()["confusion_matrix"], b.compute()["confusion_matrix"])


def test_absent_classes_are_nan_and_excluded():
    # class 3 is in neither prediction nor target; class 2 is predicted but absent from target
    target = torch.tensor([[0, 0, 1, 1, 255, 0]])
    pred = torch.tensor([[0, 2, 1, 0, 3, 0]])
    got = zoo.create("metric:segmentation", num_classes=4)
    got.update(pred, target)
    res = got.compute()
    assert_matches(res, reference(pred.numpy(), target.numpy(), 4))
    assert torch.isnan(res["iou"][3]) and torch.isnan(res["accuracy"][2])
    assert res["iou"][2] == 0.0  # predicted, never right: defined and 0
    # torchmetrics' macro IoU also leaves out classes absent from both
    tm = MulticlassJaccardIndex(4, average="macro", ignore_index=IGNORE)
    assert res["mean_iou"] == pytest.approx(float(tm(pred, target)), rel=1e-6)


@pytest.mark.parametrize("score", [0.0, 1.0])
def test_absent_score_counts_undefined_as_value(score):
    target = torch.tensor([[0, 0, 1, 1]])
    pred = torch.tensor([[0, 1, 1, 1]])
    m = zoo.create("metric:segmentation", num_classes=3, absent_score=score)
    m.update(pred, target)
    res = m.compute()
    iou = [1 / 2, 2 / 3, score]  # class 2 absent from both
    assert res["iou"].tolist() == pytest.approx(iou)
    assert res["mean_iou"] == pytest.approx(sum(iou) / 3)


def test_one_class_only():
    target = torch.zeros(2, 4, 4, dtype=torch.long)
    m = zoo.create("metric:segmentation", num_classes=3)
    m.update(target.clone(), target)
    res = m.compute()
    assert res["pixel_accuracy"] == res["mean_iou"] == res["fw_iou"] == res["mean_dice"] == 1.0
    assert res["iou"][0] == 1.0 and res["iou"][1:].isnan().all()


def test_background_dominates_pixel_accuracy():
    """PA's weakness: predicting background everywhere scores high when it dominates."""
    target = torch.zeros(1, 100, dtype=torch.long)
    target[0, :5] = 1
    m = zoo.create("metric:segmentation", num_classes=2, ignore_index=None)
    m.update(torch.zeros_like(target), target)
    res = m.compute()
    assert res["pixel_accuracy"] == pytest.approx(0.95)
    assert res["mean_accuracy"] == pytest.approx(0.5) and res["mean_iou"] == pytest.approx(0.475)


def test_all_ignored_and_no_update_warn_and_give_nan():
    m = zoo.create("metric:segmentation", num_classes=3)
    with pytest.warns(RuntimeWarning, match="before any valid pixel"):
        assert np.isnan(m.compute()["mean_iou"])
    m.update(torch.randn(2, 3, 4, 4), torch.full((2, 4, 4), IGNORE))
    with pytest.warns(RuntimeWarning):
        res = m.compute()
    assert np.isnan(res["pixel_accuracy"]) and int(res["confusion_matrix"].sum()) == 0


def test_empty_batches_change_nothing():
    gen = torch.Generator().manual_seed(3)
    logits, target = random_batch(gen, 3)
    a, b = (zoo.create("metric:segmentation", num_classes=3) for _ in range(2))
    a.update(logits, target)
    b.update(torch.empty(0, 3, 17, 13), torch.empty(0, 17, 13, dtype=torch.long))
    b.update(logits, target)
    b.update(torch.empty(0, 17, 13, dtype=torch.long), torch.empty(0, 17, 13, dtype=torch.long))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.equal(a.compute()["confusion_matrix"], b.compute()["confusion_matrix"])


def test_per_image_aggregation_matches_numpy():
    gen = torch.Generator().manual_seed(4)
    logits, target = random_batch(gen, 4, shape=(5, 9, 9))
    target[2] = IGNORE  # an image with no valid pixel is skipped
    m = zoo.create("metric:segmentation", num_classes=4, aggregation="image")
    m.update(logits[:2], target[:2])
    m.update(logits[2:], target[2:])
    res = m.compute()
    pred = logits.argmax(1).numpy()
    refs = [reference(pred[i], target[i].numpy(), 4) for i in (0, 1, 3, 4)]
    for k in ("pixel_accuracy", "mean_iou", "fw_iou", "mean_dice", "mean_accuracy"):
        assert res[k] == pytest.approx(np.mean([r[k] for r in refs]), rel=1e-12), k
    per_class_iou = np.nanmean(np.stack([r["iou"] for r in refs]), 0)
    np.testing.assert_allclose(res["iou"].numpy(), per_class_iou, rtol=1e-12)
    assert res["confusion_matrix"].sum() == sum(r["confusion_matrix"].sum() for r in refs)


def test_binary_mode_matches_torchmetrics():
    gen = torch.Generator().manual_seed(5)
    probs = torch.rand(4, 16, 16, generator=gen)
    target = torch.randint(0, 2, (4, 16, 16), generator=gen)
    target[0, 0] = IGNORE
    m = zoo.create("metric:segmentation", num_classes=2, mode="binary", threshold=0.3)
    m.update(probs, target)
    tm = BinaryJaccardIndex(threshold=0.3, ignore_index=IGNORE)
    assert float(m.compute()["iou"][1]) == pytest.approx(float(tm(probs, target)), rel=1e-6)
    # logits: values outside [0, 1] go through a sigmoid first, as in torchmetrics
    logits = torch.randn(4, 16, 16, generator=gen) * 3
    m.reset()
    m.update(logits, target)
    tm = BinaryJaccardIndex(threshold=0.3, ignore_index=IGNORE)
    assert float(m.compute()["iou"][1]) == pytest.approx(float(tm(logits, target)), rel=1e-6)


def test_multilabel_mode_matches_torchmetrics():
    gen = torch.Generator().manual_seed(6)
    C = 3
    probs = torch.rand(2, C, 8, 8, generator=gen)
    target = torch.randint(0, 2, (2, C, 8, 8), generator=gen)
    target[1, 0, :2] = IGNORE
    m = zoo.create("metric:segmentation", num_classes=C, mode="multilabel")
    m.update(probs, target)
    res = m.compute()
    tm = MultilabelJaccardIndex(C, average="none", ignore_index=IGNORE)
    torch.testing.assert_close(res["iou"].float(), tm(probs, target), rtol=1e-6, atol=1e-7)
    assert res["confusion_matrix"].shape == (C, 2, 2)
    keep = target != IGNORE
    pred = probs >= 0.5
    assert res["pixel_accuracy"] == pytest.approx(float((pred == target)[keep].float().mean()))


def test_confusion_matches_torchmetrics(tmp_path):
    gen = torch.Generator().manual_seed(7)
    logits, target = random_batch(gen, 5)
    cm = zoo.create("metric:confusion", num_classes=5)
    cm.update(logits, target)
    tm = MulticlassConfusionMatrix(5, ignore_index=IGNORE)
    assert torch.equal(cm.compute()["confusion_matrix"], tm(logits, target))
    tm_true = MulticlassConfusionMatrix(5, ignore_index=IGNORE, normalize="true")
    torch.testing.assert_close(cm.compute()["normalized"].float(), tm_true(logits, target))

    png = tmp_path / "sub" / "cm.png"
    fig = cm.plot(png, class_names=list("abcde"))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 2000
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == list("abcde")
    assert not list(png.parent.glob(".*"))  # no temp file left behind

    table = cm.table(class_names=list("abcde"))
    ref = reference(logits.argmax(1).numpy(), target.numpy(), 5)
    assert table["columns"][:3] == ["class", "pixels", "iou"]
    assert [r[1] for r in table["rows"]] == ref["confusion_matrix"].sum(1).tolist()
    assert [r[2] for r in table["rows"]] == pytest.approx(ref["iou"], abs=5e-5)


@pytest.mark.parametrize("per_image", [False, True])
@pytest.mark.parametrize("engine", ["c", "aten"])
@pytest.mark.parametrize("dtypes", [(torch.int64, torch.int64), (torch.int32, torch.uint8),
                                    (torch.uint8, torch.int32)])
def test_counts_split_over_threads_equal_torchmetrics(monkeypatch, per_image, engine,
                                                      dtypes) -> None:
    """The counts in parts (on threads: the C loop where it builds, else bincount) are
    torchmetrics' confusion matrix, ignored pixels and an ignore_index below, inside and past
    the classes included; a bad target or prediction still raises, naming it."""
    from zoo_segmetrics import _confmat

    if engine == "aten":
        monkeypatch.setenv("ZOO_SEGMETRICS_NATIVE", "0")
    elif _confmat.count_pairs(torch.zeros(1, dtype=torch.long),
                              torch.zeros(1, dtype=torch.long), 2, None) is None:
        pytest.skip("no working C compiler here")
    monkeypatch.setattr(_confmat, "_SPLIT", 1000)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 3)
    g = torch.Generator().manual_seed(3)
    C = 7
    t_type, p_type = dtypes
    for ignore in (IGNORE, -100, 3, None):
        if ignore is not None and not torch.iinfo(t_type).min <= ignore <= torch.iinfo(t_type).max:
            continue
        target = torch.randint(0, C, (4, 40, 50), generator=g)
        if ignore is not None:
            target[torch.rand(target.shape, generator=g) < 0.2] = ignore
        target = target.to(t_type)
        preds = torch.randint(0, C, target.shape, generator=g).to(p_type)
        ours = zoo.create("metric:segmentation", num_classes=C, ignore_index=ignore,
                          aggregation="image" if per_image else "dataset")
        ours.update(preds, target)
        peer = MulticlassConfusionMatrix(C, ignore_index=ignore)
        peer.update(preds.long(), target.long())
        assert torch.equal(ours.compute()["confusion_matrix"], peer.compute())
        bad = target.clone()
        bad[3, 39, 49] = 200  # past the last row, in the last part
        with pytest.raises(zoo.InputError, match="200"):
            ours.update(preds, bad)
        bad = preds.clone()
        bad[0, 0, 0] = 9
        with pytest.raises(zoo.InputError, match=r"preds hold labels \[9\]"):
            ours.update(bad, target)
