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


MAX_PIXELS = 50_000_000
"""Images larger than this (width x height) are refused before decoding; ``--max-pixels``."""


def _open(path: str, max_pixels: int = MAX_PIXELS) -> Any:
    """A decoded PIL image; its size is read from the header and checked before decoding."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    if Path(path).is_dir():
        raise zoo.InputError(f"{path!r} is a folder, not an image file; name the image files")
    pil_limit = Image.MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():  # the size is checked below, against our own limit
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            Image.MAX_IMAGE_PIXELS = None
            try:
                opened = Image.open(path)  # reads the header only
            finally:
                Image.MAX_IMAGE_PIXELS = pil_limit
            with opened as img:
                width, height = img.size
                if width * height > max_pixels:
                    raise zoo.InputError(
                        f"{path!r} is {width}x{height} ({width * height:,} pixels), more than "
                        f"--max-pixels {max_pixels:,}; shrink the image or raise --max-pixels")
                img.load()
                return img
    except FileNotFoundError:
        raise zoo.InputError(f"no image file {path!r}") from None
    except UnidentifiedImageError:
        raise zoo.InputError(f"{path!r} is not an image PIL can read") from None
    except (OSError, SyntaxError, ValueError) as e:  # PIL's words for a damaged file
        raise zoo.InputError(f"{path!r} cannot be decoded, it is damaged or truncated "
                             f"({e}); check the file") from None


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


def _points(points: list[list[float]]) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in points)


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
    images = [_open(p, args.max_pixels) for p in args.images]
    found = zoo.load(entry_name).detect(images)
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
        with zoo.atomic_path(Path(args.out)) as tmp:
            draw(images[0], found[0]).save(tmp, format=out_format)
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
    parser.add_argument("--max-pixels", type=int, default=MAX_PIXELS,
                        help="refuse larger images before decoding them")
    args = parser.parse_args(inputs)
    images = [_open(p, args.max_pixels) for p in args.images]
    chain = FacePipeline(entry_name, recognizer=args.model)
    threshold = args.threshold
    if threshold is None:
        threshold = getattr(chain.recognizer.config, "threshold", None)
    if threshold is None:
        raise zoo.ConfigError(f"{args.model!r} has no calibrated verification threshold "
                              "(config field 'threshold'); pass --threshold T")
    best = []
    for path, faces in zip(args.images, chain(images), strict=True):
        if not faces:
            raise zoo.InputError(f"no face found in {path!r}")
        best.append(max(faces, key=lambda f: float(f.score)))
    cosine = float(best[0].embedding @ best[1].embedding)
    same = cosine >= threshold
    return {"title": f"{args.images[0]} vs {args.images[1]} ({args.model})",
            "columns": ["cosine", "threshold", "verdict"],
            "rows": [[round(cosine, 6), threshold, "same" if same else "different"]],
            "cosine": cosine, "threshold": threshold, "same": same}
