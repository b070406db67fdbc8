"""The chain detect → align → embed, the `mtcnn` catalogue entry and the `zoo run` tasks."""

from __future__ import annotations

import json
import os

import facenet_pytorch  # dev dependencies: a missing peer fails, never skips
import matplotlib
import numpy as np
import pytest
import skimage.data as skimage_data
import torch
from PIL import Image
from zoo_face.pipeline import FacePipeline, aligned_crops

import zoo_core as zoo
from zoo_core.cli import main

HOPPER = os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg")


@pytest.fixture(scope="module")
def detector(tmp_path_factory):
    """``zoo.load("mtcnn")`` offline: converted from facenet-pytorch's files by the store."""
    mp = pytest.MonkeyPatch()
    mp.setenv("ZOO_CACHE", str(tmp_path_factory.mktemp("zoo-cache")))
    mp.setenv("HF_HUB_OFFLINE", "1")
    yield zoo.load("mtcnn")
    mp.undo()


@pytest.fixture(scope="module")
def recognizer_dir(tmp_path_factory):
    """A recognition model trained by the synthetic end-to-end run, saved as a folder."""
    from zoo_face.e2e import train_and_verify

    folder = tmp_path_factory.mktemp("iresnet-synthetic")
    result = train_and_verify("arcface", steps=20, batch_size=32, train_ids=40, test_ids=20,
                              num_pairs=100, save_to=folder, progress=False)
    return folder, result["threshold"]


def test_entry_loads_the_published_weights(detector):
    peer = facenet_pytorch.MTCNN()
    mine = detector.state_dict()
    theirs = zoo.create("model:mtcnn")
    zoo.load_state_dict(theirs, peer.state_dict(), layout="facenet-pytorch")
    for key, value in theirs.state_dict().items():
        assert torch.equal(mine[key], value), key


def test_entry_detects_like_facenet_pytorch(detector):
    image = Image.open(HOPPER)
    boxes, probs = facenet_pytorch.MTCNN(keep_all=True).detect(image)
    faces = detector.detect(image)[0]
    # the precision claimed (tests/test_mtcnn.py): 1.5e-4 px, probabilities 1e-6
    np.testing.assert_allclose(faces.boxes.numpy(), np.asarray(boxes, np.float32), atol=1.5e-4,
                               rtol=0)
    np.testing.assert_allclose(faces.scores.numpy(), np.asarray(probs, np.float32), atol=1e-6,
                               rtol=0)


@pytest.mark.parametrize("image", [Image.open(HOPPER).convert("RGB"),
                                   Image.fromarray(skimage_data.astronaut())],
                         ids=["grace-hopper", "astronaut"])
def test_aligned_crop_matches_the_crop_from_facenet_landmarks(detector, image):
    _, _, theirs = facenet_pytorch.MTCNN(keep_all=True).detect(image, landmarks=True)
    theirs = torch.tensor(np.asarray(theirs, np.float64))
    face = FacePipeline(detector)(image)[0][0]
    tensor = torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).float()
    ref = aligned_crops(tensor, theirs)[0]
    shifted = aligned_crops(tensor, theirs + torch.tensor([1.0, 0.0]))[0]
    one_pixel = (shifted - ref).abs().mean()
    assert (face.crop - ref).abs().mean() < one_pixel, "crops differ by more than a 1 px shift"
    assert face.crop.shape == (3, 112, 112)


def test_chain_returns_boxes_crops_and_unit_embeddings(detector, recognizer_dir):
    folder, _ = recognizer_dir
    chain = FacePipeline(detector, recognizer=f"dir:{folder}")
    images = [Image.open(HOPPER), Image.fromarray(skimage_data.coffee())]
    hopper, coffee = chain(images)
    assert len(hopper) == 1 and coffee == []
    face = hopper[0]
    assert face.box.shape == (4,) and face.landmarks.shape == (5, 2)
    assert face.embedding is not None and face.embedding.shape == (128,)
    torch.testing.assert_close(face.embedding.norm(), torch.tensor(1.0))
    assert FacePipeline(detector)(images)[0][0].embedding is None


