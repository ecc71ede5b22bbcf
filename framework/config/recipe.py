"""The plugins' layers of a run's configuration: the task's training recipe, the same for every optimizer,
and what an optimizer may change in it.

    framework run tasks=coco_panoptic optimizers=adamw_baseline,lion --dry-run   (both train the task's recipe)

A task's default.yaml holds the recipe (its `task`, `engine`, `schedule` and `evaluation` sections) and,
in its `optimizer` section, the optimizer trained when the command names none (`name`) and its values of
optimizers' OWN hyperparameters, keyed by optimizer (`optimizer.adamw_baseline.learning_rate`): they apply
to that optimizer alone, while the recipe applies to every optimizer. An optimizer's default.yaml holds its
`optimizer` hyperparameters (the schema of that section) and, only when the optimizer needs another
schedule than the task's, a `schedule` section with the keys it replaces (any other section is refused:
registry.OPTIMIZER_SECTIONS) (adamw_schedulefree:
`name: constant`, after the task's warm-up). Those replacements come after the task's recipe and before
the experiment file and the command line, and the run records each one that changed the recipe in
`schedule.overridden_by` ({key: optimizer}), in its config.yaml and in `framework run --dry-run`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from framework.config.registry import Plugin
from framework.config.request import Layer
from framework.config.schema import MOVED_KEYS, apply_layer, did_you_mean


def task_problems(task: Plugin, optimizer_names: list[str]) -> list[str]:
    """Problems of a task's `optimizer` section: besides `name`, only mappings keyed by a known optimizer."""
    source = task.path / "default.yaml"
    section = task.defaults.get("optimizer") or {}
    default = section.get("name", "adamw_baseline")
    problems = []
    for key, value in section.items():
        if key == "name":
            continue
        if f"optimizer.{key}" in MOVED_KEYS:
            problems.append(f"optimizer.{key} ({source}): the schedule is the task's recipe for every optimizer: "
                            f"move it to the task's schedule section as {MOVED_KEYS['optimizer.' + key]}")
        elif key in optimizer_names:
            if value is not None and not isinstance(value, Mapping):
                problems.append(f"optimizer.{key} ({source}): expected a mapping of {key}'s hyperparameters "
                                f"(e.g. learning_rate), got {value!r}")
        elif not isinstance(value, Mapping):
            problems.append(f"optimizer.{key} ({source}): a task sets an optimizer's own hyperparameters for that "
                            f"optimizer alone: write optimizer.{default}.{key} (`{key}:` under `{default}:` in the "
                            f"optimizer section)")
        else:
            problems.append(f"optimizer.{key} ({source}): unknown optimizer {key!r}; a mapping in a task's optimizer "
                            f"section holds that optimizer's values{did_you_mean(key, optimizer_names)}")
    return problems


def task_layer(task: Plugin, optimizer: Plugin) -> Layer | None:
    """The task's default.yaml as a layer for `optimizer`: the recipe, plus the task's values of this
    optimizer's own hyperparameters."""
    values = {k: copy.deepcopy(v) for k, v in task.defaults.items() if k not in ("task", "optimizer")}
    own = (task.defaults.get("optimizer") or {}).get(optimizer.name)
    if isinstance(own, Mapping) and own:
        values["optimizer"] = copy.deepcopy(dict(own))
    return Layer(str(task.path / "default.yaml"), values) if values else None


def apply_schedule_override(config: dict[str, Any], schema: Mapping[str, Any], optimizer: Plugin,
                            later: list[Layer], problems: list[str]) -> None:
    """Apply the schedule keys `optimizer` replaces on top of the task's recipe and record in
    `schedule.overridden_by` those that changed it and that no later layer (experiment file, command line,
    sweep) sets itself."""
    replaced = optimizer.defaults.get("schedule")
    overridden: dict[str, str] = {}
    if replaced is not None:
        before = copy.deepcopy(config["schedule"])
        apply_layer(config, schema, {"schedule": replaced}, str(optimizer.path / "default.yaml"), problems)
        set_later = {key for layer in later if isinstance(layer.values.get("schedule"), Mapping)
                     for key in layer.values["schedule"]}
        overridden = {key: optimizer.name for key in config["schedule"]
                      if config["schedule"][key] != before.get(key) and key not in set_later}
    config["schedule"]["overridden_by"] = overridden


__all__ = ["apply_schedule_override", "task_layer", "task_problems"]
