"""The public verbs: ``load``, ``create``, ``list``, ``info``, ``push``."""

from __future__ import annotations

import builtins
import fnmatch
import json
import re
import tempfile
from pathlib import Path
from typing import Any

from ._catalog import CATALOG, Entry, Source, check_repo_id, parse_source
from ._config import build_config, config_from_dict
from ._errors import ZooError
from ._registry import KINDS, REGISTRY, Component
from ._storage import CONFIG_NAME, STORE, WEIGHTS_NAME


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


def load(name: str, *, device: Any = None, dtype: Any = None) -> Any:
    """A ready component from a catalogue entry, ``hf:org/repo@rev`` or ``dir:/path``.

    Files are fetched from the entry's sources in order and verified against their sha256
    before use. Models come back in eval mode.

    Example:
        >>> model = zoo.load("all-minilm-l6-v2")
        >>> tok = zoo.load("bert-base-uncased")
    """
    if name.startswith("hf:"):
        source = parse_source(name)
        folder = _fetch_hub_repo(source)
        return _from_folder(folder, name, device, dtype)
    if name.startswith("dir:"):
        folder = Path(name[4:]).expanduser()
        if not folder.is_dir():
            raise ZooError(f"{name!r}: {str(folder)!r} is not a folder")
        return _from_folder(folder, name, device, dtype)
    kind = name.partition(":")[0]
    if ":" in name and kind in KINDS:
        raise ZooError(f"{name!r} is a component, not an entry: zoo.create({name!r}, preset=...) "
                       "builds it with random weights; zoo.list() shows pretrained entries")
    entry = CATALOG.get(name)
    folder = STORE.fetch(entry)
    return _instantiate(entry, folder, device, dtype)


def _instantiate(entry: Entry, folder: Path, device: Any, dtype: Any) -> Any:
    comp = REGISTRY.get(entry.component)
    factory = comp.load()
    if comp.kind != "model":
        return factory.load(folder, **entry.config)
    config_file = folder / CONFIG_NAME
    config = None
    if config_file.is_file() and CONFIG_NAME in entry.files:
        doc = json.loads(config_file.read_text("utf-8"))
        if "zoo" in doc:
            config = config_from_dict(factory.config_class, doc["config"])
    if config is None:
        config = build_config(factory, entry.preset, entry.config)
    weights = sorted(f for f in entry.files if f.endswith(".safetensors"))
    if not weights:
        model = factory(config)
    else:
        from ._weights import build_loaded, read_safetensors

        state = read_safetensors([folder / w for w in weights])
        model = build_loaded(factory, config, state, entry.layout)
    if dtype is not None or device is not None:
        model.to(device=device, dtype=dtype)
    return model.eval()


def _from_folder(folder: Path, name: str, device: Any, dtype: Any) -> Any:
    """A folder laid out like a Hub repo: ours (``zoo`` metadata) or a recognised foreign one."""
    config_file = folder / CONFIG_NAME
    if not config_file.is_file():
        raise ZooError(f"{name!r} has no {CONFIG_NAME}; write one with zoo.push() or "
                       "model.save_pretrained()")
    doc = json.loads(config_file.read_text("utf-8"))
    if "zoo" in doc:
        meta = doc["zoo"]
        entry = Entry(name=name, component=meta["component"], config=doc.get("config", {}),
                      files={f: "" for f in [CONFIG_NAME, *meta.get("files", [])]},
                      origin=str(folder))
        return _instantiate(entry, folder, device, dtype)
    found = REGISTRY.foreign_config(doc)
    if not found:
        raise ZooError(f"{name!r}: {CONFIG_NAME} was not written by zoo and no installed plugin "
                       f"recognises it (model_type={doc.get('model_type')!r}); see `zoo plugins`")
    weights = sorted(p.name for p in folder.glob("*.safetensors"))
    pickles = sorted(folder.glob("*.bin"))
    if not weights and pickles:
        from ._storage import refuse_pickle

        refuse_pickle(pickles[0])
    entry = Entry(name=name, component=found["component"], config=found.get("config", {}),
                  files={w: "" for w in weights}, layout=found.get("layout"), origin=str(folder))
    return _instantiate(entry, folder, device, dtype)


def _fetch_hub_repo(source: Source) -> Path:
    from huggingface_hub import hf_hub_download

    config_path = Path(hf_hub_download(source.location, CONFIG_NAME, revision=source.revision))
    doc = json.loads(config_path.read_text("utf-8"))
    for f in doc.get("zoo", {}).get("files") or [WEIGHTS_NAME]:
        hf_hub_download(source.location, f, revision=source.revision)
    return config_path.parent


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
