"""``zoo run`` task runners: face detection, verification and identification.

Example:
    $ zoo run mtcnn photo.jpg --out annotated.png
    $ zoo --json run mtcnn photo.jpg
    $ zoo run face-verify a.jpg b.jpg                  # dlib-resnet-v1: distance < 0.6 = same
    $ zoo run face-verify a.jpg b.jpg --model my-iresnet [--threshold 0.3]   # cosine models
    $ zoo run face-identify photo.jpg --gallery people/ [--top 3] [--save people.safetensors]

Every result's ``inputs`` are the image paths alone (flags are settings, not inputs), and its
``rows`` hold numbers as numbers.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import zoo_core as zoo

from .images import MAX_PIXELS, open_image

_COLUMNS = ["image", "face", "score", "box", "landmarks"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # a usage error, so `zoo` prints it and exits 2
        raise zoo.UsageError(f"{message}; {self.format_usage().strip()}")  # "usage: zoo run …"


def _output_format(out: str) -> str:
    """The PIL format that ``--out``'s extension names; checked before any work is done."""
    from PIL import Image

    path = Path(out)
    if path.is_dir():
        raise zoo.InputError(f"--out {out!r} is a folder; name an image file such as "
                             f"{str(path / 'annotated.png')!r}")
    if not path.parent.is_dir():
        raise zoo.InputError(f"--out {out!r}: the folder {str(path.parent)!r} does not exist")
    formats = Image.registered_extensions()
    if path.suffix.lower() not in formats or formats[path.suffix.lower()] not in Image.SAVE:
        raise zoo.InputError(f"--out {out!r}: unknown image extension {path.suffix!r}; use "
                             "'.png' or '.jpg'")
    return formats[path.suffix.lower()]


def draw(image: Any, faces: Any) -> Any:
    """A copy of a PIL image with the boxes, scores and landmarks drawn."""
    from PIL import ImageDraw

    out = image.convert("RGB")
    pen = ImageDraw.Draw(out)
    width = max(2, round(max(out.size) / 300))
    for box, score, marks in zip(faces.boxes.tolist(), faces.scores.tolist(),
                                 faces.landmarks.tolist(), strict=True):
        pen.rectangle(box, outline=(255, 64, 32), width=width)
        pen.text((box[0] + width, box[1] + width), f"{score:.3f}", fill=(255, 255, 64))
        for x, y in marks:
            r = 1.5 * width
            pen.ellipse((x - r, y - r, x + r, y + r), fill=(64, 255, 64))
    return out


def detect_faces(entry_name: str, inputs: list[str]) -> dict[str, Any]:
    """``zoo run <detector entry> IMAGE... [--out annotated.png]``."""
    parser = _Parser(prog=f"zoo run {entry_name}", add_help=False)
    parser.add_argument("images", nargs="+")
    parser.add_argument("--out", help="write the (first) image with detections drawn")
    parser.add_argument("--max-pixels", type=int, default=MAX_PIXELS,
                        help="refuse larger images before decoding them")
    args = parser.parse_args(inputs)
    if args.out and len(args.images) > 1:
        raise zoo.InputError(f"--out {args.out!r} takes one image, got {len(args.images)}; "
                             "run once per image")
    out_format = _output_format(args.out) if args.out else ""
    images = [open_image(p, args.max_pixels) for p in args.images]
    found = zoo.load(entry_name).detect(images)
    rows, faces = [], []
    for path, f in zip(args.images, found, strict=True):
        for i in range(len(f)):
            box = [round(v, 2) for v in f.boxes[i].tolist()]
            marks = [[round(v, 2) for v in p] for p in f.landmarks[i].tolist()]
            score = round(float(f.scores[i]), 6)
            faces.append({"image": path, "face": i, "score": score, "box": box,
                          "landmarks": marks})
            rows.append([Path(path).name, i, score, box, marks])
    if args.out:
        with zoo.atomic_path(Path(args.out)) as tmp:
            draw(images[0], found[0]).save(tmp, format=out_format)
    return {"title": f"{entry_name}: {len(faces)} face(s)" +
            (f", drawn in {args.out}" if args.out else ""),
            "columns": _COLUMNS, "rows": rows, "faces": faces, "inputs": args.images}


def verify_faces(entry_name: str, inputs: list[str]) -> dict[str, Any]:
    """``zoo run face-verify A B [--model ENTRY] [--threshold T]``: dlib-resnet-v1 (Euclidean
    distance, same below 0.6) unless ``--model`` names another recognition model (cosine)."""
    parser = _Parser(prog=f"zoo run {entry_name}", add_help=False)
    parser.add_argument("images", nargs=2)
    parser.add_argument("--model", help="recognition entry, dir:/path or hf:org/repo@rev "
                        "(default: dlib-resnet-v1)")
    parser.add_argument("--threshold", type=float,
                        help="decision threshold (default: the model's: 0.6 for dlib's distance)")
    parser.add_argument("--alignment", default="shape-predictor",
                        choices=["shape-predictor", "mtcnn-template"])
    parser.add_argument("--max-pixels", type=int, default=MAX_PIXELS,
                        help="refuse larger images before decoding them")
    args = parser.parse_args(inputs)
    images = [open_image(p, args.max_pixels) for p in args.images]  # before loading models
    model = _recognizer(args.model)
    if getattr(model, "landmarks", None) is not None:
        return _verify_dlib(entry_name, args, model, images)
    return _verify_cosine(entry_name, args, model, images)


