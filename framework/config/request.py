"""What the user asked for, before validation: selected plugins, layers of values, sweep axes.

The command line and the experiment file each become a Request (`overrides.py`); `combine` lets the
command line refine the experiment file. `grid.expand` validates a Request and expands it into runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from framework.config.schema import flatten

SECTIONS = ("task", "optimizer", "schedule", "engine", "evaluation")
# Keys chosen by the `tasks=` / `optimizers=` axes rather than set as values.
SELECTOR_KEYS = {"task.name": "tasks", "optimizer.name": "optimizers", "task": "tasks", "optimizer": "optimizers"}


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
    # the `search:` section as given (dotted keys), checked by config/search.py; its source for messages
    search: dict[str, Any] = field(default_factory=dict)
    search_source: str = "command line"

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
        # the command line's search.* keys refine the experiment file's search section
        search={**first.search, **second.search},
        search_source=second.search_source if second.search else first.search_source,
    )
