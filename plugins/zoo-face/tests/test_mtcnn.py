"""MTCNN against facenet-pytorch 2.5.3 (the published weights, its detector) on real photos.

The photos are two, Grace Hopper (matplotlib's sample data) and the astronaut Eileen Collins
(scikit-image's), and nine transformations of them: flipped, rotated, rescaled, and collages
of five faces at three scales. Boxes and landmarks agree within 1.5e-4 px (observed at most
1.22e-4 px, one float32 step at coordinates of 1024 to 2048 px), probabilities within 1e-6
(observed: identical).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import facenet_pytorch  # dev dependencies: a missing peer fails, never skips
import matplotlib
import numpy as np
import pytest
import skimage.data as skimage_data
import torch
from PIL import Image

import zoo_core as zoo

BOX_PX, SCORE = 1.5e-4, 1e-6  # the precision claimed in the README


def grace_hopper() -> Image.Image:
    path = os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg")
    return Image.open(path).convert("RGB")


def astronaut() -> Image.Image:
    return Image.fromarray(skimage_data.astronaut())


def collage(scale: float) -> Image.Image:
    """Several faces at several sizes on one grey canvas."""
    gh, ast = grace_hopper(), astronaut()
    canvas = Image.new("RGB", (int(1400 * scale), int(900 * scale)), (128, 128, 128))
    for img, s, at in ((gh, 0.9, (20, 20)), (ast, 0.7, (560, 40)),
                       (gh.transpose(Image.FLIP_LEFT_RIGHT), 0.45, (980, 420)),
                       (ast, 0.35, (300, 560)), (gh, 0.3, (1150, 60))):
        s *= scale
        canvas.paste(img.resize((int(img.width * s), int(img.height * s)), Image.BILINEAR),
                     (int(at[0] * scale), int(at[1] * scale)))
    return canvas


PHOTOS = {  # two photos and nine transformations of them
    "grace-hopper": grace_hopper,
    "astronaut": astronaut,
    "hopper-flipped": lambda: grace_hopper().transpose(Image.FLIP_LEFT_RIGHT),
    "astronaut-flipped": lambda: astronaut().transpose(Image.FLIP_LEFT_RIGHT),
    "hopper-rotated": lambda: grace_hopper().rotate(15, resample=Image.BILINEAR, expand=True),
    "astronaut-rotated": lambda: astronaut().rotate(-25, resample=Image.BILINEAR, expand=True),
    "hopper-small": lambda: grace_hopper().resize((240, 205), Image.BILINEAR),
    "astronaut-large": lambda: astronaut().resize((1100, 1100), Image.BILINEAR),
    "collage": lambda: collage(1.0),
    "collage-small": lambda: collage(0.6),
    "collage-large": lambda: collage(1.5),
}


@pytest.fixture(scope="module")
def peer():
    return facenet_pytorch.MTCNN(keep_all=True)


@pytest.fixture(scope="module")
def ours(peer):
    model = zoo.create("model:mtcnn")
    zoo.load_state_dict(model, peer.state_dict(), layout="facenet-pytorch")
    return model.eval()


def expected(peer, image):
    boxes, probs, marks = peer.detect(image, landmarks=True)
    if boxes is None:
        return np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2))
    return (np.asarray(boxes, np.float64), np.asarray(probs, np.float64),
            np.asarray(marks, np.float64))


def assert_same_faces(faces, want) -> None:
    boxes, probs, marks = want
    assert len(faces) == len(boxes), f"{len(faces)} faces, facenet-pytorch finds {len(boxes)}"
    if not len(boxes):
        return
    got = faces.boxes.double().numpy()
    # pair each reference face with our nearest box (orders differ: area vs score)
    pair = np.abs(boxes[:, None] - got[None]).sum(2).argmin(1)
    assert sorted(pair) == list(range(len(boxes))), "faces do not pair one to one"
    np.testing.assert_allclose(got[pair], boxes, atol=BOX_PX, rtol=0)
    np.testing.assert_allclose(faces.scores.double().numpy()[pair], probs, atol=SCORE, rtol=0)
    np.testing.assert_allclose(faces.landmarks.double().numpy()[pair], marks, atol=BOX_PX,
                               rtol=0)


@pytest.mark.parametrize("name", sorted(PHOTOS))
def test_parity_with_facenet_pytorch(peer, ours, name):
    image = PHOTOS[name]()
    faces = ours.detect(image)
    assert len(faces) == 1
    want = expected(peer, image)
    assert len(want[0]) >= 1
    assert_same_faces(faces[0], want)


def test_collage_finds_several_faces(peer, ours):
    assert len(ours.detect(collage(1.0))[0]) >= 4


@pytest.mark.parametrize("name", ["coffee", "rocket", "chelsea"])
def test_no_face_gives_an_empty_result(peer, ours, name):
    image = Image.fromarray(getattr(skimage_data, name)())
    assert expected(peer, image)[0].shape[0] == 0
    faces = ours.detect(image)[0]
    assert faces.boxes.shape == (0, 4) and faces.scores.shape == (0,)
    assert faces.landmarks.shape == (0, 5, 2)


def test_scores_come_sorted(ours):
    scores = ours.detect(collage(1.0))[0].scores
    assert torch.equal(scores, scores.sort(descending=True).values)


def test_input_kinds_agree(peer, ours):
    image = grace_hopper()
    array = np.asarray(image)
    chw = torch.from_numpy(array.copy()).permute(2, 0, 1)
    want = expected(peer, image)
    for given in (image, array, chw, chw.float() / 255, image.convert("RGBA"),
                  np.dstack([array, np.full(array.shape[:2], 255, np.uint8)])):
        faces = ours.detect(given)[0]
        assert_same_faces(faces, want)


def test_greyscale_is_converted(peer, ours):
    grey = grace_hopper().convert("L")
    want = expected(peer, grey.convert("RGB"))
    for given in (grey, np.asarray(grey), torch.from_numpy(np.asarray(grey).copy())[None]):
        assert_same_faces(ours.detect(given)[0], want)


@pytest.mark.parametrize("bad", [
    Image.new("I;16", (64, 64)),
    np.zeros((64, 64, 3), np.uint16),
    torch.zeros(3, 64, 64, dtype=torch.int32),
    torch.full((3, 64, 64), 200.0),                 # floats are read as [0, 1]
    np.zeros((64, 64, 2), np.uint8),
    "photo.jpg",
])
def test_bad_images_are_refused_clearly(ours, bad):
    with pytest.raises(zoo.InputError) as err:
        ours.detect(bad)
    assert "pass" in str(err.value) or "convert" in str(err.value)


def test_tiny_images_give_no_detection(ours):
    for size in ((10, 10), (19, 300), (1, 1)):
        faces = ours.detect(np.full((*size, 3), 128, np.uint8))[0]
        assert len(faces) == 0


def test_batch_of_different_sizes_equals_one_by_one(ours):
    images = [grace_hopper(), astronaut(), collage(0.6), grace_hopper(),
              Image.fromarray(skimage_data.coffee())]
    alone = [ours.detect(img)[0] for img in images]
    together = ours.detect(images)
    assert [len(f) for f in together] == [len(f) for f in alone]
    for a, b in zip(alone, together, strict=True):
        torch.testing.assert_close(b.boxes, a.boxes, atol=1e-3, rtol=0)
        torch.testing.assert_close(b.scores, a.scores, atol=1e-5, rtol=0)
        torch.testing.assert_close(b.landmarks, a.landmarks, atol=1e-3, rtol=0)


def test_pnet_strips_do_not_change_results(ours):
    image = collage(1.0)
    whole = ours.detect(image)[0]
    strips = zoo.create("model:mtcnn", tile_pixels=10_000)
    strips.load_state_dict(ours.state_dict())
    tiled = strips.eval().detect(image)[0]
    assert len(tiled) == len(whole)
    torch.testing.assert_close(tiled.boxes, whole.boxes, atol=1e-3, rtol=0)
    torch.testing.assert_close(tiled.scores, whole.scores, atol=1e-5, rtol=0)


def test_layout_permutes_the_dense_inputs(peer, ours):
    """Each net alone equals facenet-pytorch's on the same windows (heads mapped, flatten
    order converted)."""
    g = torch.Generator().manual_seed(0)
    x24, x48 = torch.randn(5, 3, 24, 24, generator=g), torch.randn(5, 3, 48, 48, generator=g)
    with torch.no_grad():
        reg, prob = peer.rnet(x24)
        logits, box = ours.rnet(x24)
        torch.testing.assert_close(logits.softmax(1), prob)
        torch.testing.assert_close(box, reg)
        reg, marks, prob = peer.onet(x48)
        logits, box, points = ours.onet(x48)
        torch.testing.assert_close(logits.softmax(1), prob)
        torch.testing.assert_close(points, marks)


def test_bad_config_is_refused():
    with pytest.raises(zoo.ConfigError, match="min_face"):
        zoo.create("model:mtcnn", min_face=5)
    with pytest.raises(zoo.ConfigError, match="factor"):
        zoo.create("model:mtcnn", factor=1.5)


_BIG = """
import resource, numpy as np, torch, zoo_core as zoo
from facenet_pytorch import MTCNN
torch.set_num_threads(2)
model = zoo.create("model:mtcnn").eval()
zoo.load_state_dict(model, MTCNN().state_dict(), layout="facenet-pytorch")
image = np.random.default_rng(0).integers(0, 256, (4000, 6000, 3), dtype=np.uint8)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
faces = model.detect(image)[0]
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 2**20, len(faces))
"""


@pytest.mark.slow
def test_6000x4000_runs_in_bounded_memory():
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(_BIG)], check=True,
                         capture_output=True, text=True).stdout.split()
    # the image as floats is 0.27 GiB and its summed-area table 0.54 GiB
    assert float(out[0]) < 2.0, f"peak RSS grew by {out[0]} GiB"
