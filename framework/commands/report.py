"""`framework report`: one self-contained HTML page with every figure and table of an output folder."""

from __future__ import annotations

import argparse

from framework.commands.plot import add_figure_arguments, analyze_figures

EPILOG = """\
The page (default OUTPUT/report.html) holds: the runs' states with each failed or diverged run's error
and traceback, the grid (its axes and the settings shared by every run), the best configuration per
task x optimizer, heatmaps (for searches: best so far and scatter), learning curves, time to target,
performance profiles and the environment
the runs recorded. It is one file that works offline: images are embedded, nothing is fetched. Configurations are chosen
on the validation metric and reported on the test metric, by the rules of docs/protocol.md; the page
and the first line printed name the protocol version (protocol v1).
The figures and tables are made as by `framework plot` and also land in OUTPUT/plots. A heatmap that
cannot be drawn (a key varies besides its axes) becomes a note on the page instead of an error.
"""


def register(commands) -> None:
    parser = commands.add_parser(
        "report", help="one self-contained HTML page with every figure, table and the runs' states",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_figure_arguments(parser)
    parser.add_argument("--out", metavar="FILE", help="where the page goes (default OUTPUT/report.html)")
    parser.add_argument("--plots", metavar="DIR", help="where figures and tables go (default OUTPUT/plots)")
    parser.set_defaults(handler=handler)


def handler(args: argparse.Namespace) -> int:
    from framework.results.report import write_report
    from framework.results.selection import PROTOCOL_VERSION

    result = analyze_figures(args, args.plots, ("png", "pdf"), strict=False)
    print(f"protocol v{PROTOCOL_VERSION} (docs/protocol.md): configurations chosen on validation, reported on test")
    print(write_report(result, args.out))
    return 0
