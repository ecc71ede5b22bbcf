"""The task's own keys, checked when the task is built (before any data is read) and frozen into Settings.

The engine checks each key's type against default.yaml; this checks the values. Every problem is one line
naming the key, and all of them are reported together. Class counts are not keys: the heads are sized from
the classes in the data's manifest.json, the one source of truth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from framework.api import ConfigError, FrameworkError, choice_problems, range_problems

# Only light imports (no torch): the checks can run as early as the engine likes, e.g. in a dry run.
from .features import POOLINGS, SOURCES

CLASS_WEIGHTS = ("uniform", "balanced")
HEAD_METRICS = ("loss", "acc", "f1")  # logged as <split>_<head>_<metric>, e.g. val_pain_f1


def metric_names(split: str) -> list[str]:
    """Every scalar the model logs for `split` (val or test): the names target_metric may take."""
    return [f"{split}_loss"] + [f"{split}_{head}_{metric}" for head in SOURCES for metric in HEAD_METRICS]


class TaskConfigError(ConfigError):
    """The task's bad values as one line (`task.dropout: ...; task.class_weights: ...`): a run that fails
    is recorded with the first line of its error, where ConfigError's list would show only its header."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        FrameworkError.__init__(self, "; ".join(self.problems))


@dataclass(frozen=True)
class Settings:
    data_dir: Path | None  # None: the bundled synthetic data
    temporal_pooling: str
    class_weights: str
    val_fraction: float
    test_fraction: float
    split_seed: int
    hidden_sizes: tuple[int, ...]
    dropout: float
    loss_weights: dict[str, float]  # per head (source name)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_config(config: Any) -> list[str]:
    """Every problem with the task's values in a resolved config, one line each naming its key."""
    task, problems = config["task"], []

    def bad(key: str, message: str) -> None:
        problems.append(f"task.{key}: {message}")

    data_dir = task["data_dir"]
    if data_dir is not None and (not isinstance(data_dir, str) or not data_dir.strip()):
        bad("data_dir", f"must be a folder holding manifest.json, or null for the bundled data, got {data_dir!r}")
    problems += choice_problems(task, {"temporal_pooling": POOLINGS, "class_weights": CLASS_WEIGHTS}, prefix="task.")
    for key in ("val_fraction", "test_fraction"):
        if not (_number(task[key]) and 0 < task[key] < 1):
            bad(key, f"must be a fraction of the subjects between 0 and 1 (exclusive), got {task[key]!r}")
    if _number(task["val_fraction"]) and _number(task["test_fraction"]) and task["val_fraction"] + task["test_fraction"] >= 1:
        bad("test_fraction", f"val_fraction + test_fraction must leave subjects to train on, got "
                             f"{task['val_fraction']} + {task['test_fraction']}")
    sizes = task["hidden_sizes"]
    if not sizes or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in sizes):
        bad("hidden_sizes", f"must be a non-empty list of positive layer widths, got {list(sizes)!r}")
    problems += range_problems(task, {"dropout": "[0, 1)"}, prefix="task.")
    weights = {head: task[f"{head}_loss_weight"] for head in SOURCES}
    for head, weight in weights.items():
        if not (_number(weight) and weight >= 0):
            bad(f"{head}_loss_weight", f"must be a number >= 0, got {weight!r}")
    if all(_number(w) and w == 0 for w in weights.values()):
        bad("pain_loss_weight", "and stimulus_loss_weight are both 0: nothing would be trained")
    if task["target_metric"] not in metric_names("val"):
        bad("target_metric", f"must be a validation metric this task logs ({', '.join(metric_names('val'))}), "
                             f"got {task['target_metric']!r}")
    plot_metric = config["evaluation"]["plot"]["metric"]
    if plot_metric not in metric_names("test") + metric_names("val"):
        problems.append(f"evaluation.plot.metric: must be a metric this task logs, e.g. test_pain_f1, got {plot_metric!r}")
    return problems


def settings_from_config(config: Any) -> Settings:
    """The checked, frozen settings of a resolved config; a TaskConfigError listing every problem otherwise."""
    problems = check_config(config)
    if problems:
        raise TaskConfigError(problems)
    task = config["task"]
    return Settings(
        data_dir=Path(task["data_dir"]).expanduser() if task["data_dir"] is not None else None,
        temporal_pooling=task["temporal_pooling"],
        class_weights=task["class_weights"],
        val_fraction=float(task["val_fraction"]),
        test_fraction=float(task["test_fraction"]),
        split_seed=int(task["split_seed"]),
        hidden_sizes=tuple(task["hidden_sizes"]),
        dropout=float(task["dropout"]),
        loss_weights={head: float(task[f"{head}_loss_weight"]) for head in SOURCES},
    )
