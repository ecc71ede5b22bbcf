# python benchmarks/search_overhead.py [--finished 1000] [--trials 30] [--rounds 3] [--output docs/benchmarks.md]
"""What a tpe search adds per trial: asking for a trial and recording its result, on a study that already
holds 1000 finished trials (target: under 50 ms per trial on the journal storage).

Each round times, per trial and in alternating order:

- worker, journal file: what a search worker does around a trial (framework/executors/study.py):
  `next_trial` (the ask lock file, the scan for orphaned trials, TPE's ask with one seed per trial
  number, the trial's run resolved by config/studies.trial_spec, its claim recorded) and `study.tell` of
  its score, on the JournalStorage file a search uses by default;
- worker, in memory (reference): the same on Optuna's in-memory storage: what the journal adds;
- optuna alone, in memory (reference): bare `study.ask` + `study.tell` with the same TPE sampler, nothing
  of the framework: the floor of any TPE search.

Each side starts from its own copy of the same 1000 finished trials (one log-uniform learning rate, the
space of docs/search.md's example). Prints a Markdown table of the medians and the ratios.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import machine, median_rounds, publish

SPACE = ["tasks=digits", "search.strategy=tpe", "search.optimizer.learning_rate=loguniform(1e-4,1e-1)"]


def _plan(output: Path, budget: int):
    from framework.config import parse_overrides
    from framework.config.grid import expand, search_axes
    from framework.config.registry import Registry
    from framework.config.studies import plan_studies

    request = parse_overrides([*SPACE, f"search.trials={budget}", f"engine.output_dir={output}"])
    search, _, _ = search_axes(request)
    registry = Registry([])
    (plan,) = plan_studies(request, search, expand(request, registry))
    return plan, registry


def _finished(count: int) -> list:
    """`count` finished trials: learning rates spread over the range, a score peaked at 3e-3."""
    import optuna
    from optuna.distributions import FloatDistribution

    distribution = {"optimizer.learning_rate": FloatDistribution(1e-4, 1e-1, log=True)}
    trials = []
    for i in range(count):
        lr = math.exp(math.log(1e-4) + (i * 0.618034 % 1.0) * math.log(1e3))
        trials.append(optuna.trial.create_trial(params={"optimizer.learning_rate": lr}, distributions=distribution,
                                                value=0.97 - 0.05 * abs(math.log10(lr / 3e-3))))
    return trials


def _worker_side(plan, registry, storage, trials: int):
    """ms per trial of next_trial + tell on `storage` (already holding the finished trials)."""
    from framework.executors import study as search

    study = search.open_study(plan, storage)
    lock = search.ask_lock(plan)

    def run() -> float:
        start = time.perf_counter()
        for _ in range(trials):
            claimed = search.next_trial(study, plan, registry, lock)
            study.tell(claimed.trial.number, 0.9)
        return 1000 * (time.perf_counter() - start) / trials

    return run


def _optuna_side(plan, storage, trials: int):
    import optuna

    from framework.executors.study import distributions

    study = optuna.load_study(study_name=plan.name, storage=storage)
    space = distributions(plan.search)

    def run() -> float:
        start = time.perf_counter()
        for number in range(trials):
            study.sampler = optuna.samplers.TPESampler(seed=number)
            trial = study.ask(space)
            study.tell(trial, 0.9)
        return 1000 * (time.perf_counter() - start) / trials

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--finished", type=int, default=1000, help="finished trials in the study before timing")
    parser.add_argument("--trials", type=int, default=30, help="trials asked and told per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output", default="docs/benchmarks.md", help="file whose search-overhead section is replaced; - to print only")
    args = parser.parse_args()
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    from framework.executors.study import open_storage

    budget = args.finished + args.trials * (args.rounds + 1)
    sides = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, kind in (("worker, journal file", "journal"), ("worker, in memory", "memory"),
                           ("optuna alone, in memory", "optuna")):
            plan, registry = _plan(Path(folder) / kind, budget)
            storage = open_storage(plan) if kind == "journal" else optuna.storages.InMemoryStorage()
            optuna.create_study(study_name=plan.name, storage=storage, direction="maximize").add_trials(_finished(args.finished))
            sides[name] = _optuna_side(plan, storage, args.trials) if kind == "optuna" else _worker_side(plan, registry, storage, args.trials)
        medians, rows = median_rounds(sides, args.rounds)
    measured = (f"Measured {time.strftime('%Y-%m-%d')} on {machine('optuna')}; {args.finished} finished trials, then "
                f"{args.trials} trials asked and told per round. Milliseconds per trial:")
    lines = [measured, "",
             "| side | " + " | ".join(f"round {i + 1}" for i in range(args.rounds)) + " | median |",
             "|---|" + "---|" * (args.rounds + 1)]
    for name in sides:
        lines.append(f"| {name} | " + " | ".join(f"{row[name]:.1f}" for row in rows) + f" | **{medians[name]:.1f}** |")
    journal, memory, bare = medians["worker, journal file"], medians["worker, in memory"], medians["optuna alone, in memory"]
    verdict = (f"Journal against in memory: **x{journal / memory:.2f}**; the worker in memory against Optuna alone: "
               f"**x{memory / bare:.2f}**. Target (under 50 ms per trial on the journal): "
               f"**{'met' if journal < 50 else 'missed'}, {journal:.1f} ms** (spread of the journal rounds: "
               f"{statistics.pstdev(r['worker, journal file'] for r in rows):.1f} ms).")
    lines += ["", verdict]
    publish("\n".join(lines), args.output, "search-overhead")


if __name__ == "__main__":
    main()
