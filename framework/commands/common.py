"""Helpers shared by the commands: reading the grid request, plain-text tables, number formatting."""

from __future__ import annotations

import argparse


def add_request_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments that select a grid, shared by every command that reads one (run, prepare, ...)."""
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="selections, values and sweeps (see below)")
    parser.add_argument("-e", "--experiment", metavar="FILE", help="experiment YAML (sections task, optimizer, schedule, engine, evaluation, sweep)")
    parser.add_argument("-o", "--output", metavar="DIR", help="output folder (engine.output_dir, default results)")


def read_request(args: argparse.Namespace):
    """The Request named by a command line's overrides, experiment file and --output."""
    from framework.config import Layer, Request, combine, load_experiment, parse_overrides

    request = load_experiment(args.experiment) if args.experiment else Request()
    request = combine(request, parse_overrides(list(args.overrides)))
    if getattr(args, "output", None):
        # A folder name, taken as written: not the override grammar, where `a,b` is a sweep and `1e-3` a
        # float. Combined last, so it replaces any engine.output_dir value or sweep given before it.
        output = Layer("--output", {"engine": {"output_dir": args.output}})
        request = combine(request, Request(layers=[output]))
    return request


def existing_output(path: str) -> str:
    """`path` when it is a folder; otherwise a FrameworkError (exit 2) naming it. The commands that read an
    output folder call it first: a mistyped folder would otherwise read as one without runs (status,
    cancel: exit 0) or as a folder whose runs are missing (plot, report)."""
    from pathlib import Path

    from framework.errors import FrameworkError

    if not Path(path).exists():
        raise FrameworkError(f"{path}: no such folder (give the output folder of `framework run`)")
    if not Path(path).is_dir():
        raise FrameworkError(f"{path}: not a folder (give the output folder of `framework run`)")
    return path


def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip() for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def fmt(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
