"""The plugin contract, checked before a grid trains (`framework run`, with or without --dry-run).

Mistakes that are no schema error used to surface late: a task.py whose factory is misspelled, an
optimizer that ignores the parameter groups (trains, but decays the norms and ignores a backbone's
0.1x), a task.target_metric the task never logs (every cell fails at its first validation). Here each
selected plugin is imported and checked in seconds, on the CPU, before anything is written:

- task.py defines get_task(optimizer, config) and get_datamodule(config); optimizer.py defines
  configure_optimizers(model, config);
- get_task returns (TaskModel, LightningDataModule);
- configure_optimizers, called on the task's GroupedModel and on a small probe with a task group at
  0.1x and a weight decay > 0, returns what Lightning accepts and puts every trainable parameter in
  exactly one group at its weight decay (0 for no_decay) and lr multiplier (group_checks.py);
- one validation and one test batch log task.target_metric, evaluation.select (if set) and
  evaluation.plot.metric. A task whose data is not there yet (DataError, missing file) is noted and
  its metrics are not checked: a grid may be listed on a login node before the data is prepared.

Each distinct task configuration is built once, each optimizer probed once, whatever the sweep.
"""

from __future__ import annotations

import difflib
import inspect
import tempfile
import time
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from framework.config import Node
from framework.config.grid import RunSpec
from framework.config.registry import Plugin, Registry
from framework.errors import DataError, PluginError, one_line

TASK_FUNCTIONS = (("get_task", ("optimizer", "config")), ("get_datamodule", ("config",)))
OPTIMIZER_FUNCTIONS = (("configure_optimizers", ("model", "config")),)
# Errors that mean "the data is not there (yet)", not "the plugin is wrong"
MISSING_DATA = (DataError, FileNotFoundError)
CHECK_BATCH = 2  # samples per batch of the evaluation check


@dataclass
class ContractReport:
    problems: list[str] = field(default_factory=list)  # one line each: plugin, file, what was expected
    notes: list[str] = field(default_factory=list)  # checks left out, and why
    pairs: int = 0  # task x optimizer pairs checked
    seconds: float = 0.0


