"""A tpe search as studies: one Optuna study per task x optimizer, whose trials are asked while it runs.

grid.expand checks a tpe search at one sample point of its space (one template run per task x
optimizer); `plan_studies` turns those into StudyPlans, and a search worker (executors/study.py) makes
each trial Optuna proposes into an ordinary run with `trial_spec`, the same resolution as any grid cell,
so a trial has its run_id folder, resumes and is skipped when done like every run. Pure Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from framework.config import Layer, Request, check_semantics, load_engine_defaults, nest
from framework.config.grid import RunSpec, resolve, run_id
from framework.config.registry import Registry
from framework.config.search import Search
from framework.errors import ConfigError

SEARCH_FOLDER = ".search"  # under the output folder: the journal files of tpe studies


@dataclass(frozen=True)
class StudyPlan:
    """What a search worker needs to ask, build and tell the trials of one task x optimizer."""

    task: str
    optimizer: str
    layers: tuple[Layer, ...]  # the request's layers (experiment file, command line), below each trial's values
    search: Search
    source: str  # where the search section came from, for messages
    storage: str  # an RDB URL, or the journal file (absolute) every worker opens
    metric: str  # the validation metric a trial is scored by (evaluation.select, else task.target_metric)
    direction: str  # maximize / minimize
    executor: str  # local / slurm
    workers: int  # engine.workers: processes (local; 0: this one) or array tasks (slurm, at least 1) asking trials
    template: RunSpec  # the run at the space's sample point: its config gives the engine settings

    @property
    def name(self) -> str:
        """The Optuna study name: the search's name, per task x optimizer."""
        return f"{self.search.study}/{self.task}/{self.optimizer}"

    @property
    def output_dir(self) -> str:
        return str(self.template.config["engine"]["output_dir"])


def storage_of(search: Search, output_dir: str) -> str:
    """search.storage when given: an RDB URL (sqlite:///..., postgresql://...) or a journal file path; by
    default the journal file <output_dir>/.search/<study>.journal, which array tasks on other nodes share
    through the output folder's network filesystem."""
    if search.storage and "://" in search.storage:
        return search.storage
    path = Path(search.storage) if search.storage else Path(output_dir) / SEARCH_FOLDER / f"{search.study}.journal"
    return str(path.resolve())


def scored_by(config: dict[str, Any]) -> tuple[str, str]:
    """(metric, direction) a trial reports to its study: the selection metric of docs/protocol.md."""
    evaluation, task = config["evaluation"], config["task"]
    metric = evaluation.get("select") or task["target_metric"]
    mode = evaluation.get("select_mode") or task["target_metric_mode"]
    return str(metric), "maximize" if mode == "max" else "minimize"


def plan_studies(request: Request, search: Search, templates: list[RunSpec]) -> list[StudyPlan]:
    """One StudyPlan per template run of grid.expand for a tpe search."""
    plans = []
    for spec in templates:
        engine = spec.config["engine"]
        metric, direction = scored_by(spec.config)
        plans.append(StudyPlan(spec.task, spec.optimizer, tuple(request.layers), search, request.search_source,
                               storage_of(search, engine["output_dir"]), metric, direction, engine["executor"],
                               engine["workers"], spec))
    return plans


def trial_spec(plan: StudyPlan, registry: Registry, params: dict[str, Any], number: int) -> RunSpec:
    """The run of trial `number` of `plan` with the values `params` ({dotted key: value})."""
    layers = [*plan.layers, *(Layer(f"search {plan.source}", nest(key, value)) for key, value in params.items())]
    problems: list[str] = []
    task, optimizer = registry.get("task", plan.task), registry.get("optimizer", plan.optimizer)
    config = resolve(load_engine_defaults(), task, optimizer, layers, problems)
    problems += [] if problems else check_semantics(config)
    if problems:
        raise ConfigError([f"{p} [trial {number} of study {plan.name}]" for p in problems])
    config["search"] = {"study": plan.search.study, "strategy": plan.search.strategy, "trial": number}
    return RunSpec(plan.task, plan.optimizer, run_id(config), config, dict(params))
