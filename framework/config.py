"""Configuration: merge order, the command-line override grammar and typed validation.

The defaults are the schema. A key exists when the engine defaults, the optimizer's default.yaml or
the task's default.yaml define it; its type is the type of its default. Every layer above the defaults
(the task's overrides, the experiment file, the command line, the sweep values) is checked against
that schema, and every problem is collected into one ConfigError.
"""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from framework.errors import ConfigError
from framework.yamlio import load_yaml, parse_yaml

SECTIONS = ("task", "optimizer", "engine", "evaluation")
ENGINE_DEFAULTS_FILE = Path(__file__).with_name("engine_defaults.yaml")
# Keys that may be null even though their default is not: a task trains for epochs or for steps.
NULLABLE = {"task.max_epochs", "task.max_steps", "evaluation.plot.limits"}
# Keys chosen by the `tasks=` / `optimizers=` axes rather than set as values.
SELECTOR_KEYS = {"task.name": "tasks", "optimizer.name": "optimizers", "task": "tasks", "optimizer": "optimizers"}


class Node(Mapping):
    """A frozen, nested view of a resolved configuration with attribute access (`config.task.batch_size`)."""

    __slots__ = ("_data", "_path")

    def __init__(self, data: Mapping[str, Any], path: str = ""):
        object.__setattr__(self, "_data", dict(data))
        object.__setattr__(self, "_path", path)

    def __getitem__(self, key: str) -> Any:
        value = self._data[key]
        if isinstance(value, Mapping):
            return Node(value, f"{self._path}{key}.")
        if isinstance(value, list):
            return tuple(value)
        return value

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            known = ", ".join(sorted(self._data)) or "none"
            raise AttributeError(f"config has no key '{self._path}{key}' (known here: {known})") from None

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError("configurations are frozen; set values in YAML or on the command line")

    def __reduce__(self):
        # pickled into spawned processes (ddp_spawn): rebuilt from its data, never through __getattr__
        return (Node, (self._data, self._path))

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"Node({self._data!r})"

    def to_dict(self) -> dict[str, Any]:
        return copy.deepcopy(self._data)

    def replace(self, **sections: Any) -> Node:
        """A copy with top-level entries replaced (the engine adds the `run` section this way)."""
        data = copy.deepcopy(self._data)
        data.update(sections)
        return Node(data, self._path)


@dataclass(frozen=True)
class Layer:
    """One source of values above the defaults, e.g. the experiment file or the command line."""

    source: str
    values: dict[str, Any]


@dataclass(frozen=True)
class Axis:
    """A sweep axis: one grid dimension over the values of one dotted key."""

    key: str
    values: tuple[Any, ...]
    source: str


@dataclass
class Request:
    """What the user asked for: selected plugins, fixed values and sweep axes."""

    tasks: list[str] | None = None
    optimizers: list[str] | None = None
    layers: list[Layer] = field(default_factory=list)
    axes: list[Axis] = field(default_factory=list)

    def plugin_paths(self) -> list[str]:
        """engine.plugin_paths as set by the experiment file or command line (needed before discovery)."""
        paths: list[str] = []
        for layer in self.layers:
            value = layer.values.get("engine", {}).get("plugin_paths") if isinstance(layer.values.get("engine"), dict) else None
            if isinstance(value, list):
                paths = [str(p) for p in value]
            elif isinstance(value, str):
                paths = [value]
        return paths


# ---------------------------------------------------------------- the override grammar


def split_top_level(text: str, sep: str = ",") -> list[str]:
    """Split on `sep` outside brackets, braces and quotes: `[1,2],[3,4]` -> `[1,2]`, `[3,4]`."""
    parts, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def parse_value(text: str) -> Any:
    """Parse one command-line value the YAML 1.2 way (`1e-3` is a float, `[1,2]` a list)."""
    text = text.strip()
    try:
        return parse_yaml(text)
    except ValueError:
        return text


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


_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_0-9][A-Za-z0-9_]*)*$")


def _selector_list(value: Any) -> list[str]:
    values = value if isinstance(value, list) else [value]
    return [str(v).strip() for v in values if str(v).strip()]


def parse_overrides(args: list[str], source: str = "command line") -> Request:
    """Turn `key=value` arguments into a Request. Comma lists outside brackets become sweep axes."""
    request = Request()
    values: dict[str, Any] = {}
    problems: list[str] = []
    for arg in args:
        key, sep, raw = arg.partition("=")
        key = key.strip()
        if not sep or not _KEY_RE.match(key):
            problems.append(f"'{arg}' ({source}): expected key=value, e.g. optimizer.learning_rate=1e-3")
            continue
        parts = split_top_level(raw)
        selector = SELECTOR_KEYS.get(key) or (key if key in ("tasks", "optimizers") else None)
        if selector:  # plugin names are folder names: taken as written (`tasks=` is not a task called None)
            names = [part.strip() for part in parts if part.strip()]
            if not names:
                problems.append(f"{key} ({source}): give at least one name, e.g. {selector}=digits")
            setattr(request, selector, names)
        else:  # the last assignment of a key wins, whether a value or a sweep
            items = [parse_value(part) for part in parts]
            request.axes = [a for a in request.axes if a.key != key]
            if len(items) > 1:
                request.axes.append(Axis(key, tuple(items), source))
            else:
                deep_merge(values, nest(key, items[0]))
    if problems:
        raise ConfigError(problems)
    if values:
        request.layers.append(Layer(source, values))
    return request


