"""The `framework` command: run, plot, tasks, optimizers.

    framework run tasks=digits optimizers=adamw_baseline,sgd_baseline optimizer.learning_rate=1e-3,1e-2
    framework plot results/

Only argparse, PyYAML and the engine's light modules are imported at start-up; torch and Lightning are
imported by the commands that train, matplotlib by the one that plots.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from framework.errors import FrameworkError

RUN_EPILOG = """\
overrides:
  tasks=a,b             tasks to run (tasks=all: every task but the template)
  optimizers=x,y        optimizers to run (default: each task's default optimizer)
  section.key=value     set a value, e.g. task.batch_size=128 engine.devices=2
  section.key=v1,v2     sweep: every value becomes a grid axis, e.g. optimizer.learning_rate=1e-4,1e-3
  section.key=[v1,v2]   a list value (brackets), e.g. optimizer.decay_milestones=[0.5,0.75]
  engine.seed=1,2,3     seeds are a sweep axis like any other

merge order: engine defaults < optimizer default.yaml < task default.yaml < experiment file < command line.
Finished runs are skipped, unfinished ones resume from their last checkpoint (--force reruns).
Exit status: 0 when every run finished (done or diverged), 1 when a run failed, 2 for bad input.
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="framework",
        description="Benchmark deep-learning optimizers across tasks: grids of runs, resumable, with heatmaps.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser(
        "run", help="train every task x optimizer x sweep value x seed",
        epilog=RUN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="selections, values and sweeps (see below)")
    run.add_argument("-e", "--experiment", metavar="FILE", help="experiment YAML (sections task, optimizer, engine, evaluation, sweep)")
    run.add_argument("-o", "--output", metavar="DIR", help="output folder (engine.output_dir, default results)")
    run.add_argument("--dry-run", action="store_true", help="print the runs as a table and run nothing")
    run.add_argument("--force", action="store_true", help="rerun runs that already finished")

    plot = commands.add_parser("plot", help="heatmaps of each task's target metric from an output folder")
    plot.add_argument("output", metavar="OUTPUT", help="the output folder of `framework run`")
    plot.add_argument("--x", metavar="KEY", help="heatmap columns (default evaluation.plot.x: optimizer.learning_rate)")
    plot.add_argument("--y", metavar="KEY", help="heatmap rows (default evaluation.plot.y: optimizer.weight_decay)")
    plot.add_argument("--split", metavar="KEY", action="append", default=[], help="one figure per value of KEY (repeatable)")
    plot.add_argument("--aggregate", metavar="KEY", action="append", default=[], help="best value over KEY in each cell (repeatable)")
    plot.add_argument("--out", metavar="DIR", help="where figures go (default OUTPUT/plots)")
    plot.add_argument("--format", default="png,pdf", help="comma-separated figure formats (default png,pdf)")

    for kind in ("tasks", "optimizers"):
        listing = commands.add_parser(kind, help=f"list the {kind} found (bundled and plugin folders)")
        listing.add_argument("--check", action="store_true", help="also import each one and report import errors")
        listing.add_argument("--plugin-path", action="append", default=[], metavar="DIR", help="extra plugin folder (repeatable)")
    return parser


def _request(args: argparse.Namespace):
    from framework.config import Request, combine, load_experiment, parse_overrides

    overrides = list(args.overrides)
    if args.output:
        overrides.append(f"engine.output_dir={args.output}")
    request = load_experiment(args.experiment) if args.experiment else Request()
    return combine(request, parse_overrides(overrides))


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip() for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _score_text(outcome) -> str:
    """The run's plotted score (`evaluation.plot.metric` of `evaluation.checkpoint`), else its error."""
    evaluation = outcome.spec.config["evaluation"]
    value = outcome.scores.get(evaluation["checkpoint"], {}).get(evaluation["plot"]["metric"])
    return f"{evaluation['plot']['metric']}={value:.4g}" if isinstance(value, float) else (outcome.error or "")


def cmd_run(args: argparse.Namespace) -> int:
    from framework import results
    from framework.grid import describe_axes, expand
    from framework.registry import Registry

    request = _request(args)
    registry = Registry(request.plugin_paths())
    runs = expand(request, registry)
    axes = describe_axes(runs)
    if args.dry_run:
        rows = []
        for i, spec in enumerate(runs, 1):
            status = results.read_status(spec.run_dir(spec.config["engine"]["output_dir"])) or {}
            rows.append([str(i), spec.task, spec.optimizer, spec.run_id, *(_fmt(spec.sweep.get(k, "")) for k in axes), status.get("state", "new")])
        print(_table(["#", "task", "optimizer", "run_id", *axes, "state"], rows))
        print(f"{len(runs)} runs (dry run: nothing was run)")
        return 0

    from framework.executors.local import run_all

    def report(index: int, outcome) -> None:
        spec = outcome.spec
        sweep = "".join(f" {k}={_fmt(v)}" for k, v in spec.sweep.items())
        print(f"[{index + 1}/{len(runs)}] {spec.task}/{spec.optimizer}/{spec.run_id}{sweep} -> {outcome.state} "
              f"({outcome.seconds:.1f}s) {_score_text(outcome)}", flush=True)

    print(f"{len(runs)} runs -> {Path(runs[0].config['engine']['output_dir']).resolve() if runs else '-'}", flush=True)
    outcomes = run_all(runs, registry, force=args.force, report=report)
    rows = []
    for outcome in outcomes:
        spec = outcome.spec
        rows.append([spec.task, spec.optimizer, spec.run_id, *(_fmt(spec.sweep.get(k, "")) for k in axes),
                     outcome.state, _score_text(outcome)[:80]])
    print()
    print(_table(["task", "optimizer", "run_id", *axes, "state", "score / error"], rows))
    counts = {state: sum(o.state == state for o in outcomes) for state in ("done", "skipped", "diverged", "failed")}
    print(", ".join(f"{n} {state}" for state, n in counts.items()))
    if counts["failed"]:
        print("failed runs keep their traceback in <run dir>/status.json; run the same command again to retry them",
              file=sys.stderr)
    return 1 if counts["failed"] else 0


def cmd_plot(args: argparse.Namespace) -> int:
    from framework.plots import plot_heatmaps

    formats = tuple(f.strip() for f in args.format.split(",") if f.strip())
    written = plot_heatmaps(args.output, plot_dir=args.out, x=args.x, y=args.y,
                            split=tuple(args.split), aggregate=tuple(args.aggregate), formats=formats)
    for path in written:
        print(path)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from framework.registry import EXCLUDED_FROM_ALL, Registry

    kind = args.command[:-1]
    registry = Registry(args.plugin_path)
    if args.check:
        registry.check_imports()
    for problem in registry.problems:
        print(f"warning: {problem}", file=sys.stderr)
    plugins = registry.plugins[kind]
    rows = []
    for name, plugin in plugins.items():
        state = "ok" if plugin.ok else "broken"
        note = plugin.description if plugin.ok else plugin.problem
        if name in EXCLUDED_FROM_ALL:
            note = f"{note} (example to copy; not part of {args.command}=all)"
        rows.append([name, state, note or ""])
    print(_table([kind, "state", "description"], rows) if rows else f"no {kind} found")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    handlers = {"run": cmd_run, "plot": cmd_plot, "tasks": cmd_list, "optimizers": cmd_list}
    try:
        return handlers[args.command](args)
    except FrameworkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted: finished runs are kept; run the same command again to resume", file=sys.stderr)
        return 130
