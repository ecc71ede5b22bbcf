"""The `framework` command line: one sub-command per module in `framework.commands`.

    framework run tasks=digits optimizers=adamw_baseline,sgd_baseline optimizer.learning_rate=1e-3,1e-2
    framework plot results/

Only argparse, PyYAML and the engine's light modules are imported at start-up; torch and Lightning are
imported by the commands that train, matplotlib by the ones that plot.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from framework.commands import COMMANDS
from framework.errors import FrameworkError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="framework",
        description="Benchmark deep-learning optimizers across tasks: grids of runs, locally or on SLURM, "
                    "resumable, with heatmaps, tables and an HTML report.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"framework.commands.{name}").register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    # KEY=VALUE overrides may follow options (`run tasks=x --dry-run engine.nodes=2`): argparse takes one
    # run of positionals only, so the later ones come back unknown and join the overrides in their order
    args, extra = parser.parse_known_args(argv)
    if extra:
        if isinstance(getattr(args, "overrides", None), list) and all("=" in a and not a.startswith("-") for a in extra):
            args.overrides = [*args.overrides, *extra]
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return args.handler(args)
    except FrameworkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted: finished runs are kept; run the same command again to resume", file=sys.stderr)
        return 130
