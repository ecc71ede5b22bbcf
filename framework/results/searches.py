"""Searches: the runs of a task x optimizer that do not form a grid, shown as trials instead of a heatmap.

    configurations of one optimizer -> a grid? (no run names a random, quasirandom or tpe search, and every
        combination of its varying hyperparameter values has runs) -> yes: heatmap (heatmaps.py)
    -> no: its trials in the order they were run -> best so far over trials and the validation metric
       against each hyperparameter (search_figures.py), and `<task>_trials.csv`

A run made by a search has `search: {study, strategy, trial}` in its config (`search.trial`, 0-based, is
the order the study asked for it); a trial its pruner stopped has the state `pruned`. A trial is one
configuration (its seeds are one trial): its value is the seed mean of the validation metric, as
selection computes it, and the running best is the configuration selection.pick would choose among the
trials so far, so the curve ends on the best table's value. A pruned trial is never the best.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from framework.results.run_folder import read_status
from framework.results.selection import (
    Configuration,
    Scoring,
    configurations,
    hashable,
    selection_key,
    varying_keys,
)

STUDY, STRATEGY, TRIAL = "search.study", "search.strategy", "search.trial"
GRID_STRATEGY = "grid"  # a search that enumerates a grid: drawn as a grid when its points form one
TRIALS_CSV = "{task}_trials.csv"


def search_optimizers(runs: list[dict[str, Any]]) -> set[str]:
    """The optimizers of one task's runs whose configurations do not form a grid (`forms_grid`)."""
    per_optimizer: dict[str, list[Configuration]] = defaultdict(list)
    for config in configurations(runs):
        per_optimizer[config.optimizer].append(config)
    return {optimizer for optimizer, own in per_optimizer.items() if not forms_grid(own)}


def forms_grid(configs: list[Configuration]) -> bool:
    """One optimizer's configurations form a grid when none was drawn by a random, quasirandom or tpe search
    and every combination of the values of its varying hyperparameters has runs (in any state)."""
    strategies = {run.get(STRATEGY) for config in configs for run in config.runs}
    if strategies - {None, GRID_STRATEGY}:
        return False
    keys = varying_keys(configs)
    combinations = math.prod(len({hashable(c.values.get(key)) for c in configs}) for key in keys)
    return len(configs) == combinations


def trial_rows(score: Scoring, configs: list[Configuration], chosen: dict[str, Configuration],
               keys: list[str]) -> list[dict[str, Any]]:
    """One row per trial (configuration) of the searched optimizers, in the order each optimizer's trials
    were run, with the best so far: the configuration selection.pick would choose among trials 1..n.
    `configs` are in grid order (selection.configurations), which breaks ties as pick does."""
    per_optimizer: dict[str, list[Configuration]] = defaultdict(list)
    for config in configs:
        per_optimizer[config.optimizer].append(config)
    rows = []
    for optimizer, own in sorted(per_optimizer.items()):
        grid_order = {id(config): i for i, config in enumerate(own)}  # `configs` come in grid order
        current, current_key, current_number = None, None, None
        for number, config in enumerate(ordered(own), start=1):
            # a tie goes to the first in grid order, as in pick: the curve ends on the best table's configuration
            key = (*selection_key(config, score.select_mode), grid_order[id(config)])
            if not config.pruned and (current is None or key < current_key):
                current, current_key, current_number = config, key, number
            rows.append({
                "task": score.task, "optimizer": optimizer, "trial": number,
                STUDY: _one(config, STUDY), TRIAL: _trial_number(config), "configuration": config.label(keys),
                **{k: config.values.get(k) for k in keys},
                "outcome": outcome(config), "n_done": config.n_done, "n_runs": config.n_runs,
                "complete": config.complete,
                "select_metric": score.select_column, "select_mean": config.select_mean,
                "value": trial_value(config), "metric": score.column, "mean": config.mean,
                "best_so_far": None if current is None else current.select_mean,
                "best_so_far_test": None if current is None else current.mean,
                "best_so_far_trial": current_number,
                "chosen": config is chosen.get(optimizer),
            })
    return rows


def ordered(configs: list[Configuration]) -> list[Configuration]:
    """Trials in the order they were run: by `search.trial` when every one has it and they belong to one
    study, else by when their first run started (status.json), then by run folder."""
    studies = {run.get(STUDY) for config in configs for run in config.runs}
    if len(studies) == 1 and all(_trial_number(c) is not None for c in configs):
        return sorted(configs, key=lambda c: (_trial_number(c), _first_dir(c)))
    return sorted(configs, key=lambda c: (_started(c), _first_dir(c)))


def trial_value(config: Configuration) -> float | None:
    """What a trial scored on validation: its seed mean; None when a seed diverged (the worst score there
    is) or no seed has a validation score (failed, pruned, still running)."""
    return None if config.n_diverged else config.select_mean


def outcome(config: Configuration) -> str:
    """`done` for a trial with a value, else what happened: diverged, pruned, failed, running, ..."""
    if config.n_diverged:
        return "diverged"
    if config.select_mean is not None:
        return "done"
    unfinished = Counter({s: n for s, n in config.states.items() if s != "done"})
    return unfinished.most_common(1)[0][0] if unfinished else "no score"


def plot_searches(score: Scoring, configs: list[Configuration], chosen: dict[str, Configuration],
                  plot_dir: Path, formats: Sequence[str]) -> tuple[list[Path], list[dict[str, Any]]]:
    """Write `<task>_best_so_far.<format>`, `<task>_scatter.<format>` (when a hyperparameter varies) and
    `<task>_trials.csv` for the configurations of the searched optimizers; return the paths and the rows."""
    import pandas as pd

    from framework.results import search_figures
    from framework.results.figure_files import file_stem

    keys = varying_keys(configs)
    rows = trial_rows(score, configs, chosen, keys)
    paths = search_figures.draw_best_so_far(score, rows, file_stem(plot_dir, f"{score.task}_best_so_far"), formats)
    if keys:
        paths += search_figures.draw_scatter(score, rows, keys, file_stem(plot_dir, f"{score.task}_scatter"), formats)
    paths.append(file_stem(plot_dir, TRIALS_CSV.format(task=score.task)))
    pd.DataFrame(rows).to_csv(paths[-1], index=False)
    return paths, rows


def _trial_number(config: Configuration) -> int | None:
    """The configuration's `search.trial` (the first, when its seeds were asked as several trials)."""
    numbers = [run.get(TRIAL) for run in config.runs]
    if not numbers or any(not isinstance(n, int) or isinstance(n, bool) for n in numbers):
        return None
    return min(numbers)


def _one(config: Configuration, key: str) -> Any:
    values = {hashable(run.get(key)) for run in config.runs}
    return next(iter(values)) if len(values) == 1 else None


def _started(config: Configuration) -> float:
    times = [(read_status(Path(run["run_dir"])) or {}).get("started") for run in config.runs if run.get("run_dir")]
    times = [t for t in times if isinstance(t, (int, float)) and not isinstance(t, bool)]
    return min(times, default=math.inf)  # never started (pending): after every trial that did


def _first_dir(config: Configuration) -> str:
    return min(str(run.get("run_dir", "")) for run in config.runs)
