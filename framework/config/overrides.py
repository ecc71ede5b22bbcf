"""The configuration language: `key=value` command-line overrides and experiment files -> Request.

`a=1,2` is a sweep axis (commas outside brackets and quotes), `a=[1,2]` a list value, and values are
read the YAML 1.2 way (`1e-3` is a float). An experiment file holds the sections, `tasks`, `optimizers`
and `sweep`.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

from framework.config.file_io import load_yaml, parse_yaml
from framework.config.request import SECTIONS, SELECTOR_KEYS, Axis, Layer, Request
from framework.config.schema import deep_merge, did_you_mean, nest
from framework.errors import ConfigError


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
        if key.startswith("search."):  # a search setting or range: one value, never a sweep
            request.search[key.removeprefix("search.")] = parse_value(raw)
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
    """Read an experiment file: sections task/optimizer/engine/evaluation, `tasks`, `optimizers`,
    `sweep` (a mapping of dotted keys to lists of values, each a grid axis) and `search` (search.py)."""
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
    allowed = set(SECTIONS) | {"tasks", "optimizers", "sweep", "search"}
    for key in data:
        if key not in allowed:
            hint = did_you_mean(str(key), sorted(allowed))
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
    search = data.get("search") or {}
    if isinstance(search, dict):
        request.search, request.search_source = dict(search), source
    else:
        problems.append(f"search ({source}): expected a mapping of settings and keys to ranges (docs/search.md)")
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
