"""`framework run`: expand the grid and train every run that has not finished."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from framework.commands.common import add_request_arguments, fmt, read_request, table
from framework.errors import FrameworkError

EPILOG = """\
overrides:
  tasks=a,b             tasks to run (tasks=all: every task but the template)
  optimizers=x,y        optimizers to run (default: each task's default optimizer)
  section.key=value     set a value, e.g. task.batch_size=128 engine.devices=2
  section.key=v1,v2     sweep: every value becomes a grid axis, e.g. optimizer.learning_rate=1e-4,1e-3
  section.key=[v1,v2]   a list value (brackets), e.g. schedule.decay_milestones=[0.5,0.75]
  engine.seed=1,2,3     seeds are a sweep axis like any other

search (docs/search.md; quote the parentheses in a shell):
  search.strategy=S     grid (choices as sweep axes), random, quasirandom (scaled Halton) or tpe (Optuna)
  search.trials=N       budget per task x optimizer (random, quasirandom, tpe); search.seed=K fixes the draws
  'search.KEY=RANGE'    loguniform(lo,hi), uniform(lo,hi), int(lo,hi), intlog(lo,hi) or choice(a,b,...), e.g.
                        'search.optimizer.learning_rate=loguniform(1e-4,1e-1)'
  search.pruner=P       tpe only: median or asha stop poor trials at a validation (state `pruned`)
  search.storage=URL    tpe only: an RDB URL or a journal file (default <output>/.search/<study>.journal)
  Every trial is a normal run (run_id folder, resumed, skipped when done); the same command continues a
  study. random/quasirandom trials are listed by --dry-run; tpe trials are asked by engine.workers search
  workers (slurm: a job array of engine.workers tasks) while the study runs, and --dry-run shows the study.

merge order: engine defaults < optimizer default.yaml < task default.yaml (its recipe, incl. `schedule`, applies
to every optimizer) < schedule keys an optimizer replaces (shown in the dry run's schedule column, recorded in
schedule.overridden_by) < experiment file < command line.
Before anything is listed, trained or submitted, every selected plugin is imported and its contract checked
once per task config x optimizer (factories, TaskModel, parameter groups, the metrics one CPU evaluation
batch logs): a violation is one line each, exit 2, nothing written (README "Check your plugin";
`framework conformance FOLDER` runs the whole suite on a plugin folder).
Finished runs are skipped, unfinished ones resume from their last checkpoint (--force reruns).
A cell that another `framework run` is training (its run directory's .lock) is reported `locked` and left
alone; the lock of a process that died is taken over, and a run whose lock is taken over stops at a step
(`interrupted`), leaving the cell to the new holder. Training options (precision, accumulation, clipping,
early stopping, deterministic, skip_bad_samples): engine.* keys, see README "Training options".
engine.loggers='[csv,tensorboard,mlflow,wandb]' also logs each run's curves, config and scores to TensorBoard,
MLflow or wandb (metrics.csv, which the plots read, is always written; README "Loggers").
engine.executor=local trains in engine.workers processes; engine.executor=slurm submits job arrays and
returns at once (follow with `framework status OUTPUT`; see README "Running on a SLURM cluster").
Exit status: 0 when no run failed (done, diverged, skipped, or locked by / interrupted for another process
and left to it), 1 when a run failed, 2 for bad input.
"""


def register(commands) -> None:
    parser = commands.add_parser(
        "run", help="train every task x optimizer x sweep value x seed",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_request_arguments(parser)
    parser.add_argument("--dry-run", action="store_true", help="check the plugins' contract, print the runs as a table and run nothing")
    parser.add_argument("--force", action="store_true", help="rerun runs that already finished (never a cell whose lock another process holds)")
    parser.add_argument("--sanity", action="store_true",
                        help="first check, for each task x optimizer, that the loss falls when overfitting 2 batches "
                             "for 40 steps; run the grid only if every check passes (with --dry-run: check, then list)")
    parser.set_defaults(handler=handler)


def score_text(spec, outcome: dict) -> str:
    """The run's plotted score (`evaluation.plot.metric` of `evaluation.checkpoint`), else its error."""
    evaluation = spec.config["evaluation"]
    value = (outcome.get("scores") or {}).get(evaluation["checkpoint"], {}).get(evaluation["plot"]["metric"])
    return f"{evaluation['plot']['metric']}={value:.4g}" if isinstance(value, float) else (outcome.get("error") or "")


class Progress:
    """One line per finished cell with the grid's counts and an ETA (works in a terminal and in a log)."""

    def __init__(self, total: int, workers: int):
        self.total, self.workers, self.finished = total, max(1, workers), 0
        self.counts = {"done": 0, "failed": 0, "diverged": 0, "skipped": 0}
        self.seconds: list[float] = []

    def __call__(self, spec, outcome: dict) -> None:
        self.finished += 1
        self.counts[outcome["state"]] = self.counts.get(outcome["state"], 0) + 1
        if outcome["state"] != "skipped":
            self.seconds.append(outcome["seconds"])
        left = self.total - self.finished
        running = min(self.workers, left)
        eta = ""
        if self.seconds and left:
            eta = f", ETA {time.strftime('%H:%M:%S', time.gmtime(sum(self.seconds) / len(self.seconds) * left / self.workers))}"
        sweep = "".join(f" {k}={fmt(v)}" for k, v in spec.sweep.items())
        print(f"[{self.finished}/{self.total}] {spec.task}/{spec.optimizer}/{spec.run_id}{sweep} -> {outcome['state']} "
              f"({outcome['seconds']:.1f}s) {score_text(spec, outcome)} | {self.counts['done']} done, "
              f"{self.counts['failed']} failed, {running} running, {left - running} left{eta}", flush=True)


def handler(args: argparse.Namespace) -> int:
    from framework.config.grid import describe_axes, expand, search_axes
    from framework.config.registry import Registry
    from framework.executors import slurm

    request = read_request(args)
    registry = Registry(request.plugin_paths())
    runs = expand(request, registry)
    search, _, _ = search_axes(request)  # checked by expand
    axes = describe_axes(runs)
    if runs and not args.dry_run:
        from framework.commands.describe import print_task_lines

        print_task_lines(runs, registry)  # first: what each task trains (model, params, data)
    _check_contract(runs, registry)
    if args.sanity:
        from framework.training.sanity import check_grid

        if not check_grid(runs, registry):
            return 1
    if search is not None and search.strategy == "tpe":  # trials asked while the study runs: commands/search_run.py
        from framework.commands.search_run import run_studies

        return run_studies(args, request, search, runs)
    if args.dry_run:
        return _dry_run(runs, axes)
    if not runs:
        print("0 runs")
        return 0
    engine = runs[0].config["engine"]
    executors = {spec.config["engine"]["executor"] for spec in runs}
    if len(executors) > 1:
        raise FrameworkError(f"engine.executor differs between runs ({', '.join(sorted(executors))}); use one executor per command")
    owned = slurm.in_flight(runs)  # cells a SLURM job still owns are never trained twice
    for spec in runs:
        if spec.run_id in owned:
            print(f"{spec.task}/{spec.optimizer}/{spec.run_id}: in flight as SLURM job {owned[spec.run_id]}, left alone "
                  f"(`framework cancel` stops it)")
    runs = [spec for spec in runs if spec.run_id not in owned]
    output = Path(engine["output_dir"]).resolve()
    if engine["executor"] == "slurm":
        return _submit(runs, request.plugin_paths(), args.force, output)

    from framework.executors.local import run_all

    workers = engine["workers"]
    where = "in this process" if workers == 0 else f"{workers} worker{'s' * (workers != 1)}"
    print(f"{len(runs)} runs -> {output} ({where})", flush=True)
    outcomes = run_all(runs, request.plugin_paths(), workers, force=args.force, report=Progress(len(runs), workers))
    return _summary(runs, outcomes, axes)


def _check_contract(runs, registry) -> None:
    """Before a cell trains (on any executor) or is listed: import every selected plugin and check its contract
    (framework/training/contract.py); a broken one stops the command with one line per problem, exit 2."""
    if not runs:
        return
    from framework.training.contract import ContractError, check_runs

    report = check_runs(runs, registry)
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    if report.problems:
        raise ContractError(report.problems)
    print(f"plugin contract: {report.pairs} task x optimizer pair{'s' * (report.pairs != 1)} checked "
          f"({report.seconds:.1f}s)", flush=True)


def _dry_run(runs, axes: list[str]) -> int:
    """The grid as a table, with each run's learning-rate schedule: the task's recipe, and any key its
    optimizer replaced (schedule.overridden_by), so a comparison's schedules can be checked before it runs."""
    from framework.config.schedules import describe_schedule
    from framework.executors import slurm
    from framework.results import run_folder

    sbatch = slurm.sbatch_lines(runs)  # engine.executor=slurm: what each job array would ask sbatch for
    rows = []
    trials = any("search" in spec.config for spec in runs)  # a random or quasirandom search: its trial numbers
    for i, spec in enumerate(runs, 1):
        status = run_folder.read_status(spec.run_dir(spec.config["engine"]["output_dir"])) or {}
        trial = [str(spec.config.get("search", {}).get("trial", ""))] if trials else []
        rows.append([str(i), spec.task, spec.optimizer, spec.run_id, *trial, *(fmt(spec.sweep.get(k, "")) for k in axes),
                     describe_schedule(spec.config["schedule"]), status.get("state", "new")])
    print(table(["#", "task", "optimizer", "run_id", *(["trial"] if trials else []), *axes, "schedule", "state"], rows))
    print(f"{len(runs)} runs (dry run: nothing was run)")
    if sbatch:
        print("\n".join(sbatch))
    return 0


def _summary(runs, outcomes: list[dict], axes: list[str]) -> int:
    """The local executor's closing table and counts; the exit status (1 when a run failed)."""
    rows = []
    for spec, outcome in zip(runs, outcomes):
        rows.append([spec.task, spec.optimizer, spec.run_id, *(fmt(spec.sweep.get(k, "")) for k in axes),
                     outcome["state"], score_text(spec, outcome)[:80]])
    print()
    print(table(["task", "optimizer", "run_id", *axes, "state", "score / error"], rows))
    counts = {state: sum(o["state"] == state for o in outcomes) for state in ("done", "skipped", "diverged", "failed")}
    print(", ".join(f"{n} {state}" for state, n in counts.items()))
    locked = sum(o["state"] == "locked" for o in outcomes)
    if locked:  # another `framework run` on this output is training them now: neither waited for nor counted as failed
        print(f"{locked} locked: being trained by another process (see the table); run again after it ends to collect them")
    interrupted = sum(o["state"] == "interrupted" for o in outcomes)
    if interrupted:  # this process stalled long enough to look dead: the process that took the lock over owns the cell
        print(f"{interrupted} interrupted: another process took the lock over and trains them now (see the table)")
    if counts["failed"]:
        print("failed runs keep their traceback in <run dir>/status.json; run the same command again to retry them",
              file=sys.stderr)
    return 1 if counts["failed"] else 0


def _submit(runs, plugin_paths: list[str], force: bool, output: Path) -> int:
    """slurm executor: submit what has not finished and return; `framework status` follows it."""
    from framework.executors import slurm
    from framework.results import run_folder

    todo = []
    for spec in runs:
        status = run_folder.read_status(spec.run_dir(spec.config["engine"]["output_dir"])) or {}
        if force or status.get("state") not in run_folder.FINISHED:
            todo.append(spec)
    submission = slurm.submit(todo, plugin_paths, force=force)
    for spec in todo:
        if spec.run_id in submission.locked:  # being trained by another process: not cleared, not submitted
            print(f"{spec.task}/{spec.optimizer}/{spec.run_id}: {submission.locked[spec.run_id]}; left alone")
    submitted = len(todo) - len(submission.locked)
    print(f"{len(runs) - len(todo)} finished runs skipped; {submitted} submitted"
          + (f" as job array{'s' * (len(submission.arrays) > 1)} {', '.join(submission.arrays)}" if submitted else "")
          + (f"; {len(submission.locked)} locked: being trained by another process" if submission.locked else ""))
    if submission.plot_job:
        print(f"plot job {submission.plot_job} runs after the grid (afterany)")
    if submitted:
        print(f"job files and logs: {submission.folder}")
    print(f"follow with: framework status {output}")
    return 0
