"""The ``zoo`` command line. Exit codes: 0 success, 1 failure (checks, verification), 2 usage,
141 when the reader of stdout went away (``zoo list | head -1``), as for ``ls`` and ``git``.

Output follows git, ls and ``gh``: a table on a terminal (only the summary wraps; names and
sources are never cut), plain tab-separated lines without a header when stdout is a pipe,
and ``--json`` for data (numbers as numbers, booleans as booleans; ``zoo run``'s schemas are
in ``zoo_core._tasks``). ``list`` and ``plugins`` import no torch; ``info`` of a component
imports it to show its presets and config fields.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import textwrap
import traceback
from collections.abc import Sequence
from typing import Any

from ._errors import PluginError, UsageError, ZooError
from ._registry import KINDS

# -- output ----------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value)
    return str(value).replace("\t", " ").replace("\n", " ")


def _print_json(data: Any) -> None:
    """``data`` as strict JSON: a NaN or an infinity (which ``json`` would print bare, and no
    JSON reader accepts) becomes ``null``."""
    print(json.dumps(_finite(data), indent=2, default=str, allow_nan=False))


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _print_table(columns: Sequence[str], rows: Sequence[Sequence[Any]],
                 title: str | None = None, wrap: Sequence[str] = ("summary",)) -> None:
    """A table on a terminal, tab-separated lines in a pipe. Only columns in ``wrap`` wrap;
    nothing is cut and no column is left out: a table of three columns or more too wide for
    the terminal becomes one record per row (``column: value`` lines)."""
    cells = [[_cell(v) for v in r] for r in rows]
    if not sys.stdout.isatty():
        for r in cells:
            print("\t".join(r))
        return
    from rich import box
    from rich.console import Console
    from rich.table import Table

    def width_of(i: int) -> int:
        widest = max([len(columns[i]), *(len(r[i]) for r in cells)])
        return min(widest, 20) if columns[i] in wrap else widest

    width = Console().width
    table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for i, name in enumerate(columns):
        if name in wrap:
            table.add_column(name, overflow="fold", ratio=1, min_width=width_of(i))
        else:
            table.add_column(name, no_wrap=True, min_width=width_of(i))
    for r in cells:
        table.add_row(*r)
    needed = Console(width=10_000).measure(table).minimum
    if needed > width and len(columns) > 2:
        _print_records(columns, cells, title, wrap, width)
    else:  # a field and its value: only a value longer than the line makes it wider
        Console(width=max(width, needed)).print(table)


def _print_records(columns: Sequence[str], cells: Sequence[Sequence[str]], title: str | None,
                   wrap: Sequence[str], width: int) -> None:
    """The narrow layout: one block of ``column: value`` lines per row (values of ``wrap``
    columns wrapped to ``width``, the others whole), a blank line between blocks."""
    import textwrap

    label = max(len(c) for c in columns) + 1
    if title:
        print(title, end="\n\n")
    for n, row in enumerate(cells):
        if n:
            print()
        for name, value in zip(columns, row, strict=True):
            head = f"{name + ':':<{label}} "
            if name in wrap and value:
                print(textwrap.fill(value, max(width, len(head) + 20), initial_indent=head,
                                    subsequent_indent=" " * len(head), break_on_hyphens=False))
            else:
                print(head + value)


def _emit(args: argparse.Namespace, data: Any, columns: Sequence[str],
          rows: Sequence[Sequence[Any]], title: str | None = None,
          wrap: Sequence[str] = ("summary",)) -> None:
    if args.json:
        _print_json(data)
    else:
        _print_table(columns, rows, title, wrap)


# -- commands --------------------------------------------------------------------------------


def _pin(files: dict[str, str]) -> str | None:
    """``sha256`` when every file's digest is in the catalogue, ``first-use`` when some are
    pinned on first verified download (``""``), ``None`` without files."""
    if not files:
        return None
    return "sha256" if all(files.values()) else "first-use"


def cmd_list(args: argparse.Namespace) -> int:
    from . import _api
    from ._catalog import CATALOG
    from ._registry import REGISTRY

    pretrained = {"yes": True, "no": False}.get(args.pretrained or "")
    names = _api.list(args.pattern, kind=args.kind, pretrained=pretrained)
    entries, comps = CATALOG.entries(), REGISTRY.components()
    data = []
    for n in names:
        if n in entries:
            e = entries[n]
            data.append({"name": n, "kind": e.kind, "component": e.component,
                         "plugin": e.plugin or None, "available": e.component in comps,
                         "task": e.task or None, "pretrained": e.pretrained,
                         "pin": _pin(e.files), "summary": e.summary})
        else:
            c = comps[n]
            data.append({"name": n, "kind": c.kind, "component": None, "plugin": c.plugin,
                         "available": True, "task": None, "pretrained": False, "pin": None,
                         "summary": c.summary})
    rows = [[d["name"], d["kind"], d["component"] or d["plugin"], d["task"], d["pin"] or "-",
             d["summary"] if d["available"] else
             f"[unavailable: install {d['plugin'] or 'a plugin serving ' + d['component']}] "
             + d["summary"]] for d in data]
    _emit(args, data, ["name", "kind", "component/plugin", "task", "weights", "summary"], rows)
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from . import _api

    data = _api.info(args.name)
    if args.json:
        _print_json(data)
        return 0
    tty = sys.stdout.isatty()
    rows: list[list[Any]] = []
    for key, value in data.items():
        if key in ("config_fields", "presets"):
            continue
        if key in ("files", "local_pins") and isinstance(value, dict):
            rows += [[f"{key}.{k}", v or '"" (pinned on first use)'] for k, v in value.items()]
        elif key == "sources":
            rows += [[key, v] for v in value]
        else:
            rows.append([key, value])
    _print_table(["field", "value"], rows, title=args.name, wrap=())
    fields = [[f["name"], f["type"], json.dumps(f["default"]) if "default" in f else "(required)"]
              for f in data.get("config_fields", [])]
    presets = [[n, ", ".join(f"{k}={json.dumps(v)}" for k, v in p.items()) or "(the defaults)"]
               for n, p in (data.get("presets") or {}).items()]
    if tty:
        for title, columns, body in (("config fields", ["field", "type", "default"], fields),
                                     ("presets", ["preset", "differs from the defaults"],
                                      presets)):
            if body:
                print()
                _print_table(columns, body, title, wrap=(columns[-1],))
    else:
        _print_table([], [["config", *r] for r in fields] + [["preset", *r] for r in presets])
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    from ._registry import REGISTRY

    REGISTRY.components()
    reps = sorted(REGISTRY.reports.values(), key=lambda r: r.name)
    data = [r.__dict__ for r in reps]
    rows = [[r.name, r.distribution, r.version, r.status, len(r.components),
             r.error or "; ".join(r.warnings)] for r in reps]
    _emit(args, data, ["plugin", "distribution", "version", "status", "components", "error"],
          rows, wrap=("error",))
    return 1 if any(r.status == "broken" for r in reps) else 0


def cmd_fetch(args: argparse.Namespace) -> int:
    from ._catalog import CATALOG
    from ._storage import STORE

    folder = STORE.fetch(CATALOG.get(args.entry))
    if args.json:
        _print_json({"entry": args.entry, "path": str(folder)})
    else:
        print(folder)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from ._resolve import verify

    data = verify(args.entry, deep=args.deep)  # every entry the store holds, hf: loads too
    rows = [[r["entry"], r["file"], r["status"], r.get("actual", "")] for r in data]
    _emit(args, data, ["entry", "file", "status", "sha256"], rows, wrap=())
    return 1 if any(not r["status"].startswith("ok") for r in data) else 0


def cmd_push(args: argparse.Namespace) -> int:
    from . import _publish

    obj, tokenizer, task, license_ = _publish.push_source(args.source)  # the one resolve path
    commit = _publish.push(obj, args.repo_id, tokenizer=tokenizer, task=task,
                           private=args.private, license=args.license or license_ or "apache-2.0",
                           tags=args.tag, base_model=args.base_model)
    if args.json:
        _print_json({"repo": args.repo_id, "commit": commit,
                     "load": f"hf:{args.repo_id}@{commit}"})
    else:
        print(commit)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from ._registry import REGISTRY
    from .testing import run_checks

    REGISTRY.components()
    if args.plugin not in REGISTRY.reports:
        from ._errors import unknown

        raise unknown("plugin", args.plugin, REGISTRY.reports, listing="`zoo plugins`")
    report = REGISTRY.reports[args.plugin]
    if report.status in ("broken", "disabled"):
        raise PluginError(report.problem or f"plugin {args.plugin!r} is disabled: {report.error}")
    if not report.components:
        raise PluginError(f"plugin {args.plugin!r} registers no component: nothing to check")
    results = run_checks(plugin=args.plugin, kind=args.kind)
    data = [{"component": c.ref, "check": c.check, "status": s, "detail": d}
            for c, s, d in results]
    rows = [[c.ref, c.check, s, d] for c, s, d in results]
    _emit(args, data, ["component", "check", "status", "detail"], rows,
          title=f"contract checks: {args.plugin}", wrap=("detail",))
    failed = any(s in ("failed", "xpassed") for _, s, _ in results)
    return 1 if failed or report.imports_torch else 0


def cmd_run(args: argparse.Namespace) -> int:
    from ._tasks import as_data, table, task

    result = task(args.entry)(args.inputs)
    if args.json:
        _print_json(as_data(result))
    else:
        title, columns, rows = table(result)
        inputs = [c for c in columns[:1] if c in ("sentence", "input", "text")]
        _print_table(columns, rows, title, wrap=inputs)  # the inputs wrap, like summaries
    return 0


def cmd_plugin_new(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ._errors import InputError
    from ._scaffold import write_plugin

    where = Path(args.directory)
    if where.exists() and not where.is_dir():
        raise InputError(f"--directory {args.directory!r} is a file, not a folder; name the "
                         "folder to create the plugin in")
    folder = write_plugin(args.name, args.kind, args.directory)
    if args.json:
        _print_json({"name": args.name, "kind": args.kind, "path": str(folder)})
    else:
        print(folder)
    return 0


# -- parser ----------------------------------------------------------------------------------


class _RunParser(argparse.ArgumentParser):
    """``zoo run --help`` lists the tasks the installed plugins serve (read on demand)."""

    def format_help(self) -> str:
        try:
            from ._catalog import CATALOG
            from ._registry import REGISTRY
            from ._tasks import schemas

            runners = REGISTRY.task_runners()
            by_task: dict[str, list[str]] = {t: [] for t in sorted(runners)}
            for e in CATALOG.entries().values():
                if e.task in by_task:
                    by_task[e.task].append(e.name)
            width = max(40, shutil.get_terminal_size().columns - 2)

            def item(label: str, text: str) -> str:
                return textwrap.fill(text, width, initial_indent=f"    {label:<9}",
                                     subsequent_indent=" " * 13, break_on_hyphens=False)

            specs, fields = REGISTRY.tasks(), schemas()
            lines = []
            for t, names in by_task.items():
                schema = fields.get(t, {})
                lines += [f"  {t}", item("inputs:", specs[t].usage or "(see its plugin)"),
                          item("entries:", ", ".join(sorted(names)) or "(none)"),
                          item("--json:", _shape(schema) + (f" ({schema['description']})"
                                                            if schema.get("description") else ""))]
            self.epilog = (textwrap.fill("tasks, what each takes, its entries and what --json "
                                         'adds to {"task": str, "entry": str, "inputs": [str]}:',
                                         width) + "\n" + ("\n".join(lines) or "  (none)")
                           + "\n\n" + textwrap.fill(
                               "ENTRY is a catalogue entry, or an hf:org/repo@rev or dir:/path "
                               "folder written by zoo.push or zoo.save (run by its component's "
                               "task).", width))
        except ZooError as e:
            self.epilog = f"(tasks unavailable: {e})"
        return super().format_help()


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("zoo-core")
    except PackageNotFoundError:  # run from a source tree
        from . import __version__

        return __version__


def _shape(schema: Any) -> str:
    """A JSON schema in short: ``{"similarity": [[number]]}``."""
    if not isinstance(schema, dict):
        return "?"
    if schema.get("type") == "array":
        return f"[{_shape(schema.get('items', {}))}]"
    if "properties" in schema:
        return "{" + ", ".join(f"{json.dumps(k)}: {_shape(v)}"
                               for k, v in schema["properties"].items()) + "}"
    return str(schema.get("type", "any"))


def parser() -> argparse.ArgumentParser:
    raw = argparse.RawDescriptionHelpFormatter
    p = argparse.ArgumentParser(
        prog="zoo", formatter_class=raw,
        description="A plugin-based model zoo for PyTorch.",
        epilog="examples:\n  zoo list 'bert*'\n  zoo info model:bert\n"
               "  zoo run all-minilm-l6-v2 'A man eats.' 'A man is eating.' --json\n"
               "  zoo list --json | jq '.[].name'")
    p.add_argument("--json", action="store_true",
                   help="print data as JSON (numbers as numbers) instead of a table")
    p.add_argument("--version", action="version", version=f"zoo {_version()}",
                   help="print the version of zoo-core and exit")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, fn: Any, help: str, parent: Any = sub) -> argparse.ArgumentParser:  # noqa: A002
        sp = parent.add_parser(name, help=help, description=help, formatter_class=raw)
        sp.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="print data as JSON instead of a table")
        sp.set_defaults(fn=fn)
        return sp

    kinds = ", ".join(KINDS)
    sp = add("list", cmd_list, "list catalogue entries and components")
    sp.add_argument("pattern", nargs="?", metavar="PATTERN",
                    help="shell-style pattern on the name, e.g. 'bert*' (default: everything)")
    sp.add_argument("--kind", choices=KINDS, metavar="KIND",
                    help=f"only this kind: {kinds} (default: all)")
    sp.add_argument("--pretrained", choices=["yes", "no"],
                    help="yes: only entries with weights; no: only components (default: both)")
    add("info", cmd_info, "show an entry (its files and how they are pinned) or a component "
        "(its presets and config fields)").add_argument(
        "name", metavar="NAME", help="an entry (bert-base) or a component 'kind:name' "
        f"(model:bert), kind one of {kinds}")
    add("plugins", cmd_plugins, "show installed plugins and their status")
    add("fetch", cmd_fetch, "download and verify an entry's files; print its folder"
        ).add_argument("entry", metavar="ENTRY", help="a catalogue entry (see `zoo list`)")
    sp = add("verify", cmd_verify, "re-hash cached files (exit 1 if one is corrupt)")
    sp.add_argument("entry", nargs="?", metavar="ENTRY",
                    help="one entry or hf:org/repo@rev (default: every entry the store holds)")
    sp.add_argument("--deep", action="store_true", help="also scan weights for NaN and Inf")
    sp = add("push", cmd_push, "upload an entry or a folder to the Hub; print the commit id")
    sp.add_argument("source", metavar="SOURCE",
                    help="an entry name, dir:/path (ours or saved by transformers; tokenizer "
                         "files travel with it) or hf:org/repo@revision")
    sp.add_argument("repo_id", metavar="REPO_ID", help="the Hub repo to create or update, "
                    "'org/name'")
    sp.add_argument("--private", action="store_true", help="create the repo private")
    sp.add_argument("--license", help="the card's license (default: the entry's, else "
                    "apache-2.0)")
    sp.add_argument("--tag", action="append", metavar="TAG",
                    help="an extra card tag (repeatable)")
    sp.add_argument("--base-model", metavar="REPO_ID", help="the card's base_model")
    sp = add("check", cmd_check, "run the contract checks of a plugin (exit 1 on a failure)")
    sp.add_argument("plugin", metavar="PLUGIN", help="a plugin name from `zoo plugins`")
    sp.add_argument("--kind", choices=KINDS, metavar="KIND",
                    help=f"only components of this kind: {kinds} (default: all)")
    sub._parser_class = _RunParser  # its --help lists the installed tasks
    sp = add("run", cmd_run, "run an entry on inputs; its task decides what that means")
    sub._parser_class = argparse.ArgumentParser
    sp.add_argument("entry", metavar="ENTRY", help="a catalogue entry that names a task, or "
                    "hf:org/repo@rev / dir:/path written by zoo.push / zoo.save")
    sp.add_argument("inputs", nargs="*", metavar="INPUT",
                    help="what the task takes (below): texts (quote each one) or image paths, "
                         "then the task's options (--out PATH, --model ENTRY, --threshold T)")

    sp = sub.add_parser("plugin", help="write a new plugin", description="write a new plugin")
    psub = sp.add_subparsers(dest="plugin_command", required=True, metavar="COMMAND")
    sp = add("new", cmd_plugin_new, "write a complete plugin distribution that installs and "
             "passes `zoo check` as generated", parent=psub)
    sp.add_argument("name", metavar="NAME", help="plugin name, e.g. 'mlp' (distribution "
                    "zoo-NAME, package zoo_NAME)")
    sp.add_argument("--kind", choices=KINDS, default="model", metavar="KIND",
                    help=f"the kind of its first component: {kinds} (default: model)")
    sp.add_argument("--directory", default=".", metavar="DIR",
                    help="where to create the zoo-NAME folder (default: the current one)")
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args, extra = p.parse_known_args(argv)
    if extra and args.command != "run":
        p.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:  # options of the entry's task (`zoo run mtcnn a.jpg --out b.png`) go to its runner
        args.inputs = [*args.inputs, *extra]
    error = ""
    try:
        code = int(args.fn(args))
        sys.stdout.flush()  # a short output still in the buffer meets a closed pipe here
        return code
    except BrokenPipeError:
        # the reader closed the pipe (`zoo list | head -1`): stop quietly, as ls and git do
        _drop_stdout()
        return 141
    except Exception as e:  # every failure is one line, never a traceback
        error = f"zoo: error: {_describe(e)}"
        print(error, file=sys.stderr)
        return 2 if isinstance(e, UsageError) else 1
    finally:
        _warn_plugin_problems(error)


def _describe(error: Exception) -> str:
    """What went wrong, in one line."""
    if isinstance(error, ZooError):
        return str(error)
    if isinstance(error, OSError) and _raised_writing_output(error):
        _drop_stdout()
        return f"cannot write the output ({error.strerror or error}); check where stdout goes"
    if isinstance(error, OSError) and error.filename is not None:
        return f"{error.strerror or error}: {str(error.filename)!r}"
    if isinstance(error, RecursionError):
        return ("the input is nested too deeply to read (RecursionError); check the JSON or "
                "TOML file it names")
    if isinstance(error, MemoryError):
        return "out of memory; try a smaller input or free memory"
    text = " ".join(str(error).split())
    return (f"unexpected {type(error).__name__}: {text[:300]} (a bug: please report it with "
            "the command that caused it)")


def _raised_writing_output(error: OSError) -> bool:
    """Whether ``error`` came from writing stdout (a full disk, /dev/full): ``print`` is raised
    from the command of this module that called it, a flush from ``main``."""
    frames = traceback.extract_tb(error.__traceback__)
    return error.filename is None and bool(frames) and frames[-1].filename == __file__


def _drop_stdout() -> None:
    """Point stdout at /dev/null, so that the flush at exit does not fail a second time."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _warn_plugin_problems(shown: str) -> None:
    """One stderr line per broken or degraded plugin, after any command that loaded them."""
    from ._registry import REGISTRY

    for problem in REGISTRY.problems():
        if problem not in shown:
            print(f"zoo: warning: {problem} (see `zoo plugins`)", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
