"""`framework plot`: heatmaps of each task's target metric from an output folder."""

from __future__ import annotations

import argparse


def register(commands) -> None:
    parser = commands.add_parser("plot", help="heatmaps of each task's target metric from an output folder")
    parser.add_argument("output", metavar="OUTPUT", help="the output folder of `framework run`")
    parser.add_argument("--x", metavar="KEY", help="heatmap columns (default evaluation.plot.x: optimizer.learning_rate)")
    parser.add_argument("--y", metavar="KEY", help="heatmap rows (default evaluation.plot.y: optimizer.weight_decay)")
    parser.add_argument("--split", metavar="KEY", action="append", default=[], help="one figure per value of KEY (repeatable)")
    parser.add_argument("--aggregate", metavar="KEY", action="append", default=[], help="best value over KEY in each cell (repeatable)")
    parser.add_argument("--out", metavar="DIR", help="where figures go (default OUTPUT/plots)")
    parser.add_argument("--format", default="png,pdf", help="comma-separated figure formats (default png,pdf)")
    parser.set_defaults(handler=handler)


def handler(args: argparse.Namespace) -> int:
    from framework.plots import plot_heatmaps

    formats = tuple(f.strip() for f in args.format.split(",") if f.strip())
    written = plot_heatmaps(args.output, plot_dir=args.out, x=args.x, y=args.y,
                            split=tuple(args.split), aggregate=tuple(args.aggregate), formats=formats)
    for path in written:
        print(path)
    return 0
