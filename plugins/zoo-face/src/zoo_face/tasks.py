"""``zoo run`` task runners: face detection and face verification.

Example:
    $ zoo run mtcnn photo.jpg --out annotated.png
    $ zoo --json run mtcnn photo.jpg
    $ zoo run face-verify a.jpg b.jpg --model my-iresnet [--threshold 0.3]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import zoo_core as zoo

_COLUMNS = ["image", "face", "score", "box x1,y1,x2,y2", "landmarks x,y ×5"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # a usage error, so `zoo` prints it and exits 2
        raise zoo.UsageError(f"{message}; usage: {self.format_usage().strip()}")


def _open(path: str) -> Any:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            return img
    except FileNotFoundError:
        raise zoo.InputError(f"no image file {path!r}") from None
    except UnidentifiedImageError:
        raise zoo.InputError(f"{path!r} is not an image PIL can read") from None


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


def _points(points: list[list[float]]) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in points)


def detect_faces(entry_name: str, inputs: list[str]) -> dict[str, Any]:
    """``zoo run <detector entry> IMAGE... [--out annotated.png]``."""
    parser = _Parser(prog=f"zoo run {entry_name}", add_help=False)
    parser.add_argument("images", nargs="+")
    parser.add_argument("--out", help="write the (first) image with detections drawn")
    args = parser.parse_args(inputs)
    if args.out and len(args.images) > 1:
        raise zoo.InputError(f"--out {args.out!r} takes one image, got {len(args.images)}; "
                             "run once per image")
    model = zoo.load(entry_name)
    images = [_open(p) for p in args.images]
    found = model.detect(images)
    rows, faces = [], []
    for path, f in zip(args.images, found, strict=True):
        for i in range(len(f)):
            box = [round(v, 2) for v in f.boxes[i].tolist()]
            marks = [[round(v, 2) for v in p] for p in f.landmarks[i].tolist()]
            score = round(float(f.scores[i]), 6)
            faces.append({"image": path, "face": i, "score": score, "box": box,
                          "landmarks": marks})
            rows.append([Path(path).name, i, score, _points([box[:2], box[2:]]),
                         _points(marks)])
    if args.out:
        out = Path(args.out)
        with zoo.atomic_path(out) as tmp:
            draw(images[0], found[0]).save(tmp, format=out.suffix.lstrip(".").upper()
                                           .replace("JPG", "JPEG") or "PNG")
    return {"title": f"{entry_name}: {len(faces)} face(s)" +
            (f", drawn in {args.out}" if args.out else ""),
            "columns": _COLUMNS, "rows": rows, "faces": faces}


def verify_faces(entry_name: str, inputs: list[str]) -> dict[str, Any]:
    """``zoo run face-verify A B --model <recognition entry> [--threshold T]``."""
    from .pipeline import FacePipeline

    parser = _Parser(prog=f"zoo run {entry_name}", add_help=False)
    parser.add_argument("images", nargs=2)
    parser.add_argument("--model", required=True,
                        help="recognition entry, dir:/path or hf:org/repo@rev")
    parser.add_argument("--threshold", type=float,
                        help="cosine threshold (default: the model's calibrated one)")
    args = parser.parse_args(inputs)
    chain = FacePipeline(entry_name, recognizer=args.model)
    threshold = args.threshold
    if threshold is None:
        threshold = getattr(chain.recognizer.config, "threshold", None)
    if threshold is None:
        raise zoo.ConfigError(f"{args.model!r} has no calibrated verification threshold "
                              "(config field 'threshold'); pass --threshold T")
    best = []
    for path, faces in zip(args.images, chain([_open(p) for p in args.images]), strict=True):
        if not faces:
            raise zoo.InputError(f"no face found in {path!r}")
        best.append(max(faces, key=lambda f: float(f.score)))
    cosine = float(best[0].embedding @ best[1].embedding)
    same = cosine >= threshold
    return {"title": f"{args.images[0]} vs {args.images[1]} ({args.model})",
            "columns": ["cosine", "threshold", "verdict"],
            "rows": [[round(cosine, 6), threshold, "same" if same else "different"]],
            "cosine": cosine, "threshold": threshold, "same": same}
