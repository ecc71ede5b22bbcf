"""What a tpe study holds, for `framework run`'s dry run and closing lines: budget, space, storage, its
trials by state, the best so far (executors/study.py runs the studies)."""

from __future__ import annotations

from pathlib import Path

from framework.config.studies import StudyPlan
from framework.executors.study import (
    RUN_DIR,
    STATE,
    check_configuration,
    open_storage,
    values_of,
)


def study_lines(plan: StudyPlan) -> list[str]:
    """What a study holds: its budget, space and storage, its trials by state and its best trial so far.
    Reads only: a study not created yet is reported with 0 trials asked (nothing is written)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    search = plan.search
    head = (f"study {plan.name}: {search.strategy}, {search.trials} trials scored by {plan.metric} ({plan.direction}), "
            f"pruner {search.pruner or 'none'}, {_workers(plan)}, storage {plan.storage}")
    lines = [head, "  space: " + ", ".join(f"{r.key}={r.describe()}" for r in search.ranges)]
    trials = []
    if "://" in plan.storage or Path(plan.storage).is_file():
        try:
            study = optuna.load_study(study_name=plan.name, storage=open_storage(plan))
            check_configuration(study, plan)
            trials = study.get_trials(deepcopy=False)
        except KeyError:  # no such study in the storage yet
            trials = []
    counts: dict[str, int] = {}
    for trial in trials:
        counts[trial.state.name.lower()] = counts.get(trial.state.name.lower(), 0) + 1
    lines.append(f"  {len(trials)} of {search.trials} trials asked" + "".join(f", {n} {s}" for s, n in sorted(counts.items())))
    scored = [t for t in trials if t.state.name == "COMPLETE" and t.value is not None]
    if scored:
        best = (max if plan.direction == "maximize" else min)(scored, key=lambda t: t.value)
        values = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values_of(search, best.params).items())
        lines.append(f"  best so far: trial {best.number}, {plan.metric}={best.value:.4g} ({values}) in "
                     f"{best.user_attrs.get(RUN_DIR, '?')}")
    return lines


def _workers(plan: StudyPlan) -> str:
    if plan.executor == "slurm":
        return f"{max(1, plan.workers)} SLURM array task{'s' * (max(1, plan.workers) != 1)}"
    return "in this process" if plan.workers == 0 else f"{plan.workers} local worker{'s' * (plan.workers != 1)}"


def failed_trials(plan: StudyPlan) -> int:
    """Trials whose run failed (diverged and pruned runs are results, not failures)."""
    import optuna

    study = optuna.load_study(study_name=plan.name, storage=open_storage(plan))
    return sum(t.user_attrs.get(STATE) == "failed" for t in study.get_trials(deepcopy=False))
