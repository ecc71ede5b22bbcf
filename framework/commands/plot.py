"""`framework plot`: heatmaps, learning curves, best configurations, time to target, performance
profiles and the results table of an output folder."""

from __future__ import annotations

import argparse
import sys

EPILOG = """\
written to OUTPUT/plots (or --out):
  <task>_heatmap.{png,pdf,csv}         evaluation.plot.metric (test) over --x and --y, mean ± std over seeds;
                                       box: each optimizer's configuration chosen on the validation metric
  <task>_best_so_far.{png,pdf}         for optimizers whose runs are a search (search.strategy random,
  <task>_scatter.{png,pdf}             quasirandom, tpe) or no full grid, instead of the heatmap: the best
  <task>_trials.csv                    validation score so far over trials, and each trial's validation
                                       score against each hyperparameter (chosen one ringed); pruned,
                                       failed and diverged trials as markers on the worst edge
  <task>_curves.{png,pdf,csv}          training loss and task.target_metric over steps, chosen configuration
                                       of each optimizer, band from the lowest to the highest seed
  <task>_time_to_target.{png,pdf,csv}  steps until task.target_metric reaches evaluation.target (when set)
  best_configurations.csv              per task x optimizer: the configuration chosen on evaluation.select
                                       (default task.target_metric, a val_* metric), its test mean ± std
                                       and 95% Student-t interval of the mean over seeds
  performance_profile.{png,pdf,csv}    share of tasks on which each optimizer is within a factor tau of the best
  results.csv, results.parquet         every run x checkpoint x metric, with hyperparameters and environment

The rules (selection on validation, failed and diverged seeds, the interval) are docs/protocol.md.
"""


def add_figure_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that shape the figures, shared with `framework report`."""
    parser.add_argument("output", metavar="OUTPUT", help="the output folder of `framework run`")
    parser.add_argument("--x", metavar="KEY", help="heatmap columns (default evaluation.plot.x: optimizer.learning_rate)")
    parser.add_argument("--y", metavar="KEY", help="heatmap rows (default evaluation.plot.y: optimizer.weight_decay)")
    parser.add_argument("--split", metavar="KEY", action="append", default=[], help="one heatmap per value of KEY (repeatable)")
    parser.add_argument("--aggregate", metavar="KEY", action="append", default=[], help="best value over KEY in each heatmap cell (repeatable)")


def analyze_figures(args: argparse.Namespace, plot_dir: str | None, formats: tuple[str, ...], strict: bool = True):
    """`analysis.analyze` with the options of `add_figure_arguments`; its notes go to stderr."""
    from framework.commands.common import existing_output
    from framework.results.analysis import analyze

    existing_output(args.output)
    result = analyze(args.output, plot_dir=plot_dir, x=args.x, y=args.y, split=tuple(args.split),
                     aggregate=tuple(args.aggregate), formats=formats, strict=strict)
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    return result


def register(commands) -> None:
    parser = commands.add_parser(
        "plot", help="heatmaps, learning curves, best configurations, profiles and the results table",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_figure_arguments(parser)
    parser.add_argument("--out", metavar="DIR", help="where figures and tables go (default OUTPUT/plots)")
    parser.add_argument("--format", default="png,pdf", help="comma-separated figure formats (default png,pdf)")
    parser.set_defaults(handler=handler)


def handler(args: argparse.Namespace) -> int:
    from framework.commands.common import table
    from framework.results.selection import PROTOCOL_VERSION

    formats = tuple(f.strip() for f in args.format.split(",") if f.strip())
    result = analyze_figures(args, args.out, formats)
    for path in result.written:
        print(path)
    if result.best_rows:
        rows = result.best_table()
        print(f"\nconfiguration chosen on validation per task x optimizer, its test score: mean ± std and 95% "
              f"Student-t interval of the mean over seeds (protocol v{PROTOCOL_VERSION}):")
        print(table(list(rows[0]), [list(r.values()) for r in rows]))
    return 0