def test_zoo_run_mtcnn_prints_and_draws(detector, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "annotated.png"
    assert main(["run", "mtcnn", HOPPER, "--out", str(out)]) == 0
    assert "grace_hopper.jpg" in capsys.readouterr().out
    drawn = np.asarray(Image.open(out))
    assert drawn.shape == (600, 512, 3)
    assert not np.array_equal(drawn, np.asarray(Image.open(HOPPER)))
    assert main(["--json", "run", "mtcnn", HOPPER]) == 0
    faces = json.loads(capsys.readouterr().out)["faces"]
    assert len(faces) == 1 and isinstance(faces[0]["score"], float)
    assert all(isinstance(v, float) for v in faces[0]["box"])
    assert np.asarray(faces[0]["landmarks"]).shape == (5, 2)


def _user_catalog(tmp_path, monkeypatch, text: str) -> None:
    path = tmp_path / "catalog.toml"
    path.write_text("schema = 1\n" + text)
    monkeypatch.setenv("ZOO_CATALOG", str(path))
    zoo.CATALOG.invalidate()


def test_face_verify_with_a_trained_entry(detector, recognizer_dir, tmp_path, capsys,
                                          monkeypatch):
    folder, threshold = recognizer_dir
    _user_catalog(tmp_path, monkeypatch, f"""
[entries.synthetic-iresnet]
component = "model:iresnet"
sources = ["dir:{folder}"]
files = {{ "config.json" = "", "model.safetensors" = "" }}
""")
    try:
        astronaut = tmp_path / "astronaut.png"
        Image.fromarray(skimage_data.astronaut()).save(astronaut)
        assert main(["--json", "run", "face-verify", HOPPER, HOPPER,
                     "--model", "synthetic-iresnet"]) == 0
        same = json.loads(capsys.readouterr().out)
        assert same["same"] is True and same["cosine"] == pytest.approx(1.0, abs=1e-5)
        assert same["threshold"] == pytest.approx(threshold)
        assert main(["--json", "run", "face-verify", HOPPER, str(astronaut),
                     "--model", f"dir:{folder}"]) == 0
        other = json.loads(capsys.readouterr().out)
        assert other["cosine"] < 0.9999 and other["same"] == (other["cosine"] >= threshold)
    finally:
        zoo.CATALOG.invalidate()


def test_face_verify_never_falls_back_to_random_weights(detector, tmp_path, capsys,
                                                        monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _user_catalog(tmp_path, monkeypatch, """
[entries.remote-iresnet]
component = "model:iresnet"
sources = ["hf:someone/iresnet50@0123456789abcdef0123456789abcdef01234567"]
files = { "model.safetensors" = "" }
""")
    try:
        assert main(["run", "face-verify", HOPPER, HOPPER, "--model", "remote-iresnet"]) == 1
        err = capsys.readouterr().err
        assert "remote-iresnet" in err and "hf:someone/iresnet50" in err
        assert main(["run", "face-verify", HOPPER, HOPPER, "--model", "model:iresnet"]) == 1
        assert "is a component, not an entry" in capsys.readouterr().err
    finally:
        zoo.CATALOG.invalidate()


def test_face_verify_needs_a_face_and_a_model(detector, recognizer_dir, tmp_path, capsys):
    coffee = tmp_path / "coffee.png"
    Image.fromarray(skimage_data.coffee()).save(coffee)
    assert main(["run", "face-verify", HOPPER, str(coffee), "--model",
                 f"dir:{recognizer_dir[0]}"]) == 1
    assert f"no face found in {str(coffee)!r}" in capsys.readouterr().err
    assert main(["run", "face-verify", HOPPER, HOPPER, "--model", "face-verify"]) == 1
    assert "'face-verify' is a face detector" in capsys.readouterr().err
    assert main(["run", "mtcnn", str(tmp_path / "missing.jpg")]) == 1
    assert "missing.jpg" in capsys.readouterr().err


def test_conversion_prefix_is_validated(tmp_path, monkeypatch):
    _user_catalog(tmp_path, monkeypatch, """
[entries.bad-prefix]
component = "model:mtcnn"
sources = ["pkg:facenet-pytorch/facenet_pytorch/data"]
files = { "pnet.safetensors" = "" }
convert = { "pnet.safetensors" = { from = "pnet.pt", prefix = "../pnet" } }
""")
    try:
        with pytest.raises(zoo.CatalogError, match="'prefix'"):
            zoo.CATALOG.get("bad-prefix")
    finally:
        zoo.CATALOG.invalidate()
