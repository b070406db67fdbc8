"""MTCNN face detection on CPU: zoo-face against facenet-pytorch 2.5.3, same run, same weights.

    .venv/bin/python benchmarks/face_detect_cpu.py [--repeats 5] [--threads 2]

Photos: matplotlib's Grace Hopper, scikit-image's astronaut and a 1400×900 collage of both at
five sizes. Outputs are checked equal first (same faces, boxes and landmarks within 1 px,
probabilities within 1e-4); then images per second, one photo per call and a batch of four
equal-size photos per call (facenet-pytorch batches only equal sizes).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _harness import Bench  # noqa: E402


def photos() -> list:
    import matplotlib
    from PIL import Image
    from skimage import data

    gh = Image.open(os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg"))
    gh, ast = gh.convert("RGB"), Image.fromarray(data.astronaut())
    canvas = Image.new("RGB", (1400, 900), (128, 128, 128))
    for img, s, at in ((gh, 0.9, (20, 20)), (ast, 0.7, (560, 40)), (gh, 0.45, (980, 420)),
                       (ast, 0.35, (300, 560)), (gh, 0.3, (1150, 60))):
        canvas.paste(img.resize((int(img.width * s), int(img.height * s))), at)
    return [gh, ast, canvas]


def check_equal(peer, ours, images) -> None:
    for img in images:
        boxes, probs, marks = peer.detect(img, landmarks=True)
        faces = ours.detect(img)[0]
        assert len(faces) == len(boxes), (len(faces), len(boxes))
        order = np.argsort(-np.asarray(probs, np.float64))
        np.testing.assert_allclose(faces.boxes.numpy(), np.asarray(boxes, np.float32)[order],
                                   atol=1.0)
        np.testing.assert_allclose(faces.scores.numpy(), np.asarray(probs, np.float32)[order],
                                   atol=1e-4)
        np.testing.assert_allclose(faces.landmarks.numpy(),
                                   np.asarray(marks, np.float32)[order], atol=1.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    bench = Bench("face_detect_cpu", threads=args.threads)

    import torch
    from facenet_pytorch import MTCNN

    import zoo_core as zoo

    peer = MTCNN(keep_all=True)
    ours = zoo.load("mtcnn")
    images = photos()
    four = [images[0], images[0].transpose(0), images[0].rotate(10), images[0].rotate(-10)]
    with torch.inference_mode():
        bench.compare("MTCNN, 3 photos one by one (600×512, 512², 1400×900)",
                      peer=("facenet-pytorch", lambda: [peer.detect(i) for i in images]),
                      ours=lambda: [ours.detect(i) for i in images], unit="img/s",
                      work=len(images), repeats=args.repeats, goal=1.5,
                      check=lambda: check_equal(peer, ours, images))
        bench.compare("MTCNN, batch of 4 photos 600×512",
                      peer=("facenet-pytorch", lambda: peer.detect(four)),
                      ours=lambda: ours.detect(four), unit="img/s", work=len(four),
                      repeats=args.repeats, goal=1.5,
                      check=lambda: check_equal(peer, ours, four))
    bench.finish()


if __name__ == "__main__":
    main()
