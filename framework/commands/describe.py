"""The first lines of `framework run`: what each task's configuration trains, in the task's own words.

A task says it with an optional `describe(config) -> str` in its task.py (the vision tasks: model,
parameters, pretrained or random, bundled or real data; framework/vision/describe.py). One line per
distinct task configuration of the grid; a sweep over optimizer keys repeats no line.
"""

from __future__ import annotations

import json

from framework.config import Node
from framework.errors import FrameworkError


def _has_hook(plugin) -> bool:
    # importing a task costs torch's import: a task whose task.py defines no describe() is not imported
    try:
        return "def describe(" in (plugin.path / "task.py").read_text(encoding="utf-8")
    except OSError:
        return False


def task_lines(runs, registry) -> list[str]:
    """One line per distinct (task, task section) of `runs` whose task defines describe()."""
    lines, seen = [], set()
    for spec in runs:
        key = (spec.task, json.dumps(spec.config["task"], sort_keys=True, default=str))
        plugin = registry.get("task", spec.task)
        if key in seen or not _has_hook(plugin):
            continue
        seen.add(key)
        try:
            line = plugin.load().describe(Node(spec.config))
        except FrameworkError as exc:  # the run itself reports the problem with its context
            line = f"{spec.task}: (not described: {exc})"
        if line not in lines:
            lines.append(str(line))
    return lines


def print_task_lines(runs, registry) -> None:
    for line in task_lines(runs, registry):
        print(line, flush=True)