def _recognizer(name: str | None) -> Any:
    from .mtcnn import MTCNN
    from .recognize import RECOGNIZER, load_recognizer

    if name is None:
        return load_recognizer(RECOGNIZER)
    model = zoo.load(name)
    if isinstance(model, MTCNN) or not hasattr(model, "forward"):
        raise zoo.InputError(f"--model {name!r} is a face detector ({type(model).__name__}), "
                             "not a recognition model; leave --model out to use "
                             f"{RECOGNIZER!r}, or name a recognition entry (`zoo list "
                             "--kind model`)")
    return model


def _best(path: str, faces: list[Any]) -> Any:
    if not faces:
        raise zoo.InputError(f"no face found in {path!r}; pass a photo with a visible face")
    return max(faces, key=lambda f: float(f.score))


def _verify_dlib(entry_name: str, args: argparse.Namespace, model: Any,
                 images: list[Any]) -> dict[str, Any]:
    from .recognize import DlibChain

    chain = DlibChain(recognizer=model, alignment=args.alignment, threshold=args.threshold)
    found = chain(images)
    a, b = (_best(p, f) for p, f in zip(args.images, found, strict=True))
    distance = round(chain.distance(a, b), 6)
    same = distance < chain.threshold
    name = args.model or "dlib-resnet-v1"
    return {"title": f"{args.images[0]} vs {args.images[1]} ({name}, Euclidean distance)",
            "columns": ["distance", "threshold", "same"],
            "rows": [[distance, chain.threshold, same]],
            "distance": distance, "threshold": chain.threshold, "same": same,
            "model": name, "inputs": args.images}


def _verify_cosine(entry_name: str, args: argparse.Namespace, model: Any,
                   images: list[Any]) -> dict[str, Any]:
    from .pipeline import FacePipeline

    chain = FacePipeline(entry_name, recognizer=model)
    threshold = args.threshold
    if threshold is None:
        threshold = getattr(model.config, "threshold", None)
    if threshold is None:
        raise zoo.ConfigError(f"{args.model!r} has no calibrated verification threshold "
                              "(config field 'threshold'); pass --threshold T")
    found = chain(images)
    a, b = (_best(p, f) for p, f in zip(args.images, found, strict=True))
    cosine = round(float(a.embedding @ b.embedding), 6)
    same = cosine >= threshold
    return {"title": f"{args.images[0]} vs {args.images[1]} ({args.model}, cosine)",
            "columns": ["cosine", "threshold", "same"],
            "rows": [[cosine, threshold, same]],
            "cosine": cosine, "threshold": threshold, "same": same, "model": args.model,
            "inputs": args.images}


def identify_faces(entry_name: str, inputs: list[str]) -> dict[str, Any]:
    """``zoo run face-identify PHOTO... --gallery DIR|FILE.safetensors [--top K]``."""
    from .gallery import FaceGallery
    from .recognize import DlibChain, load_recognizer

    parser = _Parser(prog=f"zoo run {entry_name}", add_help=False)
    parser.add_argument("images", nargs="+")
    parser.add_argument("--gallery", required=True,
                        help="DIR/<name>/<photo> folders, or a gallery saved as .safetensors")
    parser.add_argument("--top", type=int, default=3, help="identities per face (default 3)")
    parser.add_argument("--threshold", type=float, help="match distance (default 0.6)")
    parser.add_argument("--save", help="also save the enrolled gallery to this .safetensors")
    parser.add_argument("--max-pixels", type=int, default=MAX_PIXELS,
                        help="refuse larger images before decoding them")
    args = parser.parse_args(inputs)
    if args.top < 1:
        raise zoo.InputError(f"--top {args.top!r} must be at least 1")
    probes = [open_image(p, args.max_pixels) for p in args.images]  # before loading models
    chain = DlibChain(recognizer=load_recognizer(), threshold=args.threshold)
    source = Path(args.gallery)
    if source.is_file():
        gallery = FaceGallery.load(source, chain)
        gallery.threshold = args.threshold if args.threshold is not None else gallery.threshold
    else:
        gallery = FaceGallery.enrol_folders(source, chain, args.threshold, args.max_pixels)
    if args.save:
        gallery.save(args.save)
    faces, rows = [], []
    for path, probe in zip(args.images, probes, strict=True):
        for found in gallery.search(probe, args.top):
            faces.append({"image": path, **found})
            top = found["candidates"][0]
            rows.append([Path(path).name, found["face"], found["score"], top["identity"],
                         top["distance"], top["match"]])
    return {"title": f"{len(faces)} face(s) against {len(gallery.names)} identities "
                     f"({args.gallery})",
            "columns": ["image", "face", "score", "nearest", "distance", "match"],
            "rows": rows, "faces": faces, "inputs": args.images}
