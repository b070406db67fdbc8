"""The public verbs: ``load`` (in ``_loading``), ``create``, ``list``, ``info``, ``push``."""

from __future__ import annotations

import builtins
import fnmatch
import json
import re
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["create", "info", "list", "load", "model_card", "push"]

from ._catalog import CATALOG, check_repo_id
from ._config import build_config
from ._errors import ZooError
from ._loading import load
from ._registry import KINDS, REGISTRY, Component
from ._storage import CONFIG_NAME, STORE


def create(ref: str, preset: str | None = None, **overrides: Any) -> Any:
    """Build component ``kind:name`` with random init (no weights).

    Models take ``preset`` plus config-field overrides; other kinds take constructor keyword
    arguments, with ``preset`` naming a dict in the factory's ``presets``.

    Example:
        >>> loss = zoo.create("loss:arcface", embedding_size=512, num_classes=1000)
        >>> bert = zoo.create("model:bert", preset="tiny", num_layers=2)
    """
    factory = REGISTRY.get(ref).load()
    if hasattr(factory, "config_class"):
        return factory(build_config(factory, preset, overrides))
    if preset is not None:
        presets = getattr(factory, "presets", {}) or {}
        if preset not in presets:
            from ._errors import unknown

            raise unknown(f"preset of {ref}", preset, presets)
        overrides = {**presets[preset], **overrides}
    return factory(**overrides)


def list(  # noqa: A001 - mirrors timm.list_models
    pattern: str | None = None, kind: str | None = None, pretrained: bool | None = None,
) -> builtins.list[str]:
    """Names of catalogue entries and components, filtered and naturally sorted.

    ``pattern`` is an fnmatch pattern; ``pretrained=True`` keeps entries with weights,
    ``False`` keeps components (random init only).

    Example:
        >>> zoo.list("bert*", pretrained=True)
        ['bert-base', 'bert-large']
    """
    if kind is not None and kind not in KINDS:
        raise ZooError(f"unknown kind {kind!r}; valid kinds: {', '.join(KINDS)}")
    names: builtins.list[tuple[str, str, bool]] = []
    names += [(e.name, e.kind, e.pretrained) for e in CATALOG.entries().values()]
    names += [(c.ref, c.kind, False) for c in REGISTRY.components().values()]
    out = [
        n for n, k, has_weights in names
        if (pattern is None or fnmatch.fnmatch(n, pattern))
        and (kind is None or k == kind)
        and (pretrained is None or has_weights == pretrained)
    ]
    return sorted(set(out), key=_natural)


def _natural(text: str) -> builtins.list[Any]:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", text)]


def info(name: str) -> dict[str, Any]:
    """What zoo knows of an entry or component, without importing it."""
    comps = REGISTRY.components()
    if name in comps:
        return _component_info(comps[name])
    entry = CATALOG.get(name)
    out = entry.as_dict()
    out["kind"] = entry.kind
    out["cached"] = STORE.snapshot(entry.name).is_dir()
    return out


def _component_info(c: Component) -> dict[str, Any]:
    return {"name": c.ref, "kind": c.kind, "target": c.target, "summary": c.summary,
            "tags": builtins.list(c.tags), "paper": c.paper, "plugin": c.plugin}


def push(
    obj: Any, repo_id: str, *, private: bool = False, license: str = "apache-2.0",  # noqa: A002
    tags: builtins.list[str] | None = None, base_model: str | None = None,
    commit_message: str = "Upload with zoo", token: str | None = None,
) -> str:
    """Upload a model (or any component with ``save``) to the Hub; return the commit id.

    Writes ``config.json`` (zoo metadata and config), the weights or the component's files,
    and a model card ``README.md``, then ``create_repo`` + ``upload_folder``.

    Example:
        >>> zoo.push(model, "me/tiny-bert")
        >>> zoo.load("hf:me/tiny-bert@<commit>")
    """
    from huggingface_hub import HfApi

    check_repo_id(repo_id)
    with tempfile.TemporaryDirectory(prefix="zoo-push-") as tmp:
        folder = Path(tmp)
        meta = _save_for_push(obj, folder)
        (folder / "README.md").write_text(
            model_card(repo_id, meta, license=license, tags=tags, base_model=base_model), "utf-8")
        api = HfApi(token=token)
        api.create_repo(repo_id, private=private, exist_ok=True)
        info = api.upload_folder(repo_id=repo_id, folder_path=folder,
                                 commit_message=commit_message)
    return str(getattr(info, "oid", "") or info)


def _save_for_push(obj: Any, folder: Path) -> dict[str, Any]:
    from ._config import config_to_dict
    from ._weights import save_model_dir, zoo_metadata

    if hasattr(obj, "save_pretrained") and hasattr(obj, "config_class"):
        save_model_dir(obj, folder)
        doc: dict[str, Any] = json.loads((folder / CONFIG_NAME).read_text("utf-8"))
        return doc["zoo"]  # type: ignore[no-any-return]
    if not hasattr(obj, "save"):
        raise ZooError(f"cannot push a {type(obj).__name__}: it has neither save_pretrained() "
                       "(models) nor save() (tokenizers and other file-backed components)")
    files = builtins.list(obj.save(folder))
    meta = zoo_metadata(obj, files)
    config = config_to_dict(obj.config) if hasattr(obj, "config") else {}
    (folder / CONFIG_NAME).write_text(json.dumps({"zoo": meta, "config": config}, indent=2))
    return meta


def model_card(repo_id: str, meta: dict[str, Any], *, license: str,  # noqa: A002
               tags: builtins.list[str] | None, base_model: str | None) -> str:
    """A model card with the YAML front matter the Hub reads."""
    kind, _, name = meta["component"].partition(":")
    pipeline = {"model": "feature-extraction", "tokenizer": None}.get(kind)
    lines = ["---", "library_name: zoo", f"license: {license}", "tags:"]
    lines += [f"- {t}" for t in ["zoo", kind, name, *(tags or [])]]
    if base_model:
        lines.append(f"base_model: {base_model}")
    if pipeline:
        lines.append(f"pipeline_tag: {pipeline}")
    lines += ["---", "", f"# {repo_id}", "",
              f"A `{meta['component']}` from the `{meta['plugin']}` plugin of zoo.", "",
              "```python", "import zoo_core as zoo", f'obj = zoo.load("hf:{repo_id}")', "```", ""]
    return "\n".join(lines)
