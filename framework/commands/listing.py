"""`framework tasks` and `framework optimizers`: list the plugins found, where each came from (bundled or
its plugin folder), optionally importing each; a broken plugin shows the first line of its problem."""

from __future__ import annotations

import argparse
import sys

from framework.commands.common import table


def register(commands) -> None:
    for kind in ("tasks", "optimizers"):
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
            note = f"{note} (example to copy; not part of {args.command}=all)"
        folder = plugin.path.resolve().parent.parent  # <folder>/tasks/<name>: the folder that was searched
        rows.append([name, state, "bundled" if folder == bundled else str(folder), note or ""])
    print(table([kind, "state", "origin", "description"], rows) if rows else f"no {kind} found")
    return 0
