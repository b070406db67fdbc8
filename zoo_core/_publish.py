"""Saving components to folders and publishing them on the Hub: ``save``, ``push``,
``model_card``, and ``load_tokenizer`` (the ``AutoTokenizer`` twin).

A folder written by :func:`save` is laid out like a Hub repo and loads back with
``zoo.load("dir:…")`` whatever its kind. Its ``config.json`` reads::

    {"zoo": {"component": "tokenizer:wordpiece", "plugin": "tokenizers", "version": "0.1.0",
             "files": ["vocab.txt", ...],
             "tokenizer": {"component": "tokenizer:wordpiece", "files": [...]}},   # optional
     "config": {...}}

``zoo.component`` names what the folder holds; ``zoo.tokenizer`` (present when a model is saved
or pushed with its tokenizer) names the tokenizer whose files sit beside the weights.
"""

from __future__ import annotations

import builtins
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ._catalog import CATALOG, check_repo_id
from ._errors import InputError, ZooError
from ._files import atomic_write, sha256_file
from ._resolve import TOKENIZER_FILES
from ._storage import CONFIG_NAME


class SavedFolder(type(Path())):  # type: ignore[misc]  # PosixPath or WindowsPath
    """The folder :func:`save` wrote, with ``digests``: each file written to its sha256 (what
    a catalogue entry's ``files`` pins)."""

    digests: dict[str, str] = {}  # noqa: RUF012 - replaced per instance


def save(obj: Any, directory: str | os.PathLike[str], *, tokenizer: Any = None) -> SavedFolder:
    """Write ``obj`` (a model, a tokenizer or any component with ``save``) into ``directory``
    as a folder that ``zoo.load("dir:…")`` reads back; return the folder, a ``Path`` whose
    ``digests`` give the sha256 of every file written (ready for a catalogue entry's
    ``files``; a debug log line names each one too).

    ``tokenizer`` (a tokenizer object, or a folder holding tokenizer files such as one saved
    by transformers) is written beside a model, so the folder is self-contained.

    Example:
        >>> saved = zoo.save(zoo.load("bert-base-uncased"), "my-tok")
        >>> saved.digests["vocab.txt"]
        '07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3'
        >>> zoo.load("dir:my-tok").encode("hello")
    """
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    meta = _save_component(obj, folder)
    if tokenizer is not None:
        meta["tokenizer"] = _save_tokenizer(tokenizer, folder)
        doc = json.loads((folder / CONFIG_NAME).read_text("utf-8"))
        doc["zoo"] = meta
        atomic_write(folder / CONFIG_NAME, json.dumps(doc, indent=2) + "\n")
    saved = SavedFolder(folder)
    names = [CONFIG_NAME, *meta.get("files", []), *(meta.get("tokenizer") or {}).get("files", [])]
    saved.digests = {f: sha256_file(folder / f) for f in dict.fromkeys(names)}
    for f, digest in saved.digests.items():
        logging.getLogger("zoo").debug("saved %s: sha256 %s", folder / f, digest)
    return saved


def _save_component(obj: Any, folder: Path) -> dict[str, Any]:
    from ._config import config_to_dict

    if hasattr(obj, "save_pretrained") and hasattr(obj, "config_class"):
        from ._weights import save_model_dir  # imports torch

        save_model_dir(obj, folder)
        doc: dict[str, Any] = json.loads((folder / CONFIG_NAME).read_text("utf-8"))
        return doc["zoo"]  # type: ignore[no-any-return]
    if not hasattr(obj, "save"):
        raise InputError(f"cannot save a {type(obj).__name__}: it has neither "
                         "save_pretrained() (models) nor save() (tokenizers and other "
                         "file-backed components)")
    files = [f for f in _shareable(folder, obj.save(folder)) if f != CONFIG_NAME]
    meta = _registered(obj, files)
    config = config_to_dict(obj.config) if hasattr(obj, "config") else {}
    atomic_write(folder / CONFIG_NAME,
                 json.dumps({"zoo": meta, "config": config}, indent=2) + "\n")
    return meta


def _save_tokenizer(tokenizer: Any, folder: Path) -> dict[str, Any]:
    """Put the tokenizer's files into ``folder``; return ``{component, files}``."""
    if isinstance(tokenizer, (str, os.PathLike)):
        source = Path(tokenizer)
        files = [f for f in TOKENIZER_FILES if (source / f).is_file()]
        for f in files:
            if source.resolve() != folder.resolve():
                shutil.copyfile(source / f, folder / f)
        return {"component": None, "files": _shareable(folder, files)}
    with tempfile.TemporaryDirectory(dir=folder, prefix=".tokenizer-") as tmp:
        files = [f for f in tokenizer.save(tmp) if f != CONFIG_NAME]  # the model's stays
        for f in files:
            (folder / f).parent.mkdir(parents=True, exist_ok=True)
            os.replace(Path(tmp) / f, folder / f)
    _shareable(folder, files)
    return {"component": _registered(tokenizer, files)["component"], "files": files}


