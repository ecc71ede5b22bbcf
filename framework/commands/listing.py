"""`framework tasks`, `framework optimizers` and `framework models`: list the plugins found, where each came from (bundled or
its plugin folder), optionally importing each; a broken plugin shows the first line of its problem."""

from __future__ import annotations

import argparse
import sys

from framework.commands.common import table


def register(commands) -> None:
    for kind in ("tasks", "optimizers", "models"):
        parser = commands.add_parser(kind, help=f"list the {kind} found (bundled and plugin folders)")
        parser.add_argument("--check", action="store_true", help="also import each one and report import errors")
        parser.add_argument("--plugin-path", action="append", default=[], metavar="DIR", help="extra plugin folder (repeatable)")
        parser.set_defaults(handler=handler)


def handler(args: argparse.Namespace) -> int:
    from framework.config.registry import EXCLUDED_FROM_ALL, Registry, builtin_root

    kind = args.command[:-1]
    registry = Registry(args.plugin_path)
    if args.check:
        registry.check_imports()
    for problem in registry.problems:
        print(f"warning: {problem}", file=sys.stderr)
    bundled = builtin_root().resolve()
    rows = []
    for name, plugin in registry.plugins[kind].items():
        state = "ok" if plugin.ok else "broken"
        # a problem can carry a traceback or a list of keys: the listing keeps one line per plugin
        note = plugin.description if plugin.ok else (plugin.problem or "").strip().splitlines()[0]
        if name in EXCLUDED_FROM_ALL:
            note = f"{note} (example to copy{'' if kind == 'model' else f'; not part of {args.command}=all'})"
        folder = plugin.path.resolve().parent.parent  # <folder>/tasks/<name>: the folder that was searched
        row = [name, state, "bundled" if folder == bundled else str(folder), note or ""]
        rows.append(row + _model_columns(plugin) if kind == "model" else row)
    header = [kind, "state", "origin", "description"] + (["serves", "presets"] if kind == "model" else [])
    print(table(header, rows) if rows else f"no {args.command} found")
    return 0


def _model_columns(plugin) -> list[str]:
    """A model plugin's task kinds and the names that build it (task.model.name=...)."""
    settings = plugin.defaults.get("model") or {}
    return [", ".join(settings.get("auto_classes") or {}) or "-", ", ".join(settings.get("presets") or {}) or plugin.name]
