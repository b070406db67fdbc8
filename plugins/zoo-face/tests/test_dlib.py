"""dlib's face ResNet, landmarks and chain against dlib itself, and the .dat converter."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys

import matplotlib
import numpy as np
import pytest
from PIL import Image
from zoo_face.dlib_align import ShapePredictor, face_chip
from zoo_face.recognize import DlibChain

import zoo_core as zoo
from zoo_core.cli import main

dlib = pytest.importorskip("dlib")
skimage_data = pytest.importorskip("skimage.data")
models = pytest.importorskip("importlib.metadata").distribution("face-recognition-models")
MODELS = str(models.locate_file("face_recognition_models/models"))
HOPPER = os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg")


def lfw(i: int) -> np.ndarray:
    """An LFW face of skimage's subset (25x25 grey), upscaled 8x and padded: dlib finds it."""
    face = (skimage_data.lfw_subset()[i] * 255).astype(np.uint8)
    big = np.asarray(Image.fromarray(face).resize((200, 200), Image.BICUBIC).convert("RGB"))
    return np.pad(big, ((60, 60), (60, 60), (0, 0)), mode="edge")


def photos() -> list[np.ndarray]:
    """Real photos of several people: Grace Hopper, Eileen Collins and LFW faces, some moved."""
    hopper = Image.open(HOPPER).convert("RGB")
    collins = Image.fromarray(skimage_data.astronaut())
    moved = [hopper.transpose(Image.FLIP_LEFT_RIGHT), hopper.resize((358, 420)),
             collins.rotate(8, resample=Image.BILINEAR)]
    return [np.asarray(i) for i in (hopper, collins, *moved)] + [lfw(i) for i in range(0, 100, 10)]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """``dlib-resnet-v1`` and ``mtcnn`` offline, converted by the store from the packages."""
    mp = pytest.MonkeyPatch()
    mp.setenv("ZOO_CACHE", str(tmp_path_factory.mktemp("zoo-cache")))
    mp.setenv("HF_HUB_OFFLINE", "1")
    yield zoo.load("dlib-resnet-v1"), zoo.load("mtcnn")
    mp.undo()


@pytest.fixture(scope="module")
def peer():
    """dlib's own chain: HOG detector, 5-point predictor, descriptor."""
    return (dlib.get_frontal_face_detector(),
            dlib.shape_predictor(f"{MODELS}/shape_predictor_5_face_landmarks.dat"),
            dlib.face_recognition_model_v1(f"{MODELS}/dlib_face_recognition_resnet_model_v1.dat"))


def dlib_faces(peer, image):
    detector, predictor, _ = peer
    return [(r, predictor(image, r)) for r in detector(image, 1)]


def test_descriptors_equal_dlibs_on_real_chips(loaded, peer):
    net, _ = loaded
    chips = [dlib.get_face_chip(img, shape, size=150, padding=0.25)
             for img in photos() for _, shape in dlib_faces(peer, img)]
    chips += [np.asarray(Image.fromarray(lfw(i)[60:260, 60:260]).resize((150, 150)))
              for i in (1, 2, 3)]  # chips of other framings too
    theirs = np.array([peer[2].compute_face_descriptor(c) for c in chips])
    for start in range(0, len(chips), 16):  # batches, as the benchmark runs them
        ours = net.embed(np.stack(chips[start:start + 16])).numpy()
        np.testing.assert_allclose(ours, theirs[start:start + 16], atol=1e-4, rtol=0)
    assert len(chips) >= 15


def test_landmarks_and_chips_match_dlibs(loaded, peer):
    net, _ = loaded
    predictor = ShapePredictor(net.landmarks)
    for img in photos()[:8]:
        for r, shape in dlib_faces(peer, img):
            theirs = np.array([(p.x, p.y) for p in shape.parts()], dtype=float)
            ours = predictor(img, (r.left(), r.top(), r.right(), r.bottom()))
            assert np.abs(ours - theirs).max() <= 1.0
            chip = dlib.get_face_chip(img, shape, size=150, padding=0.25)
            np.testing.assert_array_equal(face_chip(img, theirs), chip)


