"""`framework estimate`: measure each task of a grid on this device and project the grid's cost."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from framework.commands.common import add_request_arguments, read_request, table

EPILOG = """\
examples:
  framework estimate tasks=digits,template optimizers=adamw_baseline,sgd_baseline
  framework estimate -e experiment.yaml --markdown docs/estimation.md

Takes the same grid arguments as `framework run`. For each task x optimizer (and each distinct task
setting) a short fit on the current device measures parameters (M), FLOPs per sample, step time and
peak memory over --steps steps; every run of the grid is projected from its own epochs or steps.
Prints a table and writes it as markdown (default <output>/estimation.md); sections of an existing
file between <!-- NAME: begin --> and <!-- NAME: end --> lines are kept at its end (docs/estimation.md
keeps `framework tune-batch`'s there). Nothing is written to run directories.
"""


def register(commands) -> None:
    parser = commands.add_parser(
        "estimate", help="measure parameters, FLOPs, step time and memory per task; project the grid's time",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_request_arguments(parser)
    parser.add_argument("--steps", type=int, default=10, help="timed training steps per task (default 10, after 3 warm-up steps)")
    parser.add_argument("--markdown", metavar="FILE", type=Path, help="markdown output (default <output>/estimation.md)")
    parser.set_defaults(handler=handler)


def handler(args: argparse.Namespace) -> int:
    from framework.config.file_io import atomic_write_text
    from framework.config.grid import expand
    from framework.config.registry import Registry
    from framework.errors import FrameworkError
    from framework.training.estimate import estimate, markdown, rows, totals

    if args.steps < 1:
        raise FrameworkError(f"--steps must be at least 1, got {args.steps}")
    request = read_request(args)
    registry = Registry(request.plugin_paths())
    runs = expand(request, registry)
    estimates = estimate(runs, registry, args.steps, report=lambda line: print(line, file=sys.stderr, flush=True))
    header, body = rows(estimates)
    print(table(header, body))
    print(totals(estimates))
    path = args.markdown or Path(runs[0].config["engine"]["output_dir"]) / "estimation.md"
    command = "framework estimate " + " ".join(shlex.quote(a) for a in sys.argv[2:]) if len(sys.argv) > 1 else "framework estimate"
    atomic_write_text(path, markdown(estimates, command) + kept_sections(path))
    print(f"markdown: {path}")
    return 0


def kept_sections(path: Path) -> str:
    """The marked sections (<!-- NAME: begin --> ... <!-- NAME: end -->) of the file at `path`, which a new
    estimate keeps: hand-written or other commands' parts of the same page."""
    import re

    if not path.is_file():
        return ""
    blocks = re.finditer(r"^<!-- ([\w-]+): begin -->$.*?^<!-- \1: end -->$", path.read_text(), re.M | re.S)
    return "".join("\n" + block.group(0) + "\n" for block in blocks)
