"""The accumulator contract shared by the vision metrics: reset / update / compute, mergeable.

Each accumulator keeps one small record per image, keyed by the image id when the caller gives one.
Records merge by union: the same image seen twice (Lightning's DistributedSampler pads the validation set
with repeated images so that every process gets as many) counts once. Records without an image id are
all kept.

`compute()` gathers the records of every process when torch.distributed is initialised with more
than one process (a collective: every process must call it, as Lightning's epoch-end hooks do), and
returns a flat dict of floats, the same on every process. `state()` / `merge(state)` do the same by
hand, for other ways of running several processes.
"""

from __future__ import annotations

from typing import Any, Hashable


class Accumulator:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._records: dict[Hashable, Any] = {}
        self._anonymous: list[Any] = []

    def _add(self, image_id: Hashable | None, record: Any) -> None:
        if image_id is None:
            self._anonymous.append(record)
        else:
            self._records.setdefault(_key(image_id), record)

    def __len__(self) -> int:
        """The number of images accumulated (each image id once)."""
        return len(self._records) + len(self._anonymous)

    def state(self) -> dict[str, Any]:
        """Everything accumulated, as picklable plain data (tensors, lists, dicts)."""
        return {"records": dict(self._records), "anonymous": list(self._anonymous)}

    def merge(self, state: dict[str, Any]) -> None:
        """Add another accumulator's `state()`; images already seen are not counted again."""
        for key, record in state["records"].items():
            self._records.setdefault(key, record)
        self._anonymous.extend(state["anonymous"])

    def compute(self, sync: bool = True) -> dict[str, float]:
        """The metric over every image accumulated, in this process or (with `sync`) in all of them."""
        records = list(self._records.values()) + list(self._anonymous)
        if sync and _world_size() > 1:
            records = _gathered_records(self.state())
        return self._compute(records)

    def _compute(self, records: list[Any]) -> dict[str, float]:
        raise NotImplementedError


def _key(image_id: Hashable) -> Hashable:
    # 3, 3.0 and tensor(3) are the same image
    if hasattr(image_id, "item"):
        image_id = image_id.item()
    return int(image_id) if isinstance(image_id, float) and image_id.is_integer() else image_id


def _world_size() -> int:
    import torch.distributed as dist

    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def _gathered_records(state: dict[str, Any]) -> list[Any]:
    """All processes' records, deduplicated by image id, in process order (so every process computes the
    same numbers)."""
    import torch.distributed as dist

    states: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(states, _to_cpu(state))
    merged: dict[Hashable, Any] = {}
    anonymous: list[Any] = []
    for other in states:
        for key, record in other["records"].items():
            merged.setdefault(key, record)
        anonymous.extend(other["anonymous"])
    return list(merged.values()) + anonymous


def _to_cpu(value: Any) -> Any:
    """Records may hold tensors on a GPU; the gather pickles them, so move them to the CPU first."""
    if hasattr(value, "cpu"):
        return value.cpu()
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_cpu(v) for v in value)
    return value


class MetricSet:
    """Several accumulators scored together: `metrics["pq"].update(...)` feeds one, `compute()` returns
    all of their flat dicts in one (their keys must not clash), `reset()` resets each."""

    def __init__(self, **metrics: Accumulator):
        self.metrics = metrics

    def __getitem__(self, name: str) -> Accumulator:
        return self.metrics[name]

    def reset(self) -> None:
        for metric in self.metrics.values():
            metric.reset()

    def compute(self, sync: bool = True) -> dict[str, float]:
        out: dict[str, float] = {}
        for name, metric in self.metrics.items():
            values = metric.compute(sync)
            clash = set(values) & set(out)
            if clash:
                raise ValueError(f"metric '{name}' repeats the keys {sorted(clash)}")
            out.update(values)
        return out