def test_chain_gives_dlibs_distances_and_verdicts(loaded, peer):
    """Every pair within 0.05 of dlib's distance; the verdict equal wherever dlib's distance
    is not itself within that tolerance of the 0.6 threshold."""
    net, mtcnn = loaded
    chain = DlibChain(mtcnn, net)
    ours, theirs = [], []
    for img in photos():
        found, mine = dlib_faces(peer, img), chain(img)[0]
        assert found and mine
        r, shape = max(found, key=lambda f: f[0].area())
        theirs.append(np.array(peer[2].compute_face_descriptor(img, shape)))
        ours.append(max(mine, key=lambda f: f.score).descriptor.numpy())
    people = len(ours)
    for i, j in itertools.combinations(range(people), 2):
        d_theirs = float(np.linalg.norm(theirs[i] - theirs[j]))
        d_ours = float(np.linalg.norm(ours[i] - ours[j]))
        assert abs(d_ours - d_theirs) < 0.05, (i, j, d_ours, d_theirs)
        if abs(d_theirs - 0.6) >= 0.05:
            assert (d_ours < 0.6) == (d_theirs < 0.6), (i, j, d_ours, d_theirs)


def test_zoo_run_face_verify_defaults_to_dlib(loaded, peer, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    collins = tmp_path / "collins.png"
    Image.fromarray(skimage_data.astronaut()).save(collins)
    assert main(["--json", "run", "face-verify", HOPPER, str(collins)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["inputs"] == [HOPPER, str(collins)]
    assert out["threshold"] == 0.6 and out["same"] is False
    a, b = (np.asarray(Image.open(p).convert("RGB")) for p in (HOPPER, collins))
    d = [np.array(peer[2].compute_face_descriptor(x, dlib_faces(peer, x)[0][1])) for x in (a, b)]
    assert isinstance(out["distance"], float)
    assert abs(out["distance"] - np.linalg.norm(d[0] - d[1])) < 0.05
    assert out["rows"] == [{"distance": out["distance"], "threshold": 0.6, "same": False}]
    assert main(["--json", "run", "face-verify", HOPPER, HOPPER, "--threshold", "0.5"]) == 0
    same = json.loads(capsys.readouterr().out)
    assert same["same"] is True and same["distance"] == 0.0 and same["threshold"] == 0.5


def test_new_user_mistakes_name_the_fix(loaded, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["run", "face-verify", HOPPER, HOPPER, "--model", "face-verify"]) == 1
    assert "is a face detector" in capsys.readouterr().err
    assert main(["run", "face-verify", HOPPER]) == 2  # too few inputs: a usage error
    err = capsys.readouterr().err
    assert err.count("usage:") == 1 and "zoo run face-verify" in err
    with pytest.raises(zoo.InputError, match=r"mtcnn\.detect\(img\)"):
        loaded[1](Image.open(HOPPER))


def test_face_identify_finds_the_enrolled_person(loaded, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hopper = Image.open(HOPPER).convert("RGB")
    people = {"hopper": [hopper.transpose(Image.FLIP_LEFT_RIGHT), hopper.resize((400, 469))],
              "collins": [Image.fromarray(skimage_data.astronaut())],
              "lfw0": [Image.fromarray(lfw(0))]}
    for name, images in people.items():
        (tmp_path / "people" / name).mkdir(parents=True)
        for k, img in enumerate(images):
            img.save(tmp_path / "people" / name / f"{k}.png")
    saved = tmp_path / "people.safetensors"
    assert main(["--json", "run", "face-identify", HOPPER, "--gallery",
                 str(tmp_path / "people"), "--save", str(saved)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["inputs"] == [HOPPER]
    top = out["faces"][0]["candidates"]
    assert top[0]["identity"] == "hopper" and top[0]["match"] is True
    assert [c["distance"] for c in top] == sorted(c["distance"] for c in top)
    assert main(["--json", "run", "face-identify", HOPPER, "--gallery", str(saved)]) == 0
    assert json.loads(capsys.readouterr().out)["faces"] == out["faces"]


def test_truncated_or_corrupt_dat_is_a_config_error_naming_the_offset(tmp_path, monkeypatch):
    from zoo_face.dlib_format import read_resnet, read_shape_predictor

    source = f"{MODELS}/dlib_face_recognition_resnet_model_v1.dat"
    data = open(source, "rb").read()
    cut = tmp_path / "cut.dat"
    cut.write_bytes(data[:400_000])
    with pytest.raises(zoo.ConfigError, match=r"'cut.dat' .* at byte offset \d+"):
        read_resnet(cut)
    bad = tmp_path / "bad.dat"
    bad.write_bytes(data[:334] + b"\x7f" + data[335:])  # a control byte no integer has
    with pytest.raises(zoo.ConfigError, match="at byte offset 334"):
        read_resnet(bad)
    with pytest.raises(zoo.ConfigError, match="byte offset"):
        read_shape_predictor(cut)
    # through the store: the entry, the file and the offset are named, nothing is cached
    folder = tmp_path / "src"
    folder.mkdir()
    shutil.copy(cut, folder / "dlib_face_recognition_resnet_model_v1.dat")
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(f"""schema = 1
[entries.cut-resnet]
component = "model:dlib-resnet"
sources = ["dir:{folder}"]
files = {{ "model.safetensors" = "" }}
[entries.cut-resnet.convert."model.safetensors"]
from = "dlib_face_recognition_resnet_model_v1.dat"
format = "dlib-resnet"
[entries.odd-format]
component = "model:dlib-resnet"
sources = ["dir:{folder}"]
files = {{ "model.safetensors" = "" }}
[entries.odd-format.convert."model.safetensors"]
from = "dlib_face_recognition_resnet_model_v1.dat"
format = "caffe"
""")
    monkeypatch.setenv("ZOO_CATALOG", str(catalog))
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "cache"))
    zoo.CATALOG.invalidate()
    try:
        with pytest.raises(zoo.ConfigError, match=r"'cut-resnet'.*byte offset \d+"):
            zoo.load("cut-resnet")
        with pytest.raises(zoo.ConfigError, match=r"'caffe'.*dlib-resnet"):
            zoo.load("odd-format")
    finally:
        zoo.CATALOG.invalidate()
    assert not list((tmp_path / "cache").rglob("*.safetensors"))


def test_conversion_is_the_same_bytes_in_another_process(loaded, tmp_path):
    """The store already checked this process's bytes against the pinned digests; a fresh
    process with its own cache must produce the same ones."""
    entry = zoo.CATALOG.get("dlib-resnet-v1")
    code = ("import zoo_core as zoo, json; e = zoo.CATALOG.get('dlib-resnet-v1'); "
            "d = zoo.STORE.fetch(e); "
            "print(json.dumps({f: zoo.sha256_file(d / f) for f in e.files}))")
    env = {**os.environ, "ZOO_CACHE": str(tmp_path / "other"), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == dict(entry.files)


def test_without_the_weights_package_face_verify_names_the_install(loaded, tmp_path, capsys,
                                                                   monkeypatch):
    catalog = tmp_path / "catalog.toml"  # the entry again, its package not installed
    catalog.write_text("""schema = 1
[entries.dlib-resnet-v1]
component = "model:dlib-resnet"
sources = ["pkg:face-recognition-models-missing/face_recognition_models/models"]
files = { "model.safetensors" = "" }
""")
    monkeypatch.setenv("ZOO_CATALOG", str(catalog))
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    zoo.CATALOG.invalidate()
    try:
        assert main(["run", "face-verify", HOPPER, HOPPER]) == 1
        assert "pip install face-recognition-models==0.3.0" in capsys.readouterr().err
    finally:
        zoo.CATALOG.invalidate()


def test_detection_rows_hold_numbers(loaded, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["--json", "run", "mtcnn", HOPPER]) == 0
    out = json.loads(capsys.readouterr().out)
    row = out["rows"][0]
    assert out["inputs"] == [HOPPER] and isinstance(row["score"], float)
    assert all(isinstance(v, float) for v in row["box"]) and len(row["landmarks"]) == 5