class ContractError(PluginError):
    """Plugins that break the contract: one line per problem, exit status 2."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        noun = "problem" if len(self.problems) == 1 else "problems"
        super().__init__("\n".join([f"plugin contract ({len(self.problems)} {noun}; nothing was run or written):",
                                    *(f"  - {p}" for p in self.problems)]))


def plugin_file(plugin: Plugin, filename: str) -> str:
    """`tasks/<name>/<filename>` relative to the working folder when it lies inside it, else the full path."""
    path = plugin.path / filename
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _takes(function: Any, count: int) -> bool:
    try:
        inspect.signature(function).bind(*([None] * count))
    except TypeError:
        return False
    except ValueError:  # no signature (a builtin): give it the benefit of the doubt
        return True
    return True


def function_problems(module: types.ModuleType, wanted, where: str) -> list[str]:
    """One line per contract function that `module` lacks or that takes other arguments."""
    problems = []
    defined = [n for n, v in vars(module).items() if callable(v) and not n.startswith("_") and not isinstance(v, type)]
    for name, params in wanted:
        function = getattr(module, name, None)
        expected = f"{name}({', '.join(params)})"
        if not callable(function):
            close = difflib.get_close_matches(name, defined, n=1, cutoff=0.6)
            problems.append(f"{where}: no function {expected}; " + (f"found {close[0]}" if close else "see the template"))
        elif not _takes(function, len(params)):
            problems.append(f"{where}: {name}{inspect.signature(function)} must take {len(params)} argument(s): {expected}")
    return problems


def load(plugin: Plugin, wanted, report: ContractReport) -> types.ModuleType | None:
    """The plugin's entry module, if it imports and has the contract's functions; else its problem lines."""
    where = plugin_file(plugin, f"{plugin.kind}.py")
    try:
        module = plugin.load()
    except PluginError as exc:
        cause = exc.__cause__
        report.problems.append(f"{where}: fails to import: {one_line(cause, 300) if cause else exc}")
        return None
    problems = function_problems(module, wanted, where)
    report.problems += problems
    return None if problems else module


def check_config(spec: RunSpec, tmp: str) -> Node:
    """The run's config as a check builds it: one device, no loader processes, a scratch run folder, and
    batches of at most CHECK_BATCH samples (the metrics' names do not depend on the batch size, and one
    batch of 16 untrained panoptic predictions at the COCO recipe's 1333 pixels takes 15 s on a CPU)."""
    engine = {**spec.config["engine"], "devices": 1, "nodes": 1, "data_workers": 0, "accumulate_grad_batches": 1}
    task = {**spec.config["task"], "batch_size": min(CHECK_BATCH, spec.config["task"]["batch_size"])}
    return Node({**spec.config, "engine": engine, "task": task, "run": {"id": spec.run_id, "dir": tmp}})


def build_task(module: types.ModuleType, plugin: Plugin, config: Node, report: ContractReport):
    """get_task's model and data module, or None after recording why."""
    import lightning.pytorch as pl

    from framework.training.run import OptimizerFactory
    from framework.training.task import TaskModel

    where = plugin_file(plugin, "task.py")
    pl.seed_everything(config.engine.seed, workers=True, verbose=False)
    try:
        built = module.get_task(OptimizerFactory(None, config), config)
    except MISSING_DATA as exc:
        report.notes.append(f"task '{plugin.name}': not built, its data is not available ({one_line(exc, 200)}); "
                            f"its model, groups and metrics were not checked")
        return None
    except Exception as exc:  # the plugin's own code: one line, and the other plugins are checked on
        report.problems.append(f"{where}: get_task(optimizer, config) raised {one_line(exc, 300)}")
        return None
    if not (isinstance(built, tuple) and len(built) == 2):
        report.problems.append(f"{where}: get_task returned {type(built).__name__}; expected a pair (TaskModel, TaskDataModule)")
        return None
    model, datamodule = built
    if not isinstance(model, TaskModel):
        report.problems.append(f"{where}: get_task returned a {type(model).__name__} as the model; expected an instance "
                               f"of a TaskModel subclass (from framework.api import TaskModel)")
        return None
    if not isinstance(datamodule, pl.LightningDataModule):
        report.problems.append(f"{where}: get_task returned a {type(datamodule).__name__} as the data module; expected a "
                               f"TaskDataModule (from framework.api import TaskDataModule)")
        return None
    return model, datamodule


def wanted_metrics(config: Node) -> dict[str, list[tuple[str, str]]]:
    """The metrics each evaluation split must log: (the key that names it, the metric)."""
    evaluation = config.evaluation
    val = [("task.target_metric", config.task.target_metric)]
    if evaluation.get("select"):
        val.append(("evaluation.select", evaluation.select))
    return {"validate": val, "test": [("evaluation.plot.metric", evaluation.plot.metric)]}


def metric_problems(model, datamodule, plugin: Plugin, config: Node, tmp: str, report: ContractReport) -> None:
    """Run one validation and one test batch on the CPU; every metric the config names must be logged."""
    import lightning.pytorch as pl

    where = plugin_file(plugin, "default.yaml")
    trainer = pl.Trainer(accelerator="cpu", devices=1, limit_val_batches=1, limit_test_batches=1, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         default_root_dir=tmp)
    for stage, wanted in wanted_metrics(config).items():
        try:
            getattr(trainer, stage)(model, datamodule=datamodule, verbose=False)
        except MISSING_DATA as exc:
            report.notes.append(f"task '{plugin.name}': metrics not checked, its data is not available ({one_line(exc, 200)})")
            return
        except Exception as exc:  # the task's own step or data code
            report.problems.append(f"{plugin_file(plugin, 'model.py')}: one {'validation' if stage == 'validate' else 'test'} "
                                   f"batch on the CPU raised {one_line(exc, 300)}")
            return
        logged = sorted(str(k) for k in trainer.callback_metrics)
        for key, metric in wanted:
            if metric not in logged:
                split = "validation_step" if stage == "validate" else "test_step"
                report.problems.append(f"{where}: {key} is {metric!r}, which task '{plugin.name}' never logs in {split} "
                                       f"(it logs {', '.join(logged) or 'nothing'})")


def _distinct(runs: list[RunSpec]) -> dict[tuple, dict[str, RunSpec]]:
    """The first run of each distinct task configuration, and of each optimizer under it."""
    tasks: dict[tuple, dict[str, RunSpec]] = {}
    for spec in runs:
        evaluation = spec.config["evaluation"]
        key = (spec.task, repr(sorted(spec.config["task"].items())), repr(sorted(evaluation.items())))
        tasks.setdefault(key, {}).setdefault(spec.optimizer, spec)
    return tasks


def check_runs(runs: list[RunSpec], registry: Registry, metrics: bool = True) -> ContractReport:
    """Check the contract of every task and optimizer `runs` use; `metrics`: also run one evaluation batch."""
    from framework.training import group_checks
    from framework.training.run import quiet_lightning

    quiet_lightning()
    start, report = time.perf_counter(), ContractReport()
    optimizers: dict[str, types.ModuleType | None] = {}
    with tempfile.TemporaryDirectory(prefix="framework-contract-") as tmp:
        for (task, _, _), by_optimizer in _distinct(runs).items():
            plugin = registry.get("task", task)
            module = load(plugin, TASK_FUNCTIONS, report)
            first = next(iter(by_optimizer.values()))
            built = build_task(module, plugin, check_config(first, tmp), report) if module else None
            for name, spec in by_optimizer.items():
                report.pairs += 1
                optimizer = registry.get("optimizer", name)
                if name not in optimizers:  # probed once; a plugin that fails it is not tried on the tasks
                    optimizers[name] = load(optimizer, OPTIMIZER_FUNCTIONS, report)
                    if optimizers[name] is not None:
                        found = group_checks.probe_problems(
                            optimizers[name].configure_optimizers, check_config(spec, tmp), plugin_file(optimizer, "optimizer.py"))
                        report.problems += found
                        optimizers[name] = None if found else optimizers[name]
                if built is not None and optimizers[name] is not None:
                    where = f"{plugin_file(optimizer, 'optimizer.py')} (on task '{task}')"
                    report.problems += group_checks.optimizer_problems(
                        optimizers[name].configure_optimizers, built[0].model, check_config(spec, tmp), where)
            if built is not None and metrics:
                metric_problems(*built, plugin, check_config(first, tmp), tmp, report)
    report.problems = list(dict.fromkeys(report.problems))  # the same line from two task configs: once
    report.seconds = time.perf_counter() - start
    return report