def load_experiment(path: str | Path) -> Request:
    """Read an experiment file: sections task/optimizer/engine/evaluation, `tasks`, `optimizers` and
    `sweep` (a mapping of dotted keys to lists of values, each a grid axis)."""
    source = f"experiment file {path}"
    try:
        data = load_yaml(path)
    except ValueError as exc:
        raise ConfigError([str(exc)]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([f"{path}: expected a mapping with sections {', '.join(SECTIONS)}"])
    request = Request()
    problems: list[str] = []
    allowed = set(SECTIONS) | {"tasks", "optimizers", "sweep"}
    for key in data:
        if key not in allowed:
            hint = _did_you_mean(str(key), sorted(allowed))
            problems.append(f"{key} ({source}): unknown section{hint}")
    for selector in ("tasks", "optimizers"):
        if data.get(selector) is not None:
            setattr(request, selector, _selector_list(data[selector]))
    sections = {k: copy.deepcopy(v) for k, v in data.items() if k in SECTIONS and v is not None}  # `engine:` with every key commented out is empty
    for section, selector in (("task", "tasks"), ("optimizer", "optimizers")):
        body = sections.get(section)
        if isinstance(body, dict) and "name" in body:
            setattr(request, selector, _selector_list(body.pop("name")))
    for section, body in sections.items():
        if not isinstance(body, dict):
            problems.append(f"{section} ({source}): expected a mapping, got {body!r}")
    sweep = data.get("sweep") or {}
    if not isinstance(sweep, dict):
        problems.append(f"sweep ({source}): expected a mapping of dotted keys to lists of values")
        sweep = {}
    for key, values in sweep.items():
        if not isinstance(values, list) or not values:
            problems.append(f"sweep.{key} ({source}): expected a non-empty list of values")
            continue
        selector = SELECTOR_KEYS.get(key) or (key if key in ("tasks", "optimizers") else None)
        if selector:
            setattr(request, selector, _selector_list(values))
        else:
            request.axes.append(Axis(str(key), tuple(values), source))
    if problems:
        raise ConfigError(problems)
    sections = {k: v for k, v in sections.items() if isinstance(v, dict) and v}
    if sections:
        request.layers.append(Layer(source, sections))
    return request


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Leaf values by dotted key: {"a": {"b": 1}} -> {"a.b": 1}; an empty mapping is a leaf."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def combine(first: Request, second: Request) -> Request:
    """The second request (command line) refines the first (experiment file): a key the second sets,
    as a value or as a sweep, replaces the first's sweep over that key."""
    overridden = {axis.key for axis in second.axes}
    for layer in second.layers:
        overridden.update(flatten(layer.values))
    axes = [a for a in first.axes if a.key not in overridden] + second.axes
    return Request(
        tasks=second.tasks if second.tasks is not None else first.tasks,
        optimizers=second.optimizers if second.optimizers is not None else first.optimizers,
        layers=first.layers + second.layers,
        axes=axes,
    )


# ---------------------------------------------------------------- validation against the schema


def _did_you_mean(key: str, candidates: list[str]) -> str:
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
            problems.append(f"{dotted} ({source}): unknown key{_did_you_mean(dotted, candidates)}")
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


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _executor_problems(engine: Mapping[str, Any]) -> list[str]:
    """engine.workers and the engine.slurm section (the sbatch options are checked when submitting)."""
    problems = []
    workers, slurm = engine.get("workers"), engine.get("slurm", {})
    if not (isinstance(workers, int) and not isinstance(workers, bool) and workers >= 0):
        problems.append(f"engine.workers: must be 0 (in this process) or a positive integer, got {workers!r}")
    for key in ("array_parallelism",):
        if not _positive_int(slurm.get(key)):
            problems.append(f"engine.slurm.{key}: must be a positive integer, got {slurm.get(key)!r}")
    requeues = slurm.get("max_requeues")
    if not (isinstance(requeues, int) and not isinstance(requeues, bool) and requeues >= 0):
        problems.append(f"engine.slurm.max_requeues: must be 0 or a positive integer, got {requeues!r}")
    factor = slurm.get("time_factor")
    if not (isinstance(factor, (int, float)) and not isinstance(factor, bool) and factor > 0):
        problems.append(f"engine.slurm.time_factor: must be a positive number, got {factor!r}")
    if not all(isinstance(line, str) for line in slurm.get("setup", [])):
        problems.append("engine.slurm.setup: must be a list of shell lines (strings)")
    return problems


# Lightning's precisions that engine.precision accepts (trainer_options decides what a device gets).
PRECISIONS = ("32-true", "64-true", "16-mixed", "bf16-mixed", "16-true", "bf16-true")


def _training_problems(engine: Mapping[str, Any], task: Mapping[str, Any]) -> list[str]:
    """The training options: precision, accumulation and the batch size rule, clipping, early stopping."""
    from framework.batching import micro_batch_problem

    problems = []
    if engine.get("precision") not in PRECISIONS:
        problems.append(f"engine.precision: must be one of {', '.join(PRECISIONS)}, got {engine.get('precision')!r}")
    accumulate = engine.get("accumulate_grad_batches")
    if not _positive_int(accumulate):
        problems.append(f"engine.accumulate_grad_batches: must be a positive integer, got {accumulate!r}")
    elif _positive_int(task.get("batch_size")) and _positive_int(engine.get("devices")):
        problem = micro_batch_problem(task["batch_size"], engine["devices"], accumulate)
        if problem:
            problems.append(problem)
    if not engine.get("gradient_clip_val", 0.0) >= 0:
        problems.append(f"engine.gradient_clip_val: must be 0 (off) or a positive number, got {engine.get('gradient_clip_val')!r}")
    if engine.get("gradient_clip_algorithm") not in ("norm", "value"):
        problems.append(f"engine.gradient_clip_algorithm: must be norm or value, got {engine.get('gradient_clip_algorithm')!r}")
    for key in ("early_stopping_patience", "skip_bad_samples"):
        value = engine.get(key)
        if not (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
            problems.append(f"engine.{key}: must be 0 (off) or a positive integer, got {value!r}")
    if not engine.get("early_stopping_min_delta", 0.0) >= 0:
        problems.append(f"engine.early_stopping_min_delta: must be >= 0, got {engine.get('early_stopping_min_delta')!r}")
    return problems


def check_semantics(config: Mapping[str, Any]) -> list[str]:
    """Value checks that types alone cannot express, on the resolved config (whatever layer set them)."""
    problems = []
    task, engine, evaluation = config["task"], config["engine"], config["evaluation"]

    def bad(key: str, message: str) -> None:
        problems.append(f"{key}: {message}")

    for key, choices in (
        ("task.target_metric_mode", ("min", "max")),
        ("evaluation.plot.test_metric_mode", ("min", "max")),
        ("evaluation.checkpoint", ("best", "last")),
        ("engine.executor", ("local", "slurm")),
    ):
        section, *rest = key.split(".")
        value: Any = config[section]
        for part in rest:
            value = value.get(part) if isinstance(value, Mapping) else None
        if value not in choices:
            bad(key, f"must be one of {', '.join(choices)}, got {value!r}")
    if not _positive_int(task.get("batch_size")):
        bad("task.batch_size", f"must be a positive integer, got {task.get('batch_size')!r}")
    epochs, steps = task.get("max_epochs"), task.get("max_steps")
    for key, value in (("task.max_epochs", epochs), ("task.max_steps", steps)):
        if value is not None and not _positive_int(value):
            bad(key, f"must be a positive integer or null, got {value!r}")
    if epochs is None and steps is None:
        bad("task.max_epochs", "set a positive max_epochs or max_steps (both are null)")
    problems += _executor_problems(engine)
    if not _positive_int(engine.get("devices")):
        bad("engine.devices", f"must be a positive integer, got {engine.get('devices')!r}")
    problems += _training_problems(engine, task)
    for name in engine.get("test_checkpoints", []):
        if name not in ("best", "last"):
            bad("engine.test_checkpoints", f"entries must be best or last, got {name!r}")
    if "schedule" in config["optimizer"]:  # the optimizer uses the shared schedule: check its keys now
        from framework.schedulers import schedule_from_config

        try:
            schedule_from_config(config["optimizer"], total_steps=1)
        except ValueError as exc:
            problems += [p.strip() for p in str(exc).split("; ")]
    target = evaluation.get("target")
    if target is not None and (isinstance(target, bool) or not isinstance(target, (int, float)) or target != target):  # NaN: never reached
        bad("evaluation.target", f"must be a number (a value of {task.get('target_metric')}) or null, got {target!r}")
    limits = evaluation["plot"].get("limits")
    if limits is not None and (not isinstance(limits, (list, tuple)) or len(limits) != 2 or not all(isinstance(v, (int, float)) for v in limits)):
        bad("evaluation.plot.limits", f"must be [low, high] or null, got {limits!r}")
    return problems