def component_meta(obj: Any, files: builtins.list[str]) -> dict[str, Any] | None:
    """The ``zoo`` section of ``config.json`` for ``obj``, or ``None`` when its class is no
    registered component."""
    from ._registry import REGISTRY

    cls = type(obj)
    target = f"{cls.__module__}:{cls.__qualname__}"
    comp = next((c for c in REGISTRY.components().values() if c.target == target), None)
    if comp is None:
        return None
    report = REGISTRY.reports.get(comp.plugin)
    return {"component": comp.ref, "plugin": comp.plugin,
            "version": report.version if report else "", "files": files}


def _registered(obj: Any, files: builtins.list[str]) -> dict[str, Any]:
    meta = component_meta(obj, files)
    if meta is None:
        cls = type(obj)
        raise InputError(f"{cls.__name__} ({cls.__module__}:{cls.__qualname__}) is not a "
                         "registered component; register it in a plugin's zoo_components "
                         "hook before saving it")
    return meta


def name_component(obj: Any, folder: Path, files: builtins.list[str]) -> builtins.list[str]:
    """Write ``config.json`` naming the registered component ``obj`` beside ``files``;
    return ``["config.json"]``, or ``[]`` when ``obj``'s class is not registered or
    ``config.json`` is one of its own files."""
    meta = None if CONFIG_NAME in files else component_meta(obj, files)
    if meta is None:
        return []
    atomic_write(folder / CONFIG_NAME, json.dumps({"zoo": meta, "config": {}}, indent=2) + "\n")
    return [CONFIG_NAME]


def _shareable(folder: Path, names: Any) -> builtins.list[str]:
    """Give the files a component's ``save`` wrote the umask's mode, as ``open()`` would (a
    ``mkstemp`` + rename leaves them 0600, unreadable to the group a folder is shared with)."""
    mask = os.umask(0)
    os.umask(mask)
    files = builtins.list(names)
    for name in files:
        path = folder / name
        if path.is_file() and not path.is_symlink():
            os.chmod(path, 0o666 & ~mask)
    return files


# -- the AutoTokenizer twin ------------------------------------------------------------------
def load_tokenizer(name: str) -> Any:
    """The tokenizer of ``name``: a tokenizer entry, a model entry (its ``tokenizer`` field),
    or a ``dir:``/``hf:`` folder written by :func:`save` or :func:`push`. Like ``zoo.load``, it
    reads only the files the reference pins, through the store (``hf:`` files pinned by
    commit and verified like a catalogue entry's).

    Example:
        >>> tok = zoo.load_tokenizer("all-minilm-l6-v2")   # the entry's bert-base-uncased
        >>> tok(["Hello world"])["input_ids"]
    """
    from ._loading import instantiate, load
    from ._resolve import resolve

    if not isinstance(name, str):
        raise ZooError(f"zoo.load_tokenizer() takes a name, got {name!r}")
    if name.startswith(("dir:", "hf:")):
        found = resolve(name)
        meta = found.meta
        if not meta:
            raise ZooError(f"{name!r} was not written by zoo (no 'zoo' section in "
                           f"{CONFIG_NAME}); write it with zoo.save() or zoo.push()")
        if meta["component"].startswith("tokenizer:"):
            return instantiate(found.entry, found.folder)
        tok = meta.get("tokenizer") or {}
        if not tok.get("component"):
            raise ZooError(f"{name!r} holds a {meta['component']!r} saved without a zoo "
                           "tokenizer; save or push it with tokenizer=<a zoo tokenizer>")
        from ._registry import REGISTRY

        return REGISTRY.get(tok["component"]).load().load(found.folder)
    entry = CATALOG.get(name)
    if entry.kind == "tokenizer":
        return load(name)
    if not entry.tokenizer:
        raise ZooError(f"entry {name!r} names no tokenizer; set its 'tokenizer' field in a "
                       "catalogue (ZOO_CATALOG) or load a tokenizer entry by name")
    return load(entry.tokenizer)


