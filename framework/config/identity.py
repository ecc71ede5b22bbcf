"""What a run's identity is made of: the resolved configuration as the run will compute it.

The run_id (grid.run_id) hashes this, so two configurations that train the same thing share a run
directory (a finished run is skipped, not repeated) and two that train differently never do:

- `engine.accelerator` is replaced by the device kind the run trains on (cuda, mps, cpu;
  devices.identity_device), so `auto` on a CPU machine is the same run as `cpu`, and a GPU run never
  reuses a CPU run's results;
- `engine.precision` is replaced by the precision it trains in (devices.identity_precision): bf16 on a
  CPU trains in 32-true and is the same run as 32-true there;
- schedule keys the chosen schedule never reads are left out (UNUSED_SCHEDULE_KEYS);
- the keys that only say where and how a run executes are left out (grid.NON_IDENTITY).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from framework.config.devices import identity_device, identity_precision

# The decay-shape keys each schedule ignores (framework/config/schedules.py: lr_factor). Warmup is read
# by every schedule. An unknown schedule leaves everything in: check_semantics refuses it anyway.
_SHAPE_KEYS = ("eta_min_factor", "decay_milestones", "decay_gamma", "poly_power")
UNUSED_SCHEDULE_KEYS: dict[str, tuple[str, ...]] = {
    "cosine": ("decay_milestones", "decay_gamma", "poly_power"),
    "poly": ("decay_milestones", "decay_gamma"),
    "step": ("eta_min_factor", "poly_power"),
    "constant": _SHAPE_KEYS,
}


def _drop(node: dict, dotted: str) -> None:
    *parents, last = dotted.split(".")
    for part in parents:
        node = node.get(part, {})
    if isinstance(node, dict):
        node.pop(last, None)


def identity(config: Mapping[str, Any], leave_out: Iterable[str] = ()) -> dict[str, Any]:
    """A copy of `config` holding what decides the run's numbers; `leave_out` are dotted keys to drop."""
    result = copy.deepcopy(dict(config))
    engine = result.get("engine")
    if isinstance(engine, dict):
        device = identity_device(engine)
        engine["precision"] = identity_precision(engine, device)
        engine["accelerator"] = device
    schedule = result.get("schedule")
    if isinstance(schedule, dict):
        for key in UNUSED_SCHEDULE_KEYS.get(str(schedule.get("name")), ()):
            schedule.pop(key, None)
    for dotted in leave_out:
        _drop(result, dotted)
    return result


__all__ = ["UNUSED_SCHEDULE_KEYS", "identity"]
