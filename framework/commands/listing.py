"""`framework tasks` and `framework optimizers`: list the plugins found, optionally importing each."""

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
    from framework.config.registry import EXCLUDED_FROM_ALL, Registry

    kind = args.command[:-1]
    registry = Registry(args.plugin_path)
    if args.check:
        registry.check_imports()
    for problem in registry.problems:
        print(f"warning: {problem}", file=sys.stderr)
    rows = []
    for name, plugin in registry.plugins[kind].items():
        state = "ok" if plugin.ok else "broken"
        note = plugin.description if plugin.ok else plugin.problem
        if name in EXCLUDED_FROM_ALL:
            note = f"{note} (example to copy; not part of {args.command}=all)"
        rows.append([name, state, note or ""])
    print(table([kind, "state", "description"], rows) if rows else f"no {kind} found")
    return 0
