"""1:N search: a gallery of enrolled identities, searched by Euclidean distance.

An identity is enrolled from photos (one face each: the detector's best); a probe face is
compared with every enrolled descriptor, and an identity scores the distance of its nearest
descriptor. The top-k identities come back nearest first, each flagged ``match`` when its
distance is below the threshold (dlib: 0.6). Saved as one safetensors file: ``descriptors``
(N, 128) float32 and ``identity`` (N,) int64, the names and threshold in its metadata.

Example:
    >>> gallery = FaceGallery.enrol_folders("people/")   # people/<name>/*.jpg
    >>> gallery.search(Image.open("group.jpg"), k=3)     # per face: [{identity, distance, match}]
    >>> gallery.save("people.safetensors"); FaceGallery.load("people.safetensors")
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

import zoo_core as zoo

from .images import MAX_PIXELS, open_image
from .recognize import DlibChain

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")


class FaceGallery:
    """Enrolled descriptors and their identities.

    Args:
        chain: the recognition chain (:class:`~zoo_face.recognize.DlibChain` by default,
            created on first use).
        threshold: distance below which a probe matches (default: the chain's, 0.6).
    """

    def __init__(self, chain: DlibChain | None = None, threshold: float | None = None) -> None:
        self._chain = chain
        self.threshold = threshold
        self.names: list[str] = []
        self.descriptors = torch.zeros(0, 128)
        self.identity = torch.zeros(0, dtype=torch.int64)

    @property
    def chain(self) -> DlibChain:
        if self._chain is None:
            self._chain = DlibChain()
        return self._chain

    def _threshold(self) -> float:
        return self.chain.threshold if self.threshold is None else self.threshold

    def add(self, name: str, descriptors: Tensor) -> None:
        """Enrol descriptors (M, D) under ``name`` (appended to an existing identity)."""
        if not isinstance(name, str) or not name:
            raise zoo.InputError(f"identity name {name!r} must be a non-empty string")
        d = torch.as_tensor(descriptors, dtype=torch.float32)
        if d.dim() != 2 or (len(self.descriptors) and d.shape[1] != self.descriptors.shape[1]):
            raise zoo.InputError(f"descriptors of shape {tuple(d.shape)!r} must be (M, "
                                 f"{self.descriptors.shape[1] or 'D'})")
        if name not in self.names:
            self.names.append(name)
        if not len(self.descriptors):
            self.descriptors = self.descriptors.new_zeros(0, d.shape[1])
        self.descriptors = torch.cat([self.descriptors, d])
        self.identity = torch.cat([self.identity,
                                   torch.full((len(d),), self.names.index(name))])

    def enrol(self, name: str, images: list[Any]) -> int:
        """Enrol the best face of each image under ``name``; returns how many had a face."""
        faces = [max(f, key=lambda x: x.score) for f in self.chain(images) if f]
        if faces:
            self.add(name, torch.stack([f.descriptor for f in faces]))
        return len(faces)

    @classmethod
    def enrol_folders(cls, root: str | os.PathLike[str], chain: DlibChain | None = None,
                      threshold: float | None = None,
                      max_pixels: int = MAX_PIXELS) -> FaceGallery:
        """A gallery of ``root/<identity>/<photo>`` (one identity per sub-folder); a photo
        larger than ``max_pixels`` is refused before it is decoded."""
        folder = Path(root)
        people = sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
        if not people:
            raise zoo.InputError(f"gallery folder {str(root)!r} holds no identity folders; lay "
                                 "it out as DIR/<name>/<photo>.jpg, one folder per person")
        gallery = cls(chain, threshold)
        for person in people:
            photos = sorted(p for p in person.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            images = [open_image(photo, max_pixels) for photo in photos]
            if not gallery.enrol(person.name, images):
                raise zoo.InputError(f"no face found in any photo of {str(person)!r} "
                                     f"({len(photos)} image file(s)); add a clear frontal photo")
        return gallery

    def rank(self, probes: Tensor, k: int = 5) -> list[list[dict[str, Any]]]:
        """The ``k`` nearest identities of each probe descriptor (P, D)."""
        if not self.names:
            raise zoo.InputError("the gallery is empty: enrol identities first")
        if k < 1:
            raise zoo.InputError(f"k={k!r} must be at least 1")
        dist = torch.cdist(torch.as_tensor(probes, dtype=torch.float32), self.descriptors)
        best = torch.full((dist.shape[0], len(self.names)), float("inf"))
        best = best.scatter_reduce(1, self.identity.expand_as(dist), dist, "amin")  # (P, I)
        values, order = best.topk(min(k, len(self.names)), dim=1, largest=False)
        limit = self._threshold()
        return [[{"identity": self.names[i], "distance": round(float(d), 6),
                  "match": bool(d < limit)} for d, i in zip(vs.tolist(), os_.tolist(),
                                                            strict=True)]
                for vs, os_ in zip(values, order, strict=True)]

    def search(self, image: Any, k: int = 5) -> list[dict[str, Any]]:
        """Each face of ``image``: its box, score and top-``k`` identities."""
        faces = self.chain(image)[0]
        if not faces:
            return []
        ranked = self.rank(torch.stack([f.descriptor for f in faces]), k)
        return [{"face": i, "box": f.box, "score": f.score, "candidates": r}
                for i, (f, r) in enumerate(zip(faces, ranked, strict=True))]

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the gallery as one safetensors file (atomically)."""
        meta = {"names": json.dumps(self.names), "threshold": json.dumps(self.threshold)}
        return zoo.save_safetensors({"descriptors": self.descriptors,
                                     "identity": self.identity}, path, metadata=meta)

    @classmethod
    def load(cls, path: str | os.PathLike[str], chain: DlibChain | None = None) -> FaceGallery:
        """A gallery written by :meth:`save`."""
        from safetensors import safe_open

        tensors = zoo.read_safetensors(path)
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
        try:
            names, threshold = json.loads(meta["names"]), json.loads(meta["threshold"])
            desc, ident = tensors["descriptors"], tensors["identity"]
            ok = (isinstance(names, list) and desc.dim() == 2 and ident.shape == desc.shape[:1]
                  and (not len(ident) or 0 <= int(ident.min()) <= int(ident.max()) < len(names)))
        except (KeyError, ValueError, TypeError):
            ok = False
        if not ok:
            raise zoo.ConfigError(f"{str(path)!r} is not a face gallery written by "
                                  "FaceGallery.save (descriptors, identity, names)")
        gallery = cls(chain, threshold)
        gallery.names, gallery.descriptors, gallery.identity = names, desc.clone(), ident.clone()
        return gallery
