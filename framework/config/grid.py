"""The grid: a pure expansion of a Request into RunSpecs, each with a stable run_id.

Order is deterministic: tasks, then optimizers, then each sweep axis in the order given (the last
axis varies fastest). A run_id is a hash of the resolved configuration without the keys that only
say where or how a run executes, so moving the output folder or changing the executor never makes
a finished run look new, unless the move changes the device kind the run trains on. What is and is
not part of the identity: framework/config/identity.py.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from framework.config import Axis, Layer, Request, apply_layer, check_semantics, load_engine_defaults, nest
from framework.config import recipe
from framework.config.identity import identity
from framework.config.registry import Plugin, Registry
from framework.config.search import Search, parse_search
from framework.errors import ConfigError

# Keys that do not change what a run computes; they are left out of the run_id.
NON_IDENTITY = (
    "engine.output_dir", "engine.plugin_paths", "engine.executor", "engine.workers", "engine.sbatch_args",
    "engine.slurm", "engine.progress", "engine.data_workers", "evaluation",
    # skipping bad samples changes nothing on good data; a run that failed on a corrupt file resumes as the
    # same run when it is allowed
    "engine.skip_bad_samples",
    # a record of which optimizer replaced a schedule key: the values it replaced are in the identity already
    "schedule.overridden_by",
    # where metrics are sent besides metrics.csv: the same run, however it is watched
    "engine.loggers", "engine.mlflow", "engine.wandb",
    # which search a run is a trial of (study, strategy, trial number): its values are in the identity already
    "search",
)


@dataclass(frozen=True)
class RunSpec:
    task: str
    optimizer: str
    run_id: str
    config: dict[str, Any]  # the fully resolved configuration
    sweep: dict[str, Any]  # this run's value on each sweep axis

    def run_dir(self, output_dir: str | Path) -> Path:
        return Path(output_dir) / self.task / self.optimizer / self.run_id


def run_id(config: dict[str, Any]) -> str:
    """The hash of what the run computes (identity.identity: the device kind and precision it trains
    in, only the schedule keys its schedule reads), without NON_IDENTITY."""
    blob = json.dumps(identity(config, NON_IDENTITY), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _schema(engine_defaults: dict, task: Plugin, optimizer: Plugin) -> dict[str, Any]:
    schema = copy.deepcopy(engine_defaults)
    schema["optimizer"] = copy.deepcopy(optimizer.defaults.get("optimizer") or {})
    schema["task"] = copy.deepcopy(task.defaults.get("task") or {})
    return schema


def resolve(
    engine_defaults: dict, task: Plugin, optimizer: Plugin, layers: list[Layer], problems: list[str]
) -> dict[str, Any]:
    """The configuration of one run: schema from the defaults, then each layer validated and merged: the
    task's recipe, the schedule keys the optimizer replaces (recorded in schedule.overridden_by), then
    `layers` (experiment file, command line, sweep values); see framework/config/recipe.py."""
    schema = _schema(engine_defaults, task, optimizer)
    config = copy.deepcopy(schema)
    task_values = recipe.task_layer(task, optimizer)
    if task_values is not None:
        apply_layer(config, schema, task_values.values, task_values.source, problems)
    recipe.apply_schedule_override(config, schema, optimizer, layers, problems)
    for layer in layers:
        apply_layer(config, schema, layer.values, layer.source, problems)
    config["task"]["name"] = task.name
    config["optimizer"]["name"] = optimizer.name
    return config


def expand(request: Request, registry: Registry) -> list[RunSpec]:
    """Every run the request describes, in order; raises one ConfigError with every problem.

    With a `search:` section (config/search.py): grid turns its choices into sweep axes; random and
    quasirandom add one run per drawn trial (x the sweep axes); tpe gives one run per task x optimizer at a
    sample point of the space, which checks the space (its trials are asked by the search workers)."""
    problems: list[str] = list(registry.problems)
    if not request.tasks:
        known = ", ".join(n for n, p in registry.tasks.items() if p.ok) or "none"
        raise ConfigError([f"no task selected: add tasks=NAME[,NAME...] or tasks=all (known: {known})"])
    search, axes, search_problems = search_axes(request)
    problems += search_problems
    tasks, task_problems = registry.select("task", request.tasks)
    problems += task_problems
    engine_defaults = load_engine_defaults()
    axis_keys = [axis.key for axis in axes]
    combos = list(itertools.product(*(axis.values for axis in axes)))
    trials = _trial_points(search)
    runs: list[RunSpec] = []
    seen_problems: set[str] = set()
    for task in tasks:
        problems += recipe.task_problems(task, list(registry.optimizers))
        names = request.optimizers or [task.defaults["optimizer"]["name"]]
        optimizers, optimizer_problems = registry.select("optimizer", names)
        problems += [p for p in optimizer_problems if p not in problems]
        for optimizer, (number, point), combo in itertools.product(optimizers, trials, combos):
            run_problems: list[str] = []
            layers = list(request.layers)
            sweep = {**dict(zip(axis_keys, combo)), **point}
            for axis, value in zip(axes, combo):
                layers.append(Layer(f"sweep {axis.source}", nest(axis.key, value)))
            layers += [Layer(f"search {request.search_source}", nest(key, value)) for key, value in point.items()]
            config = resolve(engine_defaults, task, optimizer, layers, run_problems)
            if not run_problems:
                run_problems += check_semantics(config)
            for problem in run_problems:
                text = f"{problem} [task {task.name}, optimizer {optimizer.name}]"
                if problem not in seen_problems:
                    seen_problems.add(problem)
                    problems.append(text)
            if not run_problems:
                if search is not None and search.strategy != "grid":
                    config["search"] = {"study": search.study, "strategy": search.strategy, "trial": number}
                runs.append(RunSpec(task.name, optimizer.name, run_id(config), config, sweep))
    if problems:
        raise ConfigError(problems)
    return _deduplicate(runs)


def search_axes(request: Request) -> tuple[Search | None, list[Axis], list[str]]:
    """The request's checked search (None without one), its sweep axes (a grid search's choices added) and
    the problems: a key both swept and searched, sweep axes beside a tpe study (one study per task x
    optimizer)."""
    search, problems = parse_search(request.search, request.search_source)
    axes = list(request.axes)
    if search is None:
        return None, axes, problems
    swept = {axis.key for axis in axes}
    for searched in search.ranges:
        if searched.key in swept:
            problems.append(f"search.{searched.key} ({request.search_source}): also a sweep axis; keep one of the two")
    if search.strategy == "grid":
        axes += [Axis(r.key, r.choices, f"search {request.search_source}") for r in search.ranges]
    elif search.strategy == "tpe" and axes:
        problems.append(f"search.strategy ({request.search_source}): tpe runs one study per task x optimizer, so it "
                        f"takes no sweep axes (got {', '.join(sorted(swept))}): give them one value each")
    return search, axes, problems


def _trial_points(search: Search | None) -> list[tuple[int | None, dict[str, Any]]]:
    """(trial number, values) of each run a search adds: its draws (random, quasirandom), one sample point
    for tpe, none of its own for grid or without a search."""
    if search is None or search.strategy == "grid":
        return [(None, {})]
    if search.strategy == "tpe":
        return [(None, search.sample_point())]
    return list(enumerate(search.draws()))


def _deduplicate(runs: list[RunSpec]) -> list[RunSpec]:
    """Two sweep values can resolve to the same run (e.g. 1e-3 and 0.001): keep the first."""
    unique: dict[tuple[str, str, str], RunSpec] = {}
    for run in runs:
        unique.setdefault((run.task, run.optimizer, run.run_id), run)
    return list(unique.values())


def describe_axes(runs: list[RunSpec]) -> list[str]:
    """The sweep keys whose value differs between runs (the columns worth showing)."""
    keys: list[str] = []
    for run in runs:
        keys += [k for k in run.sweep if k not in keys]
    return keys

