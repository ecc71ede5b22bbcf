"""The defaults are the schema: validating a layer of values against them and merging it.

A key exists when the engine defaults, the optimizer's default.yaml or the task's default.yaml define
it; its type is the type of its default (an integer is accepted for a float). Every problem is
appended to a list so that one ConfigError can report them all.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from framework.config.file_io import load_yaml

ENGINE_DEFAULTS_FILE = Path(__file__).with_name("engine_defaults.yaml")
# Keys that may be null even though their default is not: a task trains for epochs or for steps.
NULLABLE = {"task.max_epochs", "task.max_steps", "evaluation.plot.limits"}
# The schedule keys that were optimizer keys before the schedule became the task's `schedule` section:
# an old command line or experiment file is told the new spelling.
MOVED_KEYS = {"optimizer.schedule": "schedule.name"} | {
    f"optimizer.{key}": f"schedule.{key}"
    for key in ("warmup_steps", "warmup_fraction", "eta_min_factor", "decay_milestones", "decay_gamma", "poly_power")
}


def nest(dotted: str, value: Any) -> dict[str, Any]:
    node: Any = value
    for part in reversed(dotted.split(".")):
        node = {part: node}
    return node


def deep_merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Merge `update` into `base` in place: mappings merge key by key, anything else replaces."""
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            deep_merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Leaf values by dotted key: {"a": {"b": 1}} -> {"a.b": 1}; an empty mapping is a leaf."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def did_you_mean(key: str, candidates: list[str]) -> str:
    match = difflib.get_close_matches(key, candidates, n=1, cutoff=0.6)
    return f"; did you mean {match[0]}?" if match else ""


def flat_keys(tree: Mapping[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        keys.append(dotted)
        if isinstance(value, Mapping) and value:
            keys += flat_keys(value, dotted + ".")
    return keys


_TYPE_NAMES = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list", dict: "a mapping"}


def _check_type(key: str, value: Any, default: Any) -> tuple[Any, str | None]:
    """Return the (possibly widened) value and a problem, if any. An int is accepted where a float is."""
    if default is None or (value is None and key in NULLABLE):
        return value, None
    expected = type(default)
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok:
            value = float(value)
    elif isinstance(default, (list, tuple)):
        expected, ok = list, isinstance(value, (list, tuple))
    elif isinstance(default, Mapping):
        expected, ok = dict, isinstance(value, Mapping)
    else:
        ok = isinstance(value, expected)
    if ok:
        return value, None
    return value, f"expected {_TYPE_NAMES.get(expected, expected.__name__)}, got {value!r} ({type(value).__name__})"


def apply_layer(config: dict, schema: Mapping, values: Mapping, source: str, problems: list[str], prefix: str = "") -> None:
    """Validate `values` against `schema` and merge them into `config`, appending every problem."""
    for key, value in values.items():
        dotted = f"{prefix}{key}"
        if key not in schema:
            candidates = flat_keys(schema, prefix) if prefix else flat_keys(schema)
            hint = (f"; the schedule is its own section, the same for every optimizer: write {MOVED_KEYS[dotted]}"
                    if dotted in MOVED_KEYS else did_you_mean(dotted, candidates))
            problems.append(f"{dotted} ({source}): unknown key{hint}")
            continue
        default = schema[key]
        if isinstance(default, Mapping) and default and isinstance(value, Mapping):
            apply_layer(config.setdefault(key, {}), default, value, source, problems, dotted + ".")
            continue
        value, problem = _check_type(dotted, value, default)
        if problem:
            problems.append(f"{dotted} ({source}): {problem}")
        elif isinstance(default, Mapping):  # an empty default mapping is free-form: merge anything
            deep_merge(config.setdefault(key, {}), value)
        else:
            config[key] = copy.deepcopy(value)


def load_engine_defaults() -> dict[str, Any]:
    return load_yaml(ENGINE_DEFAULTS_FILE)
