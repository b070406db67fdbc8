"""The ``zoo`` command line. Exit codes: 0 success, 1 failure (checks, verification), 2 usage.

``list``, ``info`` and ``plugins`` import no torch.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ._errors import ZooError


def _console() -> Any:
    from rich.console import Console

    return Console()


def _table(columns: list[str], rows: list[list[Any]], title: str | None = None) -> None:
    from rich.table import Table

    t = Table(title=title)
    for c in columns:
        t.add_column(str(c))
    for r in rows:
        t.add_row(*[str(v) for v in r])
    _console().print(t)


def _emit(args: argparse.Namespace, data: Any, columns: list[str], rows: list[list[Any]],
          title: str | None = None) -> None:
    if args.json:
        print(json.dumps(data, indent=2, default=str))
    else:
        _table(columns, rows, title)


def cmd_list(args: argparse.Namespace) -> int:
    from . import _api
    from ._catalog import CATALOG
    from ._registry import REGISTRY

    pretrained = {"yes": True, "no": False}.get(args.pretrained or "")
    names = _api.list(args.pattern, kind=args.kind, pretrained=pretrained)
    entries, comps = CATALOG.entries(), REGISTRY.components()
    rows = []
    for n in names:
        if n in entries:
            e = entries[n]
            rows.append([n, e.kind, e.component, e.task, "yes" if e.pretrained else "no",
                         e.summary])
        else:
            c = comps[n]
            rows.append([n, c.kind, c.plugin, "", "no", c.summary])
    data = [dict(zip(["name", "kind", "component", "task", "pretrained", "summary"], r,
                     strict=True)) for r in rows]
    _emit(args, data, ["name", "kind", "component/plugin", "task", "weights", "summary"], rows)
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from . import _api

    data = _api.info(args.name)
    rows = [[k, json.dumps(v) if isinstance(v, (dict, list)) else v] for k, v in data.items()]
    _emit(args, data, ["field", "value"], rows, title=args.name)
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    from ._registry import REGISTRY

    REGISTRY.components()
    reps = sorted(REGISTRY.reports.values(), key=lambda r: r.name)
    data = [r.__dict__ for r in reps]
    rows = [[r.name, r.distribution, r.version, r.status, len(r.components), r.error]
            for r in reps]
    _emit(args, data, ["plugin", "distribution", "version", "status", "components", "error"],
          rows)
    return 1 if any(r.status == "broken" for r in reps) else 0


def cmd_fetch(args: argparse.Namespace) -> int:
    from ._catalog import CATALOG
    from ._storage import STORE

    folder = STORE.fetch(CATALOG.get(args.entry))
    print(json.dumps({"entry": args.entry, "path": str(folder)}) if args.json else folder)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from ._catalog import CATALOG
    from ._storage import STORE

    names = [args.entry] if args.entry else [
        n for n, e in CATALOG.entries().items() if e.files and STORE.snapshot(n).is_dir()]
    data, rows, bad = [], [], False
    for n in names:
        for r in STORE.verify(CATALOG.get(n)):
            data.append({"entry": n, **r})
            rows.append([n, r["file"], r["status"], r.get("actual", "")[:16]])
            bad |= not r["status"].startswith("ok")
    _emit(args, data, ["entry", "file", "status", "sha256"], rows)
    return 1 if bad else 0


def cmd_push(args: argparse.Namespace) -> int:
    from . import _api

    obj = _api.load(args.source)
    commit = _api.push(obj, args.repo_id, private=args.private)
    print(json.dumps({"repo": args.repo_id, "commit": commit}) if args.json else commit)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from ._registry import REGISTRY
    from .testing import run_checks

    REGISTRY.components()
    if args.plugin not in REGISTRY.reports:
        from ._errors import unknown

        raise unknown("plugin", args.plugin, REGISTRY.reports)
    results = run_checks(plugin=args.plugin, kind=args.kind)
    data = [{"component": c.ref, "check": c.check, "status": s, "detail": d}
            for c, s, d in results]
    rows = [[c.ref, c.check, s, d[:120]] for c, s, d in results]
    _emit(args, data, ["component", "check", "status", "detail"], rows,
          title=f"contract checks: {args.plugin}")
    return 1 if any(s in ("failed", "xpassed") for _, s, _ in results) else 0


def cmd_run(args: argparse.Namespace) -> int:
    import importlib

    from ._catalog import CATALOG
    from ._errors import unknown
    from ._registry import REGISTRY

    entry = CATALOG.get(args.entry)
    runners = REGISTRY.task_runners()
    if entry.task not in runners:
        raise unknown(f"task runner for entry {entry.name!r} (task)", entry.task or "''",
                      runners, hint="Install the plugin that provides this task.")
    module, _, fn = runners[entry.task].partition(":")
    result = getattr(importlib.import_module(module), fn)(entry.name, args.inputs)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    elif isinstance(result, dict) and "columns" in result:
        _table(result["columns"], result["rows"], result.get("title"))
    else:
        print(result if isinstance(result, str) else json.dumps(result, indent=2, default=str))
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="zoo", description="A plugin-based model zoo for PyTorch.")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    sub = p.add_subparsers(dest="command", required=True)

    def add(name: str, fn: Any, help: str) -> argparse.ArgumentParser:  # noqa: A002
        sp = sub.add_parser(name, help=help)
        sp.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
        sp.set_defaults(fn=fn)
        return sp

    sp = add("list", cmd_list, "list entries and components")
    sp.add_argument("pattern", nargs="?")
    sp.add_argument("--kind")
    sp.add_argument("--pretrained", choices=["yes", "no"])
    add("info", cmd_info, "show an entry or component").add_argument("name")
    add("plugins", cmd_plugins, "show plugins and their status")
    add("fetch", cmd_fetch, "download and verify an entry's files").add_argument("entry")
    add("verify", cmd_verify, "re-hash cached files").add_argument("entry", nargs="?")
    sp = add("push", cmd_push, "upload an entry or folder to the Hub")
    sp.add_argument("source", help="entry name, dir:/path or hf:org/repo@rev")
    sp.add_argument("repo_id")
    sp.add_argument("--private", action="store_true")
    sp = add("check", cmd_check, "run the contract checks of a plugin")
    sp.add_argument("plugin")
    sp.add_argument("--kind")
    sp = add("run", cmd_run, "run an entry on inputs (its task decides what that means)")
    sp.add_argument("entry")
    sp.add_argument("inputs", nargs="*")
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args, extra = p.parse_known_args(argv)
    if extra and args.command != "run":
        p.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:  # options of the entry's task (`zoo run mtcnn a.jpg --out b.png`) go to its runner
        args.inputs = [*args.inputs, *extra]
    try:
        return int(args.fn(args))
    except ZooError as e:
        print(f"zoo: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
