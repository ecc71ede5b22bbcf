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

from framework.config import Layer, Request, apply_layer, check_semantics, load_engine_defaults, nest
from framework.config import recipe
from framework.config.identity import identity
from framework.config.registry import Plugin, Registry
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
    """Every run the request describes, in order; raises one ConfigError with every problem."""
    problems: list[str] = list(registry.problems)
    if not request.tasks:
        known = ", ".join(n for n, p in registry.tasks.items() if p.ok) or "none"
        raise ConfigError([f"no task selected: add tasks=NAME[,NAME...] or tasks=all (known: {known})"])
    tasks, task_problems = registry.select("task", request.tasks)
    problems += task_problems
    engine_defaults = load_engine_defaults()
    axis_keys = [axis.key for axis in request.axes]
    combos = list(itertools.product(*(axis.values for axis in request.axes)))
    runs: list[RunSpec] = []
    seen_problems: set[str] = set()
    for task in tasks:
        problems += recipe.task_problems(task, list(registry.optimizers))
        names = request.optimizers or [task.defaults["optimizer"]["name"]]
        optimizers, optimizer_problems = registry.select("optimizer", names)
        problems += [p for p in optimizer_problems if p not in problems]
        for optimizer in optimizers:
            for combo in combos:
                run_problems: list[str] = []
                layers = list(request.layers)
                sweep = dict(zip(axis_keys, combo))
                for axis, value in zip(request.axes, combo):
                    layers.append(Layer(f"sweep {axis.source}", nest(axis.key, value)))
                config = resolve(engine_defaults, task, optimizer, layers, run_problems)
                if not run_problems:
                    run_problems += check_semantics(config)
                for problem in run_problems:
                    text = f"{problem} [task {task.name}, optimizer {optimizer.name}]"
                    if problem not in seen_problems:
                        seen_problems.add(problem)
                        problems.append(text)
                if not run_problems:
                    runs.append(RunSpec(task.name, optimizer.name, run_id(config), config, sweep))
    if problems:
        raise ConfigError(problems)
    return _deduplicate(runs)


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

