"""`framework run`: expand the grid and train every run that has not finished."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from framework.commands.common import add_request_arguments, fmt, read_request, table

EPILOG = """\
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


def register(commands) -> None:
    parser = commands.add_parser(
        "run", help="train every task x optimizer x sweep value x seed",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_request_arguments(parser)
    parser.add_argument("--dry-run", action="store_true", help="print the runs as a table and run nothing")
    parser.add_argument("--force", action="store_true", help="rerun runs that already finished")
    parser.set_defaults(handler=handler)


def score_text(outcome) -> str:
    """The run's plotted score (`evaluation.plot.metric` of `evaluation.checkpoint`), else its error."""
    evaluation = outcome.spec.config["evaluation"]
    value = outcome.scores.get(evaluation["checkpoint"], {}).get(evaluation["plot"]["metric"])
    return f"{evaluation['plot']['metric']}={value:.4g}" if isinstance(value, float) else (outcome.error or "")


def handler(args: argparse.Namespace) -> int:
    from framework import results
    from framework.grid import describe_axes, expand
    from framework.registry import Registry

    request = read_request(args)
    registry = Registry(request.plugin_paths())
    runs = expand(request, registry)
    axes = describe_axes(runs)
    if args.dry_run:
        rows = []
        for i, spec in enumerate(runs, 1):
            status = results.read_status(spec.run_dir(spec.config["engine"]["output_dir"])) or {}
            rows.append([str(i), spec.task, spec.optimizer, spec.run_id, *(fmt(spec.sweep.get(k, "")) for k in axes), status.get("state", "new")])
        print(table(["#", "task", "optimizer", "run_id", *axes, "state"], rows))
        print(f"{len(runs)} runs (dry run: nothing was run)")
        return 0

    from framework.executors.local import run_all

    def report(index: int, outcome) -> None:
        spec = outcome.spec
        sweep = "".join(f" {k}={fmt(v)}" for k, v in spec.sweep.items())
        print(f"[{index + 1}/{len(runs)}] {spec.task}/{spec.optimizer}/{spec.run_id}{sweep} -> {outcome.state} "
              f"({outcome.seconds:.1f}s) {score_text(outcome)}", flush=True)

    print(f"{len(runs)} runs -> {Path(runs[0].config['engine']['output_dir']).resolve() if runs else '-'}", flush=True)
    outcomes = run_all(runs, registry, force=args.force, report=report)
    rows = []
    for outcome in outcomes:
        spec = outcome.spec
        rows.append([spec.task, spec.optimizer, spec.run_id, *(fmt(spec.sweep.get(k, "")) for k in axes),
                     outcome.state, score_text(outcome)[:80]])
    print()
    print(table(["task", "optimizer", "run_id", *axes, "state", "score / error"], rows))
    counts = {state: sum(o.state == state for o in outcomes) for state in ("done", "skipped", "diverged", "failed")}
    print(", ".join(f"{n} {state}" for state, n in counts.items()))
    if counts["failed"]:
        print("failed runs keep their traceback in <run dir>/status.json; run the same command again to retry them",
              file=sys.stderr)
    return 1 if counts["failed"] else 0