def push_source(ref: str) -> tuple[Any, Any, str | None, str | None]:
    """What ``zoo push REF`` uploads, through the one resolve path: ``(component, tokenizer,
    task, license)``. The tokenizer is a zoo tokenizer, or the view folder holding a foreign
    checkpoint's tokenizer files (only those its entry names), or None."""
    from ._loading import instantiate
    from ._resolve import resolve

    found = resolve(ref)
    entry = found.entry
    local = ref.startswith(("hf:", "dir:", "pkg:"))
    obj = instantiate(entry, found.folder, random_init=not local)
    tokenizer: Any = None
    if not local:
        if entry.tokenizer and entry.kind != "tokenizer":
            tokenizer = load_tokenizer(entry.name)
        return obj, tokenizer, entry.task or None, entry.license or None
    if (found.meta.get("tokenizer") or {}).get("component"):
        tokenizer = load_tokenizer(ref)
    elif not found.meta and any(f in entry.files for f in TOKENIZER_FILES):
        tokenizer = found.folder
    return obj, tokenizer, None, None


# -- the Hub ------------------------------------------------------------------------------
def task_of(component: str) -> str | None:
    """The task of the catalogue entries built on ``component`` when they agree on one."""
    tasks = {e.task for e in CATALOG.entries().values() if e.component == component and e.task}
    return tasks.pop() if len(tasks) == 1 else None


def push(
    obj: Any, repo_id: str, *, tokenizer: Any = None, task: str | None = None,
    private: bool = False, license: str = "apache-2.0",  # noqa: A002
    tags: builtins.list[str] | None = None, base_model: str | None = None,
    commit_message: str = "Upload with zoo", token: str | None = None,
) -> str:
    """Upload a model (or any component with ``save``) to the Hub; return the commit id.

    One commit holds ``config.json``, the weights or the component's files, and the
    tokenizer's files when ``tokenizer`` is given (an object or a folder); a second adds the
    model card ``README.md``, whose usage snippet loads the first commit exactly. ``task``
    (the card's ``pipeline_tag``) defaults to the task of the catalogue entries built on the
    same component. The returned id is the last commit.

    Example:
        >>> rev = zoo.push(model, "me/tiny-bert", tokenizer=zoo.load_tokenizer("bert-base"))
        >>> zoo.load(f"hf:me/tiny-bert@{rev}")
    """
    from huggingface_hub import HfApi, constants

    from ._hubnet import unreachable

    check_repo_id(repo_id)
    if constants.HF_HUB_OFFLINE:
        raise ZooError(f"cannot push {repo_id!r}: HF_HUB_OFFLINE is set; unset it to upload")
    why = unreachable()
    if why is not None:  # fail at once, not after huggingface_hub's retries and traceback
        raise ZooError(f"cannot push {repo_id!r}: the Hub endpoint {why}; set HF_ENDPOINT to "
                       "a reachable Hub or check the network")
    api = HfApi(token=token)
    with tempfile.TemporaryDirectory(prefix="zoo-push-") as tmp:
        folder = save(obj, tmp, tokenizer=tokenizer)
        meta = json.loads((folder / CONFIG_NAME).read_text("utf-8"))["zoo"]
        api.create_repo(repo_id, private=private, exist_ok=True)
        files = api.upload_folder(repo_id=repo_id, folder_path=folder,
                                  commit_message=commit_message)
    card = model_card(repo_id, meta, revision=files.oid, license=license, tags=tags,
                      base_model=base_model, task=task)
    done = api.upload_file(path_or_fileobj=str(card).encode("utf-8"), path_in_repo="README.md",
                           repo_id=repo_id, commit_message="Model card")
    return str(done.oid)


def model_card(repo_id: str, meta: dict[str, Any], *, revision: str | None = None,
               license: str = "apache-2.0", tags: builtins.list[str] | None = None,  # noqa: A002
               base_model: str | None = None, task: str | None = None) -> Any:
    """A ``huggingface_hub.ModelCard`` for a folder with zoo ``meta``; its snippet loads
    ``hf:repo_id@revision``."""
    from huggingface_hub import ModelCard, ModelCardData

    component = meta["component"]
    kind, _, name = component.partition(":")
    pipeline = (task or task_of(component)) if kind != "tokenizer" else None
    data = ModelCardData(library_name="zoo", license=license, base_model=base_model,
                         tags=builtins.list(dict.fromkeys(["zoo", kind, name, *(tags or [])])),
                         pipeline_tag=pipeline)
    ref = f"hf:{repo_id}@{revision}" if revision else f"hf:{repo_id}"
    lines = [f"# {repo_id}", "",
             f"A `{component}` from the `{meta.get('plugin', '')}` plugin of "
             "[zoo](https://pypi.org/project/zoo-core/).", "", "```python",
             "import zoo_core as zoo", "", f'obj = zoo.load("{ref}")']
    if (meta.get("tokenizer") or {}).get("component"):
        lines.append(f'tokenizer = zoo.load_tokenizer("{ref}")')
    lines += ["```", ""]
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines))
