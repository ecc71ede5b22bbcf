"""The resolved configuration a run receives: a frozen, nested mapping with attribute access."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import Any


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
